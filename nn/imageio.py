"""Read and write frames with OpenImageIO, keeping file format, bit depth and alpha.

Blender bundles OpenImageIO's Python bindings in its own site-packages, so the
worker needs no new dependency. Outside Blender (the command lines, tests) the
copy inside the installed ``bpy`` wheel is found and used.
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

import numpy as np

from . import files

# Set by Blender's side for the worker: the folder that holds OpenImageIO.
OIIO_PATH_ENV = "FRAMEWEAVER_OIIO_PATH"

_INTEGER_TYPES = {"uint8": 255.0, "uint16": 65535.0}


def _import_oiio():
    try:
        return importlib.import_module("OpenImageIO")
    except ImportError:
        pass
    candidates = [os.environ.get(OIIO_PATH_ENV, "")]
    spec = importlib.util.find_spec("bpy")
    if spec and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidates += glob.glob(os.path.join(root, "*", "python", "lib", "python3*", "site-packages"))
    for folder in candidates:
        if folder and os.path.isdir(os.path.join(folder, "OpenImageIO")):
            sys.path.append(folder)
            return importlib.import_module("OpenImageIO")
    raise ImportError(
        "OpenImageIO was not found. Run inside Blender, install the 'bpy' wheel, "
        f"or set {OIIO_PATH_ENV} to the site-packages folder that contains it."
    )


oiio = _import_oiio()


@dataclass(frozen=True)
class ImageFormat:
    """How a frame is stored on disk, so outputs can match their inputs."""

    extension: str  # ".png", ".exr", ...
    pixel_type: str  # "uint8", "uint16", "half" or "float"
    channels: int  # 1..4; 4 means RGBA

    @property
    def is_float(self) -> bool:
        return self.pixel_type not in _INTEGER_TYPES

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)


class ImageReadError(IOError):
    pass


class NonFinitePixels(ImageReadError):
    """A float image holding NaN or infinite values: refused, never repaired (README, "Depth and alpha")."""


def read_image(path: str) -> tuple[np.ndarray, ImageFormat]:
    """Return pixels as float32 (H, W, C) and the file's format.

    Integer files are scaled to [0, 1]; float files keep their values. A float file holding NaN or
    infinite values is refused (NonFinitePixels): they would spread through every frame made from it.
    """
    if not os.path.isfile(path):
        raise ImageReadError(f"Missing image file: {path}")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep straight alpha as stored in PNG/TIFF
    reader = oiio.ImageInput.open(path, config)
    if reader is None:
        raise ImageReadError(f"Cannot read image {path}: {oiio.geterror() or 'unknown format'}")
    try:
        spec = reader.spec()
        stored = str(spec.format)
        pixels = reader.read_image(0, 0, 0, spec.nchannels, "float")
        if pixels is None:
            raise ImageReadError(f"Corrupt or truncated image {path}: {reader.geterror()}")
    finally:
        reader.close()
    pixels = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    pixel_type = stored if stored in ("uint8", "uint16", "half", "float") else "float"
    if pixel_type not in _INTEGER_TYPES and stored.startswith("uint"):
        pixel_type = "uint16"
    if pixel_type not in _INTEGER_TYPES and (bad := int(pixels.size - np.count_nonzero(np.isfinite(pixels)))):
        raise NonFinitePixels(f"{path} holds {bad} non-finite pixel values (NaN or infinite), refused rather than "
                              "spread into new frames. Replace them (clamp the render, or remove its fireflies) "
                              "and save the file again")
    ext = os.path.splitext(path)[1].lower()
    return pixels, ImageFormat(extension=ext, pixel_type=pixel_type, channels=spec.nchannels)


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the file's header, without reading its pixels."""
    reader = oiio.ImageInput.open(path)
    if reader is None:
        raise ImageReadError(f"Cannot read image {path}: {oiio.geterror() or 'unknown format'}")
    try:
        return reader.spec().width, reader.spec().height
    finally:
        reader.close()


def write_image(path: str, pixels: np.ndarray, fmt: ImageFormat) -> None:
    """Write (H, W, C) float pixels to a new file; never overwrite an existing one.

    The file appears under its final name only once complete (write a partial
    file, then publish it, which fails if the name is taken); a failed write,
    a full disk included, raises ``OSError`` and leaves no file.
    """
    if os.path.lexists(path):
        raise FileExistsError(f"Refusing to overwrite {path}")
    height, width, channels = pixels.shape
    if fmt.is_float:
        data = np.ascontiguousarray(pixels, dtype=np.float32)
    else:
        scale = _INTEGER_TYPES[fmt.pixel_type]
        dtype = np.uint8 if fmt.pixel_type == "uint8" else np.uint16
        data = np.ascontiguousarray(np.clip(pixels, 0.0, 1.0) * scale + 0.5).astype(dtype)
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    partial = os.path.join(folder, f".{stem}.partial-{os.getpid()}{ext}")
    spec = oiio.ImageSpec(width, height, channels, fmt.pixel_type)
    if channels in (2, 4):
        spec.alpha_channel = channels - 1
        spec.attribute("oiio:UnassociatedAlpha", 1)
    if fmt.pixel_type == "half" or fmt.pixel_type == "float":
        spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(partial)
    if out is None:
        raise OSError(f"No writer for {path}: {oiio.geterror()}")
    try:
        # The PNG writer reports a failed write (a full disk) only through has_error/geterror().
        written = out.open(partial, spec) and out.write_image(data) and not out.has_error
        written = out.close() and written and not out.has_error
        if not written:
            raise files.write_failed(path, out.geterror(), needed=data.nbytes // 4)
        files.publish(partial, path)
    finally:
        out.close()
        if os.path.lexists(partial):
            os.unlink(partial)

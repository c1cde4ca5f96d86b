"""New files that appear complete under their final name or not at all, and what to say when a write fails.

Plain Python (no torch, no bpy): the worker, the command lines and Blender's side share it.
"""
from __future__ import annotations

import errno
import os
import shutil

# link() errors that mean "this filesystem has no hard links" (FAT/exFAT: EPERM; SMB, some FUSE: EOPNOTSUPP),
# or that this file cannot take one more link (EMLINK); an exclusive create and a rename do the same job there.
NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EINVAL}


def publish(partial: str, path: str) -> None:
    """Give the complete file ``partial`` the new name ``path`` (same folder); fails if ``path`` exists.

    A hard link is atomic and refuses a taken name. Where links are missing, the
    name is claimed by an exclusive create (O_EXCL) and the partial file renamed
    over that empty claim. ``partial`` is gone afterwards either way.
    """
    try:
        os.link(partial, path)
    except OSError as error:
        if error.errno not in NO_HARD_LINKS:
            raise
        publish_without_link(partial, path)
    else:
        os.unlink(partial)


def write_new(path: str, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` as the file ``path``, complete or not at all; an existing ``path`` is refused unless
    ``replace``. A full disk raises ``DiskFull`` and leaves nothing behind."""
    if os.path.lexists(path) and not replace:
        raise FileExistsError(f"Refusing to overwrite {path}")
    folder, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(folder, f".{name}.partial-{os.getpid()}")
    try:
        with open(partial, "xb") as f:
            f.write(data)
        if replace:
            os.replace(partial, path)
        else:
            publish(partial, path)  # fails if the name was taken meanwhile
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, len(data)) from error
        raise
    finally:
        if os.path.lexists(partial):
            os.unlink(partial)


def publish_without_link(partial: str, path: str) -> None:
    """The fallback of ``publish``: claim ``path`` exclusively, then rename ``partial`` onto it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # FileExistsError if taken
    try:
        os.replace(partial, path)
    except OSError:
        os.unlink(path)  # our own empty claim: never leave an empty file under the final name
        raise


def size_text(count: float) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def free_bytes(folder: str) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


class DiskFull(OSError):
    """ENOSPC, worded for the user (``str`` is the message alone, without "[Errno 28]")."""

    def __str__(self) -> str:
        return self.strerror


def disk_full(path: str, needed: int = 1) -> DiskFull:
    """The error to raise when ``path`` could not be written because its disk is full."""
    folder = os.path.dirname(os.path.abspath(path))
    free = free_bytes(folder)
    left = f"{size_text(free)} free" if free is not None else "no space left"
    return DiskFull(errno.ENOSPC, f"The disk is full: could not write {path} ({left} in {folder}, "
                                 f"about {size_text(max(needed, 1))} needed). Free some space or choose "
                                 "another output folder")


def write_failed(path: str, detail: str, needed: int) -> OSError:
    """A write that reported an error: a full disk when less than ``needed`` bytes are left, else ``detail``."""
    free = free_bytes(os.path.dirname(os.path.abspath(path)))
    if free is not None and free < needed:
        return disk_full(path, needed)
    return OSError(f"Cannot write {path}: {detail.strip() or 'unknown error'}")


def describe(error: OSError) -> str:
    """One line for the user; a full disk says so plainly whoever raised it."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(error, DiskFull):
        return str(disk_full(error.filename or "the output"))
    return str(error)

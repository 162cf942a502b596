"""Atomic file writes: a temporary file in the target's folder, then os.replace.

A reader (or a build interrupted half-way) sees either the old file or the new
one, never a half-written one; the temporary file is removed on any error.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)  # mkstemp creates 0600; these files are meant to be shared
        os.replace(temp, path)
    except BaseException as exc:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not exc.filename:   # say which file (a full disk)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def dumps_json(obj) -> str:
    """The JSON text the build writes: indented, key order kept, no NaN/Infinity
    (which JSON does not have and browsers cannot parse)."""
    return json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, dumps_json(obj))


def write_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """Write only when the bytes differ (keeps mtimes of unchanged files); True if written."""
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
    except (FileNotFoundError, IsADirectoryError):
        pass
    write_bytes(path, data)
    return True


# ------------------------------------------------------------ whole folders
#
# exported/ and site/ are each replaced as a whole: the build fills a fresh
# folder beside the target, then swaps the two in one step, so a build killed
# at any moment leaves either the old folder or the new one, never a mix (and
# never neither). On Linux the swap is renameat2(RENAME_EXCHANGE); elsewhere
# (or on a file system without it) two renames, with a moment between them in
# which the target is missing.

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: Name parts of the build's work folders beside a target (cleaned up by
#: remove_leftovers after a killed build).
WORK_MARKS = (".staging-", ".building-", ".old-")


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders a and b atomically; False where the system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    import errno

    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(error, os.strerror(error), str(b))


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the folder ``new`` at ``target`` (which may not exist yet); the old
    folder is removed after the swap. ``new`` must sit beside ``target``."""
    import shutil

    new, target = Path(new), Path(target)
    if target.exists():
        if _exchange(new, target):
            shutil.rmtree(new, ignore_errors=True)         # now the old folder
            return
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def work_dir(target: str | os.PathLike, mark: str) -> Path:
    """A fresh, empty folder beside ``target`` (same file system, so that
    replace_dir can swap them), readable by others as a site must be."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}{mark}", dir=target.parent))
    os.chmod(folder, 0o755)
    return folder


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove what a killed build left: its work folders beside ``target``
    and the temporary files of interrupted writes inside it. Returns them."""
    import shutil

    target = Path(target)
    removed = []
    if target.parent.is_dir():
        for path in target.parent.iterdir():
            if (path.name.startswith(f".{target.name}.")
                    and any(path.name.startswith(f".{target.name}{m}") for m in WORK_MARKS)
                    and path.is_dir() and not path.is_symlink()):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    if target.is_dir():
        for path in target.rglob(f".*{TEMP_SUFFIX}"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def link_copy(source: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy the folder tree ``source`` into the existing empty folder ``dest``,
    files as hard links where possible (every writer here replaces a file
    rather than writing into it, so the links never change the original)."""
    import shutil

    source, dest = Path(source), Path(dest)
    for folder, dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (dest / relative).mkdir(exist_ok=True)
        for name in files:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                continue                         # an interrupted write's leftover
            src, dst = Path(folder) / name, dest / relative / name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

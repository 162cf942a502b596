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
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
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

"""Content hashes: of files, and of the inputs of each build stage.

A stage's inputs hash covers everything its output depends on: settings, the
source files of the code that computes it, and the hashes of the files it reads.
The manifest records these hashes; a stage reruns only when its hash changed.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

#: Code whose output is the trained weights (not evaluation or export code, so
#: that a change there does not retrain).
TRAINING_SOURCES = ("meta/tasks.py", "meta/model.py", "meta/train.py", "meta/algorithms/*.py")
EVALUATION_SOURCES = ("meta/tasks.py", "meta/model.py", "meta/evaluate.py")
EXPORT_SOURCES = ("meta/model.py", "meta/export.py")
FIGURE_SOURCES = ("meta/export.py", "site_builder/figures.py")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: A line that only marks a section for the pages' code listings
#: (pymdownx.snippets, e.g. ``# --8<-- [start:meta_gradient]``): not code.
_SNIPPET_MARKER = re.compile(rb"^[ \t]*# --8<-- \[(start|end):[A-Za-z0-9_-]+\][ \t]*\r?\n?", re.MULTILINE)


def source_sha256(path: Path) -> str:
    """sha256 of a source file without its snippet-marker lines, so that marking
    a function for a page's listing does not make the models built from it stale."""
    return hashlib.sha256(_SNIPPET_MARKER.sub(b"", path.read_bytes())).hexdigest()


def source_hashes(repo_root: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """{repo-relative path: sha256 without snippet markers} for every file
    matching the glob patterns."""
    files: dict[str, str] = {}
    for pattern in patterns:
        matches = sorted(repo_root.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"no source file matches {pattern!r} under {repo_root}")
        for path in matches:
            files[path.relative_to(repo_root).as_posix()] = source_sha256(path)
    return dict(sorted(files.items()))


def inputs_hash(**parts) -> str:
    """sha256 of the parts as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

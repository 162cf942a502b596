"""exported/manifest.json: what each exported model is, and the record of the
inputs each file was built from (see contracts.md for the public fields)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from . import atomic
from .config import MODELS

log = logging.getLogger("site_builder")

FORMAT = 1
MANIFEST = "manifest.json"

#: Key order of a model entry: the contract's fields first, then the build's own.
#: The fields contracts.md requires of every entry.
CONTRACT_FIELDS = ("name", "algorithm", "task", "file", "sha256", "inner_lr", "steps", "train",
                   "metrics")
ENTRY_ORDER = CONTRACT_FIELDS + ("graph", "weights", "results", "figure", "figures", "training",
                                  "inputs")


def read(exported: Path) -> dict:
    """The current manifest, or an empty one when missing or unreadable (then
    every stage reruns, which is the safe answer)."""
    path = exported / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"format": FORMAT, "models": []}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s); everything will be rebuilt", path, exc)
        return {"format": FORMAT, "models": []}
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("models"), list)):
        log.warning("ignoring %s: not a format-%d manifest; everything will be rebuilt", path, FORMAT)
        return {"format": FORMAT, "models": []}
    return manifest


def entry_order() -> list[str]:
    """The manifest's entries in order: the registered models, then the toy graphs."""
    from .toy_stage import graph_names

    from .meta_step_stage import graph_names as meta_step_names

    from .conv_stage import model_names as conv_names

    # The conv nets (issue 13) after the toy graphs; the meta-step graphs stay last.
    return list(MODELS) + graph_names() + conv_names() + meta_step_names()


def entries_by_name(manifest: dict) -> dict[str, dict]:
    return {m["name"]: m for m in manifest["models"] if isinstance(m, dict) and "name" in m}


def _ordered(entry: dict) -> dict:
    known = {key: entry[key] for key in ENTRY_ORDER if key in entry}
    return {**known, **{k: v for k, v in entry.items() if k not in known}}


def write(exported: Path, old: dict, updated: dict[str, dict]) -> bool:
    """Write the manifest with `updated` entries replacing old ones, models in
    registry order; other top-level keys are kept. Returns True if the file changed."""
    entries = {**entries_by_name(old), **updated}
    manifest = {"format": FORMAT,
                **{k: v for k, v in old.items() if k not in ("format", "models")},
                "models": [_ordered(entries[name]) for name in entry_order() if name in entries]}
    return atomic.write_if_changed(exported / MANIFEST, atomic.dumps_json(manifest).encode("utf-8"))

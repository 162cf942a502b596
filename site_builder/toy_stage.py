"""The toy problems in the build: the three toy graphs and their figures.

Like a model's stages, each step hashes what its output depends on (the code
of meta/toy.py and of the exporter or the figures) and runs only when that
hash differs from the one the manifest recorded, or a file it wrote is gone
or altered. Nothing here is trained, so --retrain does not touch them.

Each graph gets a manifest entry of its own (the contract's fields, with
``train`` and ``metrics`` null, plus ``graph``, its inputs and outputs, and
``figures``, the records of the figures drawn from its math).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from meta import toy

from . import atomic
from .hashing import file_sha256, inputs_hash, source_hashes

log = logging.getLogger("site_builder")

EXPORT_SOURCES = ("meta/toy.py", "meta/toy_export.py", "meta/export.py")
FIGURE_SOURCES = ("meta/toy.py", "site_builder/toy_figures.py", "site_builder/figures.py")


def graph_names() -> list[str]:
    from meta.toy_export import GRAPHS

    return list(GRAPHS)


def _task(name: str) -> dict:
    if name == "toy-curvature":
        return {"family": "quadratic",
                "model": "f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx on the plane"}
    return {"family": "softplus-toy", "model": "g(x) = softplus(a·x + b)",
            "tasks": [list(t) for t in toy.TOY_TASKS], "x": list(toy.TOY_X),
            "plane": [list(r) for r in toy.TOY_PLANE]}


def _intact(exported: Path, record: dict | None) -> bool:
    if not record or "file" not in record:
        return False
    path = exported / record["file"]
    return path.is_file() and file_sha256(path) == record.get("sha256")


def run_toy_stages(exported: Path, repo_root: Path, recorded: dict[str, dict],
                   stages: tuple[str, ...] = ("export", "figures")) -> tuple[dict[str, dict], list[str]]:
    """Export the toy graphs and render their figures where stale. Returns the
    new manifest entries by name and the steps that wrote files."""
    from meta.toy_export import GRAPHS, export_toy

    from .toy_figures import FIGURES_BY_GRAPH, render_all

    hashes = {"export": inputs_hash(code=source_hashes(repo_root, EXPORT_SOURCES)),
              "figures": inputs_hash(code=source_hashes(repo_root, FIGURE_SOURCES))}
    entries, ran = {}, []
    for name, graph in GRAPHS.items():
        old = recorded.get(name, {})
        entries[name] = {
            "name": name, "algorithm": "toy", "task": _task(name), "file": graph.file,
            "sha256": old.get("sha256"), "inner_lr": toy.TOY_INNER_LR,
            "steps": toy.TOY_GRAPH_STEPS, "train": None, "metrics": None,
            "graph": graph.signature(), "figures": old.get("figures", []),
            "inputs": dict(old.get("inputs", {})),
        }

    if "export" in stages:
        for name, entry in entries.items():
            record = {"file": entry["file"], "sha256": entry["sha256"]}
            if entry["inputs"].get("export") == hashes["export"] and _intact(exported, record):
                continue
            log.info("%s: exporting the toy graph", name)
            export_toy(name, exported / entry["file"])
            entry["sha256"] = file_sha256(exported / entry["file"])
            entry["inputs"]["export"] = hashes["export"]
            ran.append(f"{name}: export")

    if "figures" in stages:
        current = all(entry["inputs"].get("figures") == hashes["figures"]
                      and len(entry["figures"]) == len(FIGURES_BY_GRAPH[name])
                      and all(_intact(exported, r) for r in entry["figures"])
                      for name, entry in entries.items())
        if not current:
            log.info("toy problems: rendering the accumulated meta-loss frames and widget figures")
            files = render_all()
            for path, data in files.items():
                atomic.write_bytes(exported / path, data)
            for name, entry in entries.items():
                entry["figures"] = [{"file": f, "sha256": hashlib.sha256(files[f]).hexdigest()}
                                    for f in FIGURES_BY_GRAPH[name]]
                entry["inputs"]["figures"] = hashes["figures"]
            ran.append("toy figures")
    return entries, ran

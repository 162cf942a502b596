"""Staging the docs and running MkDocs.

The build never writes into the source tree's docs/: it copies docs/ into a
work folder, adds what it generated there (models, figures, browser assets),
and points MkDocs (strict) at that copy. MkDocs writes into a fresh folder
beside the site folder, which then replaces the old site in one rename, so a
failed build leaves the previous site as it was.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from .errors import BuildFailure
from .generated import FIGURES_DIR, MODELS_DIR, VENDOR_DIR, Staging, stage_pages
from .manifest import MANIFEST
from .mathrender import render_site_math

log = logging.getLogger("site_builder")

#: Folders under docs/ that only the build fills (they are git-ignored; a stale
#: local copy must not leak into the staged docs).
GENERATED_DIRS = ("generated", VENDOR_DIR, MODELS_DIR)


def site_files(entry: dict) -> list[tuple[str, str]]:
    """(path in exported/, path in the staged docs) of a model's files the site serves."""
    files = []
    if "file" in entry:
        files.append((entry["file"], f"{MODELS_DIR}/{entry['file']}"))
    if "results" in entry:
        files.append((entry["results"]["file"], f"{MODELS_DIR}/{entry['results']['file']}"))
    figures = [entry["figure"]] if "figure" in entry else []
    for record in figures + list(entry.get("figures") or []):
        files.append((record["file"], f"{FIGURES_DIR}/{Path(record['file']).name}"))
    return files


def stage_docs(repo_root: Path, exported: Path, entries: list[dict], work_docs: Path) -> None:
    """Fill work_docs with docs/ plus the manifest, models, results, figures and
    the pinned browser libraries."""
    from .assets import copy_browser_assets

    source = repo_root / "docs"
    if not (source / "index.md").is_file():
        raise BuildFailure(f"{source} has no index.md: nothing to build")
    generated = {(source / d).resolve() for d in GENERATED_DIRS}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if (Path(folder) / n).resolve() in generated}

    if work_docs.exists():
        shutil.rmtree(work_docs)
    shutil.copytree(source, work_docs, ignore=ignore)
    (work_docs / MODELS_DIR).mkdir(parents=True, exist_ok=True)
    # copyfile, not copy2: the site's files get ordinary permissions whatever
    # mode the exported file has.
    shutil.copyfile(exported / MANIFEST, work_docs / MODELS_DIR / MANIFEST)
    for entry in entries:
        for src, dest in site_files(entry):
            (work_docs / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(exported / src, work_docs / dest)
    # Generated blocks (the Results page's tables and figures, ...), from what the build wrote.
    from .config import MODELS

    models = [e for e in entries if e.get("name") in MODELS]
    stage_pages(Staging(repo_root, exported, models, work_docs))
    copy_browser_assets(repo_root, work_docs / VENDOR_DIR)


def _load_mkdocs_config(repo_root: Path, docs_dir: Path, site_dir: Path):
    from mkdocs.config import load_config

    config = load_config(config_file=str(repo_root / "mkdocs.yml"), docs_dir=str(docs_dir),
                         site_dir=str(site_dir), strict=True)
    # pymdownx.snippets resolves a relative base_path against the working
    # directory; listings come from the repository, wherever the build runs.
    snippets = config.mdx_configs.get("pymdownx.snippets")
    if snippets is not None:
        base = snippets.get("base_path", ["."])
        base = [base] if isinstance(base, str) else base
        snippets["base_path"] = [str(repo_root / b) if isinstance(b, str) else b for b in base]
    return config


def run_mkdocs(repo_root: Path, docs_dir: Path, site_dir: Path) -> None:
    """MkDocs (strict) from docs_dir into site_dir, replacing it only on success."""
    from mkdocs.commands.build import build
    from mkdocs.exceptions import MkDocsException

    site_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}.building-", dir=site_dir.parent))
    warnings = _WarningCollector()
    mkdocs_log = logging.getLogger("mkdocs")
    mkdocs_log.addHandler(warnings)
    try:
        try:
            config = _load_mkdocs_config(repo_root, docs_dir, fresh)
            config.plugins.on_startup(command="build", dirty=False)
            try:
                build(config)
            finally:
                config.plugins.on_shutdown()
            # KaTeX in the build, so pages ship typeset math and not the script.
            render_site_math(repo_root, fresh)
        except MkDocsException as exc:
            details = "".join(f"\n  {line}" for line in warnings.lines)
            raise BuildFailure(f"MkDocs failed: {exc.format_message()}{details}") from exc
        os.chmod(fresh, 0o755)  # mkdtemp makes it private; a site is meant to be served
        _replace_dir(fresh, site_dir)
    finally:
        mkdocs_log.removeHandler(warnings)
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)


class _WarningCollector(logging.Handler):
    """Keeps MkDocs' warnings so that a strict-mode failure can say what they were."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _replace_dir(new: Path, target: Path) -> None:
    """Put `new` at `target`; the old folder is removed after the swap."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_site(repo_root: Path, exported: Path, entries: list[dict], site_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="maml-site-") as work:
        docs = Path(work) / "docs"
        log.info("staging docs/ and generated files")
        stage_docs(repo_root, exported, entries, docs)
        log.info("running MkDocs (strict) into %s", site_dir)
        run_mkdocs(repo_root, docs, site_dir)

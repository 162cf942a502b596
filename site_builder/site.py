"""Staging the docs and running MkDocs.

The build never writes into the source tree's docs/: it copies docs/ into a
work folder, adds what it generated there (models, figures, browser assets),
and points MkDocs (strict) at that copy. MkDocs writes into a fresh folder
beside the site folder, which then replaces the old site in one rename, so a
failed build leaves the previous site as it was.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from . import atomic
from .errors import BuildFailure, ConfigError
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


def check_site_tools(repo_root: Path) -> None:
    """Before a build writes anything: Node.js, which typesets the math, and
    the pinned browser libraries that `npm ci` installs. Raises ConfigError."""
    from .assets import BrowserAssetsError, check_node_modules

    if shutil.which("node") is None:
        raise ConfigError("Node.js (`node`) is not on PATH, and the build needs it to typeset the "
                          "pages' math (and npm to install the browser libraries); allowed: install "
                          "Node.js with npm, then run `npm ci` in the project folder")
    try:
        check_node_modules(repo_root)
    except BrowserAssetsError as exc:
        raise ConfigError(str(exc)) from None


def recorded_files(entry: dict) -> list[dict]:
    """Every {file, sha256} record of a manifest entry (graph, weights, results, figures)."""
    records = [{"file": entry["file"], "sha256": entry.get("sha256")}] if "file" in entry else []
    for key in ("weights", "results", "figure"):
        if isinstance(entry.get(key), dict) and "file" in entry[key]:
            records.append(entry[key])
    return records + [r for r in entry.get("figures") or [] if isinstance(r, dict) and "file" in r]


def _read_exported(exported: Path, file: str, name: str) -> bytes:
    try:
        return (exported / file).read_bytes()
    except FileNotFoundError:
        raise BuildFailure(f"{name}: {exported / file} is missing, so it cannot be published; "
                           "run `maml-site build` again to rebuild it") from None


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
    recorded = {r["file"]: r.get("sha256") for e in entries for r in recorded_files(e)}
    for entry in entries:
        for src, dest in site_files(entry):
            # The bytes that ship are the bytes the manifest records: a file
            # changed or lost since the stages ran stops the build.
            data = _read_exported(exported, src, entry.get("name", "?"))
            if hashlib.sha256(data).hexdigest() != recorded.get(src):
                raise BuildFailure(f"{entry.get('name', '?')}: {exported / src} does not match the "
                                   "sha256 in the manifest, so it is not published; run "
                                   "`maml-site build` again to rebuild it")
            (work_docs / dest).parent.mkdir(parents=True, exist_ok=True)
            (work_docs / dest).write_bytes(data)
    # Generated blocks (the Results page's tables and figures, ...), from what the build wrote.
    from .config import MODELS

    models = [e for e in entries if e.get("name") in MODELS]
    stage_pages(Staging(repo_root, exported, models, work_docs))
    log.info("copying the browser libraries")
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


def source_date_epoch(repo_root: Path) -> str:
    """The date MkDocs writes into sitemap.xml (and the mtime of sitemap.xml.gz):
    SOURCE_DATE_EPOCH when set (the reproducible-builds convention), else the
    time of the project's last git commit, so that two builds of one commit
    give the same bytes on any day; without git, 2000-01-01."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        done = subprocess.run(["git", "-C", str(repo_root), "log", "-1", "--format=%ct"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip().isdigit():
        return done.stdout.strip()
    return "946684800"


def run_mkdocs(repo_root: Path, docs_dir: Path, site_dir: Path) -> None:
    """MkDocs (strict) from docs_dir into site_dir, replacing it only on success."""
    from mkdocs.commands.build import build
    from mkdocs.exceptions import MkDocsException

    fresh = atomic.work_dir(site_dir, ".building-")
    warnings = _WarningCollector()
    mkdocs_log = logging.getLogger("mkdocs")
    mkdocs_log.addHandler(warnings)
    saved_epoch = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = source_date_epoch(repo_root)
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
            prune_theme_extras(fresh, _search_languages(config))
        except MkDocsException as exc:
            details = "".join(f"\n  {line}" for line in warnings.lines)
            raise BuildFailure(f"MkDocs failed: {exc.format_message()}{details}") from exc
        atomic.replace_dir(fresh, site_dir)      # the old site or the new one, never a mix
    finally:
        if saved_epoch is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = saved_epoch
        mkdocs_log.removeHandler(warnings)
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)


def _search_languages(config) -> list[str]:
    search = config.plugins.get("search")
    langs = getattr(search, "config", {}).get("lang") if search else None
    return list(langs or ["en"])


_SOURCE_MAP_COMMENT = re.compile(r"\n?(//# sourceMappingURL=[^\n]*|/\*# sourceMappingURL=[^*]*\*/)\s*$")


def prune_theme_extras(site: Path, search_languages: list[str]) -> list[Path]:
    """Remove what Material copies into every site but no page of this one
    loads, so the site stays small: the source maps of its scripts and
    stylesheets (1.4 MB; only a developer's tools ask for them, and the
    sourceMappingURL comments go with them) and, when search is English only, lunr's support
    for other languages (0.9 MB: stemmers and the Thai and Japanese word
    segmenters, fetched only for those languages). Returns what was removed."""
    removed = []
    for source_map in sorted((site / "assets").rglob("*.map")):
        mapped = source_map.with_suffix("")             # bundle.min.js, main.min.css
        if mapped.is_file():
            text = mapped.read_text(encoding="utf-8")
            kept = _SOURCE_MAP_COMMENT.sub("", text)
            if kept != text:
                atomic.write_text(mapped, kept)
        source_map.unlink()
        removed.append(source_map)
    scripts = site / "assets" / "javascripts"
    lunr = scripts / "lunr"
    if set(search_languages) <= {"en"} and lunr.is_dir():
        removed.extend(sorted(p for p in lunr.rglob("*") if p.is_file()))
        shutil.rmtree(lunr)
    return removed


class _WarningCollector(logging.Handler):
    """Keeps MkDocs' warnings so that a strict-mode failure can say what they were."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def build_site(repo_root: Path, exported: Path, entries: list[dict], site_dir: Path) -> None:
    # Work folders beside the site, so that a build killed half-way leaves
    # nothing elsewhere and the next one removes what it left.
    atomic.remove_leftovers(site_dir)
    work = atomic.work_dir(site_dir, ".staging-")
    try:
        docs = work / "docs"
        log.info("staging docs/ and generated files")
        stage_docs(repo_root, exported, entries, docs)
        log.info("running MkDocs (strict) into %s", site_dir)
        run_mkdocs(repo_root, docs, site_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)

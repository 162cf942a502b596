"""Generated content on the pages: one mechanism for every page and every kind of block.

A page asks for a generated block with an HTML comment on a line of its own,

    <!-- NAMESPACE:NAME -->          for example  <!-- results:table -->

and the build replaces it, in the staged copy of docs/, with Markdown that a
generator module renders from what the build wrote (the manifest, results,
figures). ``GENERATORS`` is the one table of generator modules: staging reads
it and imports each module by its dotted path, so staging never names a page's
generator, and a new kind of block is one line here plus one module.

A generator module provides

    render(text: str, staging: Staging, page: str) -> str

which returns the page's text with its own markers replaced (and may write
figures into ``staging.docs``). Generators listed under ``EVERY_PAGE`` are
called on every page, markers or not (for inline syntax such as citations);
the others only on pages that carry one of their markers. A marker whose
namespace is not in the table is a build failure naming the allowed ones.

The paths the staged site serves generated files from live here too, so that
generator modules and ``site.py`` share them without importing each other.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .errors import BuildFailure

MODELS_DIR = "assets/models"
FIGURES_DIR = "assets/figures"
VENDOR_DIR = "assets/vendor"

#: namespace -> module rendering its blocks (imported only when a page needs it).
GENERATORS: dict[str, str] = {
    "results": "site_builder.results",
    "intro": "site_builder.intro",          # before bib: its table cites sources
    "glyphs": "site_builder.conv_results",  # before bib: its table cites sources
    "bib": "site_builder.bibliography",
    "reuse": "site_builder.reuse",
    "all-models": "site_builder.all_models",
}
#: Namespaces whose module sees every page (inline syntax, not only markers).
EVERY_PAGE: tuple[str, ...] = ("bib",)

MARKER = re.compile(r"^<!--\s*([a-z][a-z0-9-]*):([A-Za-z0-9_-]+)\s*-->[ \t]*$", re.MULTILINE)


@dataclass
class Staging:
    """What generators read: the repository, the build's output, the staged docs."""
    repo_root: Path
    exported: Path
    entries: list[dict]
    docs: Path                                   # the staged docs folder (written to)
    cache: dict = field(default_factory=dict)    # per-build state a generator computes once


def render_page(text: str, staging: Staging, page: str) -> str:
    """text with every generated block replaced, by the generators of GENERATORS."""
    found = {ns for ns, _ in MARKER.findall(text)}
    unknown = sorted(found - set(GENERATORS))
    if unknown:
        raise BuildFailure(f"{page}: unknown kind(s) of generated block {', '.join(unknown)}; "
                           f"allowed: {', '.join(GENERATORS)}")
    for namespace in GENERATORS:
        if namespace in found or namespace in EVERY_PAGE:
            module = importlib.import_module(GENERATORS[namespace])
            text = module.render(text, staging, page)
    return text


def stage_pages(staging: Staging) -> list[str]:
    """Render the generated blocks of every staged page under staging.docs, in
    place. Returns the pages (relative to docs) whose text changed."""
    changed = []
    for path in sorted(staging.docs.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        page = path.relative_to(staging.docs).as_posix()
        new = render_page(text, staging, page)
        if new != text:
            atomic.write_text(path, new)
            changed.append(page)
    return changed

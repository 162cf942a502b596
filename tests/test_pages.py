"""The series as a whole: every page in the navigation, in reading order, with
real text; and, in a real browser, every page of the built site visited once
with no console error and no request to another host.

The strict MkDocs build (tests/conftest.py's quick build) already fails on a
broken link or anchor: mkdocs.yml raises link and anchor validation to warnings
and the build runs with --strict.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from site_builder.config import REPO_ROOT

from browser_support import READY_TIMEOUT_MS, PageLog

DOCS = REPO_ROOT / "docs"
#: The series in reading order (../shared/spec/series.md, pages 1-12).
SERIES = ["index.md", "model-agnostic.md", "how-maml-works.md", "preliminaries.md", "fomaml.md",
          "reptile.md", "imaml.md", "comparison.md", "conclusion.md", "further-reading.md",
          "results.md", "use-the-models.md"]
#: Pages whose body is partly generated at build time (the words counted here
#: are the ones written by hand).
MIN_WORDS = 250


def _nav_files(nav) -> list[str]:
    files = []
    for item in nav:
        if isinstance(item, dict):
            for value in item.values():
                files += _nav_files(value) if isinstance(value, list) else [value]
        elif isinstance(item, str):
            files.append(item)
    return files


def _config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml uses MkDocs' !relative tag; any value will do here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def prose_words(markdown: str) -> int:
    """Words of running text: without code blocks, math, HTML tags, markers and link targets."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[A-Za-z][A-Za-z'’-]*", text))


def test_every_page_is_in_the_navigation_in_reading_order():
    nav = _nav_files(_config()["nav"])
    assert nav == SERIES
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, "a page under docs/ is missing from the navigation (or vice versa)"
    features = _config()["theme"]["features"]
    assert "navigation.footer" in features        # previous / next links on every page
    assert any(p == "search" or (isinstance(p, dict) and "search" in p) for p in _config()["plugins"])


@pytest.mark.parametrize("page", SERIES)
def test_every_page_has_real_text(page):
    words = prose_words((DOCS / page).read_text(encoding="utf-8"))
    assert words >= MIN_WORDS, f"{page} has only {words} words of text"
    assert "This page is being written" not in (DOCS / page).read_text(encoding="utf-8")


def test_strict_validation_is_on_for_links_and_anchors():
    validation = _config()["validation"]
    assert validation["links"]["not_found"] == "warn"
    assert validation["links"]["anchors"] == "warn"
    assert validation["nav"]["not_found"] == "warn"


@pytest.mark.browser
def test_a_reader_can_visit_every_page_without_errors_or_other_hosts(page, site_url, built_site):
    log = PageLog(page)
    for number, source in enumerate(SERIES):
        path = "" if source == "index.md" else source[:-3] + "/"
        assert (Path(built_site) / path / "index.html").is_file(), f"{path} was not built"
        page.goto(site_url + path, wait_until="load")
        title = page.locator("article h1").first.inner_text()
        assert title.strip(), f"/{path} has no title"
        if number + 1 < len(SERIES):                 # the footer links to the next page
            assert page.locator("a.md-footer__link--next").count() == 1, f"/{path} has no next link"
        # Give the page's widgets time to start (or to fail, which would log an error).
        page.wait_for_timeout(300)
        for widget in page.locator("[data-widget]").all():
            widget.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-widget]')].every("
            "w => ['ready', 'error'].includes(w.dataset.state))", timeout=READY_TIMEOUT_MS)
        errors = [w.get_attribute("data-widget") for w in page.locator("[data-widget][data-state='error']").all()]
        assert errors == [], f"widgets that could not start on /{path}: {errors}"
    log.assert_clean()
    # The math came typeset from the build: no page fetched KaTeX's script.
    assert not [url for url in log.requests if "katex" in url and url.endswith(".js")]

"""A locked-down site (issue 10, items 6 and 7): the Content-Security-Policy of
every page, what still works under it, and axe-core's accessibility audit.

- Every built page carries one strict policy in a <meta> tag
  (overrides/main.html): scripts, styles, fonts, images and connections from
  the site's own origin only; no inline script (Material's inline snippets
  are served files, overrides/partials/javascripts/); no inline event
  handler; 'wasm-unsafe-eval' exactly on the pages whose widgets run
  onnxruntime-web.
- In Chromium, no page reports a `securitypolicyviolation` with all its
  widgets started, and search (Material's web worker), the colour-scheme
  toggle, the code copy button and KaTeX's fonts work under the policy.
  (That no page requests another host is tests/test_pages.py's
  test_a_reader_can_visit_every_page_without_errors_or_other_hosts.)
- axe-core (node_modules/axe-core, pinned in package.json; injected by the
  test, never shipped) finds no WCAG 2.1 A/AA or best-practice violation on
  any page, in the light and the dark scheme.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser_support import READY_TIMEOUT_MS, PageLog

from site_builder.config import REPO_ROOT

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
#: The widget registry (docs/javascripts/main.js): which widgets run ONNX graphs with
#: onnxruntime-web (`model: true`), the pages that need 'wasm-unsafe-eval'. The page
#: template's list (overrides/main.html, ort_widgets) must name the same widgets
#: (test_the_policy_template_lists_exactly_the_registrys_onnx_widgets).
MAIN_JS = REPO_ROOT / "docs" / "javascripts" / "main.js"
MAIN_HTML = REPO_ROOT / "overrides" / "main.html"


def widget_registry() -> dict[str, bool]:
    """main.js's WIDGETS table: widget kind -> whether it runs an ONNX graph."""
    text = MAIN_JS.read_text(encoding="utf-8")
    table = re.search(r"^const WIDGETS = \{\n(.*?)^\};", text, re.S | re.M)
    assert table, f"{MAIN_JS} has no `const WIDGETS = {{ … }};` table"
    rows = re.findall(r'^\s*"([\w-]+)": \{ model: (true|false),', table.group(1), re.M)
    assert len(rows) == table.group(1).count("load:"), f"a row of {MAIN_JS}'s WIDGETS is not read"
    return {kind: model == "true" for kind, model in rows}


def template_ort_widgets() -> list[str]:
    """overrides/main.html's ort_widgets list."""
    found = re.search(r"set ort_widgets = \[(.*?)\]", MAIN_HTML.read_text(encoding="utf-8"), re.S)
    assert found, f"{MAIN_HTML} has no ort_widgets list"
    return re.findall(r'"([\w-]+)"', found.group(1))


ORT_WIDGETS = {kind for kind, model in widget_registry().items() if model}
WASM = "ort-wasm-simd-threaded.wasm"

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber}) ${e.sample}`));
"""


def series_pages(site: Path) -> list[str]:
    """The twelve article pages of the built site, as paths relative to its root ("" = home)."""
    pages = sorted(p.parent.relative_to(site).as_posix() for p in site.rglob("index.html"))
    pages = ["" if p == "." else p + "/" for p in pages]
    assert len(pages) == 12, pages
    return pages


def test_the_policy_template_lists_exactly_the_registrys_onnx_widgets():
    """One list of the widgets that run WebAssembly: main.js's registry (`model: true`).
    The template that writes each page's policy names exactly those, once each."""
    listed = template_ort_widgets()
    assert len(listed) == len(set(listed)), f"{MAIN_HTML}: ort_widgets names a widget twice: {listed}"
    assert set(listed) == ORT_WIDGETS, (
        f"{MAIN_HTML}'s ort_widgets and {MAIN_JS}'s widgets with model: true differ: "
        f"only in the template {sorted(set(listed) - ORT_WIDGETS)}, only in main.js {sorted(ORT_WIDGETS - set(listed))}")
    assert {"sine-fit", "all-models", "watch-it-learn", "meta-gradients"} <= ORT_WIDGETS


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.policies: list[str] = []
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self.script_urls: list[str] = []
        self.widgets: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.policies.append(attrs.get("content") or "")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.handlers.append(f"<{tag} {name}={value}>")
        if "data-widget" in attrs:
            self.widgets.append(attrs["data-widget"])
        if tag == "script":
            self._script = attrs
            if attrs.get("src"):
                self.script_urls.append(attrs["src"])

    def handle_data(self, data):
        script = self._script
        if script is not None and not script.get("src") and script.get("type") != "application/json" and data.strip():
            self.inline_scripts.append(data.strip()[:80])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def parse(html_file: Path) -> _Page:
    page = _Page()
    page.feed(html_file.read_text(encoding="utf-8"))
    return page


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_built_page_has_the_strict_policy_and_no_inline_script(built_site):
    files = sorted(Path(built_site).rglob("*.html"))
    assert len(files) >= 13                      # twelve pages and 404.html
    for file in files:
        page = parse(file)
        where = file.relative_to(built_site).as_posix()
        assert len(page.policies) == 1, f"{where}: {len(page.policies)} Content-Security-Policy tags"
        policy = directives(page.policies[0])
        assert policy["default-src"] == ["'none'"], where
        wasm = bool(ORT_WIDGETS & set(page.widgets))
        assert policy["script-src"] == ["'self'"] + (["'wasm-unsafe-eval'"] if wasm else []), where
        for name in ("style-src", "font-src", "connect-src", "worker-src"):
            assert policy[name] == ["'self'"], f"{where}: {name} {policy[name]}"
        assert policy["img-src"] == ["'self'", "data:"], where
        assert policy["style-src-attr"] == ["'unsafe-inline'"], where      # KaTeX's glyph positions
        assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"], where
        sources = [s for values in policy.values() for s in values]
        assert not [s for s in sources if s not in ("'self'", "'none'", "'wasm-unsafe-eval'", "'unsafe-inline'", "data:")], \
            f"{where}: a source other than the site itself: {sources}"
        assert page.inline_scripts == [], f"{where}: inline scripts {page.inline_scripts}"
        assert page.handlers == [], f"{where}: inline event handlers or javascript: URLs {page.handlers}"
        assert all(not re.match(r"^[a-z]+:|^//", url) for url in page.script_urls), f"{where}: {page.script_urls}"


@pytest.mark.browser
@pytest.mark.slow
def test_no_page_violates_the_policy_with_its_widgets_running(page, site_url, built_site):
    log = PageLog(page)
    page.add_init_script(RECORD_VIOLATIONS)
    for path in series_pages(Path(built_site)):
        before = len(log.requests)
        page.goto(site_url + path, wait_until="load")
        widgets = page.locator("[data-widget]").all()
        for widget in widgets:
            widget.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-widget]')].every(w => w.dataset.state === 'ready')",
            timeout=READY_TIMEOUT_MS)
        # The quiz's conv nets join when the reader plays (main.js: warm: false):
        # answer one round so that they run too.
        for quiz in page.locator("[data-widget='few-shot-quiz']").all():
            quiz.locator("button.few-shot-quiz__choice").first.click()
            page.wait_for_selector("[data-widget='few-shot-quiz'][data-models-answered='true']",
                                   state="attached", timeout=READY_TIMEOUT_MS)
        page.mouse.wheel(0, 400)                   # scrolling mounts Material's code-copy bars
        page.wait_for_timeout(200)
        assert page.evaluate("window.__cspViolations") == [], f"/{path}"
        # The runtime's WebAssembly is compiled exactly where the policy allows it.
        policy = page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content")
        fetched_wasm = any(url.endswith(WASM) for url in log.requests[before:])
        assert fetched_wasm == ("'wasm-unsafe-eval'" in policy), f"/{path}: wasm fetched {fetched_wasm}, policy {policy}"
    log.assert_clean()


@pytest.mark.browser
def test_search_palette_copy_and_katex_fonts_work_under_the_policy(browser, site_url):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site_url.rstrip("/"))
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    log = PageLog(page)
    try:
        # KaTeX's fonts (font-src 'self') load and are used by the typeset formulas.
        page.goto(site_url + "how-maml-works/", wait_until="load")
        page.evaluate("document.fonts.ready")
        page.wait_for_function("() => [...document.fonts].some(f => f.family.includes('KaTeX') && f.status === 'loaded')",
                               timeout=10_000)
        assert [url for url in log.requests if "/katex/fonts/" in url]

        # Search runs in Material's web worker (worker-src 'self') on the site's own index.
        search = page.locator("input.md-search__input")
        search.click()
        search.press_sequentially("Reptile", delay=30)   # Material searches on key events
        page.wait_for_selector("li.md-search-result__item", timeout=15_000)
        assert page.locator("li.md-search-result__item").count() >= 3
        assert any(url.endswith("search_index.json") for url in log.requests)
        page.keyboard.press("Escape")

        # The colour-scheme toggle switches now and is remembered on the next page
        # (the served copy of Material's palette snippet applies it before paint).
        assert page.evaluate("document.body.dataset.mdColorScheme") == "default"
        page.locator("label.md-header__button[title='Switch to dark mode']").click()
        page.wait_for_function("() => document.body.dataset.mdColorScheme === 'slate'")
        page.goto(site_url + "use-the-models/", wait_until="load")
        assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"

        # A code block's copy button puts the code on the clipboard.
        block = page.locator("div.highlight").first
        block.scroll_into_view_if_needed()
        block.hover()
        button = block.locator("button.md-code__button[data-md-type='copy']")
        button.wait_for(timeout=5_000)
        button.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        code = block.locator("code").inner_text()
        assert copied.strip() and copied.strip() == code.strip()

        assert page.evaluate("window.__cspViolations") == []
        log.assert_clean()
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_accessibility_violation_on_any_page(browser, site_url, built_site, scheme):
    assert AXE.is_file(), f"{AXE} is missing: run npm ci (axe-core is a pinned devDependency)"
    # The test injects axe's script, which the site's own policy would (rightly) refuse.
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)
    page = context.new_page()
    found = {}
    try:
        for path in series_pages(Path(built_site)):
            page.goto(site_url + path, wait_until="load")
            for widget in page.locator("[data-widget]").all():
                widget.scroll_into_view_if_needed()
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-widget]')].every(w => w.dataset.state === 'ready')",
                timeout=READY_TIMEOUT_MS)
            expected = "slate" if scheme == "dark" else "default"
            assert page.evaluate("document.body.dataset.mdColorScheme") == expected
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate("""async (tags) => {
                const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
                return result.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length}): ` +
                    v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | "));
            }""", AXE_TAGS)
            if violations:
                found["/" + path] = violations
    finally:
        context.close()
    assert not found, "axe-core violations:\n" + "\n".join(f"{p}: {v}" for p, vs in found.items() for v in vs)

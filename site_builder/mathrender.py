"""Math typeset at build time: KaTeX runs once in the build, not in every reader's browser.

pymdownx.arithmatex (generic mode) leaves each formula in the HTML as
``<span class="arithmatex">\\(…\\)</span>`` or ``<div class="arithmatex">\\[…\\]</div>``.
After MkDocs has written the site, ``render_site_math`` collects every formula
of every page, renders them all in one Node.js process with the KaTeX that
``npm ci`` installed (the version package-lock.json pins), and writes the
HTML back. Pages then need only KaTeX's stylesheet and fonts, not its
273 KB script. A formula KaTeX cannot parse fails the build, naming the page
and the formula.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

from . import atomic
from .errors import BuildFailure

FORMULA = re.compile(
    r'(?P<open><(?P<tag>span|div) class="arithmatex">)(?P<body>.*?)(?P<close></(?P=tag)>)', re.S)
_DELIMITERS = {"span": (r"\(", r"\)"), "div": (r"\[", r"\]")}

# Reads [[tex, display], ...] as JSON on stdin; writes [{"html"} | {"error"}, ...].
_NODE_SCRIPT = r"""
const katex = require(process.argv[1]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([tex, display]) => {
    try {
      return { html: katex.renderToString(tex, { displayMode: display, throwOnError: true, output: "htmlAndMathml" }) };
    } catch (err) {
      return { error: String(err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _tex(tag: str, body: str) -> str | None:
    """The TeX source of a formula element's body, or None if it is not one."""
    text = html.unescape(body).strip()
    left, right = _DELIMITERS[tag]
    if not (text.startswith(left) and text.endswith(right)):
        return None
    return text[len(left):-len(right)]


def render_formulas(repo_root: Path, formulas: list[tuple[str, bool]]) -> list[dict]:
    """KaTeX's HTML (or error) for each (tex, display) pair, in one Node.js run."""
    if not formulas:
        return []
    node = shutil.which("node")
    if node is None:
        raise BuildFailure("Node.js is needed to typeset the pages' math at build time, but `node` "
                           "is not on PATH; install Node.js (it also runs `npm ci`)")
    katex = repo_root / "node_modules" / "katex"
    if not (katex / "package.json").is_file():
        raise BuildFailure(f"{katex} is missing: run `npm ci` in the repository root")
    try:
        result = subprocess.run([node, "-e", _NODE_SCRIPT, str(katex)],
                                input=json.dumps(formulas), capture_output=True, text=True,
                                check=True, timeout=300)
    except subprocess.CalledProcessError as exc:
        raise BuildFailure(f"KaTeX (Node.js) failed: {exc.stderr.strip()[-500:]}") from None
    return json.loads(result.stdout)


def render_site_math(repo_root: Path, site: Path) -> int:
    """Typeset every formula of every HTML page under ``site`` in place.
    Returns the number of formulas rendered."""
    pages: dict[Path, str] = {}
    formulas: list[tuple[str, bool]] = []
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        if 'class="arithmatex"' not in text:
            continue
        pages[path] = text
        for match in FORMULA.finditer(text):
            tex = _tex(match["tag"], match["body"])
            if tex is not None:
                formulas.append((tex, match["tag"] == "div"))
    rendered = iter(render_formulas(repo_root, formulas))
    errors = []
    for path, text in pages.items():
        def replace(match: re.Match) -> str:
            if _tex(match["tag"], match["body"]) is None:
                return match[0]
            out = next(rendered)
            if "error" in out:
                errors.append(f"{path.relative_to(site).as_posix()}: {out['error']}")
                return match[0]
            return match["open"] + out["html"] + match["close"]

        atomic.write_text(path, FORMULA.sub(replace, text))
    if errors:
        raise BuildFailure("KaTeX cannot typeset these formulas:\n  " + "\n  ".join(errors))
    return len(formulas)

"""Math typeset at build time: KaTeX runs once in the build, not in every reader's browser.

pymdownx.arithmatex (generic mode) leaves each formula in the HTML as
``<span class="arithmatex">\\(…\\)</span>`` or ``<div class="arithmatex">\\[…\\]</div>``.
After MkDocs has written the site, ``render_site_math`` collects every formula
of every page, renders them all in one Node.js process with the KaTeX that
``npm ci`` installed (the version package-lock.json pins), and writes the
HTML back. Pages then need only KaTeX's stylesheet and fonts, not its
273 KB script. A formula KaTeX cannot parse fails the build, naming the page
and the formula.

MkDocs' search index (search/search_index.json) is written before that, from
the untypeset pages, so each formula is in it as TeX source (``\\(\\mathcal{L}_\\tau(\\phi)\\)``),
which no reader types and which made search results' excerpts hard to read.
``render_site_math`` replaces each one there with the text of KaTeX's MathML
for it (``Lτ(ϕ)``): the symbols the reader sees, in a tenth of the bytes.
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

SEARCH_INDEX = "search/search_index.json"

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
    outputs = render_formulas(repo_root, formulas)
    plain = [(tex, out["html"]) for (tex, _), out in zip(formulas, outputs) if "html" in out]
    rendered = iter(outputs)
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
    plain_math_in_search_index(site, dict(plain))
    return len(formulas)


_INDEX_FORMULA = re.compile(r"\\\((?P<inline>.*?)\\\)|\\\[(?P<display>.*?)\\\]", re.S)
_MATHML = re.compile(r"<math\b.*?</math>", re.S)
_ANNOTATION = re.compile(r"<annotation\b.*?</annotation>", re.S)
_OPERATOR = re.compile(r"<mo\b[^>]*>(.*?)</mo>", re.S)
_TAG = re.compile(r"<[^>]+>")
_NO_SPACE_AROUND = set("()[]{}|,.;:!'′\u2061\u2062\u2063\u2064")


def _key(tex: str) -> str:
    return " ".join(tex.split())


def math_text(katex_html: str) -> str:
    """The text a formula shows, from KaTeX's MathML (its TeX annotation left
    out): identifiers and numbers as they are, operators set off by spaces."""
    found = _MATHML.search(katex_html)
    if not found:
        return ""
    mathml = _ANNOTATION.sub("", found.group(0))

    def operator(match: re.Match) -> str:
        op = html.unescape(_TAG.sub("", match.group(1))).strip()
        op = op if op in _NO_SPACE_AROUND or not op else f" {op} "
        return html.escape(op, quote=False)          # a < must not look like a tag below

    text = html.unescape(_TAG.sub("", _OPERATOR.sub(operator, mathml)))
    text = "".join(c for c in text if c not in "\u2061\u2062\u2063\u2064\u200b")
    return " ".join(text.split())


def plain_math_in_search_index(site: Path, rendered: dict[str, str]) -> int:
    """Replace each formula's TeX in the site's search index by its text
    (``rendered``: TeX -> KaTeX HTML, as typeset for the pages). Formulas the
    pages did not have are left as they are. Returns the number replaced."""
    index_path = site / SEARCH_INDEX
    if not index_path.is_file():
        return 0
    texts = {_key(tex): math_text(out) for tex, out in rendered.items()}
    index = json.loads(index_path.read_text(encoding="utf-8"))
    replaced = 0

    def replace(match: re.Match) -> str:
        nonlocal replaced
        tex = match["inline"] if match["inline"] is not None else match["display"]
        text = texts.get(_key(html.unescape(tex)))
        if not text:
            return match[0]
        replaced += 1
        return html.escape(text, quote=False)

    for doc in index.get("docs", []):
        for field in ("title", "text"):
            if isinstance(doc.get(field), str):
                doc[field] = _INDEX_FORMULA.sub(replace, doc[field])
    atomic.write_text(index_path, json.dumps(index, ensure_ascii=False, separators=(",", ":")))
    return replaced

"""Math typeset at build time (site_builder/mathrender.py): every formula of a
page becomes KaTeX HTML in one Node.js run; a bad formula or a missing Node.js
fails the build with a line that says what and where."""
from __future__ import annotations

import pytest

from site_builder import mathrender
from site_builder.config import REPO_ROOT
from site_builder.errors import BuildFailure

PAGE = """<p>Inline <span class="arithmatex">\\(a &lt; b_{i}\\)</span> and a block:</p>
<div class="arithmatex">\\[\\sum_i \\mathcal{L}_{\\tau_i}(\\theta)\\]</div>
<span class="arithmatex">not a formula</span>"""


def test_formulas_are_typeset_in_place(tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "plain.html").write_text("<p>no math</p>", encoding="utf-8")
    assert mathrender.render_site_math(REPO_ROOT, tmp_path) == 2
    html = (tmp_path / "page" / "index.html").read_text(encoding="utf-8")
    assert html.count('<span class="katex">') == 2 and html.count('class="katex-display"') == 1
    assert "<mo>&lt;</mo>" in html                  # the escaped < reached KaTeX as <
    assert "\\(" not in html and "\\[" not in html
    assert '<span class="arithmatex">not a formula</span>' in html
    assert (tmp_path / "plain.html").read_text() == "<p>no math</p>"


def test_a_formula_katex_cannot_parse_names_the_page(tmp_path):
    (tmp_path / "bad.html").write_text('<span class="arithmatex">\\(\\frac{1}{\\)</span>')
    with pytest.raises(BuildFailure, match=r"cannot typeset these formulas:\n  bad\.html: KaTeX parse error"):
        mathrender.render_site_math(REPO_ROOT, tmp_path)


def test_without_node_the_build_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "a.html").write_text('<span class="arithmatex">\\(x\\)</span>')
    monkeypatch.setattr(mathrender.shutil, "which", lambda name: None)
    with pytest.raises(BuildFailure, match=r"Node\.js is needed .* install Node\.js"):
        mathrender.render_site_math(REPO_ROOT, tmp_path)

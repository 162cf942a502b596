"""The search index holds each formula as the text a reader sees, not TeX
(site_builder/mathrender.py): MkDocs writes search/search_index.json from the
pages before KaTeX typesets them, and the build then replaces every
``\\(…\\)`` / ``\\[…\\]`` there with the text of KaTeX's MathML for it."""
from __future__ import annotations

import json

from site_builder import mathrender
from site_builder.config import REPO_ROOT


def rendered(*formulas: str) -> dict[str, str]:
    outputs = mathrender.render_formulas(REPO_ROOT, [(tex, False) for tex in formulas])
    return {tex: out["html"] for tex, out in zip(formulas, outputs)}


def test_a_formula_reads_as_its_symbols():
    html = rendered("\\mathcal{L}_\\tau(\\phi)", "a < b", "\\theta - \\alpha \\nabla_\\theta L")
    assert mathrender.math_text(html["\\mathcal{L}_\\tau(\\phi)"]) == "Lτ(ϕ)"
    assert mathrender.math_text(html["a < b"]) == "a < b"
    assert mathrender.math_text(html["\\theta - \\alpha \\nabla_\\theta L"]) == "θ − α∇θL"


def test_the_index_gets_text_in_place_of_tex(tmp_path):
    index = {"config": {"lang": ["en"]}, "docs": [
        {"location": "a/", "title": "Loss \\(\\mathcal{L}_\\tau\\)",
         "text": "<p>with \\(a &lt; b\\) and</p> \\[ \\phi = \\theta \\] <p>and \\(\\unknown\\)</p>"},
        {"location": "b/", "title": "No math", "text": "<p>plain</p>"},
    ]}
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "search_index.json").write_text(json.dumps(index), encoding="utf-8")
    mapping = rendered("\\mathcal{L}_\\tau", "a < b", "\\phi = \\theta")
    assert mathrender.plain_math_in_search_index(tmp_path, mapping) == 3
    docs = json.loads((tmp_path / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    assert docs[0]["title"] == "Loss Lτ"
    # The index's text is HTML: a < stays escaped; a formula the pages did not have is left alone.
    assert docs[0]["text"] == "<p>with a &lt; b and</p> ϕ = θ <p>and \\(\\unknown\\)</p>"
    assert docs[1] == index["docs"][1]


def test_the_built_index_has_no_tex_and_still_names_the_symbols(built_site):
    index = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    text = " ".join(doc["text"] for doc in index["docs"])
    assert "\\(" not in text and "\\[" not in text and "\\mathcal" not in text
    assert "θ" in text and "Lτ" in text

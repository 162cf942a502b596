"""The Introduction page's generated blocks (site_builder/intro.py): what the
widgets read, the static figures, and the table of published accuracies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from site_builder import bibliography, glyphs, intro
from site_builder.errors import BuildFailure
from site_builder.generated import Staging, render_page

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "index.md").read_text(encoding="utf-8")


@pytest.fixture
def staging(tmp_path) -> Staging:
    return Staging(repo_root=Path("."), exported=tmp_path / "exported", entries=[], docs=tmp_path / "docs")


def test_the_page_asks_for_every_block_inside_its_widget():
    for widget, block in (("few-shot-quiz", "quiz"), ("few-shot-map", "map"), ("omniglot-accuracy", "accuracy")):
        assert f'<div class="widget" data-widget="{widget}" markdown>\n\n<!-- intro:{block} -->\n\n</div>' in PAGE
    assert "<!-- intro:accuracy-table -->" in PAGE


def test_published_accuracies_are_cited_and_in_publication_order():
    rows = intro.accuracy_data()["rows"]
    refs = bibliography.references()
    assert [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    for row in rows:
        assert row["source"] in refs
        assert row["reference"] == refs[row["source"]].label
        assert str(row["year"]) in row["reference"]
        for way in (5, 20):
            assert row[f"way{way}"] is None or 85 < row[f"way{way}"] <= 100
    maml = next(r for r in rows if r["method"] == "MAML")
    assert (maml["way5"], maml["way20"], maml["source"]) == (98.7, 95.8, "finn2017")


@pytest.mark.slow
def test_the_staged_page_gets_figures_data_and_a_cited_table(staging):
    text = render_page(PAGE, staging, "index.md")
    docs = staging.docs
    for figure in (intro.ROUND_FIGURE, intro.MAP_FIGURE, intro.ACCURACY_FIGURE):
        assert f"]({figure})" in text
        assert (docs / figure).read_bytes().startswith(b"<?xml")
    assert json.loads((docs / intro.ACCURACY_JSON).read_text()) == intro.accuracy_data()
    assert json.loads((docs / intro.MAP_JSON).read_text()) == intro.map_data()
    index = json.loads((docs / glyphs.GLYPHS_DIR / glyphs.INDEX).read_text())
    assert len(index["alphabets"]) == glyphs.ALPHABETS
    # Every citation, the table's included, became a link to Further reading.
    assert "[@" not in text and "<!-- intro:" not in text
    for row in intro.accuracy_data()["rows"]:
        assert f"(further-reading.md#ref-{row['source']})" in text
    assert "| MAML | 2017 | 98.7 % | 95.8 % |" in text


@pytest.mark.slow
def test_static_figures_are_byte_identical_between_builds(tmp_path):
    first = Staging(Path("."), tmp_path, [], tmp_path / "a")
    second = Staging(Path("."), tmp_path, [], tmp_path / "b")
    render_page(PAGE, first, "index.md")
    render_page(PAGE, second, "index.md")
    for path in sorted(p.relative_to(first.docs) for p in first.docs.rglob("*") if p.is_file()):
        assert (first.docs / path).read_bytes() == (second.docs / path).read_bytes(), path


def test_map_regions_nest():
    regions = {r.id: r for r in intro.MAP_REGIONS}

    def inside(inner, outer):
        x, y, w, h = regions[inner].box
        X, Y, W, H = regions[outer].box
        return X < x and Y < y and x + w < X + W and y + h < Y + H

    width, height = intro.MAP_SIZE
    x, y, w, h = regions["machine-learning"].box
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    for inner, outer in (("one-task", "machine-learning"), ("transfer", "machine-learning"),
                         ("meta-learning", "machine-learning"), ("few-shot", "meta-learning"),
                         ("metric", "few-shot"), ("model", "few-shot"), ("optimisation", "few-shot"),
                         ("maml", "optimisation")):
        assert inside(inner, outer), f"{inner} is not drawn inside {outer}"
    assert not inside("maml", "metric") and not inside("few-shot", "transfer")


def test_an_unknown_block_is_named(staging):
    with pytest.raises(BuildFailure, match="index.md: unknown intro block quizz; allowed: quiz, map"):
        intro.render("<!-- intro:quizz -->\n", staging, "index.md")

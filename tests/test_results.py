"""The Results page: tables and figures generated from the measured numbers.

Unit tests run the generator on synthetic results (a diverged step, a model
without results, a model not in the manifest); the slow ones read the page of
the session's quick build and hold its numbers to the manifest.
"""
from __future__ import annotations

import copy
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from site_builder import bibliography, manifest, results
from site_builder.config import MODELS, REPO_ROOT, ModelSpec, sinusoid_config
from site_builder.errors import BuildFailure
from site_builder.results import (MSE_FIGURE, TRAINING_FIGURE, Context, collect, format_mse,
                                  format_seconds, render_page, stage_results)
from site_builder.site import build_site

PAGE = (REPO_ROOT / "docs" / "results.md").read_text(encoding="utf-8")
TEN = list(range(11))


# ------------------------------------------------------------ synthetic data

def _curve(base: float, *, diverge_from: int | None = None, diverged: int = 0) -> dict:
    """A falling MSE curve over 0..10 steps; from diverge_from on, `diverged`
    tasks blew up, so mean and CI are null (as meta/evaluate.py stores them)."""
    mean = [round(base / (1 + s), 6) for s in TEN]
    ci95 = [round(m / 10, 6) for m in mean]
    median = [round(m * 0.8, 6) for m in mean]
    counts = [0] * 11
    if diverge_from is not None:
        for s in range(diverge_from, 11):
            mean[s] = ci95[s] = None
            counts[s] = diverged
    return {"mean": mean, "ci95": ci95, "median": median, "diverged": counts}


def _train(name: str, algorithm: str) -> dict:
    """The paper-profile config of a registered model, or the default sinusoid one."""
    paper = results.PROFILES["paper"]
    if name in MODELS:
        return MODELS[name].train_config(paper, 0).to_dict()
    return sinusoid_config(algorithm, paper, 0).to_dict()


def _results(name: str, algorithm: str, bases: dict[str, float], **diverging) -> dict:
    train = _train(name, algorithm)
    return {
        "name": name, "algorithm": algorithm, "train": train,
        "training": {"seconds": 3723.0, "device": "cuda", "torch": "2.13.0",
                     "history": [{"iteration": 100 * i, "meta_loss": 4.0 / i} for i in range(1, 51)]},
        "evaluation": {
            "protocol": {"num_tasks": 1000, "shots": [5, 10, 20], "max_steps": 10,
                         "query_points": 100, "inner_lr": 0.01, "seed": 20170306},
            "query_mse": {k: _curve(b, **(diverging if k == "5" else {})) for k, b in bases.items()},
        },
    }


def _entry(name: str, algorithm: str, data: dict | None) -> dict:
    entry = {"name": name, "algorithm": algorithm, "inner_lr": 0.01,
             "task": {"family": "sinusoid", "amplitude": [0.1, 5.0], "phase": [0.0, 3.14159],
                      "x": [-5.0, 5.0]},
             "train": _train(name, algorithm),
             "training": {"seconds": 3723.0, "device": "cuda", "torch": "2.13.0"}}
    if data is not None:
        entry["results"] = {"file": f"{name}.results.json"}
    return entry


NAMES = ["pretrained-sinusoid", "maml-sinusoid", "fomaml-sinusoid", "reptile-sinusoid"]


@pytest.fixture
def synthetic(tmp_path) -> tuple[Path, list[dict]]:
    """pretrained: fine; maml: one task of 1,000 diverges from step 3 at K = 5;
    fomaml: trained, not evaluated; reptile: not in the manifest at all."""
    exported = tmp_path / "exported"
    exported.mkdir()
    data = {
        "pretrained-sinusoid": _results("pretrained-sinusoid", "pretrained",
                                        {"5": 3.0, "10": 2.5, "20": 2.0}),
        "maml-sinusoid": _results("maml-sinusoid", "maml", {"5": 0.8, "10": 0.05, "20": 0.3},
                                  diverge_from=3, diverged=1),
    }
    for name, d in data.items():
        (exported / f"{name}.results.json").write_text(json.dumps(d))
    entries = [_entry(n, d["algorithm"], d) for n, d in data.items()]
    entries.append(_entry("fomaml-sinusoid", "fomaml", None))
    return exported, entries


def _render(exported: Path, entries: list[dict], docs: Path, names=NAMES) -> str:
    return render_page(PAGE, Context(collect(exported, entries, names), docs))


def _rows(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]


# ------------------------------------------------------------- unit tests

def test_numbers_are_formatted_with_three_significant_digits_and_infinity_is_explained():
    assert format_mse(0.51234, 0.04123) == "0.512 ± 0.041"
    assert format_mse(3.1234, 0.2149) == "3.12 ± 0.21"
    assert format_mse(0.051234, 0.003149) == "0.0512 ± 0.0031"
    assert format_mse(12.345, 1.5) == "12.35 ± 1.50"
    assert (format_mse(None, None, median=0.2114, diverged=1, num_tasks=1000)
            == "∞ (1/1,000 tasks diverged; median 0.211)")
    assert format_mse(None, None, diverged=2) == "∞ (2 tasks diverged)"
    assert format_mse(None, None) == "n/a"
    assert format_mse(0.5, None) == "0.500 (no CI)"
    assert format_seconds(12.34) == "12.3 s"
    assert format_seconds(245) == "4 min 05 s"
    assert format_seconds(3723) == "1 h 02 min"
    assert format_seconds(None) == "—"


def test_collect_says_why_a_model_has_no_results(synthetic, tmp_path):
    exported, entries = synthetic
    broken = copy.deepcopy(entries) + [_entry("imaml-sinusoid", "imaml", {})]
    (exported / "imaml-sinusoid.results.json").write_text("{not json")
    models = collect(exported, broken, NAMES + ["imaml-sinusoid"])
    assert [m.name for m in models] == NAMES + ["imaml-sinusoid"]
    assert [m.ok for m in models] == [True, True, False, False, False]
    assert models[2].problem == "trained but not evaluated yet"
    assert models[3].problem == "not trained yet"
    assert "imaml-sinusoid.results.json cannot be read" in models[4].problem
    (exported / "maml-sinusoid.results.json").unlink()
    assert collect(exported, entries, NAMES)[1].problem == (
        "its results file maml-sinusoid.results.json is missing")


def test_table_holds_every_measured_number_published_rows_and_infinity(synthetic, tmp_path):
    exported, entries = synthetic
    page = _render(exported, entries, tmp_path / "docs")
    rows = _rows(page)
    header = rows[0]
    assert header == ["K", "model", "source", "0 steps", "1 step", "10 steps"]
    table = {(r[0], r[1]): r[3:] for r in rows if r[:1] and r[0] in ("5", "10", "20")}
    # Our models, in registry order, with mean ± CI for steps 0, 1 and 10.
    assert table[("10", "`maml-sinusoid`")] == [format_mse(0.05, 0.005),
                                                format_mse(0.025, 0.0025),
                                                format_mse(round(0.05 / 11, 6), round(0.05 / 110, 6))]
    assert table[("10", "`maml-sinusoid`")][0] == "0.0500 ± 0.0050"
    assert table[("20", "`pretrained-sinusoid`")][1] == "1.00 ± 0.10"
    # Step 0 is finite; from step 3 on one task of 1,000 diverged at K = 5.
    k5 = table[("5", "`maml-sinusoid`")]
    assert k5[0] == "0.800 ± 0.080"
    assert k5[2] == "∞ (1/1,000 tasks diverged; median 0.0582)"
    # Published numbers beside ours, marked and cited, only where they exist (K = 5, 1 step).
    published = [r for r in rows if "*published*" in r[2]]
    assert [(r[0], r[1], r[4]) for r in published] == [
        ("5", "*MAML*", "*1.13 ± 0.18*"), ("5", "*Meta-SGD*", "*0.90 ± 0.16*")]
    assert all("[Li et al., 2017](#ref-li2017), Table 1" in r[2] for r in published)
    assert all(r[3] == r[5] == "—" for r in published)
    # Models without results are not in the table but are named, with the reason.
    assert not any("fomaml" in r[1] or "reptile" in r[1] for r in rows if r[0] == "5")
    assert "`fomaml-sinusoid`: trained but not evaluated yet." in page
    assert "`reptile-sinusoid`: not trained yet." in page
    assert "median over all tasks" in page


def test_page_states_protocol_config_time_and_references(synthetic, tmp_path):
    exported, entries = synthetic
    page = _render(exported, entries, tmp_path / "docs")
    assert "**1,000 test tasks**" in page and "(20170306)" in page
    assert "**100 evenly spaced points**" in page and "n = 1,000" in page
    assert "phase φ from [0, π]" in page
    assert "`pretrained-sinusoid` α = 0.01, `maml-sinusoid` α = 0.01" in page
    config = {r[0]: r[1:] for r in _rows(page) if r[0] in (
        "setting", "meta-iterations", "inner steps", "outer optimiser, β", "options")}
    # Trained models (fomaml too: it has a config, just no evaluation), registry order.
    assert config["setting"] == ["`pretrained-sinusoid`", "`maml-sinusoid`", "`fomaml-sinusoid`"]
    assert config["meta-iterations"] == ["70,000"] * 3
    assert config["inner steps"] == ["0", "1", "1"]
    assert config["outer optimiser, β"] == ["Adam, 0.001"] * 3
    timing = [r for r in _rows(page) if r[0] == "`maml-sinusoid`" and len(r) == 5]
    assert timing == [["`maml-sinusoid`", "1 h 02 min", "53.2 s", "cuda", "2.13.0"]]
    # A paper-sized run gets no "shortened run" warning.
    assert "A shortened run" not in page
    # Every citation resolves to an entry of the reference list.
    anchors = set(re.findall(r'<span id="(ref-[a-z0-9]+)"></span>', page))
    assert {"ref-finn2017", "ref-li2017"} <= anchors
    assert set(re.findall(r"\]\(#(ref-[a-z0-9]+)\)", page)) <= anchors
    assert "<!-- results:" not in page
    # The list and the link texts come from the one .bib file, not typed here again.
    finn, li = bibliography.reference("finn2017"), bibliography.reference("li2017")
    assert f'1. <span id="ref-finn2017"></span>{finn.entry}\n' in page
    assert f'2. <span id="ref-li2017"></span>{li.entry}' in page
    assert "Chelsea Finn, Pieter Abbeel, and Sergey Levine. *Model-Agnostic Meta-Learning" in page
    assert f"MAML ([{finn.label}](#ref-finn2017))" in page and li.label == "Li et al., 2017"
    assert not hasattr(results, "REFERENCES")


def test_figures_are_written_deterministic_and_linked(synthetic, tmp_path):
    exported, entries = synthetic
    docs = tmp_path / "docs"
    page = _render(exported, entries, docs)
    assert f"]({MSE_FIGURE})" in page and f"]({TRAINING_FIGURE})" in page
    first = {f: (docs / f).read_bytes() for f in (MSE_FIGURE, TRAINING_FIGURE)}
    _render(exported, entries, docs)
    for file, data in first.items():
        assert data.startswith(b"<?xml") and b"<svg" in data
        assert b"<dc:date>" not in data
        assert (docs / file).read_bytes() == data, f"{file} is not byte-for-byte reproducible"
    # One panel per K, a line per measured model, the published points; a gap
    # for the diverged steps is explained under the figure.
    mse = first[MSE_FIGURE].decode()
    for label in ("K = 5", "K = 10", "K = 20", "pretrained-sinusoid", "maml-sinusoid",
                  "MAML, published (Li et al., 2017)", "Meta-SGD, published (Li et al., 2017)"):
        assert label in mse, label
    assert "fomaml-sinusoid" not in mse
    assert "A gap in a line" in page
    # Each algorithm's meta-loss is explained, since they measure different things.
    assert "- `pretrained-sinusoid` (joint training): MSE of θ itself" in page
    assert "- `maml-sinusoid` (MAML): query MSE after the inner gradient step(s)" in page
    # A figure on a page in a subfolder links back to the same file.
    nested = Context(collect(exported, entries, NAMES), docs, page="part/results.md")
    assert f"](../{MSE_FIGURE})" in render_page("<!-- results:mse-figure -->\n"
                                                "<!-- results:references -->\n", nested)


def test_no_results_at_all_gives_a_page_without_numbers_or_figures(tmp_path):
    docs = tmp_path / "docs"
    page = _render(tmp_path, [], docs)
    assert '!!! warning "No results yet"' in page
    for name in NAMES:
        assert f"`{name}`: not trained yet." in page
    assert "*No model has results yet, so there is no figure.*" in page
    assert "*No model has been trained yet.*" in page
    assert not (docs / MSE_FIGURE).exists() and not (docs / TRAINING_FIGURE).exists()
    # Only the published rows remain in the table.
    assert [r[1] for r in _rows(page)[2:]] == ["*MAML*", "*Meta-SGD*"]


def test_bad_markers_fail_with_the_allowed_names(tmp_path):
    ctx = Context([], tmp_path)
    with pytest.raises(BuildFailure, match=r"unknown results block\(s\) tabel; allowed: status, "
                                           r"protocol, table"):
        render_page("<!-- results:tabel -->\n", ctx)
    with pytest.raises(BuildFailure, match=r"needs a <!-- results:references --> block"):
        render_page("<!-- results:table -->\n", ctx)
    # Other comments and pages without markers are left alone.
    assert render_page("<!-- a note -->\ntext\n", ctx) == "<!-- a note -->\ntext\n"


def test_stage_results_rewrites_only_pages_with_markers(synthetic, tmp_path):
    exported, entries = synthetic
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "index.md").write_text("# Home\n")
    (docs / "sub" / "page.md").write_text("# Part\n\n<!-- results:time -->\n")
    assert stage_results(exported, entries, docs, NAMES) == ["sub/page.md"]
    assert (docs / "index.md").read_text() == "# Home\n"
    assert "| `maml-sinusoid` | 1 h 02 min |" in (docs / "sub" / "page.md").read_text()


# ------------------------------------------------------------ the quick build

class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts; and every <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse_page(site: Path) -> _Tables:
    parser = _Tables()
    parser.feed((site / "results" / "index.html").read_text(encoding="utf-8"))
    return parser


def _mean_ci(cell: str) -> tuple[float, float, int]:
    """'0.512 ± 0.041' -> (0.512, 0.041, decimals)."""
    mean, ci = cell.split(" ± ")
    return float(mean), float(ci), len(mean.split(".")[1])


@pytest.mark.slow
def test_the_built_results_page_shows_the_manifest_numbers(quick_build):
    entries = manifest.entries_by_name(manifest.read(quick_build.exported))
    page = _parse_page(quick_build.site)
    table = next(t for t in page.tables if t and t[0][-3:] == ["0 steps", "1 step", "10 steps"])
    cells = {(r[0], r[1]): r[3:] for r in table[1:]}
    checked = 0
    for name in MODELS:
        for k in (5, 10, 20):
            for column, step in enumerate((0, 1, 10)):
                metric = entries[name]["metrics"][f"k{k}_step{step}"]
                mean, ci, decimals = _mean_ci(cells[(str(k), name)][column])
                # Equal to the manifest's number, to the digits shown.
                assert math.isclose(mean, metric["mean"], abs_tol=0.51 * 10 ** -decimals)
                assert math.isclose(ci, metric["ci95"], abs_tol=0.51 * 10 ** -decimals)
                checked += 1
    assert checked == 9 * len(MODELS)
    assert cells[("5", "MAML")][1] == "1.13 ± 0.18" and cells[("5", "Meta-SGD")][1] == "0.90 ± 0.16"
    # Training time and device, from the manifest.
    timing = {r[0]: r for t in page.tables for r in t if len(r) == 5 and r[0] in MODELS}
    for name in MODELS:
        training = entries[name]["training"]
        assert timing[name][1] == format_seconds(training["seconds"])
        assert timing[name][3:] == [training["device"], training["torch"]]
    # The figures were generated into the site and the page shows them.
    for figure in (MSE_FIGURE, TRAINING_FIGURE):
        assert (quick_build.site / figure).stat().st_size > 5_000
        assert f"../{figure}" in page.images
    # The quick profile is flagged as such.
    html = (quick_build.site / "results" / "index.html").read_text(encoding="utf-8")
    assert "A shortened run" in html and "200 test tasks" in html


@pytest.mark.slow
def test_the_site_builds_strict_when_models_have_no_results(quick_build, tmp_path, monkeypatch):
    """A newly registered model that was never trained and a model whose
    evaluation is missing are named on the page; MkDocs (strict) still passes."""
    monkeypatch.setitem(MODELS, "new-sinusoid", ModelSpec(
        "new-sinusoid", "reptile",
        lambda profile, seed: sinusoid_config("reptile", profile, seed, inner_steps=5)))
    entries = manifest.entries_by_name(manifest.read(quick_build.exported))
    pretrained = {k: v for k, v in entries["pretrained-sinusoid"].items()
                  if k not in ("results", "metrics")}
    staged = [pretrained] + [e for name, e in entries.items() if name != "pretrained-sinusoid"]
    site = tmp_path / "site"
    build_site(REPO_ROOT, quick_build.exported, staged, site)
    html = (site / "results" / "index.html").read_text(encoding="utf-8")
    assert "Some models have no results yet" in html
    assert "pretrained-sinusoid</code>: trained but not evaluated yet." in html
    assert "new-sinusoid</code>: not trained yet." in html
    table = next(t for t in _parse_page(site).tables if t and t[0][-1] == "10 steps")
    assert [r[1] for r in table[1:] if r[0] == "5"] == [
        "maml-sinusoid", "fomaml-sinusoid", "reptile-sinusoid", "imaml-sinusoid", "MAML", "Meta-SGD"]
    assert (site / MSE_FIGURE).is_file()
    shutil.rmtree(site)

"""The "Use the models" page's conv net example (issue 13): the quiz's MAML conv
net called through its exported adaptation graph.

- the page includes docs/snippets/use_glyphs_onnxruntime.py and the graph's
  inputs and outputs come from the manifest (the snippet reads the input
  checks and output names from the entry's ``graph``);
- the snippet runs as written from the repository root against the committed
  exported/, and what it prints is what autograd gives for the same round from
  the exported weights (no accuracy is written down anywhere: the numbers are
  recomputed, so a retrained model cannot make the page wrong);
- what the page says about the output holds: the queries are the support
  characters drawn by another hand, probabilities are over the round's classes
  only, and the support loss falls;
- the <!-- reuse:conv-nets --> block gives each conv net's rate and steps from
  the manifest and links to its signature in the graphs block.
"""
from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch

from meta.conv_export import reference_adaptation
from site_builder import reuse
from site_builder.config import REPO_ROOT
from site_builder.generated import MODELS_DIR, Staging
from site_builder.glyphs import split_glyphs
from test_reuse import _staging  # the same staged build: manifest, docs/ and its model files

PAGE = (REPO_ROOT / "docs" / "use-the-models.md").read_text(encoding="utf-8")
SNIPPET = REPO_ROOT / "docs" / "snippets" / "use_glyphs_onnxruntime.py"
MODEL = "maml-glyphs"

LOSS_LINE = re.compile(r"^support loss (\S+) before adapting, (\S+) after (\d+) steps$")
QUERY_LINE = re.compile(r"^query (\d+): drawn as class (\d+); before adapting class (\d+) "
                        r"\((\d+)% sure\), after (\d+) steps class (\d+) \((\d+)% sure\)$")


def _entry() -> dict:
    manifest = json.loads((REPO_ROOT / "exported" / "manifest.json").read_text(encoding="utf-8"))
    return next(e for e in manifest["models"] if e["name"] == MODEL)


def _parse(text: str):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    loss = LOSS_LINE.match(lines[0])
    assert loss, f"unexpected first line {lines[0]!r}"
    queries = []
    for line in lines[1:]:
        match = QUERY_LINE.match(line)
        assert match, f"unexpected output line {line!r}"
        queries.append(tuple(int(g) for g in match.groups()))
    return (float(loss[1]), float(loss[2]), int(loss[3])), queries


@pytest.fixture(scope="module")
def snippet_run(tmp_path_factory):
    """(printed text, the snippet's variables): run as written, and once more
    in-process for its arrays."""
    done = subprocess.run([sys.executable, str(SNIPPET.relative_to(REPO_ROOT))], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{SNIPPET.name} failed:\n{done.stderr}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO_ROOT)
        variables = runpy.run_path(str(SNIPPET), run_name="__main__")
    return done.stdout, variables


def test_the_page_includes_the_snippet_and_the_manifests_graph_table():
    assert f'--8<-- "docs/snippets/{SNIPPET.name}"' in PAGE
    assert re.search(r"^<!-- reuse:graphs -->$", PAGE, re.MULTILINE)
    # The snippet takes the input checks and output names from the manifest,
    # so it follows the graph the committed entry documents.
    code = SNIPPET.read_text(encoding="utf-8")
    assert 'model["graph"]["inputs"]' in code and 'model["graph"]["outputs"]' in code
    graph = _entry()["graph"]
    assert [p["name"] for p in graph["inputs"]] == ["support_images", "support_labels",
                                                   "query_images", "inner_lr"]
    assert [p["name"] for p in graph["outputs"]] == ["probabilities", "support_loss"]


def test_the_shapes_the_page_states_are_the_manifests():
    graph = _entry()["graph"]
    images = next(p for p in graph["inputs"] if p["name"] == "support_images")["shape"]
    outputs = next(p for p in graph["outputs"] if p["name"] == "probabilities")["shape"][-1]
    assert f"shaped [N, 1, {images[2]}, {images[3]}]" in PAGE
    assert f"each of its {outputs} outputs" in " ".join(PAGE.split())


def test_snippet_prints_what_autograd_gives_for_the_same_round(snippet_run):
    printed, variables = snippet_run
    entry = _entry()
    steps = entry["steps"]
    (loss_before, loss_after, shown_steps), queries = _parse(printed)
    assert shown_steps == steps
    order = variables["order"]
    assert len(queries) == len(order) == 5
    assert sorted(order) == list(range(5))

    feeds = variables["feeds"]
    params = torch.load(REPO_ROOT / "exported" / entry["weights"]["file"], map_location="cpu",
                        weights_only=True)["params"]
    ref_p, ref_l = reference_adaptation(
        params, torch.from_numpy(feeds["support_images"]).double(),
        torch.from_numpy(feeds["support_labels"]), torch.from_numpy(feeds["query_images"]).double(),
        entry["inner_lr"], steps)
    ref_p, ref_l = ref_p.numpy(), ref_l.numpy()
    np.testing.assert_allclose(variables["probabilities"], ref_p, atol=1e-4, rtol=0)
    assert loss_before == pytest.approx(ref_l[0], abs=1.5e-3)
    assert loss_after == pytest.approx(ref_l[steps], abs=1.5e-3)
    for q, (index, truth, first, first_pct, after, guess, guess_pct) in enumerate(queries):
        assert (index, truth, after) == (q, order[q], steps)
        # An argmax within rounding of a tie may differ between float32 and float64.
        for step, cls, pct in ((0, first, first_pct), (steps, guess, guess_pct)):
            assert ref_p[step, q, cls] >= ref_p[step, q].max() - 1e-4
            assert abs(100 * ref_p[step, q, cls] - pct) <= 0.5 + 1e-2


def test_what_the_page_says_about_the_round_holds(snippet_run):
    _, variables = snippet_run
    feeds, order, characters = variables["feeds"], variables["order"], variables["characters"]
    ink = split_glyphs("held-out", 1)[0] / 255.0
    # Support i is character characters[i] by one hand; query q is the character
    # of class order[q] by another hand (the quiz's rounds), at 28 x 28.
    assert feeds["support_labels"].tolist() == list(range(5))
    for i, c in enumerate(characters):
        np.testing.assert_allclose(feeds["support_images"][i, 0], ink[c, 0], atol=1e-6)
    for q, cls in enumerate(order):
        np.testing.assert_allclose(feeds["query_images"][q, 0], ink[characters[cls], 1], atol=1e-6)
        assert not np.allclose(feeds["query_images"][q, 0], feeds["support_images"][cls, 0])
    probabilities, support_loss = variables["probabilities"], variables["support_loss"]
    steps = _entry()["steps"]
    assert probabilities.shape == (steps + 1, 5, 20)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert np.all(probabilities[:, :, 5:] == 0), "classes outside the round must get 0"
    # "adapting to the five drawings lowers the support loss"
    assert support_loss[steps] < support_loss[0]


# ------------------------------------------------------------ <!-- reuse:conv-nets -->

def _port(name, shape, meaning="m"):
    return {"name": name, "type": "float32", "shape": shape, "meaning": meaning}


SINE = {"inputs": [_port("support_x", ["N", 1])], "outputs": [_port("query_y", ["S+1", "M", 1])]}
CONV = {"inputs": [_port("support_images", ["N", 1, 28, 28])],
        "outputs": [_port("probabilities", ["S+1", "M", 20]), _port("support_loss", ["S+1"])]}


def _glyph_entry(name, algorithm, inner_lr, steps, graph=CONV):
    entry = {"name": name, "algorithm": algorithm, "task": {"family": "glyphs"},
             "file": f"{name}.onnx", "inner_lr": inner_lr, "steps": steps}
    if graph is not None:
        entry["graph"] = graph
    return entry


def test_conv_nets_block_gives_rate_steps_and_the_signature_of_the_graphs_block(tmp_path):
    models = [
        {"name": "a-sinusoid", "algorithm": "maml", "task": {"family": "sinusoid"},
         "file": "a-sinusoid.onnx", "inner_lr": 0.01, "steps": 10, "graph": SINE},
        _glyph_entry("m-glyphs", "maml", 0.3, 4),
        _glyph_entry("p-glyphs", "pretrained", 0.02, 1),
        _glyph_entry("q-glyphs", "maml", 0.1, 2, graph=None),
    ]
    staging = _staging(tmp_path, models, staged=("m-glyphs.onnx",))
    out = reuse.render("Before.\n\n<!-- reuse:conv-nets -->\n\n<!-- reuse:graphs -->\n", staging, "p.md")
    assert "reuse:" not in out
    lines = [line for line in out.splitlines() if line.startswith("- ")]
    assert lines == [
        f"- `m-glyphs` (maml), [`m-glyphs.onnx`]({MODELS_DIR}/m-glyphs.onnx): adapts at inner_lr 0.3 "
        "and unrolls S = 4 steps, so `probabilities` has 5 rows; inputs and outputs: "
        "[signature 2](#graph-2).",
        "- `p-glyphs` (pretrained), `p-glyphs.onnx`: adapts at inner_lr 0.02 and unrolls S = 1 step, "
        "so `probabilities` has 2 rows; inputs and outputs: [signature 2](#graph-2).",
        "- `q-glyphs` (maml), `q-glyphs.onnx`: adapts at inner_lr 0.1 and unrolls S = 2 steps; "
        "inputs and outputs not recorded in the manifest.",
    ]
    # The link goes to the graphs block's table of that signature on the same page.
    assert "**Signature 2**, shared by the graphs of `m-glyphs` and `p-glyphs`:\n{: #graph-2 }" in out


def test_conv_nets_block_without_conv_nets_says_how_to_get_them(tmp_path):
    out = reuse.render("<!-- reuse:conv-nets -->\n", _staging(tmp_path, [], staged=()), "p.md")
    assert "lists no conv nets" in out and "maml-site build" in out


def test_the_page_shows_the_committed_conv_nets_from_the_manifest(tmp_path):
    assert re.search(r"^<!-- reuse:conv-nets -->$", PAGE, re.MULTILINE)
    staging = Staging(REPO_ROOT, REPO_ROOT / "exported", [], tmp_path / "docs")
    out = reuse.render("<!-- reuse:conv-nets -->\n<!-- reuse:graphs -->\n", staging,
                       "use-the-models.md")
    entry = _entry()
    line = next(line for line in out.splitlines() if line.startswith(f"- `{MODEL}`"))
    assert f"inner_lr {entry['inner_lr']:g}" in line and f"S = {entry['steps']} step" in line
    anchor = re.search(r"\(#(graph-\d+)\)", line)[1]
    assert "{: #" + anchor + " }" in out

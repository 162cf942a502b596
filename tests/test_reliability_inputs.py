"""What the Python helpers that feed the exported graphs do with wrong inputs:
one ValueError naming the input, what it is and what the graph takes (from
the manifest's documented "graph" inputs), never an onnxruntime stack trace.
Also meta.fine_tune's range checks, and the onnxruntime snippet's own check.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import meta
from site_builder.config import REPO_ROOT

EXPORTED = REPO_ROOT / "exported"
ENTRIES = {e["name"]: e for e in json.loads((EXPORTED / "manifest.json").read_text())["models"]}
MAML = ENTRIES["maml-sinusoid"]

SUPPORT_X = np.array([[-4.0], [-2.0], [0.0], [1.5], [3.5]], dtype=np.float32)
SUPPORT_Y = (3.0 * np.sin(SUPPORT_X + 1.0)).astype(np.float32)
QUERY_X = np.linspace(-5.0, 5.0, 100, dtype=np.float32).reshape(-1, 1)


def test_adapt_runs_the_graph_on_well_formed_inputs():
    predictions = meta.adapt(MAML, SUPPORT_X, SUPPORT_Y, QUERY_X, 10, exported=EXPORTED)
    assert predictions.shape == (100, 1) and predictions.dtype == np.float32
    # The same numbers as the plain onnxruntime call; lists and tensors work too.
    again = meta.adapt(MAML, SUPPORT_X.tolist(), torch.from_numpy(SUPPORT_Y), QUERY_X, 10,
                       exported=EXPORTED)
    np.testing.assert_array_equal(predictions, again)
    assert float(np.mean((predictions - 3.0 * np.sin(QUERY_X + 1.0)) ** 2)) < 0.5
    # No support points: every row is the meta-learned prediction (the contract's N = 0).
    empty = np.zeros((0, 1), dtype=np.float32)
    np.testing.assert_array_equal(meta.adapt(MAML, empty, empty, QUERY_X, 10, exported=EXPORTED),
                                  meta.adapt(MAML, empty, empty, QUERY_X, 0, exported=EXPORTED))


BAD_FEEDS = [
    # what is wrong, the changed feed, the message
    ("float64 targets", {"support_y": SUPPORT_Y.astype(np.float64)},
     "input 'support_y' is float64, the graph takes float32; convert it first"),
    ("float16 queries", {"query_x": QUERY_X.astype(np.float16)},
     "input 'query_x' is float16, the graph takes float32"),
    ("an integer tensor", {"support_x": torch.zeros(5, 1, dtype=torch.int64)},
     "input 'support_x' is int64, the graph takes float32"),
    ("points without their last axis", {"support_x": SUPPORT_X.ravel()},
     "input 'support_x' has shape [5], the graph takes [N, 1] (2 dimensions)"),
    ("two values per point", {"query_x": np.zeros((7, 2), dtype=np.float32)},
     "input 'query_x' has shape [7, 2], the graph takes [M, 1] (size 1 on axis 1)"),
    ("fewer targets than inputs", {"support_y": SUPPORT_Y[:4]},
     "input 'support_y' has 4 along N, but 'support_x' has 5: the graph takes one N for both"),
    ("no query point", {"query_x": np.zeros((0, 1), dtype=np.float32)},
     "input 'query_x' has shape [0, 1]; the graph takes [M, 1] with M ≥ 1"),
    ("a rate with a shape", {"inner_lr": np.array([0.01], dtype=np.float32)},
     "input 'inner_lr' has shape [1], the graph takes [] (0 dimensions)"),
    ("a NaN target", {"support_y": np.full((5, 1), np.nan, dtype=np.float32)},
     "input 'support_y' holds NaN or infinite values; allowed: finite numbers"),
    ("text", {"query_x": "everywhere"}, "input 'query_x' must be numbers (float32), got str"),
]


@pytest.mark.parametrize("what,change,message", BAD_FEEDS, ids=[w for w, _, _ in BAD_FEEDS])
def test_run_graph_names_a_wrong_input_and_what_the_graph_takes(what, change, message):
    feeds = {"support_x": SUPPORT_X, "support_y": SUPPORT_Y, "query_x": QUERY_X,
             "inner_lr": np.float32(MAML["inner_lr"]), **change}
    with pytest.raises(ValueError) as caught:
        meta.run_graph(EXPORTED / MAML["file"], MAML["graph"], feeds)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_and_unknown_inputs_are_named():
    with pytest.raises(ValueError, match=r"takes the inputs support_x, support_y, query_x, "
                                         r"inner_lr; missing inner_lr, unknown lr"):
        meta.check_inputs(MAML["graph"], {"support_x": SUPPORT_X, "support_y": SUPPORT_Y,
                                          "query_x": QUERY_X, "lr": 0.01})


def test_the_toy_graphs_are_checked_from_their_own_documentation():
    toy = ENTRIES["toy-landscape"]
    feeds = {"points": np.zeros((4, 2), np.float32), "task_params": np.zeros((2, 2), np.float32),
             "anchor": np.zeros(2, np.float32), "lam": 0.5}
    assert meta.run_graph(EXPORTED / toy["file"], toy["graph"], feeds)["loss"].shape == (2, 4)
    with pytest.raises(ValueError, match=r"input 'anchor' has shape \[3\], the graph takes \[2\]"):
        meta.run_graph(EXPORTED / toy["file"], toy["graph"], {**feeds, "anchor": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"'task_params' has shape \[0, 2\]; the graph takes "
                                         r"\[T, 2\] with T ≥ 1"):
        meta.run_graph(EXPORTED / toy["file"], toy["graph"],
                       {**feeds, "task_params": np.zeros((0, 2), np.float32)})


def test_a_graph_file_that_is_not_the_entrys_is_refused():
    toy = ENTRIES["toy-landscape"]
    with pytest.raises(ValueError, match="takes the inputs anchor, lam, points, task_params, not "
                                         "the documented inner_lr, query_x, support_x, support_y"):
        meta.run_graph(EXPORTED / toy["file"], MAML["graph"],
                       {"support_x": SUPPORT_X, "support_y": SUPPORT_Y, "query_x": QUERY_X,
                        "inner_lr": 0.01})


@pytest.mark.parametrize("steps,rate,message", [
    (11, None, "steps 11 is out of range: the graph maml-sinusoid.onnx takes 10 steps; "
               "allowed: an integer from 0 to 10"),
    (-1, None, "steps -1 is out of range"),
    (2.5, None, "steps 2.5 is out of range"),
    (3, -0.01, "inner_lr must be a finite number >= 0, got -0.01"),
    (3, float("inf"), "inner_lr must be a finite number >= 0, got inf"),
])
def test_adapt_refuses_more_steps_than_the_graph_unrolls_and_bad_rates(steps, rate, message):
    with pytest.raises(ValueError) as caught:
        meta.adapt(MAML, SUPPORT_X, SUPPORT_Y, QUERY_X, steps, exported=EXPORTED, inner_lr=rate)
    assert str(caught.value).startswith(message)


def test_fine_tune_refuses_a_negative_rate_and_non_finite_points():
    params = meta.load_params(EXPORTED / MAML["weights"]["file"])
    x, y = torch.from_numpy(SUPPORT_X), torch.from_numpy(SUPPORT_Y)
    with pytest.raises(ValueError, match=r"^inner_lr must be a finite number >= 0, got -0.5$"):
        meta.fine_tune(params, x, y, 3, -0.5)
    with pytest.raises(ValueError, match=r"^support_y holds NaN or infinite values"):
        meta.fine_tune(params, x, torch.full_like(y, float("inf")), 3, 0.01)
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 0, got -2$"):
        meta.fine_tune(params, x, y, -2, 0.01)
    # K = 0 is allowed, as in the graph: nothing to adapt to, the parameters stay.
    empty = torch.zeros(0, 1)
    tuned = meta.fine_tune(params, empty, empty, 5, 0.01)
    assert all(torch.equal(tuned[n], params[n]) for n in params)


def test_the_onnxruntime_snippet_checks_its_arrays_against_the_manifest(tmp_path):
    source = (REPO_ROOT / "docs" / "snippets" / "use_onnxruntime.py").read_text()
    changed = source.replace("support_y = 3.0 * np.sin(support_x + 1.0)",
                             "support_y = 3.0 * np.sin(support_x.astype(np.float64) + 1.0)")
    assert changed != source
    script = tmp_path / "snippet.py"
    script.write_text(changed)
    done = subprocess.run([sys.executable, str(script)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("ValueError: support_y must be float32 shaped ['N', 1], "
                    "got float64 shaped [5, 1]")
    assert "ONNXRuntimeError" not in done.stderr and "InvalidArgument" not in done.stderr

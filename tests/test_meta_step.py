"""The meta-step graphs (meta/meta_step.py): one meta-iteration of each
algorithm's paper configuration as ONNX, held to meta/train.py's own step
(the algorithm's meta_gradient + torch.optim) on the same task batches:
≤ 1e-5 from the same state, ≤ 1e-4 after 100 iterations run side by side."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from meta import algorithms
from meta.meta_step import (ALGORITHMS, INPUT_NAMES, NUM_PARAMS, OUTPUT_NAMES, SIGNATURE,
                            TorchMetaStep, adam_step, example_inputs, export_meta_step,
                            run_meta_step)
from meta.tasks import SINUSOID
from site_builder.config import MODELS, PROFILES

PER_ITERATION, AFTER_100, MOMENTS_AFTER_100 = 1e-5, 1e-4, 1e-3


def paper_config(algorithm: str):
    return MODELS[f"{algorithm}-sinusoid"].train_config(PROFILES["paper"], 0)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """PyTorch on one thread, as the build trains (the rounding of a product
    depends on how many threads sum it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Each algorithm's graph, exported once for the module (lazily)."""
    folder, made = tmp_path_factory.mktemp("meta-step"), {}

    def get(algorithm: str):
        if algorithm not in made:
            made[algorithm] = folder / f"{algorithm}-meta-step.onnx"
            export_meta_step(paper_config(algorithm), made[algorithm])
        return made[algorithm]
    return get


def _error(got: np.ndarray, expected: np.ndarray) -> float:
    """|onnx − torch| / max(1, |torch|): absolute up to 1, relative above (the
    second moment of a large gradient is far above 1, where float32 cannot
    hold 1e-5 absolutely)."""
    if got.shape != expected.shape or not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0))


def test_adam_step_matches_torch_optim_adam():
    """The graph's Adam is train.py's torch.optim.Adam (fused), step for step,
    including moments that are exactly 0 (a dead ReLU's weights)."""
    from meta.train import _outer_optimizer

    generator = torch.Generator().manual_seed(3)
    flat = torch.randn(50, generator=generator)
    ours = (flat.clone(), torch.zeros(50), torch.zeros(50), torch.tensor(0.0))
    optimizer = _outer_optimizer("adam", [flat], 1e-3)
    for _ in range(20):
        grad = torch.randn(50, generator=generator) * 3
        grad[:5] = 0.0
        flat.grad = grad
        optimizer.step()
        ours = adam_step(ours[0], grad, ours[1], ours[2], ours[3], torch.tensor(1e-3))
    assert torch.isfinite(ours[0]).all()
    assert torch.max(torch.abs(ours[0] - flat)) < 1e-6     # a few float32 ulps
    assert torch.max(torch.abs(ours[2] - optimizer.state[flat]["exp_avg_sq"])) < 1e-7
    assert float(ours[3]) == 20.0


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_meta_step_graph_matches_pytorch_for_100_iterations(graphs, algorithm):
    """Same initial θ and batches (meta/tasks.py, meta-batch 25, K = 10 + 10):
    every iteration the graph, fed PyTorch's current state, lands within 1e-5
    of PyTorch's next state; a chain of 100 graph iterations stays within
    1e-4 of 100 PyTorch iterations (θ and the meta-loss; Adam's moments
    within 1e-3)."""
    cfg = paper_config(algorithm)
    path = graphs(algorithm)
    start = example_inputs(cfg)
    reference = TorchMetaStep(cfg, start["params"])
    chain = {n: start[n].numpy() for n in ("params", "adam_m", "adam_v", "step")}
    hyper = {"inner_lr": np.float32(cfg.inner_lr), "meta_lr": np.float32(cfg.meta_lr)}
    generator = torch.Generator().manual_seed(2026)
    worst_step, worst_loss, chain_loss = 0.0, 0.0, 0.0
    for iteration in range(100):
        batch = SINUSOID.sample_batch(25, 10, 10, generator)
        data = {n: t.numpy() for n, t in batch._asdict().items()}
        before = {**reference.state(), "step": np.float32(iteration)}
        one = run_meta_step(path, {**before, **data, **hyper})
        loss = reference(batch)
        after = reference.state()
        worst_step = max(worst_step, *(_error(one[f"new_{n}"], after[n]) for n in after))
        worst_loss = max(worst_loss, _error(one["meta_loss"], np.float32(loss)))
        assert float(one["new_step"]) == iteration + 1
        out = run_meta_step(path, {**chain, **data, **hyper})
        chain_loss = max(chain_loss, _error(out["meta_loss"], np.float32(loss)))
        chain = {n: out[f"new_{n}"] for n in ("params", "adam_m", "adam_v", "step")}
    final = reference.state()
    drift = _error(chain["params"], final["params"])
    moments = max(_error(chain[n], final[n]) for n in ("adam_m", "adam_v"))
    print(f"{algorithm}: per-iteration {worst_step:.2g} (meta-loss {worst_loss:.2g}); after 100: "
          f"θ {drift:.2g}, meta-loss {chain_loss:.2g}, moments {moments:.2g}")
    assert worst_step <= PER_ITERATION
    assert worst_loss <= PER_ITERATION
    assert drift <= AFTER_100
    assert chain_loss <= AFTER_100
    # Adam's moments are not outputs a reader sees, and a ReLU whose input
    # crosses 0 on one side only (float32 rounding) makes a jump in the
    # gradient that the first moment keeps for a while: a looser bound.
    assert moments <= MOMENTS_AFTER_100
    # And training moved θ: the comparison is not of two idle runs.
    assert np.max(np.abs(final["params"] - start["params"].numpy())) > 1e-3


@pytest.mark.slow
def test_graph_takes_any_batch_size_and_names_its_io(graphs):
    """T, K and Q are dynamic (here 5 tasks, 3 + 7 points and 1 task, 1 + 1);
    the graph's inputs and outputs are the documented ones, float32, and use
    only operators onnxruntime-web runs; Reptile (outer SGD) passes the
    moments through."""
    path = graphs("maml")
    model = onnx.load(path)
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)
    assert {n.op_type for n in model.graph.node} <= ALLOWED_OPS
    assert path.stat().st_size < 100_000
    cfg = paper_config("maml")
    for tasks, k, q in ((5, 3, 7), (1, 1, 1)):
        start = example_inputs(cfg)
        batch = SINUSOID.sample_batch(tasks, k, q, torch.Generator().manual_seed(tasks))
        reference = TorchMetaStep(cfg, start["params"])
        loss = reference(batch)
        out = run_meta_step(path, {**start, **batch._asdict()})
        assert out["new_params"].shape == (NUM_PARAMS,)
        assert out["meta_loss"].shape == () and out["new_step"].shape == ()
        assert _error(out["new_params"], reference.state()["params"]) <= PER_ITERATION
        assert abs(float(out["meta_loss"]) - loss) <= PER_ITERATION * max(1.0, loss)

    cfg = paper_config("reptile")
    assert algorithms.get("reptile").OUTER_OPTIMIZER == "sgd"
    start = example_inputs(cfg)
    moments = np.arange(NUM_PARAMS, dtype=np.float32)
    out = run_meta_step(graphs("reptile"), {**start, "adam_m": moments, "adam_v": moments * 2})
    np.testing.assert_array_equal(out["new_adam_m"], moments)
    np.testing.assert_array_equal(out["new_adam_v"], moments * 2)


def test_signature_documents_every_input_and_output():
    names = [s["name"] for s in SIGNATURE["inputs"] + SIGNATURE["outputs"]]
    assert names == list(INPUT_NAMES) + list(OUTPUT_NAMES)
    assert all(s["meaning"] and s["type"] == "float32" for s in SIGNATURE["inputs"])
    assert NUM_PARAMS == 1761
    from site_builder.meta_step_stage import BUILD_ALGORITHMS

    assert BUILD_ALGORITHMS == ALGORITHMS == ("pretrained", "maml", "fomaml", "reptile")


def test_unknown_algorithm_is_one_clear_error():
    from types import SimpleNamespace

    from meta.meta_step import build_meta_step_model

    with pytest.raises(ValueError, match="no meta-step graph for algorithm 'nope'"):
        build_meta_step_model(SimpleNamespace(algorithm="nope"))


@pytest.mark.slow
def test_the_build_lists_the_meta_step_graphs_and_check_verifies_them(quick_build, tmp_path):
    """The session's quick build (tests/conftest.py) exports the four graphs
    into exported/, lists them after the models and the toy graphs (task
    family "sinusoid-meta-step", so widgets that take every "sinusoid" entry
    for an adaptation graph leave them alone), the site serves them, and
    `maml-site check` holds them to PyTorch and names a damaged one."""
    import shutil

    from site_builder import manifest
    from site_builder.check import check
    from site_builder.config import REPO_ROOT
    from site_builder.errors import BuildFailure
    from site_builder.hashing import file_sha256
    from site_builder.meta_step_stage import graph_names

    data = manifest.read(quick_build.exported)
    names = [m["name"] for m in data["models"]]
    assert names[-6:] == graph_names() == [f"{a}-meta-step" for a in ALGORITHMS] + ["theta-fit", "theta-fit-1"]
    entries = manifest.entries_by_name(data)
    for algorithm in ALGORITHMS:
        entry, cfg = entries[f"{algorithm}-meta-step"], paper_config(algorithm)
        assert entry["algorithm"] == algorithm and entry["task"]["family"] == "sinusoid-meta-step"
        assert entry["file"] == f"{algorithm}-meta-step.onnx"
        assert entry["sha256"] == file_sha256(quick_build.exported / entry["file"])
        assert entry["graph"] == SIGNATURE
        assert (entry["inner_lr"], entry["steps"]) == (cfg.inner_lr, cfg.inner_steps)
        assert entry["meta_step"]["meta_lr"] == cfg.meta_lr
        assert entry["meta_step"]["outer_optimizer"]["kind"] == algorithms.get(algorithm).OUTER_OPTIMIZER
        assert (quick_build.site / "assets" / "models" / entry["file"]).is_file()
    assert entries["reptile-meta-step"]["steps"] == 5 and entries["pretrained-meta-step"]["steps"] == 0
    check(quick_build.exported, REPO_ROOT)
    copy = tmp_path / "exported"
    shutil.copytree(quick_build.exported, copy)
    graph = copy / "fomaml-meta-step.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(BuildFailure, match=r"fomaml-meta-step: fomaml-meta-step\.onnx has sha256 [0-9a-f]{12}…, "
                       r"the manifest says [0-9a-f]{12}…; run `maml-site build`"):
        check(copy, REPO_ROOT)


#: Operators the meta-step graphs may contain (all run in onnxruntime-web's wasm backend).
ALLOWED_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt", "MatMul", "Gemm", "Transpose", "Relu",
    "Greater", "Less", "LessOrEqual", "And", "Where", "ReduceSum", "ReduceMean", "Shape",
    "Gather", "Cast", "Clip", "Constant", "Reshape", "Unsqueeze", "Squeeze", "Concat",
    "Expand", "Slice", "Identity",
})


# ------------------------------------------------------------------ the θ-fit graph

def test_theta_fit_graph_is_plain_gradient_descent_from_each_tasks_theta(tmp_path):
    """The θ-fit graph (what the Comparison page's live run shows of its θ) is
    meta.model.adapt from a θ per task: ≤ 1e-5 at every step, for any T, K, M;
    row 0 is the model before any step, and a task's fit depends only on its θ."""
    from meta.theta_fit import FIT_SIGNATURE, FIT_STEPS, export_fit, run_fit, torch_fit

    path = tmp_path / "theta-fit.onnx"
    info = export_fit(path)
    assert set(info["ops"]) <= ALLOWED_OPS, set(info["ops"]) - ALLOWED_OPS
    rng = np.random.default_rng(7)
    for tasks, k, m in ((1, 1, 1), (4, 5, 101), (100, 5, 50)):
        params = np.stack([example_inputs(paper_config("maml"))["params"].numpy()] * tasks)
        params[1:] += rng.normal(0, 0.05, params[1:].shape).astype(np.float32)
        feeds = {"params": params, "support_x": rng.uniform(-5, 5, (tasks, k, 1)),
                 "query_x": rng.uniform(-5, 5, (tasks, m, 1)), "inner_lr": 0.01}
        feeds["support_y"] = 3 * np.sin(feeds["support_x"] + 0.5)
        got = run_fit(path, feeds)
        query_y, support_loss = torch_fit(**feeds)
        assert got["query_y"].shape == (FIT_STEPS + 1, tasks, m, 1)
        assert got["support_loss"].shape == (FIT_STEPS + 1, tasks)
        assert _error(got["query_y"], query_y) <= PER_ITERATION
        assert _error(got["support_loss"], support_loss) <= PER_ITERATION
        assert support_loss[1].mean() < support_loss[0].mean()      # the steps do fit
    # One task alone gives the same numbers as in a batch of four.
    one = run_fit(path, {k: (v[:1] if np.ndim(v) else v) for k, v in feeds.items()})
    np.testing.assert_allclose(one["query_y"][:, 0], got["query_y"][:, 0], atol=1e-6)
    assert [s["name"] for s in FIT_SIGNATURE["inputs"]] == ["params", "support_x", "support_y", "query_x",
                                                             "inner_lr"]
    with pytest.raises(ValueError, match="the θ-fit graph needs the inputs .*; missing params"):
        run_fit(path, {k: v for k, v in feeds.items() if k != "params"})

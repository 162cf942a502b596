"""The exported sinusoid adaptation graph against the autograd reference.

The graph is exported once per module from randomly initialised parameters
(fixed seed), so these tests depend on no trained model. Its steps are the
safeguarded ones (backtracking, meta.evaluate.HALVINGS halvings) unless a test
says otherwise; at the larger rates below the safeguard really acts (halved
steps, and tasks that stay put), which the tests count before comparing.
"""
from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest
import torch

import meta.export as export_mod
from meta.evaluate import HALVINGS, adapt_safeguarded
from meta.export import (ALLOWED_OPS, INPUT_NAMES, OUTPUT_NAMES, SinusoidAdaptation, _mlp,
                         export_sinusoid, graph_ops, reference_adaptation, run_onnx)
from meta.model import adapt, forward, init_params, per_task
from meta.tasks import SINUSOID

STEPS = 10
TOLERANCE = 1e-5
SUPPORT_SIZES = (0, 1, 2, 3, 4, 5, 10, 20)
# Learning rates at which plain gradient descent from these parameters stays
# well behaved on every task; 0.01 is the rate the models are trained with.
STABLE_LRS = (0.01, 0.003)
#: Rates at which the full step from these parameters often raises the support
#: loss: at 0.1 about half of the steps are halved once or twice, at 1.0 most
#: are halved three or four times and a third of them find no trial that helps.
SAFEGUARD_LRS = (0.1, 1.0)


@pytest.fixture(scope="module")
def params():
    return init_params(torch.Generator().manual_seed(1234))


@pytest.fixture(scope="module")
def exported(params, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "sinusoid.onnx"
    start = time.perf_counter()
    info = export_sinusoid(params, path, steps=STEPS)
    info["seconds"] = time.perf_counter() - start
    return path, info


def sinusoid_cases(seed: int, tasks_per_size: int = 4, num_query: int = 100):
    """(support_x, support_y, query_x) from real sinusoid tasks, |y| <= 5."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n in SUPPORT_SIZES:
        amplitude, phase = SINUSOID.sample_tasks(tasks_per_size, g)
        for t in range(tasks_per_size):
            support_x = SINUSOID.sample_x(1, n, g)
            support_y = SINUSOID.target(amplitude[t:t + 1], phase[t:t + 1], support_x)
            if t % 2:
                query_x = torch.linspace(-5, 5, num_query).reshape(-1, 1)
            else:   # unsorted random query points, a different M
                query_x = SINUSOID.sample_x(1, 37, g)[0]
            cases.append((support_x[0], support_y[0], query_x))
    return cases


def reference64(params, support_x, support_y, query_x, lr, steps=STEPS, halvings=HALVINGS):
    return reference_adaptation(params, support_x.double(), support_y.double(),
                                query_x.double(), lr, steps, halvings)


def trials_taken(params, support_x, support_y, lr, steps=STEPS, halvings=HALVINGS):
    """Which trial each safeguarded step took (0: the full step, h: halved h
    times, -1: none, the parameters stayed), replayed in float64."""
    p = {n: t.double() for n, t in params.items()}
    x, y = support_x.double(), support_y.double()
    taken = []
    for _ in range(steps):
        p = {n: t.detach().requires_grad_(True) for n, t in p.items()}
        loss = (_mlp(p, x) - y).pow(2).mean()
        grads = torch.autograd.grad(loss, list(p.values()))
        with torch.no_grad():
            for h in range(halvings + 1):
                trial = {n: t - lr * 0.5 ** h * g for (n, t), g in zip(p.items(), grads)}
                if (_mlp(trial, x) - y).pow(2).mean() <= loss:
                    p = trial
                    taken.append(h)
                    break
            else:
                taken.append(-1)
    return taken


@pytest.mark.parametrize("lr", STABLE_LRS)
def test_onnx_matches_autograd_reference_at_every_step(params, exported, lr):
    path, _ = exported
    worst, adapted = 0.0, 0
    for support_x, support_y, query_x in sinusoid_cases(seed=int(lr * 1e4)):
        assert (support_y.abs() <= 5.0).all()
        ref_y, ref_loss = reference64(params, support_x, support_y, query_x, lr)
        onnx_y, onnx_loss = run_onnx(path, support_x, support_y, query_x, lr)
        assert onnx_y.shape == (STEPS + 1, query_x.shape[0], 1)
        assert onnx_loss.shape == (STEPS + 1,)
        assert onnx_y.dtype == np.float32 and onnx_loss.dtype == np.float32
        worst = max(worst, np.abs(onnx_y - ref_y.numpy()).max(),
                    np.abs(onnx_loss - ref_loss.numpy()).max())
        if support_x.shape[0] > 0:
            # The steps really adapt: the support loss goes down and the predictions move.
            assert ref_loss[-1] < ref_loss[0]
            assert np.abs(onnx_y[-1] - onnx_y[0]).max() > 1e-3
            adapted += 1
    assert adapted == 4 * (len(SUPPORT_SIZES) - 1)
    assert worst <= TOLERANCE, f"max |onnx - autograd| = {worst:.2e}"


def test_onnx_matches_reference_for_ten_points_and_hundred_queries(params, exported):
    path, _ = exported
    g = torch.Generator().manual_seed(7)
    amplitude, phase = SINUSOID.sample_tasks(4, g)
    amplitude[0] = 5.0   # the largest targets the contract covers
    query_x = torch.linspace(-5, 5, 100).reshape(-1, 1)
    for t in range(4):
        support_x = SINUSOID.sample_x(1, 10, g)
        support_y = SINUSOID.target(amplitude[t:t + 1], phase[t:t + 1], support_x)[0]
        ref_y, ref_loss = reference64(params, support_x[0], support_y, query_x, 0.01)
        onnx_y, onnx_loss = run_onnx(path, support_x[0], support_y, query_x, 0.01)
        assert np.abs(onnx_y - ref_y.numpy()).max() <= TOLERANCE
        assert np.abs(onnx_loss - ref_loss.numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("lr", SAFEGUARD_LRS)
def test_onnx_matches_the_per_task_reference_where_the_safeguard_acts(params, exported, lr):
    """Halved steps and steps that stay put, in the graph as in the autograd
    reference that tries one trial at a time."""
    path, _ = exported
    worst, taken = 0.0, []
    for support_x, support_y, query_x in sinusoid_cases(seed=int(lr * 100) + 1):
        if support_x.shape[0] == 0:
            continue
        taken += trials_taken(params, support_x, support_y, lr)
        ref_y, ref_loss = reference64(params, support_x, support_y, query_x, lr)
        onnx_y, onnx_loss = run_onnx(path, support_x, support_y, query_x, lr)
        worst = max(worst, np.abs(onnx_y - ref_y.numpy()).max(),
                    np.abs(onnx_loss - ref_loss.numpy()).max())
        # The safeguard never lets the support loss rise.
        assert (np.diff(ref_loss.numpy()) <= 0).all()
        assert (np.diff(onnx_loss) <= 1e-6).all()
    halved = sum(h > 0 for h in taken)
    assert halved >= 20, f"only {halved} halved steps at lr = {lr}: the test would not test the safeguard"
    if lr >= 1.0:
        assert taken.count(-1) >= 20 and HALVINGS in taken
    assert worst <= TOLERANCE, f"max |onnx - autograd| = {worst:.2e}"


def test_a_step_that_no_trial_saves_leaves_the_parameters_alone(params, exported):
    """At an absurd rate every trial raises the loss: the graph then stays at θ
    (every row is the unadapted prediction, the support loss is constant),
    where plain gradient descent would blow up."""
    path, _ = exported
    support_x = torch.tensor([[-4.5], [-1.0], [2.0], [4.8]])
    support_y = 3.0 * torch.sin(support_x + 0.5)
    query_x = torch.linspace(-5, 5, 50).reshape(-1, 1)
    assert trials_taken(params, support_x, support_y, 1e4, steps=1) == [-1]
    onnx_y, onnx_loss = run_onnx(path, support_x, support_y, query_x, 1e4)
    for row in onnx_y[1:]:
        assert np.array_equal(row, onnx_y[0])
    assert np.array_equal(onnx_loss, np.full(STEPS + 1, onnx_loss[0]))
    ref_y, _ = reference64(params, support_x, support_y, query_x, 1e4)
    assert np.abs(onnx_y - ref_y.numpy()).max() <= TOLERANCE
    plain_y, plain_loss = reference64(params, support_x, support_y, query_x, 1e4, halvings=None)
    assert not torch.isfinite(plain_loss[-1]) or plain_loss[-1] > 1e6 * plain_loss[0]


def test_first_step_at_a_large_learning_rate(params, tmp_path):
    """At lr = 0.1 plain gradient descent from these parameters overshoots (the
    loss grows by orders of magnitude), so float32 rounding is amplified step
    after step and no float32 graph can track float64 to 1e-5 over ten steps.
    The first update is still exact to float32 precision, relative to its size."""
    path = tmp_path / "plain.onnx"
    export_sinusoid(params, path, steps=STEPS, halvings=None)
    for support_x, support_y, query_x in sinusoid_cases(seed=3, tasks_per_size=2):
        ref_y, ref_loss = reference64(params, support_x, support_y, query_x, 0.1, steps=1,
                                      halvings=None)
        onnx_y, onnx_loss = run_onnx(path, support_x, support_y, query_x, 0.1)
        scale_y = np.maximum(1.0, np.abs(ref_y.numpy()))
        scale_loss = np.maximum(1.0, ref_loss.numpy())
        assert (np.abs(onnx_y[:2] - ref_y.numpy()) / scale_y).max() <= TOLERANCE
        assert (np.abs(onnx_loss[:2] - ref_loss.numpy()) / scale_loss).max() <= TOLERANCE


@pytest.mark.parametrize("lr", (0.01, 0.1, 10.0))
@pytest.mark.parametrize("num_query", (1, 100))
def test_no_support_points_gives_the_unadapted_prediction(params, exported, lr, num_query):
    path, _ = exported
    query_x = torch.linspace(-5, 5, num_query).reshape(-1, 1)
    empty = np.zeros((0, 1), dtype=np.float32)
    onnx_y, onnx_loss = run_onnx(path, empty, empty, query_x, lr)
    assert np.isfinite(onnx_y).all() and np.isfinite(onnx_loss).all()
    assert np.array_equal(onnx_loss, np.zeros(STEPS + 1, dtype=np.float32))
    for row in onnx_y[1:]:
        assert np.array_equal(row, onnx_y[0])   # identical, not merely close
    unadapted = forward(per_task(params, 1), query_x.unsqueeze(0))[0]
    assert np.abs(onnx_y[0] - unadapted.numpy()).max() <= TOLERANCE
    ref_y, ref_loss = reference_adaptation(params, torch.zeros(0, 1), torch.zeros(0, 1), query_x, lr, STEPS)
    assert torch.isfinite(ref_y).all() and torch.equal(ref_loss, torch.zeros(STEPS + 1))
    assert torch.equal(ref_y, ref_y[:1].expand_as(ref_y))


# Plain steps (halvings None) only at the stable rates: at the large rate
# plain gradient descent blows up (see the large-rate test).
@pytest.mark.parametrize("lr,halvings", [
    (lr, halvings) for halvings in (HALVINGS, 0, None)
    for lr in STABLE_LRS + (SAFEGUARD_LRS[:1] if halvings is not None else ())])
def test_hand_written_module_matches_autograd_in_torch(params, lr, halvings):
    module = SinusoidAdaptation(params, STEPS, halvings)
    worst = 0.0
    for support_x, support_y, query_x in sinusoid_cases(seed=11):
        got_y, got_loss = module(support_x, support_y, query_x, torch.tensor(lr))
        ref_y, ref_loss = reference64(params, support_x, support_y, query_x, lr, halvings=halvings)
        worst = max(worst, (got_y.double() - ref_y).abs().max().item(),
                    (got_loss.double() - ref_loss).abs().max().item())
    assert worst <= TOLERANCE, f"max |module - autograd| = {worst:.2e}"


@pytest.mark.parametrize("lr", STABLE_LRS[:1] + SAFEGUARD_LRS)
def test_module_agrees_with_the_evaluation_adaptation(params, lr):
    """The exported graph adapts exactly as meta.evaluate's batched safeguarded
    steps do (the protocol, fine_tune), and with halvings=None as meta.model.adapt."""
    g = torch.Generator().manual_seed(5)
    batch = SINUSOID.sample_batch(1, 10, 50, g)
    for halvings, adapt_fn in ((HALVINGS, adapt_safeguarded),
                               (None, lambda *args: adapt(*args[:5]))):
        if halvings is None and lr > 0.01:
            continue
        module = SinusoidAdaptation(params, STEPS, halvings)
        got_y, _ = module(batch.support_x[0], batch.support_y[0], batch.query_x[0], torch.tensor(lr))
        for steps in (0, 1, 5, STEPS):
            adapted = adapt_fn(per_task(params, 1), batch.support_x, batch.support_y, steps, lr,
                               halvings)
            expected = forward(adapted, batch.query_x)[0]
            assert (got_y[steps] - expected).abs().max().item() <= TOLERANCE


def test_reference_uses_float32_when_given_float32(params):
    support_x = torch.tensor([[1.0], [-2.0]])
    y32, loss32 = reference_adaptation(params, support_x, torch.sin(support_x), support_x, 0.01, 3)
    y64, loss64 = reference64(params, support_x, torch.sin(support_x), support_x, 0.01, 3)
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    assert y32.shape == (4, 2, 1) and loss32.shape == (4,)
    assert (y32.double() - y64).abs().max().item() <= 1e-6


def test_graph_interface_matches_the_contract(exported):
    path, _ = exported
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {v.name: v for v in model.graph.input}
    outputs = {v.name: v for v in model.graph.output}
    assert list(inputs) == list(INPUT_NAMES)
    assert list(outputs) == list(OUTPUT_NAMES)
    for value in (*inputs.values(), *outputs.values()):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(inputs["support_x"]) == ["N", 1]
    assert dims(inputs["support_y"]) == ["N", 1]
    assert dims(inputs["query_x"]) == ["M", 1]
    assert dims(inputs["inner_lr"]) == []
    assert dims(outputs["query_y"]) == [STEPS + 1, "M", 1]
    assert dims(outputs["support_loss"]) == [STEPS + 1]


def _subgraphs(node):
    for attr in node.attribute:
        yield from ([attr.g] if attr.HasField("g") else [])
        yield from attr.graphs


def test_graph_uses_only_plain_onnx_ops(exported):
    path, info = exported
    model = onnx.load(os.fspath(path))
    ops = graph_ops(model.graph)
    assert ops <= ALLOWED_OPS, f"unexpected ops: {sorted(ops - ALLOWED_OPS)}"
    assert set(info["ops"]) == ops
    assert {"MatMul", "Relu", "Where", "Greater"} <= ops   # forward and hand-written backward
    assert "LessOrEqual" in ops                           # the safeguard's test of each trial
    assert len(model.functions) == 0
    assert [(o.domain, o.version) for o in model.opset_import] == [("", export_mod.OPSET)]
    # The steps are one Scan whose body is one step (the backward pass and the
    # trials included); nothing else has a subgraph, and the body has none.
    loops = [node for node in model.graph.node if list(_subgraphs(node))]
    assert [node.op_type for node in loops] == ["Scan"]
    (body,) = _subgraphs(loops[0])
    assert {"MatMul", "Where", "LessOrEqual"} <= {node.op_type for node in body.node}
    assert not any(list(_subgraphs(node)) for node in body.node)
    assert all(node.domain in ("", "ai.onnx") for node in (*model.graph.node, *body.node))
    # A tenth of the 888 nodes the unrolled steps took: what makes the graph quick to open.
    assert len(model.graph.node) + len(body.node) < 200


def test_graph_without_steps_has_no_scan(params, tmp_path):
    info = export_sinusoid(params, tmp_path / "s0.onnx", steps=0)
    assert "Scan" not in info["ops"]
    support_x = torch.tensor([[1.0], [2.0]])
    query_y, losses = run_onnx(info["path"], support_x, torch.sin(support_x), torch.tensor([[0.5]]), 0.01)
    expected = _mlp(params, torch.tensor([[0.5]]))
    assert query_y.shape == (1, 1, 1) and losses.shape == (1,)
    assert abs(float(query_y[0, 0, 0]) - float(expected)) < 1e-6
    assert abs(float(losses[0]) - float((_mlp(params, support_x) - torch.sin(support_x)).pow(2).mean())) < 1e-6


def test_file_is_small_and_carries_no_metadata(exported):
    path, info = exported
    data = path.read_bytes()
    assert info["bytes"] == len(data) < 200_000
    assert info["steps"] == STEPS
    model = onnx.load_from_string(data)
    assert not any(node.metadata_props or node.doc_string for node in model.graph.node)
    assert not model.metadata_props and not model.doc_string
    assert b"/work" not in data and os.fsencode(os.getcwd()) not in data
    assert not model.graph.initializer or all(not t.external_data for t in model.graph.initializer)
    assert not list(path.parent.glob("*.tmp")) and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_export_is_deterministic_and_quiet(params, exported, tmp_path, capfd):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export_sinusoid(params, first, steps=1)
    export_sinusoid(params, second, steps=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert first.read_bytes() == second.read_bytes()
    # The small graph computes the first rows of the big one.
    support_x = torch.tensor([[-3.0], [0.5], [4.0]])
    support_y = 2.0 * torch.sin(support_x + 1.0)
    query_x = torch.linspace(-5, 5, 9).reshape(-1, 1)
    small_y, small_loss = run_onnx(first, support_x, support_y, query_x, 0.01)
    big_y, big_loss = run_onnx(exported[0], support_x, support_y, query_x, 0.01)
    assert small_y.shape == (2, 9, 1) and small_loss.shape == (2,)
    assert np.abs(small_y - big_y[:2]).max() <= 1e-6
    assert np.abs(small_loss - big_loss[:2]).max() <= 1e-6


def test_interrupted_write_leaves_the_old_file(params, exported, tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous model")
    prebuilt = onnx.load(os.fspath(exported[0]))
    monkeypatch.setattr(export_mod, "build_onnx_model", lambda p, steps, halvings, *rest, **options: prebuilt)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_sinusoid(params, path)
    assert path.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]   # no temporary left behind

    monkeypatch.undo()
    monkeypatch.setattr(export_mod, "build_onnx_model", lambda p, steps, halvings, *rest, **options: prebuilt)
    info = export_sinusoid(params, path)
    assert path.read_bytes() == exported[0].read_bytes() and info["bytes"] == path.stat().st_size
    assert path.stat().st_mode & 0o777 == 0o644


def test_bad_input_is_rejected_with_a_clear_message(params, tmp_path):
    target = tmp_path / "never.onnx"
    wrong_shape = dict(params, w2=torch.zeros(40, 41))
    with pytest.raises(ValueError, match=r"params\['w2'\] has shape \[40, 41\], expected \[40, 40\]"):
        export_sinusoid(wrong_shape, target)
    with pytest.raises(ValueError, match="missing \\['b3'\\]"):
        export_sinusoid({k: v for k, v in params.items() if k != "b3"}, target)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        export_sinusoid(params, target, steps=-1)
    with pytest.raises(ValueError, match="halvings must be an integer >= 0 or None"):
        export_sinusoid(params, target, halvings=-1)
    with pytest.raises(ValueError, match="task dimension"):
        export_sinusoid(per_task(params, 1), target)
    assert not target.exists() and not list(tmp_path.iterdir())

    x = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="must have the same shape"):
        reference_adaptation(params, x, torch.zeros(2, 1), x, 0.01, 1)
    with pytest.raises(ValueError, match=r"query_x must be shaped \[points, 1\]"):
        reference_adaptation(params, x, x, torch.zeros(3), 0.01, 1)


def test_run_onnx_checks_its_inputs_and_accepts_flat_arrays(exported):
    path, _ = exported
    x = np.array([-1.0, 2.0])
    flat_y, flat_loss = run_onnx(path, x, np.sin(x), np.array([0.0, 1.0]), np.float64(0.01))
    col_y, col_loss = run_onnx(path, x[:, None], np.sin(x)[:, None], [[0.0], [1.0]], 0.01)
    assert np.array_equal(flat_y, col_y) and np.array_equal(flat_loss, col_loss)
    with pytest.raises(ValueError, match="must have the same shape"):
        run_onnx(path, x, np.sin(x)[:1], [0.0], 0.01)
    with pytest.raises(ValueError, match="query_x must hold at least one point"):
        run_onnx(path, x, np.sin(x), np.zeros((0, 1)), 0.01)
    with pytest.raises(ValueError, match=r"support_x must be shaped \[points, 1\]"):
        run_onnx(path, np.zeros((2, 2)), np.zeros((2, 2)), [0.0], 0.01)


# ------------------------------------------------------------ iMAML's proximal steps

#: λ of the proximal graphs tested here: the iMAML model's (site_builder.config)
#: and a weak one, under which the steps nearly fit the support points.
PROXIMAL_LAMS = (10.0, 1.0)
#: Step sizes: the full Gauss–Newton step, the half step the iMAML model adapts
#: with, and one so long that most first steps are refused and halved.
PROXIMAL_LRS = (1.0, 0.5, 16.0)
#: The Gauss–Newton step inverts the N x N kernel system J Jᵀ + λN/2·I, whose
#: condition number scales float32 rounding: ONNX and the float64 reference
#: agreed to 6e-5 at λ = 10 and to 1.9e-4 at λ = 1 (a ridge ten times smaller),
#: not to the 1e-5 of the gradient steps.
PROXIMAL_TOLERANCES = {10.0: 1e-4, 1.0: 3e-4}


@pytest.fixture(scope="module", params=PROXIMAL_LAMS)
def proximal_exported(params, tmp_path_factory, request):
    lam = request.param
    path = tmp_path_factory.mktemp("onnx") / f"proximal-{lam}.onnx"
    info = export_sinusoid(params, path, steps=STEPS, lam=lam)
    return path, info, lam


@pytest.mark.parametrize("lr", PROXIMAL_LRS)
def test_proximal_graph_matches_autograd_reference_at_every_step(params, proximal_exported, lr):
    """The graph iMAML is exported with runs its training's inner solver: ONNX
    against the per-task autograd reference (float64, exact solves), 0..20
    support points. At the longest step size steps are refused and the step
    size halved, which the test counts."""
    path, info, lam = proximal_exported
    assert info["inner_procedure"]["kind"] == "proximal" and info["inner_procedure"]["lam"] == lam
    assert "Gauss-Newton" in info["inner_procedure"]["solver"]
    worst, frozen = 0.0, 0
    for support_x, support_y, query_x in sinusoid_cases(seed=int(lr * 1000) + 5):
        ref_y, ref_loss = reference_adaptation(params, support_x.double(), support_y.double(),
                                               query_x.double(), lr, STEPS, lam=lam)
        onnx_y, onnx_loss = run_onnx(path, support_x, support_y, query_x, lr)
        assert onnx_y.shape == (STEPS + 1, query_x.shape[0], 1) and onnx_loss.shape == (STEPS + 1,)
        worst = max(worst, np.abs(onnx_y - ref_y.numpy()).max(),
                    np.abs(onnx_loss - ref_loss.numpy()).max())
        # A refused step leaves the prediction exactly where it was.
        frozen += sum(np.array_equal(onnx_y[s + 1], onnx_y[s]) for s in range(STEPS))
        if support_x.shape[0] == 0:
            assert np.array_equal(onnx_loss, np.zeros(STEPS + 1, dtype=np.float32))
            assert all(np.array_equal(row, onnx_y[0]) for row in onnx_y[1:])
    if lr >= 16.0:
        assert frozen >= 20, f"only {frozen} refused steps at lr = {lr}"
    assert worst <= PROXIMAL_TOLERANCES[lam], f"max |onnx - autograd| = {worst:.2e}"


def test_proximal_module_agrees_with_the_evaluation_and_with_onnx(params, proximal_exported):
    """The hand-written module, the protocol's batched steps (meta.evaluate,
    which fine_tune runs too) and the ONNX graph agree step for step."""
    from meta.evaluate import proximal_trajectory

    path, _, lam = proximal_exported
    g = torch.Generator().manual_seed(9)
    batch = SINUSOID.sample_batch(3, 5, 50, g)
    module = SinusoidAdaptation(params, STEPS, lam=lam)
    for lr in PROXIMAL_LRS:
        trajectory = proximal_trajectory(params, batch.support_x, batch.support_y, STEPS, lr, lam)
        for t in range(3):
            got_y, got_loss = module(batch.support_x[t], batch.support_y[t], batch.query_x[t],
                                     torch.tensor(lr))
            onnx_y, onnx_loss = run_onnx(path, batch.support_x[t], batch.support_y[t],
                                         batch.query_x[t], lr)
            assert np.abs(onnx_y - got_y.numpy()).max() <= PROXIMAL_TOLERANCES[lam]
            assert np.abs(onnx_loss - got_loss.numpy()).max() <= PROXIMAL_TOLERANCES[lam]
            for step, phi in enumerate(trajectory):
                expected = forward({n: p[t:t + 1] for n, p in phi.items()}, batch.query_x[t:t + 1])[0]
                assert (got_y[step] - expected).abs().max().item() <= PROXIMAL_TOLERANCES[lam]


def test_proximal_graph_keeps_the_contract_interface_and_plain_ops(proximal_exported):
    path, _, _ = proximal_exported
    model = onnx.load(os.fspath(path))
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    ops = graph_ops(model.graph)
    assert ops <= ALLOWED_OPS, f"unexpected operators {sorted(ops - ALLOWED_OPS)}"
    assert "Scan" in ops
    from meta.export import SIGNATURE, signature

    described = signature({"kind": "proximal", "lam": 10.0})
    assert described["inputs"] == SIGNATURE["inputs"]
    assert [o["name"] for o in described["outputs"]] == list(OUTPUT_NAMES)
    assert "lam/2" in described["outputs"][0]["meaning"]
    assert "Gauss–Newton" in described["outputs"][0]["meaning"]

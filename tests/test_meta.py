"""meta/: tasks, the hand-written network derivatives and the five algorithms,
each held against a straightforward per-task reference built on torch.autograd."""
from __future__ import annotations

import math

import pytest
import torch

from meta import algorithms, model
from meta.tasks import SINUSOID, TaskBatch
from meta.train import TrainConfig

from reference import REFERENCES, reference_imaml

NUM_TASKS = 4


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _params(seed: int = 0, dtype=torch.float64) -> model.Params:
    generator = torch.Generator().manual_seed(seed)
    return {n: p.to(dtype) for n, p in model.init_params(generator).items()}


def _batch(seed: int = 1, k_support: int = 10, k_query: int = 10, dtype=torch.float64) -> TaskBatch:
    generator = torch.Generator().manual_seed(seed)
    return TaskBatch(*(t.to(dtype) for t in SINUSOID.sample_batch(NUM_TASKS, k_support, k_query, generator)))


# ---------------------------------------------------------------- tasks

def test_task_batch_shapes_and_ranges():
    generator = torch.Generator().manual_seed(0)
    batch = SINUSOID.sample_batch(25, 10, 7, generator)
    assert batch.support_x.shape == (25, 10, 1) and batch.query_x.shape == (25, 7, 1)
    assert batch.support_y.shape == (25, 10, 1) and batch.query_y.shape == (25, 7, 1)
    for x in (batch.support_x, batch.query_x):
        assert x.min() >= -5.0 and x.max() <= 5.0
    assert batch.support_y.abs().max() <= 5.0


def test_tasks_follow_the_sinusoid_family():
    generator = torch.Generator().manual_seed(0)
    amplitude, phase = SINUSOID.sample_tasks(10_000, generator)
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= math.pi
    assert amplitude.mean().item() == pytest.approx(2.55, abs=0.05)
    x = torch.tensor([[[0.0], [1.0]]])
    y = SINUSOID.target(torch.tensor([2.0]), torch.tensor([0.5]), x)
    assert torch.allclose(y.flatten(), 2.0 * torch.sin(torch.tensor([0.5, 1.5])))


def test_same_seed_same_tasks():
    a = SINUSOID.sample_batch(3, 5, 5, torch.Generator().manual_seed(7))
    b = SINUSOID.sample_batch(3, 5, 5, torch.Generator().manual_seed(7))
    assert all(torch.equal(s, t) for s, t in zip(a, b))


def test_manifest_description_matches_contract():
    assert SINUSOID.describe() == {"family": "sinusoid", "amplitude": [0.1, 5.0],
                                   "phase": [0.0, 3.14159], "x": [-5.0, 5.0]}


# ---------------------------------------------------------------- the network

def test_gradient_matches_finite_differences(float64):
    params = model.per_task(_params(), NUM_TASKS)
    batch = _batch()
    _, grads = model.loss_and_grad(params, batch.support_x, batch.support_y)
    eps = 1e-6
    generator = torch.Generator().manual_seed(3)
    for name in model.PARAM_NAMES:
        direction = torch.randn(params[name].shape, generator=generator)
        plus = dict(params, **{name: params[name] + eps * direction})
        minus = dict(params, **{name: params[name] - eps * direction})
        numeric = (model.loss(plus, batch.support_x, batch.support_y)
                   - model.loss(minus, batch.support_x, batch.support_y)) / (2 * eps)
        analytic = (grads[name] * direction).flatten(1).sum(1)
        assert torch.allclose(numeric, analytic, atol=1e-6, rtol=1e-5), name


def test_hessian_vector_product_matches_autograd(float64):
    params = {n: p.clone().requires_grad_() for n, p in model.per_task(_params(), NUM_TASKS).items()}
    batch = _batch()
    _, _, cache = model.loss_grad_cache(params, batch.support_x, batch.support_y)
    vector = {n: torch.randn_like(p) for n, p in params.items()}
    ours = model.hessian_vector_product(params, cache, vector)
    grads = torch.autograd.grad(model.loss(params, batch.support_x, batch.support_y).sum(),
                                list(params.values()), create_graph=True)
    reference = torch.autograd.grad(grads, list(params.values()), [vector[n] for n in params])
    for name, ref in zip(params, reference):
        assert torch.allclose(ours[name], ref, atol=1e-10), name


def test_no_support_points_gives_zero_loss_and_gradient():
    params = model.per_task(_params(dtype=torch.float32), 2)
    empty = torch.zeros(2, 0, 1)
    task_loss, grads = model.loss_and_grad(params, empty, empty)
    assert torch.equal(task_loss, torch.zeros(2))
    assert all(torch.count_nonzero(g) == 0 and torch.isfinite(g).all() for g in grads.values())


def _assert_close(ours: model.Params, reference: model.Params, atol: float = 1e-5) -> None:
    for name in reference:
        error = (ours[name] - reference[name]).abs().max().item()
        assert error <= atol, f"{name}: max error {error:.2e} > {atol:.0e}"


CASES = [   # (algorithm, config overrides); each is checked against REFERENCES[algorithm]
    ("pretrained", {}),
    ("maml", {"inner_steps": 1}),
    ("maml", {"inner_steps": 3, "inner_lr": 0.05}),
    ("fomaml", {"inner_steps": 1}),
    ("fomaml", {"inner_steps": 4}),
    ("reptile", {"inner_steps": 5, "inner_lr": 0.02}),
    # The registered setting: three full Gauss–Newton steps, λ = 10.
    ("imaml", {"inner_steps": 3, "inner_lr": 1.0, "options": {"lam": 10.0, "cg_steps": 5}}),
    # A weaker proximal term (below λ = 5 float32 rounding of the inner solve
    # reaches 1e-5 on these random parameters: λ = 2 gives 1.4e-5; float64 agrees to 1e-13).
    ("imaml", {"inner_steps": 3, "inner_lr": 1.0, "options": {"lam": 5.0, "cg_steps": 5}}),
    # A step size so large that some steps are refused and retried at half size.
    ("imaml", {"inner_steps": 4, "inner_lr": 6.0, "options": {"lam": 20.0, "cg_steps": 5}}),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("algorithm,overrides", CASES,
                         ids=[f"{a}-{'-'.join(f'{k}{v}' for k, v in o.items())}" for a, o in CASES])
def test_batched_meta_gradient_matches_per_task_reference(algorithm, overrides, dtype):
    cfg = TrainConfig(algorithm, iterations=1, **overrides)
    params64, batch64 = _params(), _batch()
    expected = REFERENCES[algorithm](params64, batch64, cfg)
    params = {n: p.to(dtype) for n, p in params64.items()}
    batch = TaskBatch(*(x.to(dtype) for x in batch64))
    grads, metrics = algorithms.get(algorithm).meta_gradient(params, batch, cfg)
    assert torch.isfinite(metrics["meta_loss"])
    # float32 rounding alone leaves ~1e-6 on these magnitudes; float64 must agree to far less.
    _assert_close(grads, expected, atol=1e-5 if dtype == torch.float32 else 1e-10)


def test_imaml_conjugate_gradient_reaches_the_exact_implicit_gradient(float64):
    # With λ large the system is well conditioned and CG converges: compare with a
    # direct solve of (I + H/λ) g = ∇L_test using the full 1761 x 1761 Hessian.
    cfg = TrainConfig("imaml", iterations=1, inner_steps=3, options={"lam": 20.0, "cg_steps": 40})
    params, batch = _params(), TaskBatch(*(x[:2] for x in _batch()))
    grads, _ = algorithms.imaml.meta_gradient(params, batch, cfg)
    _assert_close(grads, reference_imaml(params, batch, cfg, exact_solve=True), atol=1e-8)


def test_imaml_stays_finite_when_the_system_is_indefinite():
    # Far from the proximal minimum, H can have eigenvalues below −λ; CG must then
    # stop for that task instead of dividing by a negative or vanishing curvature.
    cfg = TrainConfig("imaml", iterations=1, inner_steps=0, options={"lam": 0.05, "cg_steps": 10})
    params = {n: 3 * p for n, p in _params().items()}
    grads, _ = algorithms.imaml.meta_gradient(params, _batch(), cfg)
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_maml_second_order_term_matters():
    # Guard against an accidental first-order MAML: the two must differ.
    cfg = TrainConfig("maml", iterations=1, inner_steps=2, inner_lr=0.05)
    params, batch = _params(), _batch()
    second, _ = algorithms.maml.meta_gradient(params, batch, cfg)
    first, _ = algorithms.fomaml.meta_gradient(params, batch, cfg)
    assert max((second[n] - first[n]).abs().max().item() for n in params) > 1e-4


def test_unknown_algorithm_and_option_are_rejected_clearly():
    with pytest.raises(ValueError, match="unknown algorithm 'mamll'; allowed: pretrained, maml"):
        TrainConfig("mamll")
    with pytest.raises(ValueError, match="unknown option.*lamda.*allowed: lam, cg_steps"):
        TrainConfig("imaml", options={"lamda": 1.0})
    with pytest.raises(ValueError, match="inner_lr must be a positive number"):
        TrainConfig("maml", inner_lr=-1.0)
    with pytest.raises(ValueError, match="unknown training key"):
        TrainConfig.from_dict({"algorithm": "maml", "iteratons": 5})


def test_imaml_inner_steps_never_climb_the_proximal_objective():
    # At a rate far too large for the curvature, plain steps would blow up; the
    # proximal solver halves its step instead and ends no worse than θ.
    params, batch = _params(), _batch()
    lam = 1.0
    phi, loss = algorithms.imaml.solve_proximal(params, batch.support_x, batch.support_y, lam,
                                                lr=5.0, steps=8)
    theta = torch.cat([p.reshape(-1) for p in params.values()])
    start = model.loss(model.per_task(params, NUM_TASKS), batch.support_x, batch.support_y)
    objective = loss + lam / 2 * (phi - theta).pow(2).sum(1)
    assert torch.isfinite(phi).all()
    assert (objective <= start).all() and (objective < start).any()


COMPILED_CONFIGS = {
    "pretrained": TrainConfig("pretrained", iterations=1, inner_steps=0),
    "maml": TrainConfig("maml", iterations=1, inner_steps=2),
    "fomaml": TrainConfig("fomaml", iterations=1),
    "reptile": TrainConfig("reptile", iterations=1, inner_steps=5, meta_lr=1.0),
    "imaml": TrainConfig("imaml", iterations=1, inner_lr=1.0, inner_steps=3,
                         options={"lam": 10.0, "cg_steps": 5}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMPILED_CONFIGS))
def test_compiled_meta_gradient_matches_the_reference(name):
    # Paper builds train every model through torch.compile (meta.train.flat_meta_gradient),
    # from the random draws of a task batch to the flat gradient.
    from meta.train import flat_meta_gradient

    cfg = COMPILED_CONFIGS[name]
    draws = SINUSOID.draws(NUM_TASKS, cfg.k_support, cfg.k_query, torch.Generator().manual_seed(1))
    params64 = _params()
    batch64 = SINUSOID.batch_from_draws(draws.double(), cfg.k_support)
    expected = REFERENCES[name](params64, batch64, cfg)
    params = {n: p.float() for n, p in params64.items()}
    flat, _ = flat_meta_gradient(algorithms.get(name).meta_gradient, compile=True)(params, draws, cfg)
    grads = model.unflatten_tasks(flat, params)
    _assert_close(grads, expected, atol=1e-5)


def test_a_batch_is_its_draws():
    # Training builds each batch from SinusoidFamily.draws inside its step; it
    # must be the very batch that sample_batch gives for the same seed.
    draws = SINUSOID.draws(3, 4, 6, torch.Generator().manual_seed(5))
    built = SINUSOID.batch_from_draws(draws, 4)
    sampled = SINUSOID.sample_batch(3, 4, 6, torch.Generator().manual_seed(5))
    assert all(torch.equal(s, t) for s, t in zip(built, sampled))
    assert built.support_x.shape == (3, 4, 1) and built.query_x.shape == (3, 6, 1)


def test_training_falls_back_to_eager_mode_where_compiling_fails(monkeypatch):
    # Paper builds compile every model. Where torch.compile cannot work (no C++
    # compiler, say), training must still finish, in eager mode, with a warning,
    # and give exactly the eager result.
    from meta.train import train

    cfg = TrainConfig("maml", iterations=5, log_every=5)
    eager = train(cfg, device="cpu", progress=False)

    def cannot_compile(function, **options):
        def compiled(*args, **kwargs):
            raise RuntimeError("no working C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", cannot_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no working C\\+\\+ compiler"):
        result = train(cfg, device="cpu", progress=False, compile=True)
    assert result.compiled is False and eager.compiled is False
    for name, value in eager.params.items():
        assert torch.equal(result.params[name], value)


def test_checkpoints_are_the_parameters_of_shorter_runs_and_leave_training_alone():
    """on_checkpoint sees θ at evenly spaced iterations, the last the final one;
    each is exactly what a run stopped there gives (a run is deterministic),
    the run itself is unchanged, and the callback's time is not training time."""
    import time as _time

    from meta.train import checkpoint_iterations, train

    assert checkpoint_iterations(70_000, 5) == {14_000, 28_000, 42_000, 56_000, 70_000}
    assert checkpoint_iterations(7, 3) == {2, 5, 7} and checkpoint_iterations(10, 0) == set()
    with pytest.raises(ValueError, match="checkpoints must be an integer >= 0"):
        checkpoint_iterations(10, -1)
    cfg = TrainConfig("maml", iterations=12, log_every=4)
    seen = {}

    def on_checkpoint(iteration, params):
        seen[iteration] = params
        _time.sleep(1.0)     # long next to 12 iterations even on a loaded machine (1.1 s at load 8)

    result = train(cfg, device="cpu", progress=False, checkpoints=3, on_checkpoint=on_checkpoint)
    plain = train(cfg, device="cpu", progress=False)
    assert sorted(seen) == [4, 8, 12]
    assert all(torch.equal(result.params[n], plain.params[n]) for n in plain.params)
    assert all(torch.equal(seen[12][n], plain.params[n]) for n in plain.params)
    shorter = train(TrainConfig("maml", iterations=8, log_every=4), device="cpu", progress=False)
    assert all(torch.equal(seen[8][n], shorter.params[n]) for n in shorter.params)
    assert result.checkpoint_seconds >= 3.0 and result.seconds < result.checkpoint_seconds

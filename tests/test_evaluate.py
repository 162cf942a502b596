"""meta/evaluate.py: the evaluation protocol of contracts.md, and the safeguarded
(backtracking) inner step every sinusoid model adapts with."""
from __future__ import annotations

import math

import pytest
import torch

from meta import model
from meta.evaluate import (DIVERGED_MSE, EVAL_SEED, HALVINGS, adapt_safeguarded, backtracking_step,
                           evaluate, inner_procedure, summary_metrics)
from meta.export import reference_adaptation
from meta.tasks import SINUSOID


def _zero_params() -> model.Params:
    """A network that predicts 0 everywhere (and has zero gradient in its hidden layers)."""
    return {n: torch.zeros_like(p) for n, p in model.init_params(torch.Generator().manual_seed(0)).items()}


def test_protocol_numbers_match_a_direct_computation():
    results = evaluate(_zero_params(), 0.01, num_tasks=300, shots=(5,), max_steps=2)
    # Predicting 0, the query MSE of a task is the mean of A² sin²(x + φ) over
    # 100 evenly spaced x in [-5, 5]: recompute it from the same seeded tasks.
    generator = torch.Generator().manual_seed(EVAL_SEED)
    amplitude, phase = SINUSOID.sample_tasks(300, generator)
    x = torch.linspace(-5, 5, 100)
    mse = (amplitude[:, None] * torch.sin(x[None] + phase[:, None])).pow(2).mean(1).double()
    curve = results["query_mse"]["5"]
    assert math.isclose(curve["mean"][0], mse.mean().item(), rel_tol=1e-5)
    assert math.isclose(curve["ci95"][0], 1.96 * mse.std().item() / math.sqrt(300), rel_tol=1e-4)
    assert math.isclose(curve["median"][0], mse.median().item(), rel_tol=1e-5)
    assert curve["diverged"] == [0, 0, 0]
    assert len(curve["mean"]) == 3
    assert results["protocol"] == {"num_tasks": 300, "shots": [5], "max_steps": 2, "query_points": 100,
                                   "inner_lr": 0.01, "seed": EVAL_SEED,
                                   "inner_procedure": {"kind": "backtracking", "halvings": HALVINGS},
                                   "ci": "1.96 * sample std / sqrt(num_tasks)",
                                   "blown_up": "query MSE > 50 or not finite"}


def test_adaptation_helps_and_is_reproducible():
    params = model.init_params(torch.Generator().manual_seed(1))
    first = evaluate(params, 0.01, num_tasks=200, shots=(10,), max_steps=10)
    again = evaluate(params, 0.01, num_tasks=200, shots=(10,), max_steps=10)
    assert first == again
    mean = first["query_mse"]["10"]["mean"]
    assert mean[10] < mean[0]


def test_diverged_tasks_are_counted_and_the_mean_is_null_not_infinity():
    # Far too large a rate: plain gradient descent blows up on every task.
    params = model.init_params(torch.Generator().manual_seed(1))
    results = evaluate(params, 50.0, num_tasks=100, shots=(5,), max_steps=6, halvings=None)
    assert results["protocol"]["inner_procedure"] == {"kind": "gradient_descent"}
    curve = results["query_mse"]["5"]
    assert curve["diverged"][0] == 0 and curve["mean"][0] is not None
    assert curve["diverged"][-1] == 100
    assert curve["mean"][-1] is None and curve["ci95"][-1] is None and curve["median"][-1] is None
    summary = summary_metrics(results)
    assert summary["k5_step0"]["diverged"] == 0
    assert set(summary) == {"k5_step0", "k5_step1", "k5_step6"}


def test_a_task_counts_as_blown_up_above_fifty():
    """contracts.md: query MSE above 50 (or not finite) is a blown-up task, even
    where it is finite; the mean is then null and the median stays."""
    assert DIVERGED_MSE == 50
    params = _zero_params()
    params["b3"] = torch.tensor([7.5])       # predicts 7.5: MSE 56.25 + A² sin² > 50 on every task
    curve = evaluate(params, 1e-9, num_tasks=50, shots=(5,), max_steps=1)["query_mse"]["5"]
    assert curve["diverged"] == [50, 50] and curve["mean"] == [None, None]
    params["b3"] = torch.tensor([3.0])       # at most 9 + 12.5 + ... < 50: none
    curve = evaluate(params, 1e-9, num_tasks=50, shots=(5,), max_steps=1)["query_mse"]["5"]
    assert curve["diverged"] == [0, 0] and curve["mean"][0] is not None


def test_the_validated_rate_is_the_best_that_does_not_diverge():
    from meta.evaluate import EVAL_SEED, VALIDATION_SEED, choose_inner_lr

    assert VALIDATION_SEED != EVAL_SEED
    params = model.init_params(torch.Generator().manual_seed(1))
    best, scores = choose_inner_lr(params, (0.001, 0.01, 50.0), num_tasks=100, halvings=None)
    assert scores["50.0"] is None                         # diverged: never chosen
    assert scores["0.01"] is not None and scores["0.001"] is not None
    assert best == min((0.001, 0.01), key=lambda lr: scores[str(lr)])
    with pytest.raises(ValueError, match="every candidate rate"):
        choose_inner_lr(params, (50.0, 100.0), num_tasks=20, halvings=None)
    # With the safeguarded step (the default) the same absurd rate cannot blow up.
    _, safe = choose_inner_lr(params, (50.0,), num_tasks=20)
    assert safe["50.0"] is not None


# ------------------------------------------------------------ the safeguarded step

def _tasks(num_tasks: int, shots: int, seed: int, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    amplitude, phase = SINUSOID.sample_tasks(num_tasks, generator)
    x = SINUSOID.sample_x(num_tasks, shots, generator)
    if num_tasks > 3:     # a few support sets bunched near +5, where the loss is most curved
        x[:3, :3] = 5.0 - 0.8 * torch.rand(3, 3, 1, generator=generator)
    return x.to(dtype), SINUSOID.target(amplitude, phase, x).to(dtype)


@pytest.mark.parametrize("lr", (0.01, 0.1, 1.0))
def test_batched_safeguarded_steps_match_the_per_task_autograd_reference(lr):
    """All tasks at once, with per-task masks, against meta.export's reference
    that adapts one task and tries one step length at a time (float64)."""
    params = {n: p.double() for n, p in model.init_params(torch.Generator().manual_seed(3)).items()}
    x, y = _tasks(24, 5, seed=int(lr * 1000))
    query_x = torch.linspace(-5, 5, 40, dtype=torch.float64).view(1, -1, 1)
    phi = model.per_task(params, 24)
    batched = [model.forward(phi, query_x.expand(24, -1, -1))]
    for _ in range(10):
        phi = adapt_safeguarded(phi, x, y, 1, lr)
        batched.append(model.forward(phi, query_x.expand(24, -1, -1)))
    batched = torch.stack(batched, 1)                              # [T, steps+1, M, 1]
    for t in range(24):
        ref_y, _ = reference_adaptation(params, x[t], y[t], query_x[0], lr, 10, HALVINGS)
        torch.testing.assert_close(batched[t], ref_y, rtol=0, atol=1e-10)


def test_each_task_takes_its_own_step_length():
    """One step for tasks whose full step helps, is too long, or cannot be saved:
    the step actually taken is α/2^h for the first h whose support loss does not
    rise, 0 if there is none, and the support loss never rises."""
    params = {n: p.double() for n, p in model.init_params(torch.Generator().manual_seed(3)).items()}
    x, y = _tasks(200, 5, seed=7)
    phi = model.per_task(params, 200)
    lr, halvings = 1.0, 3
    loss_before, grads = model.loss_and_grad(phi, x, y)
    stepped, returned_loss = backtracking_step(phi, x, y, lr, halvings)
    torch.testing.assert_close(returned_loss, loss_before)
    # The step length each task took, read off the parameters that moved.
    moved = model.flatten_tasks(phi) - model.flatten_tasks(stepped)
    grad = model.flatten_tasks(grads)
    taken = (moved * grad).sum(1) / (grad * grad).sum(1)
    expected = []
    for t in range(200):
        rate = 0.0
        for h in range(halvings + 1):
            trial = {n: p[t] - lr * 0.5 ** h * g[t] for n, (p, g) in
                     zip(phi, zip(phi.values(), grads.values()))}
            trial = {n: trial[n].unsqueeze(0) for n in trial}
            if model.loss(trial, x[t:t + 1], y[t:t + 1]) <= loss_before[t]:
                rate = lr * 0.5 ** h
                break
        expected.append(rate)
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(taken, expected, rtol=1e-9, atol=1e-12)
    assert (expected == lr).any() and (expected == 0).any()
    assert ((expected > 0) & (expected < lr)).sum() >= 10
    assert (model.loss(stepped, x, y) <= loss_before).all()


def test_the_safeguard_keeps_every_step_from_raising_the_support_loss():
    """At rates far above the training rate plain steps blow up on sinusoid
    tasks; the safeguarded ones never raise a task's support loss."""
    params = model.init_params(torch.Generator().manual_seed(1))
    x, y = _tasks(300, 5, seed=11, dtype=torch.float32)
    phi = model.per_task(params, 300)
    previous = model.loss(phi, x, y)
    for _ in range(10):
        phi, before = backtracking_step(phi, x, y, 0.5)
        after = model.loss(phi, x, y)
        assert (after <= before).all()
        torch.testing.assert_close(before, previous)       # the loss the step started from
        previous = after
    plain = model.adapt(model.per_task(params, 300), x, y, 10, 0.5)
    assert not (model.loss(plain, x, y) <= model.loss(model.per_task(params, 300), x, y)).all()
    # It guards the support loss only: a query error can still grow, but far
    # more rarely (these untrained parameters extrapolate wildly from 5 points).
    plain = evaluate(params, 0.2, num_tasks=200, shots=(5,), halvings=None)["query_mse"]["5"]
    safe = evaluate(params, 0.2, num_tasks=200, shots=(5,))["query_mse"]["5"]
    assert plain["diverged"][-1] >= 40 and safe["diverged"][-1] <= 2


def test_no_support_points_and_bad_halvings():
    params = model.init_params(torch.Generator().manual_seed(1))
    empty = torch.zeros(2, 0, 1)
    phi = adapt_safeguarded(model.per_task(params, 2), empty, empty, 3, 0.01)
    for name, p in params.items():
        assert torch.equal(phi[name], p.expand_as(phi[name]))
    assert inner_procedure() == {"kind": "backtracking", "halvings": HALVINGS}
    assert inner_procedure(None) == {"kind": "gradient_descent"}
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="halvings must be an integer >= 0 or None"):
            evaluate(params, 0.01, num_tasks=2, shots=(5,), max_steps=1, halvings=bad)


# ------------------------------------------------------------ checkpoint selection

def test_checkpoint_scores_count_blow_ups_before_the_error():
    from meta.evaluate import VALIDATION_SEED, checkpoint_score, selection_key

    params = model.init_params(torch.Generator().manual_seed(1))
    fine = checkpoint_score(params, 0.01, num_tasks=200)
    curve = evaluate(params, 0.01, num_tasks=200, shots=(5,), seed=VALIDATION_SEED)["query_mse"]["5"]
    assert fine["mean_by_step"] == curve["mean"] and fine["blown_up"] == 0
    assert fine["score"] == pytest.approx(sum(curve["mean"][1:]) / 10, abs=1e-6)
    wild = checkpoint_score(params, 50.0, num_tasks=200, halvings=None)
    assert wild["blown_up"] > 0 and wild["score"] is None
    # A checkpoint with one blown-up task loses to any that has none, however good its mean.
    assert selection_key({"blown_up": 0, "score": 9.0}) < selection_key({"blown_up": 1, "score": 0.1})
    assert selection_key({"blown_up": 0, "score": 0.3}) < selection_key({"blown_up": 0, "score": 0.4})
    with pytest.raises(ValueError, match="never on the test tasks"):
        checkpoint_score(params, 0.01, num_tasks=10, seed=EVAL_SEED)


def test_checkpoint_selection_sees_validation_tasks_only(monkeypatch):
    """Every task the selection scores a checkpoint on comes from the validation
    seed, and those tasks are not the test tasks."""
    import meta.evaluate as evaluate_mod
    from meta.evaluate import VALIDATION_SEED, CheckpointSelector
    from meta.train import TrainConfig, train

    seeds = []
    real = evaluate_mod.evaluate

    def recording(*args, **kwargs):
        seeds.append(kwargs.get("seed", EVAL_SEED))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_mod, "evaluate", recording)
    selector = CheckpointSelector(lambda params: 0.01, num_tasks=100)
    result = train(TrainConfig("maml", iterations=30, log_every=10), device="cpu", progress=False,
                   checkpoints=3, on_checkpoint=selector)
    assert seeds == [VALIDATION_SEED] * 3 and EVAL_SEED not in seeds
    record = selector.record()
    assert record["seed"] == VALIDATION_SEED and record["tasks"] == 100
    assert [c["iteration"] for c in record["checkpoints"]] == [10, 20, 30]
    best = min(record["checkpoints"], key=lambda c: (c["blown_up"], c["score"]))
    assert record["chosen"] == best["iteration"] == selector.chosen
    chosen_params = selector.params
    if selector.chosen == 30:
        assert all(torch.equal(chosen_params[n], result.params[n]) for n in result.params)
    # The validation draw is another set of tasks than the test draw.
    validation = SINUSOID.sample_tasks(1000, torch.Generator().manual_seed(VALIDATION_SEED))
    test = SINUSOID.sample_tasks(1000, torch.Generator().manual_seed(EVAL_SEED))
    assert not torch.isin(validation[0], test[0]).any()


def test_a_checkpoint_without_a_usable_rate_is_skipped():
    from meta.evaluate import CheckpointSelector

    def rate(params):
        if rate.calls == 0:
            rate.calls += 1
            raise ValueError("every candidate rate [1.0] diverged on some validation task")
        return 0.01
    rate.calls = 0
    params = model.init_params(torch.Generator().manual_seed(1))
    selector = CheckpointSelector(rate, num_tasks=50)
    selector(10, params)
    assert selector.params is None and selector.scores == [
        {"iteration": 10, "skipped": "every candidate rate [1.0] diverged on some validation task"}]
    selector(20, params)
    assert selector.chosen == 20 and selector.params is params


# ------------------------------------------------------------ iMAML's proximal steps

LAM = 10.0


@pytest.mark.parametrize("lr", (1.0, 0.5, 16.0))
def test_batched_proximal_steps_match_the_per_task_autograd_reference(lr):
    """iMAML's inner solver as the protocol runs it (all tasks at once, the
    training's own meta.algorithms.imaml.proximal_step: Gauss–Newton through
    the N x N kernel, inverted by Newton–Schulz) against meta.export's
    reference that adapts one task with autograd's Jacobian and exact solves
    (float64). At 16 many steps are refused and their step size halved, per task."""
    from meta.algorithms.imaml import proximal_start, proximal_step
    from meta.evaluate import proximal_trajectory

    params = {n: p.double() for n, p in model.init_params(torch.Generator().manual_seed(3)).items()}
    x, y = _tasks(24, 5, seed=int(lr * 1000) + 1)
    query_x = torch.linspace(-5, 5, 40, dtype=torch.float64).view(1, -1, 1).expand(24, -1, -1)
    path = proximal_trajectory(params, x, y, 10, lr, LAM)
    assert len(path) == 11
    batched = torch.stack([model.forward(phi, query_x) for phi in path], 1)   # [T, 11, M, 1]
    for t in range(24):
        ref_y, ref_loss = reference_adaptation(params, x[t], y[t], query_x[0], lr, 10, lam=LAM)
        # Newton–Schulz against exact solves: float64 rounding, amplified by the
        # kernel's conditioning, reaches ~3e-9 at lr = 1.
        torch.testing.assert_close(batched[t], ref_y, rtol=0, atol=1e-8)
        torch.testing.assert_close(model.loss({n: p[t:t + 1] for n, p in path[-1].items()},
                                              x[t:t + 1], y[t:t + 1])[0], ref_loss[-1],
                                   rtol=0, atol=1e-8)
    # How often the safeguard refused a step (the step size halves each time).
    theta = torch.cat([p.reshape(-1) for p in params.values()])
    state = proximal_start(theta, params, x, y, lr)
    objective = [state.objective]
    for _ in range(10):
        state = proximal_step(theta, state, params, x, y, LAM)
        objective.append(state.objective)
    objective = torch.stack(objective)
    assert (objective[1:] <= objective[:-1]).all()          # never climbs
    refused = (state.step_size[:, 0] < lr).sum().item()
    if lr >= 16.0:
        assert refused >= 12, f"only {refused} of 24 tasks had a step refused at lr = {lr}"
    # The same steps from a per-task θ ([T, ...], as fine_tune passes it).
    per_task = adapt_safeguarded(model.per_task(params, 24), x, y, 10, lr, lam=LAM)
    for name in params:
        torch.testing.assert_close(per_task[name], path[-1][name], rtol=0, atol=1e-12)


def test_the_proximal_steps_are_the_ones_training_takes():
    """ϕ after ten steps is exactly what iMAML's training solves for
    (meta.algorithms.imaml.solve_proximal, the procedure its meta-gradient
    assumes), and the protocol records the procedure with its λ."""
    from meta.algorithms.imaml import solve_proximal
    from meta.evaluate import procedure_arguments, proximal_trajectory

    params = model.init_params(torch.Generator().manual_seed(2))
    x, y = _tasks(30, 10, seed=4, dtype=torch.float32)
    phi, _ = solve_proximal(params, x, y, LAM, 0.5, 10)
    path = proximal_trajectory(params, x, y, 10, 0.5, LAM)
    assert torch.equal(model.flatten_tasks(path[-1]), phi)
    results = evaluate(params, 0.5, num_tasks=50, shots=(5,), max_steps=3, lam=LAM)
    procedure = results["protocol"]["inner_procedure"]
    assert procedure["kind"] == "proximal" and procedure["lam"] == LAM
    assert "Gauss-Newton" in procedure["solver"]
    assert procedure_arguments(procedure) == {"halvings": HALVINGS, "lam": LAM}
    assert procedure_arguments(inner_procedure()) == {"halvings": HALVINGS, "lam": None}
    assert procedure_arguments(None) == {"halvings": None, "lam": None}
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="lam must be a positive number"):
            evaluate(params, 0.01, num_tasks=2, shots=(5,), max_steps=1, lam=bad)
    with pytest.raises(ValueError, match="unknown inner_procedure kind 'newton'"):
        procedure_arguments({"kind": "newton"})
    # No support points: nothing moves, and no NaN.
    empty = torch.zeros(2, 0, 1)
    still = adapt_safeguarded(model.per_task(params, 2), empty, empty, 3, 0.5, lam=LAM)
    for name, p in params.items():
        assert torch.equal(still[name], p.expand_as(still[name]))


def test_imaml_selection_sees_validation_tasks_only(monkeypatch):
    """The build's choices for iMAML (its checkpoint, and its rate where one is
    chosen) are scored with the proximal steps on the validation seed alone:
    every evaluate() call the selection makes is recorded and none uses the
    test seed."""
    import meta.evaluate as evaluate_mod
    from meta.evaluate import VALIDATION_SEED, CheckpointSelector, choose_inner_lr
    from meta.train import TrainConfig, train

    calls = []
    real = evaluate_mod.evaluate

    def recording(*args, **kwargs):
        calls.append((kwargs.get("seed", EVAL_SEED), kwargs.get("lam")))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_mod, "evaluate", recording)
    selector = CheckpointSelector(
        lambda params: choose_inner_lr(params, (0.5, 1.0), num_tasks=40, lam=LAM)[0],
        num_tasks=60, lam=LAM)
    train(TrainConfig("imaml", iterations=20, inner_lr=1.0, inner_steps=3, log_every=10,
                      options={"lam": LAM}),
          device="cpu", progress=False, checkpoints=2, on_checkpoint=selector)
    assert len(calls) == 2 * (2 + 1)                       # two rates and one score per checkpoint
    assert {seed for seed, _ in calls} == {VALIDATION_SEED} and EVAL_SEED not in dict(calls)
    assert {lam for _, lam in calls} == {LAM}
    assert selector.record()["inner_procedure"]["kind"] == "proximal"
    assert selector.record()["inner_procedure"]["lam"] == LAM


def test_a_checkpoint_whose_mean_rises_on_the_slider_loses_to_a_steady_one():
    """contracts: the mean error should fall from step 1 to 10; a checkpoint
    whose validation mean rises at some step loses to one that falls at every
    step, whatever their mean over the steps (blow-ups still come first)."""
    from meta.evaluate import checkpoint_score, selection_key

    steady = {"blown_up": 0, "rises": 0, "score": 0.9}
    zigzag = {"blown_up": 0, "rises": 3, "score": 0.5}
    blown = {"blown_up": 1, "rises": 0, "score": None}
    assert sorted([blown, zigzag, steady], key=selection_key) == [steady, zigzag, blown]
    params = model.init_params(torch.Generator().manual_seed(1))
    score = checkpoint_score(params, 0.01, num_tasks=100)
    means = score["mean_by_step"][1:]
    assert score["rises"] == sum(b > a for a, b in zip(means, means[1:]))


def test_the_build_selects_on_at_least_5000_validation_tasks_of_their_own_seed():
    """contracts.md: selection on validation tasks only, their own seed, at
    least 5,000 of them (paper profile), with each model's own procedure."""
    from meta.evaluate import VALIDATION_SEED
    from site_builder.config import MODELS, PROFILES
    from site_builder.stages import selection_settings

    for name, spec in MODELS.items():
        procedure = spec.inner_procedure(spec.train_config(PROFILES["paper"], 0))
        settings = selection_settings("paper", procedure)
        assert settings["seed"] == VALIDATION_SEED != EVAL_SEED
        assert settings["tasks"] >= 5000 and settings["inner_procedure"] == procedure
        assert procedure["kind"] == ("proximal" if spec.algorithm == "imaml" else "backtracking")

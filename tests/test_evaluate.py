"""meta/evaluate.py: the evaluation protocol of contracts.md."""
from __future__ import annotations

import math

import pytest
import torch

from meta import model
from meta.evaluate import EVAL_SEED, evaluate, summary_metrics
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
                                   "ci": "1.96 * sample std / sqrt(num_tasks)"}


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
    results = evaluate(params, 50.0, num_tasks=100, shots=(5,), max_steps=6)
    curve = results["query_mse"]["5"]
    assert curve["diverged"][0] == 0 and curve["mean"][0] is not None
    assert curve["diverged"][-1] == 100
    assert curve["mean"][-1] is None and curve["ci95"][-1] is None and curve["median"][-1] is None
    summary = summary_metrics(results)
    assert summary["k5_step0"]["diverged"] == 0
    assert set(summary) == {"k5_step0", "k5_step1", "k5_step6"}


def test_the_validated_rate_is_the_best_that_does_not_diverge():
    from meta.evaluate import EVAL_SEED, VALIDATION_SEED, choose_inner_lr

    assert VALIDATION_SEED != EVAL_SEED
    params = model.init_params(torch.Generator().manual_seed(1))
    best, scores = choose_inner_lr(params, (0.001, 0.01, 50.0), num_tasks=100)
    assert scores["50.0"] is None                         # diverged: never chosen
    assert scores["0.01"] is not None and scores["0.001"] is not None
    assert best == min((0.001, 0.01), key=lambda lr: scores[str(lr)])
    with pytest.raises(ValueError, match="every candidate rate"):
        choose_inner_lr(params, (50.0, 100.0), num_tasks=20)

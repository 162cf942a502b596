"""The evaluation protocol of contracts.md (the numbers on the Results page).

1,000 test tasks drawn with a fixed seed that training never uses; for each
K in {5, 10, 20}, K support points uniform on [-5, 5]; the query is 100 evenly
spaced points on [-5, 5]; plain gradient descent at the model's inner_lr for
0..10 steps; mean query MSE with its 95% confidence interval 1.96·σ/√n
(plus the median, and how many tasks diverged: their MSE is infinite, and the
mean is then stored as null, never as a non-JSON Infinity).
All tasks are adapted at once (batched), so the whole protocol takes seconds.
"""
from __future__ import annotations

import math

import torch

from .model import Params, adapt, loss, per_task
from .tasks import SINUSOID, SinusoidFamily

EVAL_SEED = 2_017_0306      # never used for training (training seeds are small integers)
VALIDATION_SEED = 2_017_0307  # tasks for choosing an adaptation rate; never the evaluation's
SHOTS = (5, 10, 20)
MAX_STEPS = 10
QUERY_POINTS = 100
#: A query MSE above this counts as diverged. Targets are at most 5 in size, so
#: any prediction that has not blown up scores far below it.
DIVERGED_MSE = 1e6


def query_mse_by_step(params: Params, inner_lr: float, support_x: torch.Tensor, support_y: torch.Tensor,
                      query_x: torch.Tensor, query_y: torch.Tensor, max_steps: int) -> torch.Tensor:
    """Query MSE of every task after 0..max_steps adaptation steps, shaped [steps+1, T]."""
    phi = per_task(params, support_x.shape[0])
    errors = [loss(phi, query_x, query_y)]
    for _ in range(max_steps):
        phi = adapt(phi, support_x, support_y, 1, inner_lr)
        errors.append(loss(phi, query_x, query_y))
    return torch.stack(errors)


def evaluate(params: Params, inner_lr: float, num_tasks: int = 1000, shots: tuple[int, ...] = SHOTS,
             max_steps: int = MAX_STEPS, seed: int = EVAL_SEED,
             family: SinusoidFamily = SINUSOID) -> dict:
    generator = torch.Generator().manual_seed(seed)
    amplitude, phase = family.sample_tasks(num_tasks, generator)
    query_x = torch.linspace(*family.x_range, QUERY_POINTS).view(1, -1, 1).expand(num_tasks, -1, -1)
    query_y = family.target(amplitude, phase, query_x)
    params = {n: p.detach().to("cpu", torch.float32) for n, p in params.items()}
    results: dict = {
        "protocol": {"num_tasks": num_tasks, "shots": list(shots), "max_steps": max_steps,
                     "query_points": QUERY_POINTS, "inner_lr": inner_lr, "seed": seed,
                     "ci": "1.96 * sample std / sqrt(num_tasks)"},
        "query_mse": {},
    }
    with torch.no_grad():
        for k in shots:
            support_x = family.sample_x(num_tasks, k, generator)
            support_y = family.target(amplitude, phase, support_x)
            errors = query_mse_by_step(params, inner_lr, support_x, support_y, query_x, query_y,
                                       max_steps).double()
            # Plain gradient descent at a fixed rate can blow up on a task whose
            # support points make the loss very curved. Such a task's MSE is
            # huge, infinite or NaN; it counts as +inf, the median stays
            # meaningful, and the mean and its interval are stored as null.
            diverged = ~torch.isfinite(errors) | (errors > DIVERGED_MSE)
            errors = errors.masked_fill(diverged, math.inf)
            any_diverged = diverged.any(1)
            mean = errors.mean(1).masked_fill(any_diverged, math.inf)
            ci95 = (1.96 * errors.std(1) / math.sqrt(num_tasks)).masked_fill(any_diverged, math.inf)
            results["query_mse"][str(k)] = {
                "mean": _finite_or_none(mean),
                "ci95": _finite_or_none(ci95),
                "median": _finite_or_none(errors.median(1).values),
                "diverged": diverged.sum(1).tolist(),
            }
    return results


def _finite_or_none(values: torch.Tensor) -> list[float | None]:
    """Rounded floats, with None (JSON null) where a value is inf or NaN."""
    return [round(v, 6) if math.isfinite(v) else None for v in values.tolist()]


def summary_metrics(results: dict) -> dict:
    """The few numbers the manifest carries: K-shot after 0, 1 and 10 steps."""
    summary = {}
    for k, curve in results["query_mse"].items():
        for step in (0, 1, len(curve["mean"]) - 1):
            summary[f"k{k}_step{step}"] = {"mean": curve["mean"][step], "ci95": curve["ci95"][step],
                                           "diverged": curve["diverged"][step]}
    return summary


def choose_inner_lr(params: Params, candidates: tuple[float, ...], num_tasks: int = 500,
                    shots: int = 5, steps: int = MAX_STEPS,
                    seed: int = VALIDATION_SEED) -> tuple[float, dict[str, float | None]]:
    """The candidate rate with the lowest mean query MSE after ``steps`` plain
    gradient steps on ``shots`` support points, measured on validation tasks
    drawn with their own seed (never the evaluation's). Returns the rate and
    every candidate's score (None where some task diverged)."""
    scores: dict[str, float | None] = {}
    for lr in candidates:
        curve = evaluate(params, lr, num_tasks=num_tasks, shots=(shots,), max_steps=steps,
                         seed=seed)["query_mse"][str(shots)]
        scores[str(lr)] = curve["mean"][steps]
    finite = {float(lr): score for lr, score in scores.items() if score is not None}
    if not finite:
        raise ValueError(f"every candidate rate {list(candidates)} diverged on some validation task")
    return min(finite, key=finite.get), scores

"""iMAML (Rajeswaran et al., 2019): implicit gradients of a proximal inner problem.

Inner problem per task: ϕ_i = argmin_ϕ L_i,train(ϕ) + λ/2 ‖ϕ − θ‖², solved
approximately by ``inner_steps`` gradient steps started at θ. At its
stationary point dϕ/dθ = (I + H_i/λ)⁻¹ (H_i the Hessian of L_i,train at ϕ_i),
so the meta-gradient g_i solves

    (I + H_i/λ) g_i = ∇L_i,test(ϕ_i),

found by ``cg_steps`` iterations of conjugate gradient that only need
Hessian-vector products. Memory does not grow with the number of inner steps:
nothing of the inner path is kept.
"""
from __future__ import annotations

import torch

from ..model import (Params, hessian_vector_product, loss_and_grad, loss_grad_cache,
                     per_task, task_mean)
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {"lam": 1.0, "cg_steps": 5}


def _dot(a: Params, b: Params) -> torch.Tensor:
    """Per-task inner product of two parameter dicts, shaped [T]."""
    return sum((a[n] * b[n]).flatten(1).sum(1) for n in a)


def _axpy(alpha: torch.Tensor, x: Params, y: Params) -> Params:
    """y + alpha x with a per-task scalar alpha [T]."""
    return {n: y[n] + alpha.view(-1, *([1] * (y[n].dim() - 1))) * x[n] for n in y}


def conjugate_gradient(matvec, rhs: Params, steps: int) -> Params:
    """Solve A g = rhs for every task at once (A symmetric positive definite)."""
    solution = {n: torch.zeros_like(r) for n, r in rhs.items()}
    residual = dict(rhs)
    direction = dict(rhs)
    res_sq = _dot(residual, residual)
    for _ in range(steps):
        a_dir = matvec(direction)
        curvature = _dot(direction, a_dir)
        # A task whose residual vanished, or whose Hessian turned the system
        # indefinite along this direction, keeps its current solution.
        step = torch.where(curvature > 0, res_sq / curvature.clamp_min(1e-30), 0.0)
        solution = _axpy(step, direction, solution)
        residual = _axpy(-step, a_dir, residual)
        new_res_sq = _dot(residual, residual)
        direction = _axpy(torch.where(res_sq > 0, new_res_sq / res_sq.clamp_min(1e-30), 0.0),
                          direction, residual)
        res_sq = new_res_sq
    return solution


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    lam, alpha = cfg.options["lam"], cfg.inner_lr
    theta = per_task(params, batch.support_x.shape[0])

    # Inner problem: descend L_train(ϕ) + λ/2 ‖ϕ − θ‖² from ϕ = θ.
    phi = theta
    for _ in range(cfg.inner_steps):
        _, grads = loss_and_grad(phi, batch.support_x, batch.support_y)
        phi = {n: phi[n] - alpha * (grads[n] + lam * (phi[n] - theta[n])) for n in phi}

    # Implicit meta-gradient: solve (I + H/λ) g = ∇L_test(ϕ) by conjugate gradient.
    query_loss, query_grads = loss_and_grad(phi, batch.query_x, batch.query_y)
    _, _, cache = loss_grad_cache(phi, batch.support_x, batch.support_y)

    def matvec(v: Params) -> Params:
        hv = hessian_vector_product(phi, cache, v)
        return {n: v[n] + hv[n] / lam for n in v}

    meta_grad = conjugate_gradient(matvec, query_grads, cfg.options["cg_steps"])
    grads = task_mean(meta_grad)
    return grads, {"meta_loss": query_loss.mean()}
# --8<-- [end:meta_gradient]

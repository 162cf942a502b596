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

from ..model import (Params, flatten_tasks, hessian_vector_product, loss_and_grad,
                     loss_grad_cache, unflatten_tasks)
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {"lam": 1.0, "cg_steps": 5}
MIN_RAYLEIGH = 0.01    # dᵀAd / dᵀd below this counts as no curvature (see conjugate_gradient)


def conjugate_gradient(matvec, rhs: torch.Tensor, steps: int) -> torch.Tensor:
    """Solve A g = rhs for every task at once; rhs and g are [T, P], one row per task."""
    solution = torch.zeros_like(rhs)
    residual, direction = rhs, rhs
    res_sq = torch.linalg.vecdot(residual, residual).unsqueeze(1)          # [T, 1]
    for _ in range(steps):
        a_dir = matvec(direction)
        curvature = torch.linalg.vecdot(direction, a_dir).unsqueeze(1)
        # At the proximal minimum I + H/λ is positive definite. A task whose
        # inner steps stopped short of it can show (almost) no curvature along
        # a direction, and a CG step there would be huge: such a task, like one
        # whose residual vanished, keeps its current solution.
        enough = curvature > MIN_RAYLEIGH * torch.linalg.vecdot(direction, direction).unsqueeze(1)
        step = torch.where(enough, res_sq / curvature.clamp_min(1e-30), 0.0)
        solution = torch.addcmul(solution, step, direction)
        residual = torch.addcmul(residual, step, a_dir, value=-1.0)
        new_res_sq = torch.linalg.vecdot(residual, residual).unsqueeze(1)
        beta = torch.where(res_sq > 0, new_res_sq / res_sq.clamp_min(1e-30), 0.0)
        direction = torch.addcmul(residual, beta, direction)
        res_sq = new_res_sq
    return solution


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    lam, alpha = cfg.options["lam"], cfg.inner_lr

    # Inner problem: descend L_train(ϕ) + λ/2 ‖ϕ − θ‖² from ϕ = θ.
    phi = params
    for _ in range(cfg.inner_steps):
        _, grads = loss_and_grad(phi, batch.support_x, batch.support_y)
        phi = {n: phi[n] - alpha * (grads[n] + lam * (phi[n] - params[n])) for n in phi}

    # Implicit meta-gradient: solve (I + H/λ) g = ∇L_test(ϕ) by conjugate
    # gradient; each task's vectors are one row of a [T, P] matrix.
    query_loss, query_grads = loss_and_grad(phi, batch.query_x, batch.query_y)
    _, _, cache = loss_grad_cache(phi, batch.support_x, batch.support_y, with_loss=False)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        hv = hessian_vector_product(phi, cache, unflatten_tasks(v, params))
        return torch.add(v, flatten_tasks(hv), alpha=1.0 / lam)

    meta_grad = conjugate_gradient(matvec, flatten_tasks(query_grads), cfg.options["cg_steps"])
    # A task whose inner descent blew up (rare, on very curved support sets)
    # would turn θ into NaN; it sits this meta-iteration out.
    finite = torch.isfinite(meta_grad).all(1) & torch.isfinite(query_loss)
    meta_grad = torch.where(finite.unsqueeze(1), meta_grad, 0.0)
    grads = unflatten_tasks(meta_grad.sum(0) / finite.sum().clamp_min(1), params)
    meta_loss = torch.where(finite, query_loss, 0.0).sum() / finite.sum().clamp_min(1)
    return grads, {"meta_loss": meta_loss, "skipped_tasks": (~finite).sum().float()}
# --8<-- [end:meta_gradient]

"""iMAML (Rajeswaran et al., 2019): implicit gradients of a proximal inner problem.

Inner problem per task: ϕ_i = argmin_ϕ L_i,train(ϕ) + λ/2 ‖ϕ − θ‖², solved
approximately by ``inner_steps`` gradient steps started at θ (each kept only
if it lowers the proximal objective; see solve_proximal). At its
stationary point dϕ/dθ = (I + H_i/λ)⁻¹ (H_i the Hessian of L_i,train at ϕ_i),
so the meta-gradient g_i solves

    (I + H_i/λ) g_i = ∇L_i,test(ϕ_i),

found by ``cg_steps`` iterations of conjugate gradient that only need
Hessian-vector products. Memory does not grow with the number of inner steps:
nothing of the inner path is kept.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..model import (Params, flatten_tasks, hessian_vector_product, loss_and_grad,
                     loss_grad_cache, unflatten_tasks)
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {"lam": 1.0, "cg_steps": 5}
MIN_RAYLEIGH = 0.01    # dᵀAd / dᵀd below this counts as no curvature (see conjugate_gradient)


# --8<-- [start:conjugate_gradient]
def conjugate_gradient(matvec, rhs: torch.Tensor, steps: int) -> torch.Tensor:
    """Solve A g = rhs for every task at once; rhs and g are [T, P], one row per task.

    At the proximal minimum A = I + H/λ is positive definite. A task whose
    inner steps stopped short of it can show (almost) no curvature along a
    search direction; a CG step there would be huge, so that task stops where
    it is (truncated CG), as does a task whose residual vanished.
    """
    solution = torch.zeros_like(rhs)
    residual, direction = rhs, rhs
    res_sq = torch.linalg.vecdot(residual, residual).unsqueeze(1)          # [T, 1]
    active = res_sq > 0
    for _ in range(steps):
        a_dir = matvec(direction)
        curvature = torch.linalg.vecdot(direction, a_dir).unsqueeze(1)
        active = active & (curvature > MIN_RAYLEIGH * torch.linalg.vecdot(direction, direction).unsqueeze(1))
        step = torch.where(active, res_sq / curvature.clamp_min(1e-30), 0.0)
        solution = torch.addcmul(solution, step, direction)
        residual = torch.addcmul(residual, step, a_dir, value=-1.0)
        new_res_sq = torch.linalg.vecdot(residual, residual).unsqueeze(1)
        active = active & (new_res_sq > 0)
        beta = torch.where(active, new_res_sq / res_sq.clamp_min(1e-30), 0.0)
        direction = torch.addcmul(residual, beta, direction)
        res_sq = new_res_sq
    return solution
# --8<-- [end:conjugate_gradient]


# --8<-- [start:solve_proximal]
class ProximalState(NamedTuple):
    """Where each task's inner solver stands: ϕ [T, P], ∇L(ϕ) [T, P], L(ϕ) [T],
    the proximal objective L(ϕ) + λ/2 ‖ϕ − θ‖² [T] and the step size [T, 1]."""
    phi: torch.Tensor
    grad: torch.Tensor
    loss: torch.Tensor
    objective: torch.Tensor
    step_size: torch.Tensor


def proximal_start(theta: torch.Tensor, like: Params, x: torch.Tensor, y: torch.Tensor,
                   lr: float) -> ProximalState:
    """The solver at ϕ = θ (θ flat: [P] shared by all tasks, or [T, P]), every
    task's step size ``lr``; ``like`` gives the parameters' shapes."""
    loss, grads = loss_and_grad(unflatten_tasks(theta, like), x, y)
    phi = theta.expand(x.shape[0], -1)
    step_size = torch.full_like(loss, lr).unsqueeze(1)          # [T, 1]
    return ProximalState(phi, flatten_tasks(grads), loss, loss, step_size)  # at ϕ = θ the penalty is 0


def proximal_step(theta: torch.Tensor, state: ProximalState, like: Params, x: torch.Tensor,
                  y: torch.Tensor, lam: float) -> ProximalState:
    """One gradient step on each task's proximal objective, taken only where it
    lowers that objective; where it does not, ϕ stays and the task's step size
    is halved for the next step."""
    phi, step_size = state.phi, state.step_size
    candidate = phi - step_size * torch.add(state.grad, phi - theta, alpha=lam)
    cand_loss, cand_grads = loss_and_grad(unflatten_tasks(candidate, like), x, y)
    cand_objective = cand_loss + lam / 2 * (candidate - theta).pow(2).sum(1)
    better = (cand_objective < state.objective).unsqueeze(1)   # NaN never passes
    return ProximalState(torch.where(better, candidate, phi),
                         torch.where(better, flatten_tasks(cand_grads), state.grad),
                         torch.where(better.squeeze(1), cand_loss, state.loss),
                         torch.where(better.squeeze(1), cand_objective, state.objective),
                         torch.where(better, step_size, step_size / 2))


def solve_proximal(params: Params, x: torch.Tensor, y: torch.Tensor, lam: float, lr: float,
                   steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate ϕ = argmin_ϕ L(ϕ) + λ/2 ‖ϕ − θ‖² for every task: ``steps``
    gradient steps from θ, each accepted only if it lowers that task's
    proximal objective, otherwise retried next time at half the step size
    (``proximal_step``; the evaluation, ``meta.weights.fine_tune`` and the
    exported graph adapt an iMAML model with the same steps).

    Plain steps at a fixed rate climb instead of descend on a very curved
    support set, and the implicit gradient assumes ϕ minimises the proximal
    objective: a task whose steps blow up would feed garbage into the
    meta-gradient. Returns ϕ as a [T, P] matrix and the tasks' losses L(ϕ).
    """
    theta = torch.cat([p.reshape(-1) for p in params.values()])
    state = proximal_start(theta, params, x, y, lr)
    for _ in range(steps):
        state = proximal_step(theta, state, params, x, y, lam)
    return state.phi, state.loss
# --8<-- [end:solve_proximal]


# --8<-- [start:meta_gradient]
def meta_gradient(params: Params, batch: TaskBatch, cfg) -> tuple[Params, dict]:
    lam = cfg.options["lam"]

    # Inner problem: ϕ ≈ argmin L_train(ϕ) + λ/2 ‖ϕ − θ‖², started at θ.
    phi_flat, _ = solve_proximal(params, batch.support_x, batch.support_y, lam, cfg.inner_lr,
                                 cfg.inner_steps)
    phi = unflatten_tasks(phi_flat, params)

    # Implicit meta-gradient: solve (I + H/λ) g = ∇L_test(ϕ) by conjugate
    # gradient, H the Hessian of L_train at ϕ; each task's vectors are one row
    # of a [T, P] matrix.
    query_loss, query_grads = loss_and_grad(phi, batch.query_x, batch.query_y)
    _, _, cache = loss_grad_cache(phi, batch.support_x, batch.support_y, with_loss=False)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        hv = hessian_vector_product(phi, cache, unflatten_tasks(v, params))
        return torch.add(v, flatten_tasks(hv), alpha=1.0 / lam)

    meta_grad = conjugate_gradient(matvec, flatten_tasks(query_grads), cfg.options["cg_steps"])
    grads = unflatten_tasks(meta_grad.mean(0), params)
    return grads, {"meta_loss": query_loss.mean()}
# --8<-- [end:meta_gradient]

"""iMAML (Rajeswaran et al., 2019): implicit gradients of a proximal inner problem.

Inner problem per task: ϕ_i = argmin_ϕ F(ϕ) = L_i,train(ϕ) + λ/2 ‖ϕ − θ‖², solved by
``inner_steps`` damped Gauss–Newton steps started at θ (``proximal_step``):
each step minimises the proximal objective with the network linearised at ϕ,
a step that would not lower F is not taken and the task's step size is halved.
Gauss–Newton reaches the proximal minimum in a few steps however curved the
support loss is, where plain gradient steps at a fixed rate either crawl or
get refused. At that stationary point dϕ/dθ = (I + G_i/λ)⁻¹, G_i = (2/N) JᵀJ
the Gauss–Newton matrix of L_i,train at ϕ_i (J the Jacobian of the N support
outputs), so the meta-gradient g_i solves

    (I + G_i/λ) g_i = ∇L_i,test(ϕ_i),

found by ``cg_steps`` iterations of conjugate gradient that only need
products Jv and Jᵀu. Memory does not grow with the number of inner steps:
nothing of the inner path is kept.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..model import Params, flatten_tasks, loss, loss_and_grad, unflatten_tasks
from ..tasks import TaskBatch

OUTER_OPTIMIZER = "adam"
OPTIONS: dict = {"lam": 1.0, "cg_steps": 5}
MIN_RAYLEIGH = 0.01    # dᵀAd / dᵀd below this counts as no curvature (see conjugate_gradient)
#: Newton–Schulz iterations that invert each Gauss–Newton step's N x N system
#: (``kernel_solve``); the evaluation and the exported graph run the same count.
KERNEL_SOLVE_STEPS = 20


# --8<-- [start:conjugate_gradient]
def conjugate_gradient(matvec, rhs: torch.Tensor, steps: int) -> torch.Tensor:
    """Solve A g = rhs for every task at once; rhs and g are [T, P], one row per task.

    A = I + G/λ, G the Gauss–Newton matrix, is positive definite with every
    eigenvalue at least 1, so CG never meets a direction without curvature;
    the guard stays for any other matvec: where dᵀAd / dᵀd falls below
    MIN_RAYLEIGH a step would be huge, so that task stops where it is
    (truncated CG), as does a task whose residual vanished.
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


# --8<-- [start:gauss_newton]
class GaussNewton(NamedTuple):
    """The network linearised at each task's ϕ on its N support points:
    residuals r [T, N], the kernel J Jᵀ [T, N, N] (J [T, N, P] the Jacobian of
    the outputs, never formed), and the products J u and Jᵀ b."""
    residual: torch.Tensor
    kernel: torch.Tensor
    x: torch.Tensor
    h1: torch.Tensor      # ReLU outputs of the two hidden layers [T, N, 40]
    h2: torch.Tensor
    d_z1: torch.Tensor    # d(output)/d(pre-activation) per point [T, N, 40]
    d_z2: torch.Tensor

    def jvp(self, u: Params) -> torch.Tensor:
        """J u [T, N] for per-task directions u ([T, ...])."""
        x, h1, h2 = self.x, self.h1, self.h2
        first = (x * u["w1"] + u["b1"].unsqueeze(1)) * self.d_z1
        second = torch.baddbmm(u["b2"].unsqueeze(1), h1, u["w2"]) * self.d_z2
        return (first.sum(-1) + second.sum(-1) + torch.bmm(h2, u["w3"]).squeeze(-1)
                + u["b3"])

    def vjp(self, b: torch.Tensor) -> Params:
        """Jᵀ b ([T, ...]) for per-task, per-point weights b [T, N]."""
        b = b.unsqueeze(-1)
        a1, a2 = b * self.d_z1, b * self.d_z2
        return {"w1": (self.x * a1).sum(1, keepdim=True), "b1": a1.sum(1),
                "w2": torch.bmm(self.h1.transpose(1, 2), a2), "b2": a2.sum(1),
                "w3": torch.bmm(self.h2.transpose(1, 2), b), "b3": b.sum(1)}


def gauss_newton(params: Params, x: torch.Tensor, y: torch.Tensor) -> GaussNewton:
    """Linearise the 1-40-40-1 network of each task (parameters [T, ...]) at its
    support points x, y [T, N, 1].

    The output's gradient with respect to a weight is an outer product of
    activations and back-propagated signals, so the kernel J Jᵀ is a sum of
    products of small Gram matrices: N x N per task, whatever P is.
    """
    w2, w3 = params["w2"], params["w3"]
    z1 = x * params["w1"] + params["b1"].unsqueeze(1)                  # [T, N, 40]
    h1 = torch.relu(z1)
    z2 = torch.baddbmm(params["b2"].unsqueeze(1), h1, w2)
    h2 = torch.relu(z2)
    residual = (torch.baddbmm(params["b3"].unsqueeze(1), h2, w3) - y).squeeze(-1)
    d_z2 = torch.where(z2 > 0, w3.transpose(1, 2), 0.0)               # [T, N, 40]
    d_z1 = torch.where(z1 > 0, torch.bmm(d_z2, w2.transpose(1, 2)), 0.0)
    gram2 = torch.bmm(d_z2, d_z2.transpose(1, 2))
    gram1 = torch.bmm(d_z1, d_z1.transpose(1, 2))
    kernel = (torch.bmm(h2, h2.transpose(1, 2)) + 1.0                  # w3, b3
              + (torch.bmm(h1, h1.transpose(1, 2)) + 1.0) * gram2      # w2, b2
              + (torch.bmm(x, x.transpose(1, 2)) + 1.0) * gram1)       # w1, b1
    return GaussNewton(residual, kernel, x, h1, h2, d_z1, d_z2)


def kernel_solve(kernel: torch.Tensor, rhs: torch.Tensor, ridge: float,
                 steps: int = KERNEL_SOLVE_STEPS) -> torch.Tensor:
    """β = (K + ridge·I)⁻¹ rhs for every task (K [T, N, N] positive
    semi-definite, rhs [T, N]), the inverse by ``steps`` Newton–Schulz
    iterations X ← 2X − X A X from X = I / trace(A).

    Along an eigenvector of A (eigenvalue μ) the error 1 − μx of X starts at
    1 − μ/trace(A) ∈ [0, 1) and is squared by each iteration, so 20
    iterations reach float32 precision while trace(A) / ridge stays below
    about 60,000 (on the trained model's validation tasks it stays below 700). Only matrix products: the same few operators run
    in training, in the evaluation and in the exported graph, where conjugate
    gradient would need about 2N iterations in float32 to agree with the
    exact solve and N is not known in advance.
    """
    size = kernel.shape[-1]
    system = kernel + ridge * torch.eye(size, dtype=kernel.dtype, device=kernel.device)
    trace = torch.diagonal(system, dim1=-2, dim2=-1).sum(-1)[..., None, None]
    inverse = torch.eye(size, dtype=kernel.dtype, device=kernel.device) / trace
    for _ in range(steps):
        inverse = 2 * inverse - inverse @ system @ inverse
    return (inverse @ rhs.unsqueeze(-1)).squeeze(-1)
# --8<-- [end:gauss_newton]


# --8<-- [start:solve_proximal]
class ProximalState(NamedTuple):
    """Where each task's inner solver stands: ϕ [T, P], L(ϕ) [T], the proximal
    objective L(ϕ) + λ/2 ‖ϕ − θ‖² [T] and the step size [T, 1]."""
    phi: torch.Tensor
    loss: torch.Tensor
    objective: torch.Tensor
    step_size: torch.Tensor


def proximal_start(theta: torch.Tensor, like: Params, x: torch.Tensor, y: torch.Tensor,
                   lr: float) -> ProximalState:
    """The solver at ϕ = θ (θ flat: [P] shared by all tasks, or [T, P]), every
    task's step size ``lr``; ``like`` gives the parameters' shapes."""
    phi = theta.expand(x.shape[0], -1)
    start = loss(unflatten_tasks(phi, like), x, y)
    step_size = torch.full_like(start, lr).unsqueeze(1)          # [T, 1]
    return ProximalState(phi, start, start, step_size)           # at ϕ = θ the penalty is 0


def proximal_step(theta: torch.Tensor, state: ProximalState, like: Params, x: torch.Tensor,
                  y: torch.Tensor, lam: float) -> ProximalState:
    """One damped Gauss–Newton step on each task's proximal objective
    F(ϕ) = L(ϕ) + λ/2 ‖ϕ − θ‖², L the support MSE over N points.

    With the network linearised at ϕ (outputs f + J δ), F is quadratic in the
    step δ, minimised where ((2/N) JᵀJ + λI) δ = −((2/N) Jᵀr + λu), u = ϕ − θ.
    That P x P system has the N x N form δ = −u + Jᵀβ, (J Jᵀ + λN/2 · I) β = J u − r
    (``kernel_solve``). The step ϕ + s·δ at the task's step size s (first
    ``lr``: 1 is the full Gauss–Newton step) is taken only where it lowers F;
    where it does not, ϕ stays and s is halved for the next step."""
    phi, step_size = state.phi, state.step_size
    ridge = lam * max(x.shape[1], 1) / 2
    linear = gauss_newton(unflatten_tasks(phi, like), x, y)
    u = phi - theta
    beta = kernel_solve(linear.kernel, linear.jvp(unflatten_tasks(u, like)) - linear.residual,
                        ridge)
    direction = flatten_tasks(linear.vjp(beta)) - u
    candidate = phi + step_size * direction
    cand_loss = loss(unflatten_tasks(candidate, like), x, y)
    cand_objective = cand_loss + lam / 2 * (candidate - theta).pow(2).sum(1)
    better = cand_objective < state.objective                  # NaN never passes
    return ProximalState(torch.where(better.unsqueeze(1), candidate, phi),
                         torch.where(better, cand_loss, state.loss),
                         torch.where(better, cand_objective, state.objective),
                         torch.where(better.unsqueeze(1), step_size, step_size / 2))


def solve_proximal(params: Params, x: torch.Tensor, y: torch.Tensor, lam: float, lr: float,
                   steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate ϕ = argmin_ϕ L(ϕ) + λ/2 ‖ϕ − θ‖² for every task: ``steps``
    damped Gauss–Newton steps from θ (``proximal_step``; the evaluation,
    ``meta.weights.fine_tune`` and the exported graph adapt an iMAML model
    with the same steps). Returns ϕ as a [T, P] matrix and the tasks' losses L(ϕ).
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

    # Implicit meta-gradient: solve (I + G/λ) g = ∇L_test(ϕ) by conjugate
    # gradient, G = (2/N) JᵀJ the Gauss–Newton matrix of L_train at ϕ (the
    # curvature the inner solver used); each task's vectors are one row of a
    # [T, P] matrix.
    query_loss, query_grads = loss_and_grad(phi, batch.query_x, batch.query_y)
    linear = gauss_newton(phi, batch.support_x, batch.support_y)
    scale = 2.0 / max(batch.support_x.shape[1], 1) / lam

    def matvec(v: torch.Tensor) -> torch.Tensor:
        gv = linear.vjp(linear.jvp(unflatten_tasks(v, params)))
        return torch.add(v, flatten_tasks(gv), alpha=scale)

    meta_grad = conjugate_gradient(matvec, flatten_tasks(query_grads), cfg.options["cg_steps"])
    grads = unflatten_tasks(meta_grad.mean(0), params)
    return grads, {"meta_loss": query_loss.mean()}
# --8<-- [end:meta_gradient]

"""Straightforward per-task references for the batched algorithms in meta/.

Each loops over tasks in Python and differentiates with torch.autograd (the
learn2learn / higher pattern). tests/test_meta.py holds meta/ against them and
tests/benchmarks/train_speed.py times them as baseline (a), except iMAML's:
its reference solves a dense P x P system at every inner step (exact, and far
more work than any iMAML would do), so the benchmark checks ours against it
once and times a per-task loop of the N x N kernel form instead.
``reference_conv_maml`` is the same for the quiz's conv net (meta/conv.py).
"""
from __future__ import annotations

import torch

from meta import model
from meta.algorithms.imaml import MIN_RAYLEIGH
from meta.tasks import TaskBatch


def task_slice(batch: TaskBatch, t: int) -> TaskBatch:
    return TaskBatch(*(x[t:t + 1] for x in batch))


def mlp(params: model.Params, x: torch.Tensor) -> torch.Tensor:
    """The 1-40-40-1 ReLU network written the everyday way, for one task (x [N, 1]);
    independent of meta/model.py, whose batched code it checks."""
    h = torch.relu(x @ params["w1"] + params["b1"])
    h = torch.relu(h @ params["w2"] + params["b2"])
    return h @ params["w3"] + params["b3"]


def task_loss(params: model.Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One task's MSE; a leading task dimension of size 1 is dropped."""
    return (mlp(params, x.reshape(-1, 1)) - y.reshape(-1, 1)).pow(2).mean()


def autograd_adapt(phi: model.Params, x, y, steps: int, lr: float, create_graph: bool) -> model.Params:
    """The learn2learn / higher pattern: gradient descent written with torch.autograd.grad."""
    for _ in range(steps):
        grads = torch.autograd.grad(task_loss(phi, x, y), list(phi.values()),
                                    create_graph=create_graph)
        phi = {n: p - lr * g for (n, p), g in zip(phi.items(), grads)}
    return phi


def reference_maml(params, batch, cfg, first_order=False):
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for t in range(batch.support_x.shape[0]):
        task = task_slice(batch, t)
        theta = {n: p.clone().requires_grad_() for n, p in params.items()}
        phi = autograd_adapt(theta, task.support_x, task.support_y, cfg.inner_steps, cfg.inner_lr,
                              create_graph=not first_order)
        if first_order:
            phi = {n: p.detach().requires_grad_() for n, p in phi.items()}
        query_loss = task_loss(phi, task.query_x, task.query_y)
        grads = torch.autograd.grad(query_loss, list((phi if first_order else theta).values()))
        for n, g in zip(params, grads):
            total[n] += g / batch.support_x.shape[0]
    return total


def reference_pretrained(params, batch, cfg):
    theta = {n: p.clone().requires_grad_() for n, p in params.items()}
    x = torch.cat([batch.support_x, batch.query_x], 1)
    y = torch.cat([batch.support_y, batch.query_y], 1)
    losses = [task_loss(theta, x[t], y[t]) for t in range(x.shape[0])]
    grads = torch.autograd.grad(torch.stack(losses).mean(), list(theta.values()))
    return dict(zip(params, grads))


def reference_reptile(params, batch, cfg):
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    x = torch.cat([batch.support_x, batch.query_x], 1)
    y = torch.cat([batch.support_y, batch.query_y], 1)
    for t in range(x.shape[0]):
        theta = {n: p.clone().requires_grad_() for n, p in params.items()}
        phi = autograd_adapt(theta, x[t:t + 1], y[t:t + 1], cfg.inner_steps, cfg.inner_lr, False)
        for n in params:   # θ ← θ + β(ϕ − θ) is SGD on the pseudo-gradient θ − ϕ
            total[n] += (params[n] - phi[n].detach()) / x.shape[0]
    return total


def flat(params: model.Params) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflat(vector: torch.Tensor, like: model.Params) -> model.Params:
    out, start = {}, 0
    for n, p in like.items():
        out[n] = vector[start:start + p.numel()].view_as(p)
        start += p.numel()
    return out


def reference_imaml(params, batch, cfg, exact_solve: bool):
    """iMAML per task: damped Gauss–Newton steps on the proximal objective, each
    step's linear system solved exactly with the Jacobian from autograd; then
    either the same number of CG iterations on (I + G/λ) g = ∇L_test with
    Gauss–Newton-vector products from autograd, or that system solved exactly
    with the full Gauss–Newton matrix G = (2/N) JᵀJ."""
    lam, alpha = cfg.options["lam"], cfg.inner_lr
    theta = flat(params)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for t in range(batch.support_x.shape[0]):
        task = task_slice(batch, t)
        x, y = task.support_x.reshape(-1, 1), task.support_y.reshape(-1)
        count = x.shape[0]

        def outputs(v):
            return mlp(unflat(v, params), x).reshape(-1)

        def proximal_objective(v):
            return task_loss(unflat(v, params), x, y) + lam / 2 * (v - theta).pow(2).sum()

        # The proximal problem, step by step as meta.algorithms.imaml.proximal_step
        # describes it: minimise the objective with the network linearised at ϕ
        # (the P x P system ((2/N) JᵀJ + λI) δ = −∇F solved directly), keep the
        # step only if it lowers the objective, else halve the step size.
        phi, step_size = theta.clone(), alpha
        objective = proximal_objective(phi)
        for _ in range(cfg.inner_steps):
            jacobian = torch.autograd.functional.jacobian(outputs, phi)          # [N, P]
            residual = outputs(phi) - y
            gradient = 2 / count * jacobian.T @ residual + lam * (phi - theta)
            curvature = 2 / count * jacobian.T @ jacobian + lam * torch.eye(len(phi), dtype=phi.dtype)
            candidate = phi - step_size * torch.linalg.solve(curvature, gradient)
            candidate_objective = proximal_objective(candidate)
            if candidate_objective < objective:
                phi, objective = candidate, candidate_objective
            else:
                step_size /= 2
        phi_flat = phi.detach()
        jacobian = torch.autograd.functional.jacobian(outputs, phi_flat)

        def test_loss(v):
            return task_loss(unflat(v, params), task.query_x, task.query_y)

        rhs = torch.func.grad(test_loss)(phi_flat)
        if exact_solve:
            gauss_newton = 2 / count * jacobian.T @ jacobian
            solution = torch.linalg.solve(torch.eye(len(rhs), dtype=rhs.dtype) + gauss_newton / lam, rhs)
        else:
            def matvec(v):
                jv = torch.func.jvp(outputs, (phi_flat,), (v,))[1]
                return v + 2 / count * torch.func.vjp(outputs, phi_flat)[1](jv)[0] / lam
            solution, residual, direction = torch.zeros_like(rhs), rhs.clone(), rhs.clone()
            for _ in range(cfg.options["cg_steps"]):
                a_dir = matvec(direction)
                if direction @ a_dir <= MIN_RAYLEIGH * (direction @ direction):
                    break          # truncated CG: too little curvature along this direction
                step = residual @ residual / (direction @ a_dir)
                solution = solution + step * direction
                new_residual = residual - step * a_dir
                if new_residual @ new_residual == 0:
                    break
                direction = new_residual + (new_residual @ new_residual) / (residual @ residual) * direction
                residual = new_residual
        for n, g in unflat(solution, params).items():
            total[n] += g / batch.support_x.shape[0]
    return total


REFERENCES = {
    "pretrained": reference_pretrained,
    "maml": reference_maml,
    "fomaml": lambda params, batch, cfg: reference_maml(params, batch, cfg, first_order=True),
    "reptile": reference_reptile,
    "imaml": lambda params, batch, cfg: reference_imaml(params, batch, cfg, exact_solve=False),
}


def reference_conv_maml(theta, batch, lr: float, steps: int, learned):
    """Second-order MAML on the conv net one task at a time, differentiating
    the whole net at every inner step (no zero-head shortcut): the meta-gradient
    in the parameters named ``learned``, in that order."""
    from meta import conv

    T = batch.support.shape[0]
    with torch.enable_grad():
        total = 0.0
        for i in range(T):
            task = conv.GlyphBatch(*[x[i:i + 1] for x in batch])
            phi = dict(theta)
            for _ in range(steps):
                phi = {n: p if p.requires_grad else p.detach().requires_grad_(True) for n, p in phi.items()}
                loss = conv.task_loss(phi, task.support, task.support_labels, task.mask).sum()
                grads = torch.autograd.grad(loss, list(phi.values()), create_graph=True)
                phi = {n: p - lr * g for (n, p), g in zip(phi.items(), grads)}
            total = total + conv.task_loss(phi, task.query, task.query_labels, task.mask).sum() / T
        return list(torch.autograd.grad(total, [theta[n] for n in learned]))

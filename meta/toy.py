"""The two-parameter toy problems behind the loss-landscape pictures.

A model with two parameters θ = (a, b) predicts g(x) = softplus(a·x + b). A
task is a target pair (a*, b*): its data are the fixed inputs ``TOY_X`` and
the targets softplus(a*·x + b*), and its loss is the mean squared error. With
two parameters every quantity of the articles can be drawn in the plane: the
loss of each task, where m gradient steps take θ, and the meta-update of
each method (MAML through m steps, first-order MAML, Reptile, iMAML).

Everything here is pure tensor code without autograd: the gradient and the
2 × 2 Hessian of the loss are written out, which is what lets the build export
these functions as ONNX graphs that the browser runs (meta/toy_export.py).
tests/test_toy.py holds every function against a per-task autograd reference.

Shapes: θ and ϕ are [..., 2]; functions that take tasks return a leading task
dimension T, so a grid of P points θ and T tasks is evaluated in one call.
As in the MAML paper's toy pictures, a task's inner (training) and outer
(test) loss use the same data.

``curvature_*`` is the other toy of the series: a quadratic
f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx, whose Hessian is C everywhere.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The two tasks of the series, (a*, b*).
TOY_TASKS = ((0.3, 0.05), (0.83, 0.75))
#: The inputs every toy task is observed at: 20 points drawn uniformly from
#: [-3, 3] with seed 0, rounded to three decimals so they can be printed.
TOY_X_RANGE = (-3.0, 3.0)
TOY_X = tuple(round(float(v), 3) for v in
              torch.rand(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
              * (TOY_X_RANGE[1] - TOY_X_RANGE[0]) + TOY_X_RANGE[0])
#: The plane the pictures show, and the inner learning rate they start from.
TOY_PLANE = ((0.0, 1.0), (0.0, 1.0))
TOY_INNER_LR = 0.1
#: Most inner steps the accumulated meta-loss pictures go to, and the steps
#: the exported graphs unroll (the widgets' sliders stop there).
TOY_MAX_STEPS = 20
TOY_GRAPH_STEPS = 10
#: CG iterations the iMAML graph unrolls, and its stopping test: stop once the
#: residual is below this fraction of the right-hand side (in norm).
TOY_CG_STEPS = 10
CG_TOLERANCE = 1e-5


def inputs(dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(TOY_X, dtype=dtype)


def tasks_tensor(tasks=TOY_TASKS, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(tasks, dtype=dtype).reshape(-1, 2)


def predict(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g(x) = softplus(a x + b) for θ [..., 2] and inputs x [N]: [..., N]."""
    return F.softplus(theta[..., :1] * x + theta[..., 1:])


def targets(tasks: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Each task's targets [T, N] for task parameters [T, 2]."""
    return predict(tasks, x)


def _features(x: torch.Tensor) -> torch.Tensor:
    """∂(a x + b)/∂(a, b) = (x, 1) for each input: [N, 2]."""
    return torch.stack([x, torch.ones_like(x)], dim=-1)


# --8<-- [start:loss]
def loss_grad_hessian(phi: torch.Tensor, y: torch.Tensor, x: torch.Tensor):
    """Loss, gradient and Hessian of each task at ϕ.

    phi [T, P, 2] (P points per task), y [T, N] the task's targets, x [N].
    Returns loss [T, P], gradient [T, P, 2] and Hessian [T, P, 2, 2] of
    L(ϕ) = mean_j (softplus(a x_j + b) − y_j)². With r_j the residual and
    σ the logistic function (softplus' = σ, σ' = σ(1 − σ)):
        ∇L = 2/N Σ_j r_j σ_j (x_j, 1)
        ∇²L = 2/N Σ_j (σ_j² + r_j σ_j (1 − σ_j)) (x_j, 1)(x_j, 1)ᵀ
    The σ² term is the Gauss-Newton part; the r σ(1 − σ) term is the curvature
    of the model itself, weighted by the residual.
    """
    z = phi[..., :1] * x + phi[..., 1:]                  # [T, P, N]
    s, sig = F.softplus(z), torch.sigmoid(z)
    r = s - y.unsqueeze(1)
    scale = 2.0 / x.shape[0]
    feats = _features(x)                                 # [N, 2]
    loss = (r * r).mean(-1)
    grad = scale * (r * sig) @ feats                     # [T, P, 2]
    weight = scale * (sig * sig + r * sig * (1 - sig))   # [T, P, N]
    hess = torch.einsum("tpn,ni,nj->tpij", weight, feats, feats)
    return loss, grad, hess
# --8<-- [end:loss]


def landscape(points: torch.Tensor, tasks: torch.Tensor, anchor: torch.Tensor | None = None,
              lam: float | torch.Tensor = 0.0, x: torch.Tensor | None = None) -> torch.Tensor:
    """Each task's loss [T, G] at the points [G, 2], plus the proximal term
    λ/2 ‖ϕ − anchor‖² (iMAML's inner objective; λ = 0 gives the plain loss)."""
    x = inputs(points.dtype) if x is None else x
    y = targets(tasks, x)
    pred = predict(points, x)                            # [G, N]
    diff = pred.unsqueeze(0) - y.unsqueeze(1)            # [T, G, N]
    loss = (diff * diff).mean(-1)
    if anchor is None:
        return loss
    offset = points - anchor
    return loss + 0.5 * lam * (offset * offset).sum(-1)


def _per_task(theta: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """θ [P, 2] (or [2]) as [T, P, 2]."""
    theta = theta.reshape(-1, 2)
    return theta.unsqueeze(0).expand(num_tasks, *theta.shape)


# --8<-- [start:adapt]
def unroll(theta: torch.Tensor, tasks: torch.Tensor, inner_lr, steps: int,
           lam: float | torch.Tensor = 0.0, x: torch.Tensor | None = None):
    """m = 0..steps steps of gradient descent from θ on each task's loss plus
    λ/2 ‖ϕ − θ‖² (λ = 0: plain steps; λ > 0: iMAML's proximal inner problem).

    The proximal term is taken exactly (a proximal-gradient step): ϕ_{k+1}
    minimises the loss's linearisation at ϕ_k plus 1/(2α) ‖ϕ − ϕ_k‖² plus
    λ/2 ‖ϕ − θ‖², which gives ϕ_{k+1} = (ϕ_k − α ∇L(ϕ_k) + αλ θ) / (1 + αλ).
    A plain step on the whole objective would diverge once αλ > 2; this one
    is stable for every λ, is the plain step at λ = 0, and stops where
    ∇L(ϕ) + λ (ϕ − θ) = 0, iMAML's inner solution.

    Returns, along the way ϕ_0 = θ, ϕ_1, ..., ϕ_steps: the points [T, P, S+1, 2],
    and the task loss [T, P, S+1], its gradient [T, P, S+1, 2] and its
    Hessian [T, P, S+1, 2, 2] at each of them (without the proximal term).
    """
    x = inputs(theta.dtype) if x is None else x
    y = targets(tasks, x)
    theta = _per_task(theta, tasks.shape[0])
    phi, path, losses, grads, hessians = theta, [], [], [], []
    for step in range(steps + 1):
        loss, grad, hess = loss_grad_hessian(phi, y, x)
        path.append(phi)
        losses.append(loss)
        grads.append(grad)
        hessians.append(hess)
        if step < steps:
            phi = (phi - inner_lr * grad + (inner_lr * lam) * theta) / (1 + inner_lr * lam)
    return (torch.stack(path, dim=2), torch.stack(losses, dim=2),
            torch.stack(grads, dim=2), torch.stack(hessians, dim=2))


def adapt(theta: torch.Tensor, tasks: torch.Tensor, inner_lr, steps: int,
          lam: float | torch.Tensor = 0.0, x: torch.Tensor | None = None):
    """U^(m)(θ) for m = 0..steps: the trajectory [T, P, S+1, 2] and the task
    loss along it [T, P, S+1] (see ``unroll``)."""
    path, losses, _, _ = unroll(theta, tasks, inner_lr, steps, lam, x)
    return path, losses
# --8<-- [end:adapt]


# --8<-- [start:maml]
def maml_gradients(theta: torch.Tensor, tasks: torch.Tensor, inner_lr, steps: int,
                   x: torch.Tensor | None = None, unrolled=None) -> torch.Tensor:
    """The exact MAML meta-gradient ∇_θ L(U^(m)(θ)) of each task, for every
    m = 0..steps at once: [T, P, steps+1, 2].

    The chain rule through m plain steps: dU^(m)/dθ = Π_k (I − α ∇²L(ϕ_k)),
    carried forward one factor per step (a 2 × 2 matrix here), then applied
    to the gradient at ϕ_m: ∇_θ = (dU^(m)/dθ)ᵀ ∇L(ϕ_m). ``unrolled`` is the
    plain-step ``unroll`` of the same θ and rate, when the caller has it.
    """
    _, _, grads, hessians = unrolled or unroll(theta, tasks, inner_lr, steps, x=x)
    eye = torch.eye(2, dtype=grads.dtype)
    jacobian = eye.expand(*grads.shape[:2], 2, 2)
    out = []
    for step in range(steps + 1):
        out.append((jacobian.transpose(-1, -2) @ grads[:, :, step].unsqueeze(-1)).squeeze(-1))
        jacobian = (eye - inner_lr * hessians[:, :, step]) @ jacobian
    return torch.stack(out, dim=2)
# --8<-- [end:maml]


# First-order MAML needs no function of its own: its meta-gradient is the task
# gradient at ϕ_m, which ``unroll`` returns for every m (dU/dθ taken as I).


def reptile_gradients(trajectory: torch.Tensor) -> torch.Tensor:
    """Reptile's direction θ − ϕ_m for each m: the update is θ ← θ − β (θ − ϕ_m),
    i.e. θ moves a fraction β of the way to the adapted parameters."""
    return trajectory[..., :1, :] - trajectory


# --8<-- [start:imaml]
def implicit_gradient_cg(phi: torch.Tensor, tasks: torch.Tensor, lam, cg_steps: int,
                         x: torch.Tensor | None = None):
    """iMAML's meta-gradient at the inner solution ϕ [T, P, 2]: the solution g of
    (I + ∇²L(ϕ)/λ) g = ∇L(ϕ), by conjugate gradient with Hessian-vector products.

    Solved in the equivalent form (λ I + ∇²L) g = λ ∇L, which stays finite at
    λ = 0. CG stops, for each task separately, once the residual is below
    CG_TOLERANCE of the right-hand side, or when it meets a direction without
    positive curvature (where CG's step is undefined). Returns the iterates
    g_0 = 0, g_1, ..., g_cg_steps [T, P, cg_steps+1, 2].
    """
    x = inputs(phi.dtype) if x is None else x
    _, grad, hess = loss_grad_hessian(phi, targets(tasks, x), x)

    def matvec(v):              # (λ I + H) v: one Hessian-vector product
        return lam * v + (hess @ v.unsqueeze(-1)).squeeze(-1)

    rhs = lam * grad
    solution = torch.zeros_like(rhs)
    residual, direction = rhs, rhs
    rr = (residual * residual).sum(-1, keepdim=True)
    stop = (CG_TOLERANCE ** 2) * rr
    iterates = [solution]
    for _ in range(cg_steps):
        a_dir = matvec(direction)
        curvature = (direction * a_dir).sum(-1, keepdim=True)
        active = (rr > stop) & (curvature > 0)
        step = torch.where(active, rr / torch.where(active, curvature, 1.0), 0.0)
        solution = solution + step * direction
        residual = residual - step * a_dir
        rr_new = (residual * residual).sum(-1, keepdim=True)
        beta = torch.where(active, rr_new / torch.where(active, rr, 1.0), 0.0)
        direction = torch.where(active, residual + beta * direction, direction)
        rr = torch.where(active, rr_new, rr)
        iterates.append(solution)
    return torch.stack(iterates, dim=-2)
# --8<-- [end:imaml]


def implicit_gradient_exact(phi: torch.Tensor, tasks: torch.Tensor, lam,
                            x: torch.Tensor | None = None) -> torch.Tensor:
    """The same system solved exactly (a 2 × 2 inverse): [T, P, 2]. Where the
    matrix is singular (λ = 0 on a flat direction) the answer is 0."""
    x = inputs(phi.dtype) if x is None else x
    _, grad, hess = loss_grad_hessian(phi, targets(tasks, x), x)
    a11, a12 = hess[..., 0, 0] + lam, hess[..., 0, 1]
    a21, a22 = hess[..., 1, 0], hess[..., 1, 1] + lam
    det = a11 * a22 - a12 * a21
    ok = det.abs() > 1e-12
    inv_det = torch.where(ok, 1.0 / torch.where(ok, det, 1.0), 0.0)
    b1, b2 = lam * grad[..., 0], lam * grad[..., 1]
    return torch.stack([(a22 * b1 - a12 * b2) * inv_det, (a11 * b2 - a21 * b1) * inv_det], dim=-1)


def accumulated_loss(points: torch.Tensor, tasks: torch.Tensor, inner_lr, steps: int,
                     x: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_i L_τi(U^(m)(θ)) at every point θ [G, 2] for m = 0..steps: [steps+1, G]."""
    _, losses = adapt(points, tasks, inner_lr, steps, x=x)
    return losses.sum(0).transpose(0, 1)


# ---------------------------------------------------------------- curvature demo

def _symmetric(curvature: torch.Tensor) -> torch.Tensor:
    return 0.5 * (curvature + curvature.transpose(-1, -2))


def curvature_value(points: torch.Tensor, curvature: torch.Tensor, center: torch.Tensor,
                    linear: torch.Tensor) -> torch.Tensor:
    """f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx at points [G, 2] -> [G] (C symmetrised)."""
    d = points - center
    return 0.5 * ((d @ _symmetric(curvature)) * d).sum(-1) + points @ linear


def curvature_gradient(points: torch.Tensor, curvature: torch.Tensor, center: torch.Tensor,
                       linear: torch.Tensor) -> torch.Tensor:
    """∇f = C (x − c) + g at points [..., 2]."""
    return (points - center) @ _symmetric(curvature) + linear


# --8<-- [start:curvature]
def curvature_meta_gradients(theta: torch.Tensor, curvature: torch.Tensor, center: torch.Tensor,
                             linear: torch.Tensor, inner_lr):
    """One inner step ϕ = θ − α ∇f(θ), and two meta-gradients of f(ϕ) with
    respect to θ: the true one, (I − α C) ∇f(ϕ), and the first-order one that
    drops the Hessian, ∇f(ϕ). Returns (ϕ, true, first_order), each [..., 2]."""
    phi = theta - inner_lr * curvature_gradient(theta, curvature, center, linear)
    first_order = curvature_gradient(phi, curvature, center, linear)
    true = first_order - inner_lr * first_order @ _symmetric(curvature)
    return phi, true, first_order
# --8<-- [end:curvature]

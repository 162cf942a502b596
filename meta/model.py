"""The 1-40-40-1 ReLU regressor as pure functions over a dict of parameters.

Parameters that carry a leading task dimension ([T, ...]) let every function
here run T tasks at once with batched matrix products; no Python loop over
tasks. Parameters without it are shared by all tasks (θ before adaptation).
The backward pass (``loss_grad_cache``) and the Hessian-vector product are
written by hand: a handful of plain tensor operations, faster than autograd
for this tiny network and without an autograd graph; tests/test_meta.py holds
both against torch.autograd.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

LAYER_SIZES = (1, 40, 40, 1)
PARAM_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")
Params = dict[str, torch.Tensor]


def init_params(generator: torch.Generator, sizes: tuple[int, ...] = LAYER_SIZES) -> Params:
    """PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    params: Params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"w{layer}"] = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
        params[f"b{layer}"] = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
    return params


def per_task(params: Params, num_tasks: int) -> Params:
    """View shared parameters [..] as T task copies [T, ..] (no memory is copied;
    gradients flowing back through the view are summed over tasks)."""
    return {name: p.unsqueeze(0).expand(num_tasks, *p.shape) for name, p in params.items()}


def _linear(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """a @ w (+ b) for a [T, N, in] and weights per task ([T, in, out]) or
    shared ([in, out]), in as few operations as the shapes allow.

    With one input or one output feature (the first and last layers here) the
    product is an outer product, or a dot product per row: element-wise work
    that torch.compile fuses with its neighbours, where a matrix product would
    be a BLAS call of its own for almost no arithmetic. Otherwise one batched
    product (per-task weights) or one large product over all T·N rows (shared
    weights); transposed views go to BLAS as they are."""
    if a.shape[-1] == 1:
        out = a * w                                   # [T, N, 1] * [(T,) 1, out]
    elif w.shape[-1] == 1:
        out = (a * w.transpose(-1, -2)).sum(-1, keepdim=True)
    elif w.dim() == 3:
        return torch.bmm(a, w) if b is None else torch.baddbmm(b.unsqueeze(1), a, w)
    else:
        rows = a.reshape(-1, a.shape[-1])
        out = torch.mm(rows, w) if b is None else torch.addmm(b, rows, w)
        return out.view(*a.shape[:-1], w.shape[-1])
    if b is None:
        return out
    return out + (b.unsqueeze(1) if b.dim() == 2 else b)


def _points_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """aᵀ b for each task, summed over the points: a [T, N, m], b [T, N, n] -> [T, m, n]
    (a weight's gradient). Element-wise and a sum when m or n is 1, as in _linear."""
    if a.shape[-1] == 1 or b.shape[-1] == 1:
        return (a.unsqueeze(-1) * b.unsqueeze(-2)).sum(1)
    return torch.bmm(a.transpose(1, 2), b)


def _relu_backward(grad: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """grad where the ReLU output h is positive, else 0 (ReLU' is constant almost
    everywhere); PyTorch's own ReLU backward kernel, one operation instead of three."""
    return torch.ops.aten.threshold_backward(grad, h, 0.0)


def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Predictions [T, N, 1] for inputs x [T, N, 1].

    Parameters either carry a task dimension ([T, ...], one set per task) or
    not (one set shared by all tasks): _linear then runs a batched
    product or a single large one.
    """
    h = torch.relu(_linear(x, params["w1"], params["b1"]))
    h = torch.relu(_linear(h, params["w2"], params["b2"]))
    return _linear(h, params["w3"], params["b3"])


def loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each task, shaped [T]."""
    return (forward(params, x) - y).pow(2).mean(dim=(1, 2))


class ActivationCache(NamedTuple):
    """What the backward pass computed, kept for Hessian-vector products."""
    x: torch.Tensor
    h1: torch.Tensor      # ReLU outputs (their sign is the ReLU mask)
    h2: torch.Tensor
    d_out: torch.Tensor   # dL/d(output)
    d_z2: torch.Tensor
    scale: float          # 2 / N: d(d_out)/d(output)


# --8<-- [start:loss_grad_cache]
def loss_grad_cache(params: Params, x: torch.Tensor, y: torch.Tensor,
                    with_loss: bool = True) -> tuple[torch.Tensor | None, Params, ActivationCache]:
    """Each task's MSE [T] (None unless with_loss), its gradient with respect to
    that task's parameters ([T, ...] even for shared parameters), and the
    activations behind it.

    With N = 0 points the loss is 0 and the gradient exactly 0 (the count is
    clamped to 1), never NaN.
    """
    scale = 2.0 / max(x.shape[1], 1)
    w2, w3 = params["w2"], params["w3"]
    h1 = torch.relu(_linear(x, params["w1"], params["b1"]))
    h2 = torch.relu(_linear(h1, w2, params["b2"]))
    residual = _linear(h2, w3, params["b3"]) - y
    task_loss = residual.pow(2).sum(dim=(1, 2)) * (scale / 2) if with_loss else None

    d_out = residual * scale                                          # dL/d(output)
    d_z2 = _relu_backward(_linear(d_out, w3.transpose(-1, -2)), h2)
    d_z1 = _relu_backward(_linear(d_z2, w2.transpose(-1, -2)), h1)
    grads = {
        "w1": _points_product(x, d_z1), "b1": d_z1.sum(1),
        "w2": _points_product(h1, d_z2), "b2": d_z2.sum(1),
        "w3": _points_product(h2, d_out), "b3": d_out.sum(1),
    }
    return task_loss, grads, ActivationCache(x, h1, h2, d_out, d_z2, scale)
# --8<-- [end:loss_grad_cache]


def loss_and_grad(params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params]:
    """Each task's MSE [T] and its gradient with respect to that task's parameters."""
    task_loss, grads, _ = loss_grad_cache(params, x, y)
    return task_loss, grads


# --8<-- [start:hessian_vector_product]
def hessian_vector_product(params: Params, cache: ActivationCache, vector: Params) -> Params:
    """H v for each task, H the Hessian of the loss that ``cache`` came from.

    Pearlmutter's R-operator applied by hand to ``loss_grad_cache``: push the
    direction ``vector`` ([T, ...]) forwards through the network and the
    backward pass (ReLU masks are constant almost everywhere, so they pass R
    unchanged). baddbmm(a, b, c) = a + b @ c keeps each sum one operation.
    """
    w2, w3 = params["w2"], params["w3"]
    x, h1, h2, d_out, d_z2, scale = cache
    v_w2, v_w3 = vector["w2"], vector["w3"]
    r_h1 = _relu_backward(_linear(x, vector["w1"], vector["b1"]), h1)
    r_h2 = _relu_backward(_linear(h1, v_w2, vector["b2"]) + _linear(r_h1, w2), h2)
    r_d_out = (_linear(h2, v_w3, vector["b3"]) + _linear(r_h2, w3)) * scale
    r_d_z2 = _relu_backward(_linear(r_d_out, w3.transpose(-1, -2))
                            + _linear(d_out, v_w3.transpose(1, 2)), h2)
    r_d_z1 = _relu_backward(torch.baddbmm(_linear(r_d_z2, w2.transpose(-1, -2)),
                                          d_z2, v_w2.transpose(1, 2)), h1)
    return {
        "w1": _points_product(x, r_d_z1), "b1": r_d_z1.sum(1),
        "w2": torch.baddbmm(_points_product(r_h1, d_z2), h1.transpose(1, 2), r_d_z2),
        "b2": r_d_z2.sum(1),
        "w3": _points_product(r_h2, d_out) + _points_product(h2, r_d_out),
        "b3": r_d_out.sum(1),
    }
# --8<-- [end:hessian_vector_product]


def flatten_tasks(params: Params) -> torch.Tensor:
    """Per-task parameters [T, ...] as one matrix [T, P] (one row per task)."""
    num_tasks = next(iter(params.values())).shape[0]
    return torch.cat([p.reshape(num_tasks, -1) for p in params.values()], dim=1)


def unflatten_tasks(flat: torch.Tensor, like: Params) -> Params:
    """Views of a [T, P] matrix (or a [P] vector) shaped like the entries of
    ``like``, which carry no task dimension."""
    views, start = {}, 0
    for name, p in like.items():
        views[name] = flat[..., start:start + p.numel()].view(*flat.shape[:-1], *p.shape)
        start += p.numel()
    return views


def task_mean(grads: Params) -> Params:
    """Mean over the task dimension of per-task gradients [T, ...] -> [...].

    One concatenation and one mean instead of a mean per tensor: this runs
    every meta-iteration, where the count of operations, not their size, sets
    the pace on a CPU.
    """
    return unflatten_tasks(flatten_tasks(grads).mean(0), {n: g[0] for n, g in grads.items()})


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    return {name: torch.add(params[name], grads[name], alpha=-lr) for name in params}


def adapt(params: Params, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> Params:
    """U^(steps): plain gradient descent on each task's support MSE."""
    for _ in range(steps):
        params = sgd_step(params, loss_grad_cache(params, x, y, with_loss=False)[1], lr)
    return params

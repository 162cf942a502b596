"""The 1-40-40-1 ReLU regressor as pure functions over a dict of parameters.

Parameters that carry a leading task dimension ([T, ...]) let every function
here run T tasks at once with batched matrix products; no Python loop over
tasks. ``loss_and_grad`` is the network's backward pass written by hand: it
is a handful of plain tensor operations, so it exports to ONNX, runs faster
than autograd for this tiny network, and can itself be differentiated by
autograd (that is how MAML's meta-gradient flows through the inner update).
"""
from __future__ import annotations

import math

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


def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Predictions [T, N, 1] for inputs x [T, N, 1] and per-task parameters."""
    h = torch.relu(torch.baddbmm(params["b1"].unsqueeze(1), x, params["w1"]))
    h = torch.relu(torch.baddbmm(params["b2"].unsqueeze(1), h, params["w2"]))
    return torch.baddbmm(params["b3"].unsqueeze(1), h, params["w3"])


def loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each task, shaped [T]."""
    return (forward(params, x) - y).pow(2).mean(dim=(1, 2))


def loss_and_grad(params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params]:
    """Each task's MSE [T] and its gradient with respect to that task's parameters.

    With N = 0 points the loss is 0 and the gradient exactly 0 (the count is
    clamped to 1), never NaN.
    """
    num_points = max(x.shape[1], 1)
    z1 = torch.baddbmm(params["b1"].unsqueeze(1), x, params["w1"])
    h1 = torch.relu(z1)
    z2 = torch.baddbmm(params["b2"].unsqueeze(1), h1, params["w2"])
    h2 = torch.relu(z2)
    residual = torch.baddbmm(params["b3"].unsqueeze(1), h2, params["w3"]) - y
    task_loss = residual.pow(2).sum(dim=(1, 2)) / num_points

    d_out = residual * (2.0 / num_points)                              # dL/d(output)
    d_z2 = torch.bmm(d_out, params["w3"].transpose(1, 2)) * (z2 > 0)   # ReLU'(z2)
    d_z1 = torch.bmm(d_z2, params["w2"].transpose(1, 2)) * (z1 > 0)
    grads = {
        "w1": torch.bmm(x.transpose(1, 2), d_z1), "b1": d_z1.sum(1),
        "w2": torch.bmm(h1.transpose(1, 2), d_z2), "b2": d_z2.sum(1),
        "w3": torch.bmm(h2.transpose(1, 2), d_out), "b3": d_out.sum(1),
    }
    return task_loss, grads


def sgd_step(params: Params, grads: Params, lr: float | torch.Tensor) -> Params:
    return {name: params[name] - lr * grads[name] for name in params}


def adapt(params: Params, x: torch.Tensor, y: torch.Tensor, steps: int,
          lr: float | torch.Tensor) -> Params:
    """U^(steps): plain gradient descent on each task's support MSE."""
    for _ in range(steps):
        params = sgd_step(params, loss_and_grad(params, x, y)[1], lr)
    return params

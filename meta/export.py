"""Export of the sinusoid adaptation graph to ONNX, and the references it is held to.

The browser never re-implements the math: it runs the graph written here. The
graph takes a support set, a query set and a learning rate, and takes S
safeguarded gradient steps (one ONNX Scan over the steps) on the support MSE starting from the meta-learned
parameters (each step tries the rate ``inner_lr`` and halves it, up to H
times, while the step would raise the support loss; see
``meta.evaluate.backtracking_step``), returning the query predictions after
0, 1, ..., S steps and the support loss along the way (see the "sinusoid
adaptation graph" section of the contracts). With ``halvings=None`` the steps
are plain gradient descent. With ``lam`` (iMAML) the steps are the ones iMAML's
training takes (``meta.algorithms.imaml.proximal_step``): damped
Gauss–Newton steps on the proximal objective L(ϕ) + λ/2 ‖ϕ − θ‖², the first
at the step size ``inner_lr`` (1: the full step), a step that would not lower
it not taken and the task's step size halved instead.

``torch.autograd.grad`` does not survive ONNX export, so the exported module,
``SinusoidAdaptation``, carries the network's backward pass written out by
hand. ``reference_adaptation`` computes the same thing with autograd and
nothing else, one task and one trial step at a time; the tests hold the two
(and the ONNX graph) against each other.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meta.algorithms.imaml import KERNEL_SOLVE_STEPS
from meta.evaluate import HALVINGS, _check_lam, inner_procedure
from meta.model import LAYER_SIZES, PARAM_NAMES, Params

#: Opset of the exported graph; onnxruntime-web's WebAssembly backend runs it.
OPSET = 20

INPUT_NAMES = ("support_x", "support_y", "query_x", "inner_lr")
OUTPUT_NAMES = ("query_y", "support_loss")


def io_spec(name: str, shape: list, meaning: str, dtype: str = "float32") -> dict:
    """One input or output as the manifest's "graph" field documents it; shape
    entries are sizes or names of dynamic dimensions."""
    return {"name": name, "type": dtype, "shape": shape, "meaning": meaning}


#: The adaptation graph's inputs and outputs (the manifest's "graph"; S is the
#: entry's "steps") for the safeguarded step; ``signature`` gives any procedure's.
SIGNATURE = {
    "inputs": [
        io_spec("support_x", ["N", 1], "support inputs x; N ≥ 0 points (N = 0: no adaptation)"),
        io_spec("support_y", ["N", 1], "support targets y"),
        io_spec("query_x", ["M", 1], "where to predict; M ≥ 1 points"),
        io_spec("inner_lr", [], "learning rate of the adaptation steps"),
    ],
    "outputs": [
        io_spec("query_y", ["S+1", "M", 1],
                "predictions after 0, 1, …, S gradient steps on the support MSE, each safeguarded "
                "as the entry's inner_procedure says (backtracking: the step at inner_lr is halved, "
                "up to `halvings` times, while it would raise the support loss; if every trial "
                "would, the parameters stay put)"),
        io_spec("support_loss", ["S+1"], "support MSE before each step and after the last"),
    ],
}

#: What query_y holds when the graph runs iMAML's proximal steps.
PROXIMAL_QUERY_MEANING = (
    "predictions after 0, 1, …, S steps of iMAML's inner solver, as the entry's inner_procedure "
    "says: Gauss–Newton steps on the support MSE + lam/2·‖ϕ − θ‖² (θ the meta-learned "
    "parameters), scaled by a step size that starts at inner_lr (1: the full step); a step "
    "that would not lower that objective is not taken and the step size is halved for the "
    "next one")


def signature(procedure: dict | None = None) -> dict:
    """The manifest's "graph" for a model adapting with ``procedure`` (an
    ``inner_procedure`` dict): the same inputs and outputs for every model,
    query_y's meaning naming the procedure."""
    if not procedure or procedure.get("kind") != "proximal":
        return SIGNATURE
    outputs = [dict(SIGNATURE["outputs"][0], meaning=PROXIMAL_QUERY_MEANING),
               *SIGNATURE["outputs"][1:]]
    return {"inputs": SIGNATURE["inputs"], "outputs": outputs}

#: Every operator type the adaptation graph may contain: plain arithmetic,
#: matrix products, ReLU and its mask, the comparison that accepts a trial
#: step, reductions, and the few shape operators that turn the number of
#: support points into the divisor of the mean.
ALLOWED_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Reciprocal",
    "MatMul", "Gemm", "Transpose",
    "Relu", "Greater", "Less", "LessOrEqual", "Where",
    "Range", "Equal",          # the identity matrix of iMAML's N x N Gauss–Newton system
    "ReduceSum", "ReduceMean",
    "Shape", "Gather", "Cast", "Max", "Clip",
    "Constant", "Reshape", "Unsqueeze", "Squeeze", "Concat", "Expand",
    "Scan", "Identity",        # the loop over the adaptation steps, and its body's pass-throughs
})


def graph_ops(graph) -> set[str]:
    """Operator types of a graph's nodes, the bodies of its Scan (or other
    control-flow) nodes included."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                ops |= graph_ops(sub)
    return ops


#: Loggers the exporter reports through; quiet during export (see build_onnx_model).
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx",
                  "torch.__trace", "onnxscript", "onnx_ir")


def _check_params(params: Params) -> dict[str, torch.Tensor]:
    """The six parameter tensors, shapes checked against the 1-40-40-1 network."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of tensors named {PARAM_NAMES}, got {type(params).__name__}")
    missing = [n for n in PARAM_NAMES if n not in params]
    extra = [n for n in params if n not in PARAM_NAMES]
    if missing or extra:
        raise ValueError(f"params must have exactly the keys {PARAM_NAMES}; "
                         f"missing {missing}, unexpected {extra}")
    expected = {}
    for layer, (fan_in, fan_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:]), start=1):
        expected[f"w{layer}"] = (fan_in, fan_out)
        expected[f"b{layer}"] = (fan_out,)
    for name, shape in expected.items():
        got = tuple(params[name].shape)
        if got != shape:
            raise ValueError(f"params[{name!r}] has shape {list(got)}, expected {list(shape)} "
                             "(parameters without a task dimension)")
    return {name: params[name].detach() for name in PARAM_NAMES}


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    return steps


def _check_halvings(halvings: int | None) -> int | None:
    inner_procedure(halvings)          # raises ValueError naming the value
    return halvings


def _check_points(name: str, t: torch.Tensor, allow_empty: bool) -> None:
    if t.dim() != 2 or t.shape[1] != 1:
        raise ValueError(f"{name} must be shaped [points, 1], got {list(t.shape)}")
    if not allow_empty and t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point, got shape {list(t.shape)}")


def _mlp(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = torch.relu(x @ p["w1"] + p["b1"])
    h = torch.relu(h @ p["w2"] + p["b2"])
    return h @ p["w3"] + p["b3"]


# --8<-- [start:reference]
def reference_adaptation(params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
                         query_x: torch.Tensor, inner_lr: float | torch.Tensor, steps: int,
                         halvings: int | None = HALVINGS,
                         lam: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The safeguarded gradient steps on one task's support MSE, gradients from
    autograd, one trial at a time: the step at ``inner_lr`` is tried, then
    halved while it would raise the support loss, ``halvings`` times at most;
    if no trial keeps the loss from rising, the parameters stay. Plain
    gradient descent for halvings=None. With ``lam``, iMAML's inner solver
    instead: a Gauss–Newton step on F(ϕ) = L(ϕ) + λ/2 ‖ϕ − θ‖² (the support
    outputs' Jacobian J from autograd; δ = −u + Jᵀβ, (J Jᵀ + λN/2 · I) β = J u − r,
    u = ϕ − θ, r the residuals, β by an exact solve; the model's own solver
    inverts that system by Newton–Schulz iterations) scaled by the task's step size (first ``inner_lr``), taken if it
    lowers F, else not taken and the step size halved.

    Returns the query predictions after 0..steps updates, shaped [steps+1, M, 1],
    and the support MSE before each update and after the last, shaped [steps+1].
    With no support points the loss is 0, the gradient 0, and every row is the
    unadapted prediction. Computed in the dtype of ``support_x``.
    """
    steps = _check_steps(steps)
    halvings = _check_halvings(halvings)
    lam = _check_lam(lam)
    _check_points("support_x", support_x, allow_empty=True)
    _check_points("support_y", support_y, allow_empty=True)
    _check_points("query_x", query_x, allow_empty=False)
    if support_x.shape != support_y.shape:
        raise ValueError(f"support_x {list(support_x.shape)} and support_y "
                         f"{list(support_y.shape)} must have the same shape")
    dtype = support_x.dtype
    p = {n: t.to(dtype) for n, t in _check_params(params).items()}
    support_y, query_x = support_y.to(dtype), query_x.to(dtype)
    lr = torch.as_tensor(inner_lr, dtype=dtype)
    count = max(support_x.shape[0], 1)

    def support_mse(q: dict[str, torch.Tensor]) -> torch.Tensor:
        return (_mlp(q, support_x) - support_y).pow(2).sum() / count

    def loss_and_grads(q: dict[str, torch.Tensor]):
        q = {n: t.detach().requires_grad_(True) for n, t in q.items()}
        value = support_mse(q)
        grads = dict(zip(q, torch.autograd.grad(value, list(q.values()))))
        return {n: t.detach() for n, t in q.items()}, value.detach(), grads

    predictions, losses = [], []
    if lam is not None:
        theta = p
        flat_theta = torch.cat([t.reshape(-1) for t in theta.values()])

        def unflat(v: torch.Tensor) -> dict[str, torch.Tensor]:
            out, start = {}, 0
            for n, t in theta.items():
                out[n] = v[start:start + t.numel()].view_as(t)
                start += t.numel()
            return out

        def objective(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            support_loss = support_mse(unflat(v))
            return support_loss, support_loss + lam / 2 * (v - flat_theta).pow(2).sum()

        phi, step_size = flat_theta, lr
        support_loss, value = objective(phi)
        predictions.append(_mlp(theta, query_x))
        losses.append(support_loss)
        ridge = lam * count / 2
        for _ in range(steps):
            # The network's outputs at the support points, linearised at ϕ: J by autograd.
            residual = (_mlp(unflat(phi), support_x) - support_y).reshape(-1)
            if support_x.shape[0]:
                with torch.enable_grad():
                    jacobian = torch.autograd.functional.jacobian(
                        lambda v: _mlp(unflat(v), support_x).reshape(-1), phi)  # [N, P]
            else:
                jacobian = torch.zeros(0, phi.numel(), dtype=dtype)
            u = phi - flat_theta
            # (J Jᵀ + λN/2 · I) β = J u − r, solved exactly.
            system = jacobian @ jacobian.T + ridge * torch.eye(len(residual), dtype=dtype)
            beta = torch.linalg.solve(system, jacobian @ u - residual)
            candidate = phi + step_size * (jacobian.T @ beta - u)
            cand_loss, cand_value = objective(candidate)
            if cand_value < value:                            # NaN never passes
                phi, support_loss, value = candidate, cand_loss, cand_value
            else:
                step_size = step_size / 2
            predictions.append(_mlp(unflat(phi), query_x))
            losses.append(support_loss)
        return torch.stack(predictions).detach(), torch.stack(losses).detach()
    with torch.enable_grad():
        for step in range(steps + 1):
            p = {n: t.detach().requires_grad_(True) for n, t in p.items()}
            support_loss = support_mse(p)
            predictions.append(_mlp(p, query_x).detach())
            losses.append(support_loss.detach())
            if step == steps:
                break
            grads = dict(zip(p, torch.autograd.grad(support_loss, list(p.values()))))
            if halvings is None:
                p = {n: t - lr * grads[n] for n, t in p.items()}
                continue
            with torch.no_grad():
                for trial in range(halvings + 1):
                    rate = lr * 0.5 ** trial
                    candidate = {n: t - rate * grads[n] for n, t in p.items()}
                    if support_mse(candidate) <= support_loss:   # NaN never passes
                        p = candidate
                        break
    return torch.stack(predictions), torch.stack(losses)
# --8<-- [end:reference]


# --8<-- [start:module]
class SinusoidAdaptation(nn.Module):
    """The exported graph: S safeguarded gradient steps with the backward pass
    written by hand, the steps one Scan whose body is a single step.

    The meta-learned parameters are buffers, so they become constants of the
    graph. Only matrix products, elementwise arithmetic, ReLU, a
    ``where(z > 0, g, 0)`` mask, one ``<=`` comparison and sums are used; all
    are plain ONNX operators. Each step tries all H + 1 step lengths (inner_lr,
    inner_lr/2, …) in one batched forward pass over the support set, and masks
    pick the first that does not raise the support loss (none: the step
    length is 0). halvings=None exports plain gradient descent instead, and
    ``lam`` iMAML's damped Gauss–Newton steps on its proximal objective
    (``_forward_proximal``; their N x N identity matrix adds Range and Equal).
    """

    def __init__(self, params: Params, steps: int = 10, halvings: int | None = HALVINGS,
                 lam: float | None = None):
        super().__init__()
        self.steps = _check_steps(steps)
        self.halvings = _check_halvings(halvings)
        self.lam = _check_lam(lam)
        for name, tensor in _check_params(params).items():
            self.register_buffer(name, tensor.to(torch.float32).clone().contiguous())
        # What the Scan over the steps iterates on: one entry per step (unused).
        self.register_buffer("step_index", torch.arange(self.steps, dtype=torch.float32))
        if halvings is not None:
            trials = halvings + 1
            self.register_buffer("fractions", 0.5 ** torch.arange(trials, dtype=torch.float32))
            # earlier[i, j] = 1 for trials i < j: (accepted @ earlier)[j] counts
            # the accepted trials before j.
            self.register_buffer("earlier", torch.ones(trials, trials).triu(1))

    def _step_length(self, support_x, support_y, count, params, grads, rates, loss):
        """rates[h] = inner_lr / 2^h for the first trial h that does not raise
        the support loss, 0 if none does. ``rates``: [H+1, 1, 1], made once
        for all the steps (outside the Scan's body, as everything that does
        not change from step to step: each node in the body runs S times)."""
        w1, b1, w2, b2, w3, b3 = (p - rates * g for p, g in zip(params, grads))  # [H+1, in, out]
        h = torch.relu(support_x @ w1 + b1)                              # [H+1, N, 40]
        h = torch.relu(h @ w2 + b2)
        residual = h @ w3 + b3 - support_y                               # [H+1, N, 1]
        trial_loss = (residual * residual).sum(dim=(1, 2)) / count      # [H+1]
        accepted = torch.where(trial_loss <= loss, 1.0, 0.0)            # NaN never passes
        first = torch.where(accepted @ self.earlier > 0.5, 0.0, accepted)
        return (first * rates.reshape(-1)).sum()

    @staticmethod
    def _loss_and_grads(support_x, support_y, count, params):
        """The support MSE at ``params`` and its gradient, the backward pass by hand."""
        w1, b1, w2, b2, w3, b3 = params
        zero = torch.zeros((), dtype=support_x.dtype)
        z1 = support_x @ w1 + b1
        h1 = torch.relu(z1)
        z2 = h1 @ w2 + b2
        h2 = torch.relu(z2)
        residual = h2 @ w3 + b3 - support_y
        support_loss = (residual * residual).sum() / count
        d_out = residual * (2.0 / count)
        d_z2 = torch.where(z2 > 0, d_out @ w3.transpose(0, 1), zero)
        d_z1 = torch.where(z1 > 0, d_z2 @ w2.transpose(0, 1), zero)
        return support_loss, (support_x.transpose(0, 1) @ d_z1, d_z1.sum(0),
                              h1.transpose(0, 1) @ d_z2, d_z2.sum(0),
                              h2.transpose(0, 1) @ d_out, d_out.sum(0))

    def _proximal_objective(self, support_x, support_y, count, params, theta):
        """The support MSE at ``params`` and the proximal objective MSE + λ/2 ‖ϕ − θ‖²."""
        w1, b1, w2, b2, w3, b3 = params
        h = torch.relu(support_x @ w1 + b1)
        h = torch.relu(h @ w2 + b2)
        residual = h @ w3 + b3 - support_y
        support_loss = (residual * residual).sum() / count
        penalty = sum(((p - t) * (p - t)).sum() for p, t in zip(params, theta))
        return support_loss, support_loss + (self.lam / 2) * penalty

    def _gauss_newton_direction(self, support_x, support_y, count, identity, params, theta):
        """The Gauss–Newton step δ on the proximal objective at ``params``, as
        meta.algorithms.imaml.proximal_step computes it for a batch of tasks:
        δ = −u + Jᵀβ, (J Jᵀ + λN/2 · I) β = J u − r, u = ϕ − θ, the N x N system
        inverted by KERNEL_SOLVE_STEPS Newton–Schulz iterations."""
        w1, b1, w2, b2, w3, b3 = params
        zero = torch.zeros((), dtype=support_x.dtype)
        z1 = support_x @ w1 + b1                                       # [N, 40]
        h1 = torch.relu(z1)
        z2 = h1 @ w2 + b2
        h2 = torch.relu(z2)
        residual = h2 @ w3 + b3 - support_y                            # [N, 1]
        d_z2 = torch.where(z2 > 0, w3.transpose(0, 1), zero)           # d(output)/dz2 [N, 40]
        d_z1 = torch.where(z1 > 0, d_z2 @ w2.transpose(0, 1), zero)
        gram2 = d_z2 @ d_z2.transpose(0, 1)
        gram1 = d_z1 @ d_z1.transpose(0, 1)
        kernel = (h2 @ h2.transpose(0, 1) + 1.0 + (h1 @ h1.transpose(0, 1) + 1.0) * gram2
                  + (support_x @ support_x.transpose(0, 1) + 1.0) * gram1)   # J Jᵀ [N, N]
        u = tuple(p - t for p, t in zip(params, theta))
        ju = (((support_x @ u[0] + u[1]) * d_z1).sum(1, keepdim=True)
              + ((h1 @ u[2] + u[3]) * d_z2).sum(1, keepdim=True) + h2 @ u[4] + u[5])
        # (J Jᵀ + ridge·I)⁻¹ by Newton–Schulz iterations, as kernel_solve.
        system = kernel + (self.lam * count / 2) * identity
        inverse = identity / (system * identity).sum()
        for _ in range(KERNEL_SOLVE_STEPS):
            inverse = 2.0 * inverse - inverse @ system @ inverse
        beta = inverse @ (ju - residual)                                # [N, 1]
        a1, a2 = beta * d_z1, beta * d_z2
        jtb = (support_x.transpose(0, 1) @ a1, a1.sum(0), h1.transpose(0, 1) @ a2, a2.sum(0),
               h2.transpose(0, 1) @ beta, beta.sum(0))
        return tuple(g - v for g, v in zip(jtb, u))

    def _forward_proximal(self, support_x, support_y, count, inner_lr):
        """iMAML's inner solver, step for step as meta.algorithms.imaml.proximal_step:
        damped Gauss–Newton steps on the proximal objective; the parameters
        after 0..S steps, stacked, and the support MSE at each."""
        theta = tuple(getattr(self, n) for n in PARAM_NAMES)
        loss, objective = self._proximal_objective(support_x, support_y, count, theta, theta)
        identity = torch.eye(support_x.shape[0], dtype=support_x.dtype)     # [N, N]

        def step(carry, _):
            *params, loss, objective, step_size = carry
            direction = self._gauss_newton_direction(support_x, support_y, count, identity,
                                                     params, theta)
            candidate = tuple(p + step_size * d for p, d in zip(params, direction))
            cand_loss, cand_objective = self._proximal_objective(support_x, support_y, count,
                                                                 candidate, theta)
            better = cand_objective < objective                 # NaN never passes
            params = tuple(torch.where(better, c, p) for c, p in zip(candidate, params))
            loss = torch.where(better, cand_loss, loss)
            objective = torch.where(better, cand_objective, objective)
            step_size = torch.where(better, step_size, step_size * 0.5)
            return (*params, loss, objective, step_size), tuple(t.clone() for t in (*params, loss))

        *_, stacked = self._steps(step, (*theta, loss, objective, inner_lr + 0.0), (*theta, loss))
        trajectory = [torch.cat([t.unsqueeze(0), s]) for t, s in zip(theta, stacked[:-1])]
        return trajectory, torch.cat([loss.unsqueeze(0), stacked[-1]])

    def _steps(self, step, init, per_step):
        """The S steps as one ONNX Scan (torch's ``scan``): a graph a tenth the
        size of the same steps unrolled, which onnxruntime-web opens several
        times faster (opening the unrolled graph was about a sixth of a
        sinusoid widget's start-up). ``per_step``: tensors shaped like one
        step's outputs. Returns (final carry, the per-step outputs stacked on a
        first dimension of size S)."""
        from torch._higher_order_ops.scan import scan   # a prototype API in torch 2.x

        if self.steps == 0:
            return init, tuple(t.new_zeros((0, *t.shape)) for t in per_step)
        # Copies: a Scan's first carry must not be a tensor the steps also read.
        return scan(step, tuple(t.clone() for t in init), self.step_index)

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor,
                query_x: torch.Tensor, inner_lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The mean's divisor; clamped to 1 so that N = 0 gives loss 0 and gradient 0.
        count = torch.clamp(torch.ones_like(support_y).sum(), min=1.0)
        if self.lam is not None:
            trajectory, losses = self._forward_proximal(support_x, support_y, count, inner_lr)
            return self._predict(trajectory, query_x), losses
        theta = tuple(getattr(self, n) for n in PARAM_NAMES)
        rates = None if self.halvings is None else (inner_lr * self.fractions).view(-1, 1, 1)

        def step(params, _):
            support_loss, grads = self._loss_and_grads(support_x, support_y, count, params)
            rate = inner_lr if self.halvings is None else self._step_length(
                support_x, support_y, count, params, grads, rates, support_loss)
            params = tuple(p - rate * g for p, g in zip(params, grads))
            return params, tuple(t.clone() for t in (*params, support_loss))

        final, stacked = self._steps(step, theta, (*theta, inner_lr))
        # The support loss after the last step (the exporter drops the unused gradient).
        last_loss, _ = self._loss_and_grads(support_x, support_y, count, final)
        trajectory = [torch.cat([t.unsqueeze(0), s]) for t, s in zip(theta, stacked[:-1])]
        losses = torch.cat([stacked[-1], last_loss.unsqueeze(0)])
        return self._predict(trajectory, query_x), losses            # [S+1, M, 1], [S+1]

    @staticmethod
    def _predict(trajectory, query_x):
        """Query predictions of all S+1 parameter sets (each stacked on a first
        dimension) in one batched pass. Every row goes through the same kernels
        (a runtime may pre-pack constant weights and round step 0 differently),
        so with N = 0 the rows are equal."""
        w1, b1, w2, b2, w3, b3 = trajectory
        q = torch.relu(query_x @ w1 + b1.unsqueeze(1))      # [S+1, M, 40]
        q = torch.relu(q @ w2 + b2.unsqueeze(1))
        return q @ w3 + b3.unsqueeze(1)                      # [S+1, M, 1]
# --8<-- [end:module]


def _example_inputs(num_support: int = 5, num_query: int = 7) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    support_x = torch.rand(num_support, 1, generator=g) * 10 - 5
    query_x = torch.linspace(-5, 5, num_query).unsqueeze(1)
    return support_x, torch.sin(support_x), query_x, torch.tensor(0.01)


def _strip_metadata(model) -> None:
    """Drop per-node metadata and doc strings: they are most of the file's bytes
    and hold source paths of this machine."""
    def strip_graph(graph):
        graph.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                if attr.HasField("g"):
                    strip_graph(attr.g)
                for sub in attr.graphs:
                    strip_graph(sub)
        for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
            del value.metadata_props[:]
            value.doc_string = ""
    model.doc_string = ""
    del model.metadata_props[:]
    strip_graph(model.graph)
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""


def export_module(module: nn.Module, example_inputs: tuple, input_names, output_names,
                  dynamic_shapes: dict, what: str):
    """Export ``module`` with the dynamo exporter into a checked, metadata-free
    ``onnx.ModelProto`` (every graph of the project goes through here)."""
    import onnx

    # The exporter reports its progress on stdout and through logging/warnings;
    # none of it is useful to a build log, so keep it out unless export fails.
    captured = io.StringIO()
    loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(captured), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(), example_inputs, dynamo=True, external_data=False,
                input_names=list(input_names), output_names=list(output_names),
                dynamic_shapes=dynamic_shapes, opset_version=OPSET, verbose=False,
            )
    except Exception as error:
        raise RuntimeError(f"ONNX export of the {what} graph failed: {error}\n"
                           f"exporter output:\n{captured.getvalue()}") from error
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    model = program.model_proto
    _strip_metadata(model)
    model.producer_version = ""
    onnx.checker.check_model(model, full_check=True)
    return model


def build_onnx_model(params: Params, steps: int = 10, halvings: int | None = HALVINGS,
                     lam: float | None = None):
    """The adaptation graph as an in-memory, checked ``onnx.ModelProto``."""
    num_support = torch.export.Dim("N", min=0)
    num_query = torch.export.Dim("M", min=1)
    dynamic_shapes = {
        "support_x": {0: num_support},
        "support_y": {0: num_support},
        "query_x": {0: num_query},
        "inner_lr": {},
    }
    return export_module(SinusoidAdaptation(params, steps, halvings, lam), _example_inputs(), INPUT_NAMES,
                         OUTPUT_NAMES, dynamic_shapes, "sinusoid adaptation")


def write_model(model, path: str | os.PathLike) -> dict:
    """Write an ``onnx.ModelProto`` to ``path`` atomically (temporary file in the
    same folder, then rename). Returns {"path", "bytes", "ops"}."""
    path = Path(path)
    data = model.SerializeToString(deterministic=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp's 0600 would keep a web server from reading it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return {"path": str(path), "bytes": len(data), "ops": sorted(graph_ops(model.graph))}


def export_sinusoid(params: Params, path: str | os.PathLike, steps: int = 10,
                    halvings: int | None = HALVINGS, lam: float | None = None) -> dict:
    """Write the adaptation graph to ``path`` atomically (iMAML's proximal steps
    with ``lam``). Returns {"path", "bytes", "ops", "steps", "inner_procedure"}."""
    model = build_onnx_model(params, steps, halvings, lam)
    return {**write_model(model, path), "steps": steps,
            "inner_procedure": inner_procedure(halvings, lam)}


_SESSIONS: dict[tuple[str, int, int], object] = {}


def onnx_session(path: str | os.PathLike):
    """An onnxruntime CPU session (one thread) for the graph at ``path``, kept
    while the file is unchanged."""
    import onnxruntime as ort

    path = os.fspath(path)
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    session = _SESSIONS.get(key)
    if session is None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        _SESSIONS[key] = session
    return session


def run_onnx(path: str | os.PathLike, support_x, support_y, query_x,
             inner_lr) -> tuple[np.ndarray, np.ndarray]:
    """Run an exported adaptation graph with onnxruntime on the CPU.

    Inputs are array-likes ([N,1], [N,1], [M,1], scalar); returns
    (query_y [S+1, M, 1], support_loss [S+1]) as float32 numpy arrays.
    """
    session = onnx_session(path)
    feeds = {
        "support_x": _as_points("support_x", support_x),
        "support_y": _as_points("support_y", support_y),
        "query_x": _as_points("query_x", query_x),
        "inner_lr": np.asarray(_to_numpy(inner_lr), dtype=np.float32).reshape(()),
    }
    if feeds["support_x"].shape != feeds["support_y"].shape:
        raise ValueError(f"support_x {list(feeds['support_x'].shape)} and support_y "
                         f"{list(feeds['support_y'].shape)} must have the same shape")
    if feeds["query_x"].shape[0] == 0:
        raise ValueError("query_x must hold at least one point")
    query_y, support_loss = session.run(list(OUTPUT_NAMES), feeds)
    return query_y, support_loss


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _as_points(name: str, value) -> np.ndarray:
    array = np.ascontiguousarray(_to_numpy(value), dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != 1:
        raise ValueError(f"{name} must be shaped [points, 1] (or [points]), got {list(array.shape)}")
    return array

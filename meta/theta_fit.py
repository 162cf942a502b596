"""The fit of a θ that is not baked into the graph: what a live run's models predict.

The sinusoid models' adaptation graphs (meta/export.py) hold their θ as
constants; a page that meta-trains its own θ with the meta-step graphs
(meta/meta_step.py) needs the adaptation with θ as an input. ``ThetaFit`` is
meta.model.adapt, the plain gradient steps on the support MSE that MAML's,
first-order MAML's and Reptile's inner loops take, with one θ per task (rows
of ``params``) so that one run fits several models at once, or one model on
many tasks. tests/test_meta_step.py holds the graph against meta.model.adapt.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from meta.meta_step import NUM_PARAMS, _io, _like, run_float_graph
from meta.model import adapt, forward, loss, loss_grad_cache, sgd_step, unflatten_tasks

#: Plain gradient steps the θ-fit graph unrolls (predictions after 0…S).
FIT_STEPS = 10
FIT_NAME = "theta-fit"

#: The θ-fit graph's inputs and outputs, as its manifest entry documents them.
FIT_SIGNATURE = {
    "inputs": [
        _io("params", ["T", "P"], "one θ per task, flat as in the meta-step graphs (P = 1761)"),
        _io("support_x", ["T", "K", 1], "each task's support inputs x (K ≥ 1 points)"),
        _io("support_y", ["T", "K", 1], "each task's support targets y"),
        _io("query_x", ["T", "M", 1], "where to predict, per task (M ≥ 1 points)"),
        _io("inner_lr", [], "α, the learning rate of the plain gradient steps"),
    ],
    "outputs": [
        _io("query_y", ["S+1", "T", "M", 1], "predictions at query_x after 0, 1, …, S plain "
            "gradient steps on the task's support MSE from its θ (S = 10)"),
        _io("support_loss", ["S+1", "T"], "each task's support MSE before each step and after the last"),
    ],
}
FIT_INPUTS = tuple(spec["name"] for spec in FIT_SIGNATURE["inputs"])
FIT_OUTPUTS = tuple(spec["name"] for spec in FIT_SIGNATURE["outputs"])


# --8<-- [start:theta_fit]
class ThetaFit(nn.Module):
    """Predictions after 0…``steps`` plain gradient steps from a θ per task."""

    def __init__(self, steps: int = FIT_STEPS):
        super().__init__()
        self.steps = steps
        self.like = _like()

    def forward(self, params, support_x, support_y, query_x, inner_lr):
        phi = unflatten_tasks(params, self.like)             # [T, ...] views: one θ per task
        predictions, losses = [], []
        for step in range(self.steps + 1):
            task_loss, grads, _ = loss_grad_cache(phi, support_x, support_y)
            predictions.append(forward(phi, query_x))
            losses.append(task_loss)
            if step < self.steps:
                phi = sgd_step(phi, grads, inner_lr)
        return torch.stack(predictions), torch.stack(losses)
# --8<-- [end:theta_fit]


def torch_fit(params, support_x, support_y, query_x, inner_lr, steps: int = FIT_STEPS):
    """The same fit with meta.model.adapt, one step count at a time (the reference)."""
    params = torch.as_tensor(np.asarray(params, dtype=np.float32))
    sx, sy, qx = (torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (support_x, support_y, query_x))
    theta = unflatten_tasks(params, _like())
    rows, losses = [], []
    with torch.no_grad():
        for s in range(steps + 1):
            phi = adapt(theta, sx, sy, s, float(inner_lr))
            rows.append(forward(phi, qx).numpy())
            losses.append(loss(phi, sx, sy).numpy())
    return np.stack(rows), np.stack(losses)


def build_fit_model(steps: int = FIT_STEPS):
    """The θ-fit graph as a checked ``onnx.ModelProto``; T, K and M dynamic."""
    from meta.export import export_module

    generator = torch.Generator().manual_seed(0)
    example = (torch.randn(3, NUM_PARAMS, generator=generator) * 0.1,
               torch.randn(3, 4, 1, generator=generator), torch.randn(3, 4, 1, generator=generator),
               torch.randn(3, 5, 1, generator=generator), torch.tensor(0.01))
    tasks, k_support, m_query = (torch.export.Dim(n, min=1) for n in ("T", "K", "M"))
    dynamic = {"params": {0: tasks}, "support_x": {0: tasks, 1: k_support},
               "support_y": {0: tasks, 1: k_support}, "query_x": {0: tasks, 1: m_query}, "inner_lr": {}}
    return export_module(ThetaFit(steps), example, FIT_INPUTS, FIT_OUTPUTS, dynamic, "θ-fit")


def export_fit(path: str | os.PathLike, steps: int = FIT_STEPS) -> dict:
    """Write the θ-fit graph to ``path`` atomically. Returns {"path", "bytes", "ops"}."""
    from meta.export import write_model

    return write_model(build_fit_model(steps), path)


def run_fit(path: str | os.PathLike, feeds: dict) -> dict[str, np.ndarray]:
    """The θ-fit graph with onnxruntime (CPU, one thread); feeds as array-likes."""
    return run_float_graph(path, feeds, FIT_INPUTS, FIT_OUTPUTS, "θ-fit")

"""The toy problems of meta/toy.py as ONNX graphs for the loss-landscape widgets.

Three graphs, each a thin module whose forward calls the functions of
meta/toy.py (so the browser runs the very code the articles show):

    toy-landscape   each task's loss over a set of points of the (a, b) plane,
                    with iMAML's proximal term λ/2 ‖ϕ − anchor‖² (λ = 0: the
                    plain loss): the contours of every widget.
    toy-meta        from one θ: each task's adaptation trajectory (plain and
                    proximal steps), and each method's meta-gradient with its
                    settings as inputs, including iMAML's CG iterates and the
                    exact implicit gradient.
    toy-curvature   the quadratic of the curvature demo: its values on points,
                    one inner step, the true and the first-order meta-gradient.

Every input is float32, step counts included (rounded and clamped inside the
graph), so a page feeds them all the same way. ``GRAPHS`` describes them for
the manifest; ``reference_outputs`` computes the same outputs in float64 with
PyTorch, which ``maml-site check`` and the tests hold the graphs to.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from meta import toy
from meta.export import export_module, io_spec, onnx_session, write_model

S, C = toy.TOY_GRAPH_STEPS, toy.TOY_CG_STEPS


def _count(value: torch.Tensor, most: int) -> torch.Tensor:
    """A float step count as an index tensor [1]: rounded and clamped to 0..most."""
    return torch.clamp(torch.round(value), 0, most).to(torch.int64).reshape(1)


def _pick(series: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """series [T, K, ...] at position index[0] along K -> [T, ...]."""
    return torch.index_select(series, 1, index).squeeze(1)


class ToyLandscape(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("x", toy.inputs())

    def forward(self, points, task_params, anchor, lam):
        return toy.landscape(points, task_params, anchor, lam, x=self.x)


class ToyMeta(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("x", toy.inputs())

    def forward(self, theta, task_params, inner_lr, inner_steps, lam, cg_steps):
        x = self.x
        theta = theta.reshape(1, 2)
        unrolled = toy.unroll(theta, task_params, inner_lr, S, x=x)
        path, losses, grads, _ = (t[:, 0] for t in unrolled)              # one θ
        prox = toy.adapt(theta, task_params, inner_lr, S, lam=lam, x=x)[0][:, 0]
        m = _count(inner_steps, S)
        maml = _pick(toy.maml_gradients(theta, task_params, inner_lr, S, unrolled=unrolled)[:, 0], m)
        fomaml = _pick(grads, m)
        reptile = _pick(toy.reptile_gradients(path), m)
        phi = _pick(prox, m).unsqueeze(1)                                 # [T, 1, 2]
        cg = toy.implicit_gradient_cg(phi, task_params, lam, C, x=x)[:, 0]
        exact = toy.implicit_gradient_exact(phi, task_params, lam, x=x)[:, 0]
        imaml = _pick(cg, _count(cg_steps, C))
        meta = torch.stack([maml, fomaml, reptile, imaml]).mean(1)
        return path, losses, prox, maml, fomaml, reptile, cg, imaml, exact, meta


class ToyCurvature(nn.Module):
    def forward(self, points, theta, curvature, center, linear, inner_lr):
        value = toy.curvature_value(points, curvature, center, linear)
        phi, true, first_order = toy.curvature_meta_gradients(theta, curvature, center, linear,
                                                              inner_lr)
        return value, phi, true, first_order


@dataclass(frozen=True)
class ToyGraph:
    name: str
    module: Callable[[], nn.Module]
    inputs: list[dict]
    outputs: list[dict]
    dynamic: dict[str, dict[int, str]]       # input -> {axis: dimension name}
    example: Callable[[], dict[str, torch.Tensor]]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    @property
    def input_names(self) -> list[str]:
        return [spec["name"] for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec["name"] for spec in self.outputs]

    def signature(self) -> dict:
        return {"inputs": self.inputs, "outputs": self.outputs}


def _tasks_example() -> torch.Tensor:
    return toy.tasks_tensor()


def _grid_example(count: int = 5) -> torch.Tensor:
    return torch.rand(count, 2, generator=torch.Generator().manual_seed(1))


_TASKS_IN = io_spec("task_params", ["T", 2], "each task's target (a*, b*); T ≥ 1 tasks")
METHODS = ("maml", "fomaml", "reptile", "imaml")

GRAPHS: dict[str, ToyGraph] = {g.name: g for g in (
    ToyGraph(
        "toy-landscape", ToyLandscape,
        inputs=[io_spec("points", ["G", 2], "points (a, b) of the plane; G ≥ 1"), _TASKS_IN,
                io_spec("anchor", [2], "θ of the proximal term"),
                io_spec("lam", [], "λ of the proximal term λ/2 ‖ϕ − θ‖² (0: the plain loss)")],
        outputs=[io_spec("loss", ["T", "G"], "each task's loss (plus the proximal term) at each point")],
        dynamic={"points": {0: "G"}, "task_params": {0: "T"}},
        example=lambda: {"points": _grid_example(), "task_params": _tasks_example(),
                         "anchor": torch.tensor([0.5, 0.5]), "lam": torch.tensor(0.0)}),
    ToyGraph(
        "toy-meta", ToyMeta,
        inputs=[io_spec("theta", [2], "the meta-parameters θ = (a, b)"), _TASKS_IN,
                io_spec("inner_lr", [], "inner learning rate α"),
                io_spec("inner_steps", [], f"inner steps m (rounded, 0..{S})"),
                io_spec("lam", [], "iMAML's λ (proximal strength)"),
                io_spec("cg_steps", [], f"iMAML's conjugate-gradient iterations (rounded, 0..{C})")],
        outputs=[
            io_spec("trajectory", ["T", S + 1, 2], f"ϕ after 0..{S} plain gradient steps from θ"),
            io_spec("trajectory_loss", ["T", S + 1], "each task's loss along its trajectory"),
            io_spec("prox_trajectory", ["T", S + 1, 2],
                    "ϕ after 0..S gradient steps on the proximal objective L(ϕ) + λ/2 ‖ϕ − θ‖²"),
            io_spec("maml", ["T", 2], "exact MAML meta-gradient through m steps, per task"),
            io_spec("fomaml", ["T", 2], "first-order MAML meta-gradient ∇L(ϕ_m), per task"),
            io_spec("reptile", ["T", 2], "Reptile's direction θ − ϕ_m, per task"),
            io_spec("imaml_cg", ["T", C + 1, 2],
                    "CG iterates for iMAML's implicit gradient at the proximal ϕ_m"),
            io_spec("imaml", ["T", 2], "the CG iterate after cg_steps iterations, per task"),
            io_spec("imaml_exact", ["T", 2], "the implicit gradient solved exactly, per task"),
            io_spec("meta_gradient", [4, 2], "task means of maml, fomaml, reptile and imaml"),
        ],
        dynamic={"task_params": {0: "T"}},
        example=lambda: {"theta": torch.tensor([0.2, 0.7]), "task_params": _tasks_example(),
                         "inner_lr": torch.tensor(0.1), "inner_steps": torch.tensor(3.0),
                         "lam": torch.tensor(1.0), "cg_steps": torch.tensor(2.0)}),
    ToyGraph(
        "toy-curvature", ToyCurvature,
        inputs=[io_spec("points", ["G", 2], "points of the plane; G ≥ 1"),
                io_spec("theta", [2], "the point θ"),
                io_spec("curvature", [2, 2], "C (symmetrised: (C + Cᵀ)/2 is used)"),
                io_spec("center", [2], "c"), io_spec("linear", [2], "g"),
                io_spec("inner_lr", [], "inner learning rate α")],
        outputs=[io_spec("value", ["G"], "f(x) = ½ (x − c)ᵀ C (x − c) + gᵀx at the points"),
                 io_spec("phi", [2], "one inner step ϕ = θ − α ∇f(θ)"),
                 io_spec("gradient", [2], "true meta-gradient (I − α C) ∇f(ϕ)"),
                 io_spec("first_order", [2], "first-order meta-gradient ∇f(ϕ)")],
        dynamic={"points": {0: "G"}},
        example=lambda: {"points": _grid_example(), "theta": torch.tensor([0.3, -0.2]),
                         "curvature": torch.tensor([[1.0, 0.3], [0.3, 2.0]]),
                         "center": torch.tensor([0.1, 0.2]), "linear": torch.tensor([0.5, -0.5]),
                         "inner_lr": torch.tensor(0.2)}),
)}


def build_toy_model(name: str):
    """A toy graph as a checked ``onnx.ModelProto``."""
    graph = GRAPHS[name]
    example = graph.example()
    dims: dict[str, torch.export.Dim] = {}
    dynamic_shapes = {}
    for input_name in graph.input_names:
        axes = graph.dynamic.get(input_name, {})
        dynamic_shapes[input_name] = {
            axis: dims.setdefault(dim, torch.export.Dim(dim, min=1)) for axis, dim in axes.items()}
    return export_module(graph.module(), tuple(example[n] for n in graph.input_names),
                         graph.input_names, graph.output_names, dynamic_shapes, name)


def export_toy(name: str, path: str | os.PathLike) -> dict:
    """Write the toy graph ``name`` to ``path`` atomically."""
    return write_model(build_toy_model(name), path)


def reference_outputs(name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's outputs computed by PyTorch in float64 from the same feeds."""
    graph = GRAPHS[name]
    module = graph.module().double()
    args = [torch.as_tensor(np.asarray(feeds[n]), dtype=torch.float64) for n in graph.input_names]
    with torch.no_grad():
        out = module(*args)
    out = out if isinstance(out, tuple) else (out,)
    return {n: t.numpy() for n, t in zip(graph.output_names, out)}


def run_toy(path: str | os.PathLike, name: str, feeds: dict) -> dict[str, np.ndarray]:
    """Run an exported toy graph with onnxruntime; feeds as array-likes."""
    graph = GRAPHS[name]
    missing = [n for n in graph.input_names if n not in feeds]
    if missing:
        raise ValueError(f"{name} needs the inputs {', '.join(graph.input_names)}; "
                         f"missing {', '.join(missing)}")
    arrays = {n: np.asarray(feeds[n], dtype=np.float32) for n in graph.input_names}
    values = onnx_session(path).run(graph.output_names, arrays)
    return dict(zip(graph.output_names, values))


def parity_feeds(name: str) -> list[dict[str, np.ndarray]]:
    """Inputs that cover each graph's settings: corners and the middle of the
    plane, rates up to 0.3, 0..S steps, λ from 0 to 50, 0..10 CG iterations."""
    rng = np.random.default_rng(2024)
    tasks = np.asarray(toy.TOY_TASKS, dtype=np.float32)
    three = np.vstack([tasks, [[0.6, 0.2]]]).astype(np.float32)
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21)), -1)
    grid = grid.reshape(-1, 2).astype(np.float32)
    if name == "toy-landscape":
        return [{"points": grid, "task_params": t, "anchor": np.float32([0.3, 0.6]),
                 "lam": np.float32(lam)} for t, lam in ((tasks, 0.0), (three, 0.5), (tasks, 50.0))]
    if name == "toy-meta":
        feeds = []
        for theta, lr, steps, lam, cg in (([0.5, 0.5], 0.1, 1, 1.0, 2), ([0.05, 0.95], 0.3, S, 0.1, C),
                                          ([0.9, 0.1], 0.05, 0, 0.0, 0), ([0.3, 0.3], 0.2, 7, 50.0, 1)):
            for t in (tasks, three):
                feeds.append({"theta": np.float32(theta), "task_params": t,
                              "inner_lr": np.float32(lr), "inner_steps": np.float32(steps),
                              "lam": np.float32(lam), "cg_steps": np.float32(cg)})
        return feeds
    if name == "toy-curvature":
        points = (rng.random((50, 2)) * 4 - 2).astype(np.float32)
        return [{"points": points, "theta": np.float32(theta), "curvature": np.float32(c),
                 "center": np.float32([0.2, -0.3]), "linear": np.float32(g),
                 "inner_lr": np.float32(lr)}
                for theta, c, g, lr in (([1.0, -1.0], [[2, 0.5], [0.5, 1]], [0.5, 0.2], 0.2),
                                        ([-1.5, 0.5], [[0, 0], [0, 0]], [1, -1], 0.3),
                                        ([0.0, 1.5], [[-1, 0.8], [0.2, 3]], [0, 0], 0.1))]
    raise KeyError(f"unknown toy graph {name!r}; known: {', '.join(GRAPHS)}")


def parity_error(path: str | os.PathLike, name: str) -> float:
    """Largest error of the ONNX graph against ``reference_outputs`` over
    ``parity_feeds``: |onnx − torch| / max(1, |torch|) (absolute for values up
    to 1, relative above, where float32 cannot hold 1e-5 absolutely)."""
    worst = 0.0
    for feeds in parity_feeds(name):
        got = run_toy(path, name, feeds)
        expected = reference_outputs(name, feeds)
        for key, value in expected.items():
            if got[key].shape != value.shape:
                return float("inf")
            scale = np.maximum(1.0, np.abs(value))
            error = np.max(np.abs(got[key] - value) / scale, initial=0.0)
            worst = max(worst, float(error) if np.isfinite(got[key]).all() else float("inf"))
    return worst

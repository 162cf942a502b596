"""One meta-iteration of an algorithm as an ONNX graph: meta-training in the browser.

``MetaStep(cfg)`` is a module whose forward is one iteration of meta/train.py's
loop for the algorithm and settings of the TrainConfig ``cfg``:

    the algorithm's own meta_gradient(θ, task batch, cfg)   (meta/algorithms/*.py)
    -> the outer optimiser's step on the flat θ              (torch.optim.Adam, or SGD)

The meta-gradient is the very function training calls (pure tensor code with
a hand-written backward and Hessian-vector product, so it exports); the
optimiser step is written out here (``adam_step``, ``sgd_step``) because
torch.optim does not export, with the same arithmetic as the fused
torch.optim.Adam that meta/train.py uses. tests/test_meta_step.py holds the
exported graph against meta_gradient + torch.optim per iteration and over 100.

Every graph has the same inputs and outputs (``SIGNATURE``), whatever the
algorithm, so a page drives them all alike: θ and the optimiser state go in
and come out updated. Reptile's outer optimiser is plain SGD: its graph
passes the moments through unchanged. The learning rates are inputs; the
number of inner steps and the algorithm's options (iMAML's λ, CG steps) are
fixed in the graph (the algorithm's Python loops unroll), and recorded in its
manifest entry. The task batch's sizes T, K and Q are dynamic.
"""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from meta import algorithms
from meta.model import LAYER_SIZES, PARAM_NAMES, init_params, unflatten_tasks
from meta.tasks import SINUSOID, TaskBatch

#: Adam's constants as meta/train.py's torch.optim.Adam has them (defaults).
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
_SCALE = 2.0 ** 27

#: Algorithms with a meta-step graph. iMAML's exports too (MetaStep runs any
#: algorithm) and matches one PyTorch iteration to 6e-6, but not a run: after
#: 100 iterations θ differed by 0.075, as its inner solver's accept/refuse
#: tests and the truncated CG's stopping tests come out differently under
#: float32 rounding; its graph (ten proximal steps and five CG iterations
#: unrolled) is also 132 KB and takes about 100 s to export here.
ALGORITHMS = ("pretrained", "maml", "fomaml", "reptile")


def _like() -> dict[str, torch.Tensor]:
    """Tensors shaped like the parameters (only their shapes are used)."""
    return init_params(torch.Generator().manual_seed(0), LAYER_SIZES)


#: Number of meta-parameters in the flat θ (1-40-40-1: 1,761).
NUM_PARAMS = sum(p.numel() for p in _like().values())


def _io(name: str, shape: list, meaning: str) -> dict:
    return {"name": name, "type": "float32", "shape": shape, "meaning": meaning}


#: The graph's inputs and outputs, as the manifest's "graph" field documents them.
SIGNATURE = {
    "inputs": [
        _io("params", ["P"], "θ, the meta-parameters, flat: w1 [1, 40], b1 [40], w2 [40, 40], "
            "b2 [40], w3 [40, 1], b3 [1], each row-major, in that order (P = 1761)"),
        _io("adam_m", ["P"], "the outer Adam's first moment (zeros at the start; passed through "
            "unchanged where the outer optimiser is SGD)"),
        _io("adam_v", ["P"], "the outer Adam's second moment (zeros at the start; passed through "
            "unchanged where the outer optimiser is SGD)"),
        _io("step", [], "meta-iterations done so far (0 at the start): Adam's bias correction "
            "uses step + 1"),
        _io("support_x", ["T", "K", 1], "each task's support inputs x (T tasks, K ≥ 1 points)"),
        _io("support_y", ["T", "K", 1], "each task's support targets y"),
        _io("query_x", ["T", "Q", 1], "each task's query inputs x (Q ≥ 1 points)"),
        _io("query_y", ["T", "Q", 1], "each task's query targets y"),
        _io("inner_lr", [], "α, the learning rate of the inner (adaptation) steps"),
        _io("meta_lr", [], "β, the outer optimiser's learning rate"),
    ],
    "outputs": [
        _io("new_params", ["P"], "θ after this meta-iteration"),
        _io("new_adam_m", ["P"], "the first moment after it"),
        _io("new_adam_v", ["P"], "the second moment after it"),
        _io("new_step", [], "step + 1"),
        _io("meta_loss", [], "the algorithm's meta-loss on this batch, at θ before the update "
            "(the metric meta/train.py logs as meta_loss)"),
    ],
}
INPUT_NAMES = tuple(spec["name"] for spec in SIGNATURE["inputs"])
OUTPUT_NAMES = tuple(spec["name"] for spec in SIGNATURE["outputs"])

#: What each algorithm does with the task batch (the manifest's "data" note).
DATA_USE = {
    "pretrained": "support and query pooled: the mean loss over all K + Q points of each task",
    "maml": "inner steps on the support set, meta-loss on the query set",
    "fomaml": "inner steps on the support set, meta-loss on the query set",
    "reptile": "inner steps on all K + Q points of each task; meta-loss there after the steps",
    "imaml": "proximal inner solve on the support set, meta-loss on the query set",
}


# --8<-- [start:adam_step]
def adam_step(params, grad, m, v, step, lr):
    """One step of torch.optim.Adam (betas 0.9, 0.999, eps 1e-8, no weight decay),
    in the order of its fused kernel; ``step`` counts the steps already taken."""
    t = step + 1.0
    m = m + (grad - m) * (1.0 - BETA1)                       # lerp(m, g, 1 − β1)
    v = v * BETA2 + grad * grad * (1.0 - BETA2)
    bias1 = 1.0 - torch.pow(torch.full_like(t, BETA1), t)
    bias2_sqrt = torch.sqrt(1.0 - torch.pow(torch.full_like(t, BETA2), t))
    # sqrt(v)/b + ε, scaled by 2^27 and back (exact in floating point: the same
    # bits): the exporter's optimiser drops an added constant as small as 1e-8
    # as if it were 0, which would divide 0 by 0 where v is 0.
    denom = (torch.sqrt(v) / bias2_sqrt * _SCALE + EPS * _SCALE) / _SCALE
    return params - (lr / bias1) * m / denom, m, v, t
# --8<-- [end:adam_step]


class _Settings:
    """The TrainConfig fields meta_gradient reads, with the learning rate a tensor."""

    def __init__(self, cfg, inner_lr: torch.Tensor):
        self.inner_lr = inner_lr
        self.inner_steps = cfg.inner_steps
        self.options = dict(cfg.options)
        self.k_support = cfg.k_support


# --8<-- [start:module]
class MetaStep(nn.Module):
    """One meta-iteration of ``cfg.algorithm`` with ``cfg``'s inner steps and options."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.algorithm = algorithms.get(cfg.algorithm)
        self.like = _like()

    def forward(self, params, adam_m, adam_v, step, support_x, support_y, query_x, query_y,
                inner_lr, meta_lr):
        theta = unflatten_tasks(params, self.like)           # views of the flat θ
        batch = TaskBatch(support_x, support_y, query_x, query_y)
        grads, metrics = self.algorithm.meta_gradient(theta, batch, _Settings(self.cfg, inner_lr))
        grad = torch.cat([grads[name].reshape(-1) for name in PARAM_NAMES])
        if self.algorithm.OUTER_OPTIMIZER == "sgd":
            new_params = params - meta_lr * grad
            return new_params, adam_m + 0.0, adam_v + 0.0, step + 1.0, metrics["meta_loss"]
        new_params, m, v, t = adam_step(params, grad, adam_m, adam_v, step, meta_lr)
        return new_params, m, v, t, metrics["meta_loss"]
# --8<-- [end:module]


def example_inputs(cfg, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs for one meta-iteration from cfg's initialisation: θ as meta/train.py
    draws it for cfg.seed, zero moments, a task batch of cfg's sizes."""
    generator = torch.Generator().manual_seed(cfg.seed)
    params = torch.cat([p.reshape(-1) for p in init_params(generator).values()])
    batch = SINUSOID.sample_batch(cfg.meta_batch_size, cfg.k_support, cfg.k_query,
                                  torch.Generator().manual_seed(seed))
    zeros = torch.zeros(NUM_PARAMS)
    return {"params": params, "adam_m": zeros, "adam_v": zeros.clone(),
            "step": torch.tensor(0.0), **batch._asdict(),
            "inner_lr": torch.tensor(float(cfg.inner_lr)), "meta_lr": torch.tensor(float(cfg.meta_lr))}


def build_meta_step_model(cfg):
    """The meta-step graph of ``cfg`` (algorithm, inner steps, options) as a
    checked ``onnx.ModelProto``; T, K and Q dynamic."""
    from meta.export import export_module

    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(f"no meta-step graph for algorithm {cfg.algorithm!r}; "
                         f"allowed: {', '.join(ALGORITHMS)}")
    # Example sizes distinct from each other (and from 1) so that no dimension
    # is specialised by accident.
    example = example_inputs(replace(cfg, meta_batch_size=3, k_support=4, k_query=5))
    tasks, k_support, k_query = (torch.export.Dim(n, min=1) for n in ("T", "K", "Q"))
    dynamic = {name: {} for name in INPUT_NAMES}
    dynamic.update(support_x={0: tasks, 1: k_support}, support_y={0: tasks, 1: k_support},
                   query_x={0: tasks, 1: k_query}, query_y={0: tasks, 1: k_query})
    return export_module(MetaStep(cfg), tuple(example[n] for n in INPUT_NAMES), INPUT_NAMES,
                         OUTPUT_NAMES, dynamic, f"{cfg.algorithm} meta-step")


def export_meta_step(cfg, path: str | os.PathLike) -> dict:
    """Write the meta-step graph of ``cfg`` to ``path`` atomically.
    Returns {"path", "bytes", "ops"}."""
    from meta.export import write_model

    return write_model(build_meta_step_model(cfg), path)


def run_meta_step(path: str | os.PathLike, feeds: dict) -> dict[str, np.ndarray]:
    """One meta-iteration with onnxruntime (CPU, one thread); feeds as array-likes."""
    return run_float_graph(path, feeds, INPUT_NAMES, OUTPUT_NAMES, "meta-step")


def run_float_graph(path: str | os.PathLike, feeds: dict, inputs, outputs,
                    what: str) -> dict[str, np.ndarray]:
    """Run a graph whose inputs are all float32 (this module's and the θ-fit
    graph) with onnxruntime; ValueError naming the missing inputs."""
    from meta.export import onnx_session

    missing = [n for n in inputs if n not in feeds]
    if missing:
        raise ValueError(f"the {what} graph needs the inputs {', '.join(inputs)}; "
                         f"missing {', '.join(missing)}")
    arrays = {n: np.array(_numpy(feeds[n]), dtype=np.float32) for n in inputs}   # 0-d stays 0-d
    return dict(zip(outputs, onnx_session(path).run(list(outputs), arrays)))


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class TorchMetaStep:
    """The same meta-iteration the way meta/train.py runs it: the algorithm's
    meta_gradient with cfg's settings, the flat θ's ``.grad``, and the outer
    optimiser train.py builds (fused torch.optim.Adam, or SGD), kept across
    calls. The reference the graph is held to."""

    def __init__(self, cfg, params: torch.Tensor):
        from meta.train import _outer_optimizer

        self.cfg = cfg
        self.algorithm = algorithms.get(cfg.algorithm)
        self.flat = params.detach().clone()
        self.params = unflatten_tasks(self.flat, _like())
        self.optimizer = _outer_optimizer(self.algorithm.OUTER_OPTIMIZER, [self.flat], cfg.meta_lr)

    def __call__(self, batch: TaskBatch) -> float:
        with torch.no_grad():
            grads, metrics = self.algorithm.meta_gradient(self.params, batch, self.cfg)
            self.flat.grad = torch.cat([grads[n].reshape(-1) for n in PARAM_NAMES])
            self.optimizer.step()
        return float(metrics["meta_loss"])

    def state(self) -> dict[str, np.ndarray]:
        """θ and the optimiser state, named as the graph's inputs."""
        zeros = np.zeros(NUM_PARAMS, dtype=np.float32)
        opt = self.optimizer.state.get(self.flat, {})
        return {"params": self.flat.numpy().copy(),
                "adam_m": opt["exp_avg"].numpy().copy() if "exp_avg" in opt else zeros,
                "adam_v": opt["exp_avg_sq"].numpy().copy() if "exp_avg_sq" in opt else zeros}

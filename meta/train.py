"""One training loop for every algorithm in meta.algorithms.

    for each meta-iteration:
        sample T tasks → algorithm.meta_gradient(θ, tasks) → outer optimiser step

The loop is the same for all five algorithms; what differs lives in the
algorithm's own small module.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from . import algorithms
from .model import Params, init_params, unflatten_tasks
from .tasks import SINUSOID

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    algorithm: str                    # pretrained | maml | fomaml | reptile | imaml
    iterations: int = 70_000          # meta-iterations (outer steps)
    meta_batch_size: int = 25         # tasks per meta-iteration
    k_support: int = 10               # support ("train") points per task
    k_query: int = 10                 # query ("test") points per task
    inner_lr: float = 0.01            # α: learning rate of the adaptation steps
    inner_steps: int = 1              # m: adaptation steps while meta-training
    meta_lr: float = 1e-3             # β: learning rate of the outer optimiser
    seed: int = 0
    options: dict = field(default_factory=dict)   # algorithm-specific (iMAML: lam, cg_steps)
    log_every: int = 100              # iterations per point of the training curve

    def __post_init__(self) -> None:
        module = algorithms.get(self.algorithm)
        unknown = set(self.options) - set(module.OPTIONS)
        if unknown:
            allowed = ", ".join(module.OPTIONS) or "none"
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} for algorithm "
                             f"{self.algorithm!r}; allowed: {allowed}")
        object.__setattr__(self, "options", {**module.OPTIONS, **self.options})
        for name in ("iterations", "meta_batch_size", "k_support", "k_query", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        min_steps = getattr(module, "MIN_INNER_STEPS", 0)
        if not isinstance(self.inner_steps, int) or self.inner_steps < min_steps:
            raise ValueError(f"inner_steps must be an integer >= {min_steps} for {self.algorithm}, "
                             f"got {self.inner_steps!r}")
        for name in ("inner_lr", "meta_lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name, value in self.options.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"option {name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = set(data) - set(allowed)
        if unknown:
            raise ValueError(f"unknown training key(s) {', '.join(sorted(unknown))}; "
                             f"allowed: {', '.join(allowed)}")
        return cls(**data)


class TrainResult(NamedTuple):
    params: Params            # meta-parameters θ on the CPU, no task dimension
    history: list[dict]       # one entry per log_every iterations: mean metrics over the window
    seconds: float            # the training loop, without the time spent in on_checkpoint
    device: str
    compiled: bool = False    # whether the meta-gradient ran through torch.compile
    checkpoint_seconds: float = 0.0   # time spent in on_checkpoint


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; "
                         "use --device cpu or auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _outer_optimizer(kind: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    # The fused kernel updates the flat θ in one pass (CPU and CUDA, float32).
    return torch.optim.Adam(params, lr=lr, fused=True)


def flat_meta_gradient(meta_gradient: Callable, compile: bool = False) -> Callable:
    """(params, draws, cfg) -> (the meta-gradient as one flat vector [P], metrics),
    for the task batch behind ``draws`` (SinusoidFamily.draws).

    The outer optimiser updates θ as one flat tensor, so the gradient is wanted
    flat too. With compile=True the whole step, from the random draws to the
    flat gradient, goes through torch.compile: on a CPU it fuses the many small
    element-wise operations around the matrix products (MAML: ~1.5x per
    iteration) for a one-off compilation of seconds.
    """
    def step(params: Params, draws: torch.Tensor, cfg: TrainConfig):
        batch = SINUSOID.batch_from_draws(draws, cfg.k_support)
        grads, metrics = meta_gradient(params, batch, cfg)
        return torch.cat([grads[name].reshape(-1) for name in params]), metrics

    return torch.compile(step, fullgraph=True, dynamic=False) if compile else step


def train(cfg: TrainConfig, device: str = "auto", progress: bool | None = None,
          log: Callable[[str], None] | None = None, desc: str | None = None,
          compile: bool = False, checkpoints: int = 0,
          on_checkpoint: Callable[[int, Params], None] | None = None) -> TrainResult:
    """Meta-train from a seeded initialisation; deterministic for a given seed and device.

    progress: True/False forces the progress bar on/off; None shows it only when
    stderr is a terminal. log: called with a plain line every tenth of the run
    (for logs that are not terminals). compile: run the meta-gradient through
    torch.compile (falls back to eager mode, with a warning, where compiling fails).
    checkpoints, on_checkpoint: call on_checkpoint(iteration, θ) (a CPU copy of
    θ) at ``checkpoints`` evenly spaced iterations, the last one the final
    iteration (for choosing a checkpoint: meta.evaluate.CheckpointSelector);
    it does not change the training run.
    """
    from tqdm.auto import tqdm

    algorithm = algorithms.get(cfg.algorithm)
    dev = resolve_device(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    # θ lives in one flat tensor and the dict holds views of it: the outer
    # optimiser then updates one tensor per step instead of six.
    initial = init_params(generator)
    flat = torch.cat([p.reshape(-1) for p in initial.values()]).to(dev)
    params = unflatten_tasks(flat, initial)
    optimizer = _outer_optimizer(algorithm.OUTER_OPTIMIZER, [flat], cfg.meta_lr)

    history: list[dict] = []
    window: dict[str, torch.Tensor] = {}
    disable = None if progress is None else not progress
    bar = tqdm(total=cfg.iterations, desc=desc or cfg.algorithm, disable=disable,
               file=sys.stderr, unit="it", mininterval=0.5)
    report_every = max(cfg.iterations // 10, 1)
    at = checkpoint_iterations(cfg.iterations, checkpoints) if on_checkpoint else set()
    checkpoint_seconds = 0.0
    started = time.perf_counter()
    step = flat_meta_gradient(algorithm.meta_gradient, compile)
    with torch.no_grad():
        for iteration in range(1, cfg.iterations + 1):
            draws = SINUSOID.draws(cfg.meta_batch_size, cfg.k_support, cfg.k_query,
                                   generator).to(dev)
            try:
                flat.grad, metrics = step(params, draws, cfg)
            except Exception as error:   # compilation fails on the first call, if at all
                if not compile or iteration > 1:
                    raise
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {error}); "
                              "training in eager mode", RuntimeWarning, stacklevel=2)
                compile, step = False, flat_meta_gradient(algorithm.meta_gradient)
                flat.grad, metrics = step(params, draws, cfg)
            optimizer.step()
            for key, value in metrics.items():
                window[key] = window[key] + value if key in window else value
            if iteration % cfg.log_every == 0 or iteration == cfg.iterations:
                count = (iteration - 1) % cfg.log_every + 1
                point = {"iteration": iteration, **{k: float(v) / count for k, v in window.items()}}
                history.append(point)
                window = {}
                bar.set_postfix(meta_loss=f"{point.get('meta_loss', float('nan')):.3f}", refresh=False)
            bar.update(1)
            if iteration in at:
                paused = time.perf_counter()
                on_checkpoint(iteration, {n: p.detach().to("cpu").clone() for n, p in params.items()})
                checkpoint_seconds += time.perf_counter() - paused
            if log is not None and (iteration % report_every == 0 or iteration == cfg.iterations):
                last = history[-1] if history else {}
                log(f"{desc or cfg.algorithm}: iteration {iteration}/{cfg.iterations}, "
                    f"meta_loss {last.get('meta_loss', float('nan')):.4f}, "
                    f"{time.perf_counter() - started:.0f} s")
    bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started - checkpoint_seconds
    final = {n: p.detach().to("cpu").clone() for n, p in params.items()}
    return TrainResult(final, history, seconds, str(dev), compile, checkpoint_seconds)


def checkpoint_iterations(iterations: int, checkpoints: int) -> set[int]:
    """``checkpoints`` evenly spaced iterations of a run, the last one its end
    (e.g. 70,000 iterations, 5 checkpoints: 14,000, 28,000, …, 70,000)."""
    if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 0:
        raise ValueError(f"checkpoints must be an integer >= 0, got {checkpoints!r}")
    return {max(1, round(iterations * i / checkpoints)) for i in range(1, checkpoints + 1)}

"""The static figure of "Watch it learn" (Comparison page): a short live run, done by the build.

The widget (docs/javascripts/widgets/watch-it-learn.js and its worker,
workers/meta-train.js) meta-trains pretrained, MAML, first-order MAML and
Reptile in the browser with the build's meta-step graphs. Where it cannot run
(no JavaScript, no WebAssembly) the page shows this figure instead: the same
run for the page's seed, done here with the same graphs in onnxruntime, and
drawn as the widget draws it: each algorithm's meta-loss (means over bins of
iterations, log scale), each model's one-step error on the widget's 100
held-out tasks, measured every ``eval_every`` iterations, and each model's fit
to the widget's example task after one gradient step, at the end of the run.

The task stream and θ₀ are the page's: ``SeededRandom``, ``sinusoid_batch``
and ``initial_params`` are line-for-line ports of docs/javascripts/lib/seeded.js
(tests/test_watch_figure.py holds them to it under Node.js), so the figure is
the run a reader starts with seed 1, up to float rounding between onnxruntime
natively and in WebAssembly. The picture is a palette PNG like the toy
figures; the same inputs give the same bytes. The meta-step stage
(site_builder/meta_step_stage.py) renders it only when a graph or this code
changes: about 1,000 iterations of the four graphs, a few seconds.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from .errors import BuildFailure
from .figures import INK, SVG_RC, TARGET

#: Where the figure goes, relative to exported/ (the site serves it from assets/figures/).
FIGURE = "figures/watch-it-learn.png"
ALGORITHMS = ("pretrained", "maml", "fomaml", "reptile")
#: The run: the page's seed (docs/comparison.md's data-seed), how long, how often
#: the held-out tasks are measured (the widget's EVAL_EVERY), the loss curve's bins.
RUN = {"seed": 1, "iterations": 1000, "eval_every": 100, "bin": 10}
#: The widget's example task and held-out tasks (watch-it-learn.js EXAMPLE, EXAMPLE_POINTS, HELD_OUT).
EXAMPLE = {"a": 3.0, "phase": 0.5, "xs": (-4.2, -2.6, -0.4, 1.1, 3.7), "points": 101}
HELD_OUT = {"seed": 20260312, "tasks": 100, "shots": 5, "points": 50}
#: The widget's colours and names (widgets/all-models.js, which watch-it-learn.js uses).
COLOURS = {"pretrained": "#999999", "maml": "#0072b2", "fomaml": "#56b4e9", "reptile": "#009e73"}
LABELS = {"pretrained": "Pretrained", "maml": "MAML", "fomaml": "First-order MAML", "reptile": "Reptile"}
DPI = 110
_M32 = 0xFFFFFFFF


# ------------------------------------------------------- seeded.js, in Python

class SeededRandom:
    """seededRandom(seed, stream) of seeded.js: mulberry32 seeded from the seed
    and the stream's name; each call returns the same float in [0, 1)."""

    def __init__(self, seed: int, stream: str = ""):
        h = (int(seed) & _M32) ^ 0x9E3779B9
        for code in _utf16_units(stream):
            h = _imul(h ^ code, 0x85EBCA6B)
        self.t = _imul(h ^ (h >> 16), 0xC2B2AE35)

    def __call__(self) -> float:
        self.t = (self.t + 0x6D2B79F5) & _M32
        t = self.t
        r = _imul(t ^ (t >> 15), 1 | t)
        r = ((r + _imul(r ^ (r >> 7), 61 | r)) & _M32) ^ r
        return ((r ^ (r >> 14)) & _M32) / 4294967296


def _imul(a: int, b: int) -> int:
    return (a * b) & _M32


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def uniform(random: SeededRandom, bounds) -> float:
    lo, hi = bounds
    return lo + (hi - lo) * random()


def sinusoid_batch(random: SeededRandom, family: dict, tasks: int, k: int, q: int) -> dict[str, np.ndarray]:
    """sinusoidBatch of seeded.js: float32 arrays shaped [T, K, 1] and [T, Q, 1]."""
    out = {name: np.empty((tasks, n), dtype=np.float32) for name, n in
           (("support_x", k), ("support_y", k), ("query_x", q), ("query_y", q))}
    for t in range(tasks):
        a = uniform(random, family["amplitude"])
        phase = uniform(random, family["phase"])
        for prefix, n in (("support", k), ("query", q)):
            for i in range(n):
                x = uniform(random, family["x"])
                out[f"{prefix}_x"][t, i] = x
                out[f"{prefix}_y"][t, i] = a * math.sin(x + phase)
    return {name: v[:, :, None] for name, v in out.items()}


def initial_params(random: SeededRandom, sizes=(1, 40, 40, 1)) -> np.ndarray:
    """initialParams of seeded.js: θ₀ flat, U(−1/√fan_in, 1/√fan_in) per layer."""
    values = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        values += [(random() * 2 - 1) * bound for _ in range(fan_in * fan_out + fan_out)]
    return np.array(values, dtype=np.float32)


# ------------------------------------------------------------------- the run

def live_run(exported: Path, entries: dict[str, dict], run: dict = RUN) -> dict:
    """The widget's run for ``run["seed"]``: {"losses": {alg: [N]}, "heldout":
    [(iteration, {alg: error})], "fit": {alg: [M]}, "query_x": [M]}. ``entries``:
    the manifest entries of the four meta-step graphs and of theta-fit-1."""
    from meta.export import onnx_session

    from .meta_step_stage import FIT1_NAME, entry_name

    def session(entry):
        path = exported / entry["file"]
        try:
            return onnx_session(path)
        except Exception as exc:  # onnxruntime raises its own types
            raise BuildFailure(f"the Watch it learn figure could not load {path.name}: "
                               f"{str(exc).splitlines()[0]}") from exc

    steps = {alg: entries[entry_name(alg)] for alg in ALGORITHMS}
    fit_entry = entries[FIT1_NAME]
    fit = session(fit_entry)
    sessions = {alg: session(e) for alg, e in steps.items()}
    setting = steps["maml"]["meta_step"]
    family = fit_entry["task"]
    scalar = lambda v: np.array(v, dtype=np.float32)   # noqa: E731 - a 0-d float32
    hyper = {alg: {"inner_lr": scalar(e["meta_step"]["inner_lr"]), "meta_lr": scalar(e["meta_step"]["meta_lr"])}
             for alg, e in steps.items()}
    fit_lr = scalar(fit_entry["inner_lr"])

    theta0 = initial_params(SeededRandom(run["seed"], "theta"))
    zeros = np.zeros_like(theta0)
    state = {alg: {"params": theta0.copy(), "adam_m": zeros.copy(), "adam_v": zeros.copy(), "step": scalar(0)}
             for alg in ALGORITHMS}
    tasks = SeededRandom(run["seed"], "tasks")
    held = sinusoid_batch(SeededRandom(HELD_OUT["seed"], "held-out"), family, HELD_OUT["tasks"],
                          HELD_OUT["shots"], HELD_OUT["points"])

    def heldout_errors() -> dict[str, float]:
        errors = {}
        for alg in ALGORITHMS:
            rows = np.repeat(state[alg]["params"][None], HELD_OUT["tasks"], axis=0)
            query_y = fit.run(["query_y"], {"params": rows, "support_x": held["support_x"],
                                            "support_y": held["support_y"], "query_x": held["query_x"],
                                            "inner_lr": fit_lr})[0]
            errors[alg] = float(np.mean((query_y[1].astype(np.float64) - held["query_y"]) ** 2))
        return errors

    losses = {alg: [] for alg in ALGORITHMS}
    heldout = [(0, heldout_errors())]
    for iteration in range(1, run["iterations"] + 1):
        batch = sinusoid_batch(tasks, family, setting["meta_batch_size"], setting["k_support"], setting["k_query"])
        for alg in ALGORITHMS:
            params, adam_m, adam_v, step, loss = sessions[alg].run(
                ["new_params", "new_adam_m", "new_adam_v", "new_step", "meta_loss"],
                {**state[alg], **batch, **hyper[alg]})
            state[alg] = {"params": params, "adam_m": adam_m, "adam_v": adam_v, "step": step}
            losses[alg].append(float(loss))
        if iteration % run["eval_every"] == 0:
            heldout.append((iteration, heldout_errors()))

    xs = np.array(EXAMPLE["xs"], dtype=np.float64)
    query_x = np.linspace(family["x"][0], family["x"][1], EXAMPLE["points"])
    rows = np.stack([state[alg]["params"] for alg in ALGORITHMS])
    count = len(ALGORITHMS)
    support_x = np.tile(xs.astype(np.float32)[None, :, None], (count, 1, 1))
    support_y = np.tile((EXAMPLE["a"] * np.sin(xs + EXAMPLE["phase"])).astype(np.float32)[None, :, None],
                        (count, 1, 1))
    query_y = fit.run(["query_y"], {"params": rows, "support_x": support_x, "support_y": support_y,
                                    "query_x": np.tile(query_x.astype(np.float32)[None, :, None], (count, 1, 1)),
                                    "inner_lr": fit_lr})[0]
    return {"losses": {alg: np.array(v) for alg, v in losses.items()}, "heldout": heldout,
            "fit": {alg: query_y[1, i, :, 0] for i, alg in enumerate(ALGORITHMS)}, "query_x": query_x}


# --------------------------------------------------------------- the picture

def figure_png(result: dict, run: dict = RUN) -> bytes:
    """The widget's picture of the run: meta-losses (top), one-step errors on
    the held-out tasks (bottom left), fits to the example task (bottom right)."""
    import io

    from .toy_figures import _palette_png

    n = run["iterations"]
    size = run["bin"]
    with matplotlib.rc_context({**SVG_RC, "svg.fonttype": "path"}):
        fig = Figure(figsize=(6.4, 5.6), dpi=DPI)
        grid = fig.add_gridspec(2, 2, height_ratios=[1.05, 1])
        loss_ax = fig.add_subplot(grid[0, :])
        held_ax = fig.add_subplot(grid[1, 0])
        fit_ax = fig.add_subplot(grid[1, 1])
        for alg in ALGORITHMS:
            values = result["losses"][alg]
            bins = values[: len(values) // size * size].reshape(-1, size).mean(axis=1)
            loss_ax.semilogy(np.arange(len(bins)) * size + size / 2, bins, color=COLOURS[alg], linewidth=1.6,
                             label=LABELS[alg])
            its = [it for it, _ in result["heldout"]]
            held_ax.semilogy(its, [errors[alg] for _, errors in result["heldout"]], color=COLOURS[alg],
                             linewidth=1.6, marker="o", markersize=3)
            fit_ax.plot(result["query_x"], result["fit"][alg], color=COLOURS[alg], linewidth=1.6)
        loss_ax.set_xlim(0, n)
        loss_ax.set_xlabel("meta-iteration")
        loss_ax.set_title(f"meta-loss (means over {size} iterations), seed {run['seed']}", fontsize=9)
        loss_ax.legend(loc="lower left", fontsize=7.5, frameon=False, ncols=2)
        held_ax.set_xlim(0, n)
        held_ax.set_xlabel("meta-iteration")
        held_ax.set_title(f"one-step error, {HELD_OUT['tasks']} held-out tasks", fontsize=9)
        x = result["query_x"]
        a, phase = EXAMPLE["a"], EXAMPLE["phase"]
        fit_ax.plot(x, a * np.sin(x + phase), color=TARGET, linewidth=2, zorder=1)
        xs = np.array(EXAMPLE["xs"])
        fit_ax.scatter(xs, a * np.sin(xs + phase), color=INK, s=16, zorder=3)
        fit_ax.set_xlim(x[0], x[-1])
        fit_ax.set_ylim(-6, 6)
        fit_ax.set_xlabel("x")
        fit_ax.set_title(f"one step on 5 points, at iteration {n:,}", fontsize=9)
        for ax in (loss_ax, held_ax):
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_label))
        for ax in (loss_ax, held_ax, fit_ax):
            ax.grid(True, color=INK, alpha=0.2, linewidth=0.5)
        fig.tight_layout()
        fig.patch.set_alpha(0)
        for ax in fig.axes:
            ax.patch.set_alpha(0)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        return _palette_png(out.getvalue())


def _minor_label(value: float, _position=None) -> str:
    """Label the minor ticks 2, 3 and 5 (times a power of ten) of a log axis, no others."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(mantissa, 6) in (2, 3, 5) else ""


def render(exported: Path, entries: dict[str, dict], run: dict = RUN) -> bytes:
    """The figure's PNG bytes: the run, then its picture."""
    return figure_png(live_run(exported, entries, run), run)

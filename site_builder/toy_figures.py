"""Figures of the toy problems, rendered by the build with matplotlib from meta/toy.py.

* The accumulated meta-loss Σ_i L_τi(U^(m)(θ)) over the plane for m = 0..20,
  one PNG frame per m with the two single-task panels beside it, and a JSON
  file with the minimum of each frame (the widget shows it).
* The static fallback figure of each loss-landscape widget: the widget's
  picture in one example state, shown where the widget cannot run.

Frames are PNG (filled contours as SVG are ten times larger) on a transparent
background with grey ink and the viridis ramp, readable on the light and the
dark palette; PNG metadata is fixed, so the same inputs give the same bytes.
"""
from __future__ import annotations

import io
import json

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from meta import toy

from .figures import INK, MODEL, SVG_RC, TARGET

GRID = 101                      # points per axis of the plane's grid
DPI = 100
ACCUMULATED_STEPS = toy.TOY_MAX_STEPS
FRAME = "figures/toy-accumulated-m{m:02d}.png"
MINIMA = "figures/toy-accumulated-minima.json"
#: The example state of each fallback figure.
EXAMPLE_THETA = (0.2, 0.8)
EXAMPLE_LR = 0.3
FALLBACKS = {
    "will-it-work": "figures/toy-will-it-work.png",
    "reptile-interpolation": "figures/toy-reptile-interpolation.png",
    "proximal-loss": "figures/toy-proximal-loss.png",
    "implicit-gradient": "figures/toy-implicit-gradient.png",
    "meta-gradients": "figures/toy-meta-gradients.png",
    "curvature": "figures/toy-curvature.png",
}
#: Which toy graph's manifest entry records which figure files.
FIGURES_BY_GRAPH = {
    "toy-landscape": [FRAME.format(m=m) for m in range(ACCUMULATED_STEPS + 1)] + [MINIMA],
    "toy-meta": [FALLBACKS[k] for k in ("will-it-work", "reptile-interpolation", "proximal-loss",
                                         "implicit-gradient", "meta-gradients")],
    "toy-curvature": [FALLBACKS["curvature"]],
}
METHOD_COLOURS = {"MAML": "#1e88e5", "FOMAML": "#43a047", "Reptile": "#fb8c00", "iMAML": "#d81b60"}
#: The curvature demo's example quadratic.
CURVATURE_EXAMPLE = {"curvature": [[1.5, 0.6], [0.6, 0.8]], "center": [0.0, 0.0],
                     "linear": [0.5, -0.3], "theta": [1.2, -1.0], "inner_lr": 0.3}
CURVATURE_PLANE = ((-2.0, 2.0), (-2.0, 2.0))


def _grid(plane=toy.TOY_PLANE, count: int = GRID) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    (a0, a1), (b0, b1) = plane
    a, b = np.meshgrid(np.linspace(a0, a1, count), np.linspace(b0, b1, count))
    points = torch.tensor(np.stack([a.ravel(), b.ravel()], 1), dtype=torch.float64)
    return a, b, points


def _png(fig) -> bytes:
    fig.patch.set_alpha(0)
    for ax in fig.axes:
        ax.patch.set_alpha(0)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return _palette_png(out.getvalue())


def _palette_png(png: bytes) -> bytes:
    """The same picture with a palette of at most 256 colours (and their
    transparency): a quarter of the bytes of matplotlib's RGBA file (1.1 MB of
    toy figures become 0.3 MB; no channel of any pixel moves by more than
    29/255, where the contours' colour ramps are finest). Deterministic, so a
    rebuild writes the same bytes."""
    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("RGBA")
    out = io.BytesIO()
    picture.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, format="png", optimize=True)
    return out.getvalue()


def _panel(ax, a, b, values, title, levels=14):
    """Filled contours of values (log-spaced levels: the landscapes' valleys are
    where the interesting part is), the plane's axes, a title."""
    values = np.asarray(values, dtype=float).reshape(a.shape)
    low, high = max(values.min(), 1e-6), max(values.max(), 2e-6)
    ticks = np.geomspace(low, high, levels)
    ax.contourf(a, b, np.clip(values, low, high), levels=ticks, cmap="viridis",
                norm=matplotlib.colors.LogNorm(low, high), alpha=0.9)
    ax.contour(a, b, np.clip(values, low, high), levels=ticks[::2], colors=INK, linewidths=0.4,
               alpha=0.6)
    ax.set_xlim(a.min(), a.max())
    ax.set_ylim(b.min(), b.max())
    ax.set_aspect("equal")
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(title, fontsize=9)


def _optima(ax, tasks, which=None):
    for i, (ta, tb) in enumerate(tasks):
        if which is None or i in which:
            ax.plot(ta, tb, marker="*", color=TARGET, markersize=9, linestyle="none")


def _arrow(ax, start, end, colour, label=None, width=1.6):
    start, end = np.asarray(start, float), np.asarray(end, float)
    if not np.all(np.isfinite([start, end])) or np.allclose(start, end):
        return
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width, "shrinkA": 0,
                            "shrinkB": 0})
    if label:
        ax.plot([], [], color=colour, label=label)


def _theta(ax, theta):
    ax.plot(*theta, marker="o", color="white", markeredgecolor=INK, markersize=7, zorder=5)


def _plane_figure(size, a, b, panels):
    """A figure with one panel of the plane per (values, title, task), side by
    side: the contours of values, and the optimum of that task (of every task
    where task is None). Returns the figure and its axes."""
    fig = Figure(figsize=size)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (values, title, task) in zip(axes, panels):
        _panel(ax, a, b, values, title)
        _optima(ax, toy.TOY_TASKS, which=None if task is None else {task})
    return fig, axes


def _finished(fig) -> bytes:
    fig.tight_layout()
    return _png(fig)


def accumulated_frames(inner_lr: float = toy.TOY_INNER_LR) -> tuple[dict[str, bytes], dict]:
    """{file: PNG bytes} of the frames m = 0..20, and the minima record."""
    tasks = toy.tasks_tensor(dtype=torch.float64)
    a, b, points = _grid()
    accumulated = toy.accumulated_loss(points, tasks, inner_lr, ACCUMULATED_STEPS).numpy()
    single = toy.landscape(points, tasks).numpy()
    files, minima = {}, []
    with matplotlib.rc_context(SVG_RC):
        for m in range(ACCUMULATED_STEPS + 1):
            best = int(np.argmin(accumulated[m]))
            theta = points[best].tolist()
            minima.append({"m": m, "theta": [round(v, 4) for v in theta],
                           "loss": float(f"{accumulated[m, best]:.6g}")})
            fig, axes = _plane_figure((7.6, 2.7), a, b, [
                (single[0], "task 1: L(θ)", 0), (single[1], "task 2: L(θ)", 1),
                (accumulated[m], f"Σ L(U$^{{({m})}}$(θ)), m = {m}, α = {inner_lr:g}", None)])
            axes[2].plot(*theta, marker="X", color="white", markeredgecolor="black", markersize=9)
            files[FRAME.format(m=m)] = _finished(fig)
    record = {"inner_lr": inner_lr, "tasks": [list(t) for t in toy.TOY_TASKS],
              "frames": ["assets/" + FRAME.format(m=m) for m in range(ACCUMULATED_STEPS + 1)],
              "minima": minima}
    return files, record


def _meta_state(theta, lr, steps, lam=1.0, cg_steps=toy.TOY_CG_STEPS):
    """The quantities of one θ that the fallback figures draw."""
    tasks = toy.tasks_tensor(dtype=torch.float64)
    theta_t = torch.tensor(theta, dtype=torch.float64).reshape(1, 2)
    unrolled = toy.unroll(theta_t, tasks, lr, steps)
    path, _, grads, _ = (t[:, 0] for t in unrolled)
    prox = toy.adapt(theta_t, tasks, lr, steps, lam=lam)[0][:, 0]
    phi = prox[:, -1:].clone()
    cg = toy.implicit_gradient_cg(phi, tasks, lam, cg_steps)[:, 0]
    return {
        "path": path.numpy(), "prox": prox.numpy(), "cg": cg.numpy(),
        "exact": toy.implicit_gradient_exact(phi, tasks, lam)[:, 0].numpy(),
        "maml": toy.maml_gradients(theta_t, tasks, lr, steps, unrolled=unrolled)[:, 0, -1].numpy(),
        "fomaml": grads[:, -1].numpy(), "reptile": toy.reptile_gradients(path)[:, -1].numpy(),
    }


def fallback_figures() -> dict[str, bytes]:
    tasks = toy.tasks_tensor(dtype=torch.float64)
    a, b, points = _grid()
    single = toy.landscape(points, tasks).numpy()
    theta = np.array(EXAMPLE_THETA)
    files = {}
    with matplotlib.rc_context(SVG_RC):
        # Will it really work? One step on each task from the same θ.
        state = _meta_state(EXAMPLE_THETA, EXAMPLE_LR, 1)
        fig, axes = _plane_figure((6.0, 3.0), a, b, [
            (single[i], f"task {i + 1}: one step, α = {EXAMPLE_LR:g}", i) for i in range(2)])
        for i, ax in enumerate(axes):
            _arrow(ax, theta, state["path"][i, 1], MODEL)
            _theta(ax, theta)
        files[FALLBACKS["will-it-work"]] = _finished(fig)

        # Reptile: three steps on task 2, then a move halfway towards ϕ_3.
        state = _meta_state(EXAMPLE_THETA, EXAMPLE_LR, 3)
        fig, (ax,) = _plane_figure((3.6, 3.4), a, b, [(single[1], "Reptile: k = 3 steps, β = 0.5", 1)])
        path = state["path"][1]
        ax.plot(path[:, 0], path[:, 1], color=MODEL, marker=".", linewidth=1.2)
        _arrow(ax, theta, theta - 0.5 * state["reptile"][1], TARGET, width=2.0)
        _theta(ax, theta)
        files[FALLBACKS["reptile-interpolation"]] = _finished(fig)

        # iMAML's proximal objective at λ = 1.
        anchor = torch.tensor(EXAMPLE_THETA, dtype=torch.float64)
        proximal = toy.landscape(points, tasks, anchor, 1.0).numpy()
        fig, axes = _plane_figure((6.0, 3.0), a, b, [
            (proximal[i], f"task {i + 1}: L(ϕ) + λ/2 ‖ϕ − θ‖², λ = 1", i) for i in range(2)])
        for i, ax in enumerate(axes):
            best = points[int(np.argmin(proximal[i]))].numpy()
            ax.plot(*best, marker="X", color="white", markeredgecolor="black", markersize=8)
            _theta(ax, theta)
        files[FALLBACKS["proximal-loss"]] = _finished(fig)

        # The implicit gradient: ϕ from ten proximal steps, its circle, CG iterates.
        state = _meta_state(EXAMPLE_THETA, 0.1, 10, lam=1.0)
        fig, (ax,) = _plane_figure((3.6, 3.4), a, b, [(single[0], "iMAML, task 1: λ = 1, CG iterates", 0)])
        phi = state["prox"][0, -1]
        radius = float(np.linalg.norm(phi - theta))
        ax.add_patch(matplotlib.patches.Circle(theta, radius, fill=False, color=INK, linestyle="--"))
        ax.plot(*phi, marker="o", color=MODEL, markersize=5)
        scale = 0.3 / max(float(np.linalg.norm(state["exact"][0])), 1e-9)
        for k, g in enumerate(state["cg"][0][:3]):
            _arrow(ax, theta, theta - scale * g, TARGET, width=0.8 + 0.6 * k)
        _arrow(ax, theta, theta - scale * state["exact"][0], "white", width=0.8)
        _theta(ax, theta)
        files[FALLBACKS["implicit-gradient"]] = _finished(fig)

        # The four methods' directions at the same θ (three inner steps).
        state = _meta_state(EXAMPLE_THETA, EXAMPLE_LR, 3)
        fig, (ax,) = _plane_figure((4.2, 3.6), a, b, [(single.sum(0), "meta-update directions, m = 3", None)])
        directions = {"MAML": state["maml"].mean(0), "FOMAML": state["fomaml"].mean(0),
                      "Reptile": state["reptile"].mean(0), "iMAML": state["cg"][:, -1].mean(0)}
        for label, g in directions.items():
            norm = float(np.linalg.norm(g))
            if norm > 0:
                _arrow(ax, theta, theta - 0.3 * g / norm, METHOD_COLOURS[label], label=label)
        _theta(ax, theta)
        ax.legend(loc="lower right", fontsize=7, frameon=False, labelcolor=INK)
        files[FALLBACKS["meta-gradients"]] = _finished(fig)

        # The curvature demo: the true and the first-order meta-gradient.
        example = {k: torch.tensor(v, dtype=torch.float64) for k, v in CURVATURE_EXAMPLE.items()}
        ca, cb, cpoints = _grid(CURVATURE_PLANE)
        values = toy.curvature_value(cpoints, example["curvature"], example["center"],
                                     example["linear"]).numpy()
        phi, true, first = toy.curvature_meta_gradients(
            example["theta"], example["curvature"], example["center"], example["linear"],
            example["inner_lr"])
        fig = Figure(figsize=(3.8, 3.4))
        ax = fig.add_subplot()
        ax.contour(ca, cb, values.reshape(ca.shape), levels=14, cmap="viridis", linewidths=0.8)
        ax.set_aspect("equal")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title("true (blue) and first-order (red) step", fontsize=9)
        start = example["theta"].numpy()
        _arrow(ax, start, start - 0.3 * true.numpy(), MODEL)
        _arrow(ax, start, start - 0.3 * first.numpy(), TARGET)
        ax.plot(*phi.numpy(), marker="o", color=INK, markersize=4)
        _theta(ax, start)
        files[FALLBACKS["curvature"]] = _finished(fig)
    return files


def render_all() -> dict[str, bytes]:
    """Every toy figure, {path relative to exported/: bytes}."""
    frames, minima = accumulated_frames()
    return {**frames, MINIMA: (json.dumps(minima, indent=1) + "\n").encode("utf-8"),
            **fallback_figures()}

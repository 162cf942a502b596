"""Static figures the build renders with matplotlib.

``sine_fit_svg`` is the fallback inside each sine-fit widget: what the widget
would show for one example task, drawn from the same safeguarded adaptation
the exported graph computes (``meta.export.reference_adaptation``), so a reader without
WebAssembly still sees this model's real behaviour. The output is
byte-for-byte deterministic (fixed SVG hash salt, no date), so an unchanged
model gives an unchanged file.
"""
from __future__ import annotations

import io

import matplotlib
import torch
from matplotlib.figure import Figure

from meta.evaluate import HALVINGS
from meta.export import reference_adaptation
from meta.model import Params

#: The example task of the fallback figure: y = A sin(x + phase), five support
#: points at fixed places (spread over [-5, 5], as a reader might click them).
EXAMPLE_AMPLITUDE = 3.0
EXAMPLE_PHASE = 0.8
EXAMPLE_SUPPORT_X = (-4.1, -2.3, -0.4, 1.7, 3.6)
EXAMPLE_STEPS = 10

# Colours readable on both the light and the dark palette (transparent background).
TARGET = "#e53935"
MODEL = "#1e88e5"
INK = "#8a8a8a"
#: matplotlib settings of every figure the build renders (here and results.py):
#: a fixed SVG hash salt, text kept as text, grey ink for both palettes.
SVG_RC = {"svg.hashsalt": "maml-site", "svg.fonttype": "none", "font.size": 9,
          "text.color": INK, "axes.labelcolor": INK, "axes.edgecolor": INK,
          "xtick.color": INK, "ytick.color": INK}


def svg_bytes(fig) -> bytes:
    """The figure as SVG with a transparent background and no date: the same
    inputs always give the same bytes."""
    fig.patch.set_alpha(0)
    for ax in fig.axes:
        ax.patch.set_alpha(0)
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def sine_fit_svg(params: Params, inner_lr: float, title: str,
                 halvings: int | None = HALVINGS, lam: float | None = None) -> bytes:
    """An SVG of the model before adaptation and after 1..10 steps on the
    example task: the safeguarded steps of the exported graph (plain gradient
    descent for halvings=None, iMAML's proximal steps with ``lam``)."""
    support_x = torch.tensor(EXAMPLE_SUPPORT_X, dtype=torch.float32).reshape(-1, 1)
    support_y = EXAMPLE_AMPLITUDE * torch.sin(support_x + EXAMPLE_PHASE)
    query_x = torch.linspace(-5.0, 5.0, 201).reshape(-1, 1)
    target = EXAMPLE_AMPLITUDE * torch.sin(query_x + EXAMPLE_PHASE)
    predictions, _ = reference_adaptation(params, support_x, support_y, query_x, inner_lr,
                                          EXAMPLE_STEPS, halvings, lam)
    x = query_x[:, 0].numpy()

    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(5.6, 3.2))
        ax = fig.add_subplot()
        ax.plot(x, target[:, 0].numpy(), color=TARGET, linewidth=2, label="target")
        ax.plot(x, predictions[0, :, 0].numpy(), color=MODEL, linewidth=1.5, linestyle="--",
                label="before fine-tuning")
        for step in range(1, EXAMPLE_STEPS):
            ax.plot(x, predictions[step, :, 0].numpy(), color=MODEL, linewidth=0.8,
                    alpha=0.15 + 0.5 * step / EXAMPLE_STEPS)
        ax.plot(x, predictions[EXAMPLE_STEPS, :, 0].numpy(), color=MODEL, linewidth=2,
                label=f"after {EXAMPLE_STEPS} steps (α = {inner_lr:g})")
        ax.scatter(support_x[:, 0].numpy(), support_y[:, 0].numpy(), color=INK, zorder=3,
                   s=24, label=f"{len(EXAMPLE_SUPPORT_X)} support points")
        ax.set_xlim(-5, 5)
        ax.set_ylim(-5.5, 5.5)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title)
        ax.legend(loc="lower left", fontsize=7, frameon=False, ncols=2)
        fig.tight_layout()
        return svg_bytes(fig)

"""The conv net's adaptation graph as ONNX, and the reference it is held to.

The graph takes one task: support images [N, 1, 28, 28] (ink in [0, 1]),
their labels [N] (whole numbers 0..19 as float32, which a page can feed), query images [M, 1, 28, 28] and the inner
learning rate; it unrolls S plain gradient steps on the support cross-entropy
from the stored parameters and returns the query class probabilities after
0, 1, …, S steps [S+1, M, 20] (classes no support label names get exactly 0)
and the support loss before each step and after the last [S+1].

``torch.autograd.grad`` does not survive ONNX export, so ``ConvAdaptation``
carries the network's backward pass written out by hand: a convolution's
input gradient is a transposed convolution, its weight gradient a
convolution of the layer's input with the output gradient (batch and channel
axes swapped, dilation = the stride). ``reference_adaptation`` computes the
same with autograd; the tests and ``maml-site check`` hold them to 1e-4.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .conv import BLOCKS, HEAD, SIZE, SPATIAL, Params

INPUT_NAMES = ("support_images", "support_labels", "query_images", "inner_lr")
OUTPUT_NAMES = ("probabilities", "support_loss")

#: The manifest's "graph" field of a conv model.
SIGNATURE = {
    "inputs": [
        {"name": "support_images", "type": "float32", "shape": ["N", 1, SIZE, SIZE],
         "meaning": "the support drawings, 28×28 grayscale, ink = 1, paper = 0; N ≥ 1"},
        {"name": "support_labels", "type": "float32", "shape": ["N"],
         "meaning": "the class of each support drawing, 0..W-1 for a W-way round (W ≤ 20), "
                    "as whole numbers in float32 (what onnxruntime-web pages feed)"},
        {"name": "query_images", "type": "float32", "shape": ["M", 1, SIZE, SIZE],
         "meaning": "the drawings to classify; M ≥ 1"},
        {"name": "inner_lr", "type": "float32", "shape": [],
         "meaning": "learning rate of the adaptation steps (the entry's inner_lr)"},
    ],
    "outputs": [
        {"name": "probabilities", "type": "float32", "shape": ["S+1", "M", HEAD],
         "meaning": "class probabilities of each query after 0, 1, …, S plain gradient steps on "
                    "the support cross-entropy; classes that no support label names get 0"},
        {"name": "support_loss", "type": "float32", "shape": ["S+1"],
         "meaning": "support cross-entropy before each step and after the last"},
    ],
}

#: conv_transpose2d's output_padding that restores each block's input size.
_OUTPUT_PADDING = tuple(SPATIAL[i] - ((SPATIAL[i + 1] - 1) * 2 - 2 + 3) for i in range(BLOCKS))


def _forward(p, x, mask):
    """Activations of one task: x [N, 1, 28, 28] -> (inputs of each block, ReLU outputs, features, masked logits)."""
    inputs, outs = [], []
    h = x
    for i in range(1, BLOCKS + 1):
        inputs.append(h)
        h = torch.relu(F.conv2d(h, p[f"conv{i}.w"], p[f"conv{i}.b"], stride=2, padding=1))
        outs.append(h)
    f = h.reshape(h.shape[0], -1)
    scores = f @ p["head.w"] + p["head.b"]
    scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
    return inputs, outs, f, scores


def _loss_and_grads(p, x, onehot, mask, count):
    """Support cross-entropy and its gradient, by hand (the backward pass)."""
    inputs, outs, f, scores = _forward(p, x, mask)
    logp = torch.log_softmax(scores, dim=-1)
    loss = -(logp * onehot).sum() / count
    d_scores = (torch.exp(logp) - onehot) / count                       # [N, 20]
    grads = {"head.w": f.transpose(0, 1) @ d_scores, "head.b": d_scores.sum(0)}
    d = (d_scores @ p["head.w"].transpose(0, 1)).reshape(outs[-1].shape)
    for i in range(BLOCKS, 0, -1):
        d = torch.where(outs[i - 1] > 0, d, torch.zeros_like(d))       # through the ReLU
        h_in = inputs[i - 1]
        # dL/dw[o, c, a, b] = Σ_n,y,x d[n, o, y, x] · h_in_padded[n, c, 2y + a, 2x + b]
        w_grad = F.conv2d(h_in.transpose(0, 1), d.transpose(0, 1), padding=1, dilation=2)
        grads[f"conv{i}.w"] = w_grad[:, :, :3, :3].transpose(0, 1)
        grads[f"conv{i}.b"] = d.sum((0, 2, 3))
        if i > 1:
            d = F.conv_transpose2d(d, p[f"conv{i}.w"], stride=2, padding=1,
                                   output_padding=_OUTPUT_PADDING[i - 1])
    return loss, grads


class ConvAdaptation(nn.Module):
    """S plain gradient steps from the stored parameters, written out by hand."""

    def __init__(self, params: Params, steps: int):
        super().__init__()
        self.names = list(params)
        for i, name in enumerate(self.names):
            self.register_buffer(f"p{i}", params[name].detach().float().clone())
        self.steps = steps

    def forward(self, support_images, support_labels, query_images, inner_lr):
        p = {name: getattr(self, f"p{i}") for i, name in enumerate(self.names)}
        classes = torch.arange(HEAD, dtype=support_images.dtype)
        onehot = (support_labels.to(support_images.dtype).unsqueeze(1) == classes).to(support_images.dtype)
        mask = onehot.sum(0, keepdim=True) > 0                                        # [1, 20]
        count = torch.clamp(onehot.sum(), min=1.0)
        probs, losses = [], []
        for step in range(self.steps + 1):
            _, _, _, scores = _forward(p, query_images, mask)
            probs.append(torch.softmax(scores, dim=-1))
            loss, grads = _loss_and_grads(p, support_images, onehot, mask, count)
            losses.append(loss)
            if step < self.steps:
                p = {n: p[n] - inner_lr * grads[n] for n in p}
        return torch.stack(probs), torch.stack(losses)


def reference_adaptation(params: Params, support_images, support_labels, query_images, inner_lr,
                         steps: int):
    """The same adaptation with autograd (any dtype): (probabilities [S+1, M, 20], support_loss [S+1])."""
    p = {n: v.detach().to(support_images.dtype).clone().requires_grad_(True) for n, v in params.items()}
    onehot = F.one_hot(torch.as_tensor(support_labels).round().long(), HEAD).to(support_images.dtype)
    mask = onehot.sum(0, keepdim=True) > 0
    probs, losses = [], []
    for step in range(steps + 1):
        with torch.no_grad():
            probs.append(torch.softmax(_forward(p, query_images, mask)[3], -1))
        with torch.enable_grad():
            scores = _forward(p, support_images, mask)[3]
            loss = -(torch.log_softmax(scores, -1) * onehot).sum() / onehot.shape[0]
            grads = torch.autograd.grad(loss, list(p.values()))
        losses.append(loss.detach())
        p = {n: (v - inner_lr * g).detach().requires_grad_(True) for (n, v), g in zip(p.items(), grads)}
    return torch.stack(probs), torch.stack(losses)


def example_inputs(ways: int = 5, queries: int = 3):
    g = torch.Generator().manual_seed(0)
    support = torch.rand(ways, 1, SIZE, SIZE, generator=g)
    return (support, torch.arange(ways, dtype=torch.float32), torch.rand(queries, 1, SIZE, SIZE, generator=g),
            torch.tensor(0.1))


def build_onnx_model(params: Params, steps: int):
    from .export import export_module

    n = torch.export.Dim("N", min=1, max=400)
    m = torch.export.Dim("M", min=1, max=400)
    dynamic = {"support_images": {0: n}, "support_labels": {0: n}, "query_images": {0: m},
               "inner_lr": {}}
    return export_module(ConvAdaptation(params, steps), example_inputs(), INPUT_NAMES,
                         OUTPUT_NAMES, dynamic, "conv adaptation")


def export_conv(params: Params, path: str | os.PathLike, steps: int) -> dict:
    from .export import write_model

    return {**write_model(build_onnx_model(params, steps), path), "steps": steps}


def run_onnx(path, support_images, support_labels, query_images, inner_lr):
    from .export import onnx_session

    feeds = {"support_images": np.ascontiguousarray(support_images, dtype=np.float32),
             "support_labels": np.ascontiguousarray(support_labels, dtype=np.float32),
             "query_images": np.ascontiguousarray(query_images, dtype=np.float32),
             "inner_lr": np.asarray(inner_lr, dtype=np.float32).reshape(())}
    return tuple(onnx_session(Path(path)).run(list(OUTPUT_NAMES), feeds))

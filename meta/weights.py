"""The exported weights back in PyTorch: load a ``<name>.pt`` file and predict with it.

``load_params`` reads the file the build writes next to each ONNX graph
(``exported/<name>.pt``: a ``torch.save`` of a checkpoint whose ``"params"``
holds the six tensors of the 1-40-40-1 network), or a plain ``torch.save`` of
those six tensors, and checks it before handing it back. ``predict`` and
``fine_tune`` wrap ``meta.model.forward`` and the safeguarded steps of
``meta.evaluate.adapt_safeguarded`` (what the exported graphs run) for one
task, with points shaped [M, 1] (or [M]) instead of the batched [T, M, 1].
"""
from __future__ import annotations

import os

import torch

from .evaluate import HALVINGS, adapt_safeguarded
from .model import LAYER_SIZES, PARAM_NAMES, Params, forward


def param_shapes(sizes: tuple[int, ...] = LAYER_SIZES) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of the network (no task dimension)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        shapes[f"w{layer}"] = (fan_in, fan_out)
        shapes[f"b{layer}"] = (fan_out,)
    return shapes


def load_params(path: str | os.PathLike) -> Params:
    """The meta-learned parameters stored at ``path``, as float32 CPU tensors.

    Raises FileNotFoundError when there is no such file, and ValueError naming
    the path and what was expected when the file is not a PyTorch weights file
    or its tensors are not the six of the 1-40-40-1 network with their shapes.
    """
    path = os.fspath(path)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise                      # no such file, a folder, no permission: as the OS says it
    except Exception as exc:       # noqa: BLE001 - unpickling other bytes fails in many ways
        raise ValueError(f"{path}: not a file written by torch.save ({_first_line(exc)})") from None

    expected = param_shapes()
    names = ", ".join(expected)
    if isinstance(stored, dict) and "params" in stored:
        params = stored["params"]
        where = "its 'params'"
    else:
        params = stored
        where = "it"
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a dict of the tensors {names} (or a checkpoint whose "
                         f"'params' holds them), but {where} is a {type(params).__name__}")
    missing = [n for n in expected if n not in params]
    extra = sorted(str(n) for n in params if n not in expected)
    if missing or extra:
        raise ValueError(f"{path}: expected exactly the tensors {names} (or a checkpoint whose "
                         f"'params' holds them); missing {missing or 'none'}, "
                         f"unexpected {extra or 'none'}")
    loaded: Params = {}
    for name in PARAM_NAMES:
        value = params[name]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            kind = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{path}: {name!r} must be a floating-point tensor, got {kind}")
        if tuple(value.shape) != expected[name]:
            raise ValueError(f"{path}: {name!r} has shape {list(value.shape)}, expected "
                             f"{list(expected[name])} (the {'-'.join(map(str, LAYER_SIZES))} "
                             "network, no task dimension)")
        if not torch.isfinite(value).all():
            raise ValueError(f"{path}: {name!r} holds NaN or infinite values")
        loaded[name] = value.detach().to(torch.float32)
    return loaded


def _points(name: str, values) -> torch.Tensor:
    """Points as a float32 tensor [1, M, 1] (one task) from [M, 1], [M] or a list."""
    t = torch.as_tensor(values, dtype=torch.float32)
    if t.dim() == 1:
        t = t.unsqueeze(-1)
    if t.dim() != 2 or t.shape[1] != 1:
        raise ValueError(f"{name} must be shaped [points, 1] or [points], got {list(t.shape)}")
    return t.unsqueeze(0)


def predict(params: Params, x) -> torch.Tensor:
    """The network's predictions [M, 1] at the points x ([M, 1], [M] or a list)."""
    with torch.no_grad():
        return forward(params, _points("x", x))[0]


def fine_tune(params: Params, support_x, support_y, steps: int, inner_lr: float,
              halvings: int | None = HALVINGS) -> Params:
    """The parameters after ``steps`` gradient steps on the support MSE at
    ``inner_lr``, each safeguarded as the exported graphs do (the step is
    halved, up to ``halvings`` times, while it would raise the support loss;
    if every trial would, the parameters stay), without a task dimension.
    halvings=None takes plain gradient-descent steps instead."""
    x, y = _points("support_x", support_x), _points("support_y", support_y)
    if x.shape != y.shape:
        raise ValueError(f"support_x {list(x.shape[1:])} and support_y {list(y.shape[1:])} "
                         "must have the same shape")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    with torch.no_grad():
        tuned = adapt_safeguarded({n: p.unsqueeze(0) for n, p in params.items()}, x, y, steps,
                                  inner_lr, halvings)
    return {name: p.reshape(params[name].shape) for name, p in tuned.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

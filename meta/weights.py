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

import math
import os
import re

import numpy as np
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
              halvings: int | None = HALVINGS, lam: float | None = None) -> Params:
    """The parameters after ``steps`` gradient steps on the support MSE at
    ``inner_lr``, each safeguarded as the exported graphs do (the step is
    halved, up to ``halvings`` times, while it would raise the support loss;
    if every trial would, the parameters stay), without a task dimension.
    halvings=None takes plain gradient-descent steps instead; ``lam`` (an iMAML
    model's, its manifest entry's inner_procedure) the proximal steps its
    graph runs."""
    x, y = _points("support_x", support_x), _points("support_y", support_y)
    if x.shape != y.shape:
        raise ValueError(f"support_x {list(x.shape[1:])} and support_y {list(y.shape[1:])} "
                         "must have the same shape")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    _check_rate(inner_lr)
    for name, t in (("support_x", x), ("support_y", y)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} holds NaN or infinite values; allowed: finite numbers")
    with torch.no_grad():
        tuned = adapt_safeguarded({n: p.unsqueeze(0) for n, p in params.items()}, x, y, steps,
                                  inner_lr, halvings, lam)
    return {name: p.reshape(params[name].shape) for name, p in tuned.items()}


def _check_rate(inner_lr) -> float:
    if (isinstance(inner_lr, bool) or not isinstance(inner_lr, (int, float, np.floating, np.integer))
            or not math.isfinite(inner_lr) or inner_lr < 0):
        raise ValueError(f"inner_lr must be a finite number >= 0, got {inner_lr!r}")
    return float(inner_lr)


# ------------------------------------------------------------ the ONNX graphs
#
# Every manifest entry documents its graph's inputs ("graph": {"inputs":
# [{name, type, shape, meaning}], "outputs": [...]}); shape entries are sizes
# or names of dimensions that vary ("N", "M"), and a meaning may state a
# smallest size ("M ≥ 1 points"). The helpers below hold what they feed a
# graph to that description, so a wrong input is one ValueError naming it
# rather than an onnxruntime stack trace.

_MIN_SIZE = re.compile(r"\b([A-Z])\s*(?:≥|>=)\s*(\d+)")
_NUMPY_TYPES = {"float32": np.float32}


def check_inputs(graph: dict, feeds: dict) -> dict[str, np.ndarray]:
    """The feeds of an exported graph as numpy arrays, checked against the
    graph's documented inputs (``graph``: a manifest entry's "graph").

    Every documented input must be given and no other; numpy arrays and
    tensors must have the documented type (float32: they are not converted
    behind your back), Python numbers and lists become float32; each input has
    the documented number of dimensions and fixed sizes, a named dimension has
    one size across the inputs (N of support_x is N of support_y), at least
    the smallest size its meaning states, and every value is finite.
    Raises ValueError naming the input, what it is and what the graph takes.
    """
    inputs = graph.get("inputs") if isinstance(graph, dict) else None
    if not isinstance(inputs, list):
        raise ValueError("graph must be a manifest entry's 'graph' ({'inputs': [...], 'outputs': [...]})")
    names = [spec["name"] for spec in inputs]
    if not isinstance(feeds, dict):
        raise ValueError(f"feeds must be a dict of the inputs {', '.join(names)}, "
                         f"got {type(feeds).__name__}")
    missing = [n for n in names if n not in feeds]
    unknown = sorted(str(n) for n in feeds if n not in names)
    if missing or unknown:
        raise ValueError(f"the graph takes the inputs {', '.join(names)}; missing "
                         f"{', '.join(missing) or 'none'}, unknown {', '.join(unknown) or 'none'}")
    sizes: dict[str, tuple[int, str]] = {}
    arrays = {}
    for spec in inputs:
        name, shape, kind = spec["name"], list(spec["shape"]), spec.get("type", "float32")
        dtype = _NUMPY_TYPES.get(kind)
        if dtype is None:
            raise ValueError(f"input {name!r} is documented as {kind!r}, which these helpers do "
                             f"not feed; allowed: {', '.join(_NUMPY_TYPES)}")
        array = _as_array(name, feeds[name], dtype, kind)
        wanted = "[" + ", ".join(map(str, shape)) + "]"
        if array.ndim != len(shape):
            raise ValueError(f"input {name!r} has shape {list(array.shape)}, the graph takes "
                             f"{wanted} ({len(shape)} dimension{'s' if len(shape) != 1 else ''})")
        smallest = {d: int(n) for d, n in _MIN_SIZE.findall(spec.get("meaning", ""))}
        for axis, (size, dim) in enumerate(zip(array.shape, shape)):
            if isinstance(dim, int):
                if size != dim:
                    raise ValueError(f"input {name!r} has shape {list(array.shape)}, the graph "
                                     f"takes {wanted} (size {dim} on axis {axis})")
                continue
            if dim in sizes and sizes[dim][0] != size:
                first_size, first = sizes[dim]
                raise ValueError(f"input {name!r} has {size} along {dim}, but {first!r} has "
                                 f"{first_size}: the graph takes one {dim} for both ({wanted})")
            sizes.setdefault(dim, (size, name))
            if size < smallest.get(dim, 0):
                raise ValueError(f"input {name!r} has shape {list(array.shape)}; the graph takes "
                                 f"{wanted} with {dim} ≥ {smallest[dim]}")
        if not np.isfinite(array).all():
            raise ValueError(f"input {name!r} holds NaN or infinite values; allowed: finite numbers")
        arrays[name] = array
    return arrays


def _as_array(name: str, value, dtype, kind: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        if value.dtype != dtype:
            raise ValueError(f"input {name!r} is {value.dtype}, the graph takes {kind}; convert it "
                             f"first (numpy: .astype(np.{kind}); torch: .to(torch.{kind}))")
        return np.asarray(value) if np.ndim(value) == 0 else np.ascontiguousarray(value)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"input {name!r} must be numbers ({kind}), got {type(value).__name__}") from None
    return array.astype(dtype)


def run_graph(path: str | os.PathLike, graph: dict, feeds: dict) -> dict[str, np.ndarray]:
    """Run the exported graph at ``path`` with onnxruntime (CPU) on feeds
    checked by ``check_inputs``; returns {output name: array}."""
    import onnxruntime as ort

    arrays = check_inputs(graph, feeds)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    actual = sorted(i.name for i in session.get_inputs())
    if actual != sorted(arrays):
        raise ValueError(f"{os.fspath(path)} takes the inputs {', '.join(actual)}, not the "
                         f"documented {', '.join(sorted(arrays))}: is it the graph of this entry?")
    outputs = [spec["name"] for spec in graph["outputs"]]
    return dict(zip(outputs, session.run(outputs, arrays)))


def adapt(entry: dict, support_x, support_y, query_x, steps: int,
          exported: str | os.PathLike = "exported", inner_lr: float | None = None) -> np.ndarray:
    """A sinusoid model's predictions at ``query_x`` ([M, 1]) after ``steps``
    adaptation steps on the support set, computed by its exported graph
    (``entry``: its manifest entry; the graph unrolls ``entry["steps"]``
    steps). ``inner_lr`` defaults to the entry's."""
    unrolled = entry.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= unrolled:
        raise ValueError(f"steps {steps!r} is out of range: the graph {entry.get('file')} takes "
                         f"{unrolled} steps; allowed: an integer from 0 to {unrolled}")
    rate = _check_rate(entry["inner_lr"] if inner_lr is None else inner_lr)
    out = run_graph(os.path.join(exported, entry["file"]), entry["graph"],
                    {"support_x": support_x, "support_y": support_y, "query_x": query_x,
                     "inner_lr": np.float32(rate)})
    return out["query_y"][steps]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

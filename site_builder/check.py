"""`maml-site check`: is exported/ what its manifest says, and do the ONNX graphs
compute what PyTorch computes?

1. The manifest is format 1 and lists every registered model with the
   contract's fields.
2. Every file it names exists and has the recorded sha256.
3. For each model, the ONNX graph (onnxruntime) and autograd-based adaptation
   of the stored weights, with the inner procedure its entry records
   (backtracking with its halvings, iMAML's proximal steps with its lam;
   plain gradient descent where none is recorded), agree within 1e-5 on support sets of 0..20 points
   (1e-4 for iMAML's Gauss–Newton steps: their N x N solve amplifies float32 rounding).

Stale inputs (code changed since a file was built) are reported as notes: the
files are still consistent, and `maml-site build` would redo those stages.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from meta.evaluate import HALVINGS

from . import manifest
from .config import MODELS
from .errors import BuildFailure
from .hashing import file_sha256
from .stages import RECORD_KEYS, load_checkpoint, train_inputs_hash

log = logging.getLogger("site_builder")

PARITY_TOLERANCE = 1e-5
#: iMAML's graph inverts an N x N kernel system at every Gauss–Newton step, and
#: its condition number scales float32 rounding: the committed model's graph
#: agrees with the float64 reference to 1.4e-5 (tests/test_export.py: ≤ 6e-5).
PROXIMAL_PARITY_TOLERANCE = 1e-4
PARITY_SUPPORT_SIZES = (0, 1, 5, 10, 20)
PARITY_SEED = 12345


def _file_problems(exported: Path, name: str, record: dict) -> list[str]:
    if not record.get("file") or not record.get("sha256"):
        return [f"{name}: the manifest records a file without its name or sha256"]
    path = exported / record["file"]
    if not path.is_file():
        return [f"{name}: {record['file']} is missing from {exported}"]
    actual = file_sha256(path)
    if actual != record["sha256"]:
        return [f"{name}: {record['file']} has sha256 {actual[:12]}…, "
                f"the manifest says {record['sha256'][:12]}…"]
    return []


def procedure_arguments(entry: dict) -> dict:
    """{"halvings", "lam"} of the procedure an entry's graph runs (plain
    gradient descent for an entry without "inner_procedure"); ValueError for
    one that is not a known procedure."""
    from meta.evaluate import procedure_arguments as arguments

    return arguments(entry.get("inner_procedure"))


def parity_error(onnx_path: Path, params: dict, inner_lr: float, steps: int,
                 halvings: int | None = HALVINGS, lam: float | None = None) -> tuple[float, int]:
    """Largest |ONNX - autograd| over query predictions and support losses, and
    the support size where it occurred; both adapt with ``halvings`` halvings
    of the safeguarded step (None: plain gradient descent; the default is the
    build's procedure)."""
    from meta.export import reference_adaptation, run_onnx

    generator = torch.Generator().manual_seed(PARITY_SEED)
    query_x = torch.linspace(-5.0, 5.0, 100).reshape(-1, 1)
    worst, worst_n = 0.0, 0
    for n in PARITY_SUPPORT_SIZES:
        amplitude = float(torch.rand((), generator=generator) * 4.9 + 0.1)
        phase = float(torch.rand((), generator=generator) * np.pi)
        support_x = torch.rand(n, 1, generator=generator) * 10 - 5
        support_y = amplitude * torch.sin(support_x + phase)
        # The reference runs in float64: the truth the float32 graph is held to.
        ref_y, ref_loss = reference_adaptation(params, support_x.double(), support_y.double(),
                                               query_x.double(), inner_lr, steps, halvings, lam)
        onnx_y, onnx_loss = run_onnx(onnx_path, support_x, support_y, query_x, inner_lr)
        if onnx_y.shape != tuple(ref_y.shape) or onnx_loss.shape != tuple(ref_loss.shape):
            raise BuildFailure(f"{onnx_path.name}: ONNX outputs are shaped {list(onnx_y.shape)}, "
                               f"{list(onnx_loss.shape)}; expected {list(ref_y.shape)}, "
                               f"{list(ref_loss.shape)} (is it exported with {steps} steps?)")
        # Compare the steps where gradient descent is still descending. At a
        # model's rate, a support set can make the loss so curved that plain
        # steps blow up (see the Results page); rounding then grows
        # exponentially and no float32 graph can track float64 any more. Those
        # steps are skipped (the safeguarded step never raises the loss).
        stable = _stable_steps(ref_loss.numpy())
        error = max(float(np.max(np.abs(onnx_y[stable] - ref_y.numpy()[stable]), initial=0.0)),
                    float(np.max(np.abs(onnx_loss[stable] - ref_loss.numpy()[stable]), initial=0.0)))
        if not np.isfinite(onnx_y[stable]).all() or not np.isfinite(onnx_loss[stable]).all():
            error = float("inf")
        if error > worst:
            worst, worst_n = error, n
    return worst, worst_n


def _stable_steps(support_loss: np.ndarray) -> np.ndarray:
    """Steps 0..S up to (not including) the first whose support loss is not
    finite or exceeds twice the starting loss (plus 1e-3): from there on the
    steps overshoot, and float32 rounding grows with every step."""
    bound = 2 * float(support_loss[0]) + 1e-3
    blown = ~np.isfinite(support_loss) | (support_loss > bound)
    first = int(np.argmax(blown)) if blown.any() else len(support_loss)
    return np.arange(len(support_loss)) < first


def _stale_notes(repo_root: Path, entry: dict) -> list[str]:
    train = entry.get("train")
    if not isinstance(train, dict) or "inputs" not in entry:
        return []
    settings = (entry.get("selection") or {}).get("settings")
    if entry["inputs"].get("train") != train_inputs_hash(repo_root, train, train.get("seed"), settings):
        return [f"{entry['name']}: the training code or its configuration changed since these "
                "weights were trained; `maml-site build` would retrain"]
    return []


def _check_toy_graphs(exported: Path, entries: dict[str, dict]) -> list[str]:
    """The toy graphs: files as recorded, and ONNX against PyTorch (float64) on
    the settings the widgets use (meta.toy_export.parity_feeds)."""
    from meta.toy_export import GRAPHS, parity_error as toy_parity_error

    problems = []
    for name in GRAPHS:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"{name}: not in the manifest; run `maml-site build`")
            continue
        records = [{"file": entry.get("file"), "sha256": entry.get("sha256")}]
        records += list(entry.get("figures") or [])
        file_problems = [p for r in records for p in _file_problems(exported, name, r)]
        problems += file_problems
        if file_problems:
            continue
        error = toy_parity_error(exported / entry["file"], name)
        if error > PARITY_TOLERANCE:
            problems.append(f"{name}: ONNX and PyTorch differ by {error:.3g} (> {PARITY_TOLERANCE:g}); "
                            "run `maml-site export`")
        else:
            log.info("%s: files match the manifest; ONNX vs PyTorch max error %.2g", name, error)
    return problems


def check(exported: Path, repo_root: Path) -> list[str]:
    """Log what was checked; raise BuildFailure listing every problem found.
    Returns notes (stale inputs) that are not failures."""
    path = exported / manifest.MANIFEST
    if not path.is_file():
        raise BuildFailure(f"{path} does not exist; run `maml-site build`")
    data = manifest.read(exported)
    if not data["models"]:
        raise BuildFailure(f"{path} lists no models (or is not a format-{manifest.FORMAT} manifest)")
    entries = manifest.entries_by_name(data)
    problems: list[str] = []
    notes: list[str] = []
    for name in MODELS:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"{name}: not in {path}")
            continue
        missing = [f for f in manifest.CONTRACT_FIELDS if f not in entry]
        if missing:
            problems.append(f"{name}: manifest entry lacks {', '.join(missing)}")
            continue
        records = [{"file": entry["file"], "sha256": entry["sha256"]}]
        records += [entry[k] for k in RECORD_KEYS.values() if k in entry]
        file_problems = [p for r in records for p in _file_problems(exported, name, r)]
        problems += file_problems
        if "weights" not in entry:
            problems.append(f"{name}: manifest entry has no weights record")
        if file_problems or "weights" not in entry:
            continue
        params = load_checkpoint(exported / entry["weights"]["file"])["params"]
        try:
            arguments = procedure_arguments(entry)
        except ValueError as error:
            problems.append(f"{name}: manifest entry's inner_procedure: {error}")
            continue
        error, n = parity_error(exported / entry["file"], params, entry["inner_lr"], entry["steps"],
                                **arguments)
        tolerance = PARITY_TOLERANCE if arguments["lam"] is None else PROXIMAL_PARITY_TOLERANCE
        if error > tolerance:
            problems.append(f"{name}: ONNX and PyTorch adaptation differ by {error:.3g} "
                            f"(> {tolerance:g}) with {n} support points; the graph was "
                            f"exported from other weights or code: run `maml-site export`")
        else:
            log.info("%s: files match the manifest; ONNX vs PyTorch max error %.2g", name, error)
        notes += _stale_notes(repo_root, entry)
    problems += _check_toy_graphs(exported, entries)
    from .meta_step_stage import check_meta_step_graphs      # issue 12: meta-step graphs
    more_problems, more_notes = check_meta_step_graphs(exported, entries)
    problems, notes = problems + more_problems, notes + more_notes
    from .conv_stage import check_conv_models                # issue 13: conv nets
    more_problems, more_notes = check_conv_models(exported, entries)
    problems, notes = problems + more_problems, notes + more_notes
    if problems:
        raise BuildFailure("check failed:\n  " + "\n  ".join(problems))
    for note in notes:
        log.info("note: %s", note)
    return notes


"""The conv nets on the glyph alphabets in the build (issue 13): train, evaluate, export.

For each model of ``config.CONV_MODELS`` three cached stages, like the
sinusoid models' (site_builder/stages.py): each hashes what its file depends
on and runs only when that hash differs from the one the manifest recorded or
its file is gone or altered (``--retrain`` retrains).

* train: MAML or joint training on the BACKGROUND alphabets
  (site_builder.glyphs.split_glyphs); a pretrained net keeps its conv blocks
  and a zero 20-way head (meta.conv.fine_tune_start), and its adaptation rate
  is chosen on VALIDATION alphabets. ``<name>.pt``.
* evaluate: 5-way and 20-way 1-shot accuracy on the HELD-OUT alphabets (the
  quiz's), after 0…S steps, with 95% confidence intervals. ``<name>.results.json``;
  the manifest's metrics: acc_5way_1shot, acc_20way_1shot (after S steps) and
  their _ci95, as fractions.
* export: the adaptation graph (meta/conv_export.py). ``<name>.onnx``.

With more than one job on the CPU, the models that must train run at once,
each in a worker process with one torch thread (as this process: the files
are the same to the bit); a worker returns its files and this process writes
them, into the build's staging copy of exported/.

Entries carry the contract's fields with the task family "glyphs".
"""
from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import atomic
from .errors import BuildFailure
from .hashing import file_sha256, inputs_hash, source_hashes
from .stages import require_recorded_weights

log = logging.getLogger("site_builder")

FAMILY = "glyphs"
TRAIN_SOURCES = ("meta/conv.py", "site_builder/glyphs.py")
EVAL_SOURCES = ("meta/conv.py", "site_builder/glyphs.py")
EXPORT_SOURCES = ("meta/conv.py", "meta/conv_export.py", "meta/export.py")
#: Seeds of the evaluation and validation rounds (never used for training).
EVAL_SEED = 913
VALIDATION_SEED = 914
PARITY_TOLERANCE = 1e-4
WAYS = (5, 20)


def model_names() -> list[str]:
    from .config import CONV_MODELS

    return list(CONV_MODELS)


def _intact(exported: Path, record: dict | None) -> bool:
    if not record or not record.get("file"):
        return False
    path = exported / record["file"]
    return path.is_file() and file_sha256(path) == record.get("sha256")


def task_description(profile) -> dict:
    from meta.conv import HEAD, SIZE

    from .glyphs import CHARACTERS, GLYPH_SEED, HANDS, ALPHABETS

    return {"family": FAMILY, "size": SIZE, "outputs": HEAD, "ways": list(WAYS), "shots": 1,
            "glyph_seed": GLYPH_SEED,
            "held_out": {"alphabets": ALPHABETS, "characters": CHARACTERS, "hands": HANDS},
            "note": "generated alphabets (site_builder/glyphs.py), not Omniglot; trained on "
                    "background alphabets, rates chosen on validation alphabets, evaluated on the "
                    "held-out alphabets of the quiz"}


def _held_out():
    from meta.conv import GlyphTasks

    from .glyphs import ALPHABETS, CHARACTERS, HANDS, split_glyphs

    return GlyphTasks(split_glyphs("held-out", ALPHABETS, CHARACTERS, HANDS))


def _validation():
    from meta.conv import GlyphTasks

    from .glyphs import CHARACTERS, HANDS, split_glyphs

    return GlyphTasks(split_glyphs("validation", 10, CHARACTERS, HANDS))


def _train(spec, cfg, profile, device: str) -> dict:
    """Train one model; returns the checkpoint dict (params of the 20-way net)."""
    from meta.conv import choose_inner_lr, fine_tune_start, train

    from .glyphs import split_glyphs

    ink = split_glyphs("background", cfg.alphabets, cfg.characters, cfg.hands)
    log.info("%s: training (%s, %d iterations on %d background alphabets, seed %d)", spec.name,
             cfg.algorithm, cfg.iterations, cfg.alphabets, cfg.seed)
    result = train(cfg, ink, device=device, log=lambda line: log.info("%s: %s", spec.name, line))
    params = result.params
    selection = None
    if cfg.algorithm == "pretrained":
        params = fine_tune_start(params)
    if isinstance(spec.adapt_lr, tuple):
        inner_lr, scores = choose_inner_lr(params, _validation(), spec.adapt_lr,
                                           profile.validation_tasks, profile.steps, VALIDATION_SEED)
        selection = {"criterion": f"mean of 5-way and 20-way accuracy after {profile.steps} steps "
                                  f"on {profile.validation_tasks} validation rounds per way",
                     "candidates": scores, "chosen": inner_lr}
        log.info("%s: adapts at %g, the best of %s on validation alphabets", spec.name, inner_lr,
                 ", ".join(f"{lr:g}" for lr in spec.adapt_lr))
    else:
        inner_lr = float(spec.adapt_lr or cfg.inner_lr)
    log.info("%s: trained in %.1f s on %s", spec.name, result.seconds, result.device)
    return {"params": params, "config": cfg.to_dict(), "history": result.history,
            "seconds": round(result.seconds, 1), "device": result.device,
            "torch": str(torch.__version__), "inner_lr": inner_lr, "selection": selection}


def evaluate(params, inner_lr: float, eval_tasks: int, steps: int) -> dict:
    from meta.conv import accuracy_by_step

    tasks = _held_out()
    return {str(w): accuracy_by_step(params, tasks, w, eval_tasks, steps, inner_lr, EVAL_SEED + w)
            for w in WAYS}


def summary_metrics(evaluation: dict) -> dict:
    metrics = {}
    for w in WAYS:
        e = evaluation[str(w)]
        metrics[f"acc_{w}way_1shot"] = e["accuracy"][-1]
        metrics[f"acc_{w}way_1shot_ci95"] = e["ci95"][-1]
    metrics["tasks"] = evaluation[str(WAYS[0])]["tasks"]
    return metrics


@dataclass(frozen=True)
class ConvJob:
    """One conv model's stages, as a worker process receives them (picklable)."""
    name: str
    exported: Path                 # read only: the files are returned, the caller writes them
    recorded: dict                 # the manifest's entry, {} when none
    profile: str
    seed: int
    device: str
    retrain: bool
    stages: tuple[str, ...]
    code: dict                     # source hashes by stage ("train", "evaluate", "export")
    train: bool                    # whether to train (run_conv_stage decides, with _must_train)


@dataclass
class ConvOutcome:
    name: str
    entry: dict
    ran: list[str]
    files: dict[str, bytes]        # file name -> content, to write into the exported folder


def _train_hash(job: ConvJob, spec, cfg, profile) -> str:
    return inputs_hash(config=cfg.to_dict(), seed=job.seed, code=job.code["train"],
                       adapt_lr=list(spec.adapt_lr) if isinstance(spec.adapt_lr, tuple)
                       else spec.adapt_lr, validation=[profile.validation_tasks, profile.steps])


def _must_train(job: ConvJob) -> bool:
    from .config import CONV_MODELS, CONV_PROFILES

    spec, profile = CONV_MODELS[job.name], CONV_PROFILES[job.profile]
    cfg = spec.train_config(job.profile, job.seed)
    return "train" in job.stages and (
        job.retrain or (job.recorded.get("inputs") or {}).get("train") != _train_hash(job, spec, cfg, profile)
        or not _intact(job.exported, job.recorded.get("weights")))


def _record(file: str, data: bytes) -> dict:
    return {"file": file, "sha256": hashlib.sha256(data).hexdigest()}


def run_conv_job(job: ConvJob) -> ConvOutcome:
    """Train, evaluate and export one conv model where stale, writing nothing:
    the new files come back in the outcome (in a worker process or this one)."""
    from .config import CONV_MODELS, CONV_PROFILES

    spec, profile = CONV_MODELS[job.name], CONV_PROFILES[job.profile]
    cfg = spec.train_config(job.profile, job.seed)
    exported, old = job.exported, job.recorded
    entry = {k: v for k, v in old.items()}
    inputs = dict(entry.get("inputs") or {})
    files, ran = {}, []
    weights = f"{spec.name}.pt"
    if job.train:
        checkpoint = _train(spec, cfg, profile, job.device)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        files[weights] = buffer.getvalue()
        entry["weights"] = _record(weights, files[weights])
        inputs["train"] = _train_hash(job, spec, cfg, profile)
        ran.append(f"{spec.name}: train")
    else:
        if "train" not in job.stages:          # with "train", _must_train has checked them
            require_recorded_weights(spec.name, exported / weights, entry.get("weights"))
        checkpoint = torch.load(exported / weights, map_location="cpu", weights_only=True)
    params, inner_lr = checkpoint["params"], float(checkpoint["inner_lr"])
    weights_sha = entry["weights"]["sha256"]

    eval_hash = inputs_hash(weights=weights_sha, inner_lr=inner_lr, tasks=profile.eval_tasks,
                            steps=profile.steps, seed=EVAL_SEED, code=job.code["evaluate"])
    results = f"{spec.name}.results.json"
    if "evaluate" in job.stages and (inputs.get("evaluate") != eval_hash
                                     or not _intact(exported, old.get("results"))):
        log.info("%s: evaluating on %d held-out rounds per way", spec.name, profile.eval_tasks)
        evaluation = evaluate(params, inner_lr, profile.eval_tasks, profile.steps)
        data = {"name": spec.name, "algorithm": spec.algorithm, "train": checkpoint["config"],
                "training": {k: checkpoint[k] for k in ("seconds", "device", "torch", "history")},
                "selection": checkpoint.get("selection"), "inner_lr": inner_lr,
                "evaluation": evaluation}
        files[results] = atomic.dumps_json(data).encode("utf-8")
        entry["results"] = _record(results, files[results])
        entry["metrics"] = summary_metrics(evaluation)
        inputs["evaluate"] = eval_hash
        ran.append(f"{spec.name}: evaluate")

    export_hash = inputs_hash(weights=weights_sha, steps=profile.steps, code=job.code["export"])
    onnx = f"{spec.name}.onnx"
    if "export" in job.stages and (inputs.get("export") != export_hash or not _intact(
            exported, {"file": old.get("file"), "sha256": old.get("sha256")})):
        from meta.conv_export import build_onnx_model

        log.info("%s: exporting the ONNX adaptation graph (%d steps)", spec.name, profile.steps)
        # The bytes meta.export.write_model would write.
        files[onnx] = build_onnx_model(params, profile.steps).SerializeToString(deterministic=True)
        entry["sha256"] = _record(onnx, files[onnx])["sha256"]
        inputs["export"] = export_hash
        ran.append(f"{spec.name}: export")
    from meta.conv_export import SIGNATURE

    entry.update(name=spec.name, algorithm=spec.algorithm, task=task_description(profile),
                 file=onnx, inner_lr=inner_lr, steps=profile.steps, train=checkpoint["config"],
                 graph=SIGNATURE, inputs=inputs,
                 training={k: checkpoint[k] for k in ("seconds", "device", "torch")})
    if checkpoint.get("selection"):
        entry["selection"] = checkpoint["selection"]
    return ConvOutcome(spec.name, entry, ran, files)


def _run_concurrently(jobs: list[ConvJob], workers: int) -> list[ConvOutcome]:
    """run_conv_job for each job in its own worker process, as the build runs
    the sinusoid models (one torch thread, so the files are the same to the
    bit as this process's). The first failure stops the others and is raised
    as a BuildFailure naming its model."""
    from .build import _run_in_workers

    outcomes, errors = _run_in_workers(run_conv_job, jobs, workers, stop_at_first=True)
    if errors:
        raise BuildFailure("; ".join(errors))
    order = {job.name: i for i, job in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[o.name])


def run_conv_stage(exported: Path, repo_root: Path, recorded: dict[str, dict], profile_name: str,
                   seed: int, device: str, retrain: bool, names=None,
                   stages=("train", "evaluate", "export"), jobs: int = 1
                   ) -> tuple[dict[str, dict], list[str]]:
    """Train, evaluate and export every conv model where stale. Returns the new
    manifest entries by name and the stages that ran ("name: stage").
    ``names``/``stages``: only those models and stages (`maml-site train maml-glyphs`);
    a stage left out keeps its recorded file, hash and metrics.
    ``jobs`` > 1 on the CPU: models that must train do so at once, each in a
    worker process (the files are the same as with one job); on a GPU they
    train in turn here (seconds each; a worker would only add CUDA's start)."""
    from meta.train import resolve_device

    from .config import CONV_MODELS

    code = {"train": source_hashes(repo_root, TRAIN_SOURCES),
            "evaluate": source_hashes(repo_root, EVAL_SOURCES),
            "export": source_hashes(repo_root, EXPORT_SOURCES)}
    todo = [ConvJob(name, exported, recorded.get(name, {}), profile_name, seed, device, retrain,
                    tuple(stages), code, train=False)
            for name in CONV_MODELS if names is None or name in names]
    todo = [replace(job, train=_must_train(job)) for job in todo]      # decided once, here
    concurrent = (jobs > 1 and resolve_device(device).type == "cpu"
                  and sum(job.train for job in todo) > 1)
    started = time.perf_counter()
    outcomes = (_run_concurrently(todo, jobs) if concurrent
                else [run_conv_job(job) for job in todo])
    # This process writes every file (atomically, into the build's staging copy).
    for outcome in outcomes:
        for file, data in outcome.files.items():
            atomic.write_bytes(exported / file, data)
    ran = [r for o in outcomes for r in o.ran]
    if ran:          # the stage's whole time (issue 13 gives it 10 minutes on a 2-core CPU)
        log.info("conv nets: %s in %.1f s%s", ", ".join(ran), time.perf_counter() - started,
                 " (side by side, one worker each)" if concurrent else "")
    return ({o.name: o.entry for o in outcomes}, ran)


# ------------------------------------------------------------ maml-site check

PARITY_SEED = 4321


def parity_error(path: Path, params, inner_lr: float, steps: int) -> float:
    """Largest |ONNX − autograd (float64)| over probabilities and support losses,
    on held-out rounds of 5 and 20 ways (one query per character)."""
    import numpy as np

    from meta.conv_export import reference_adaptation, run_onnx

    tasks = _held_out()
    generator = torch.Generator().manual_seed(PARITY_SEED)
    worst = 0.0
    for w in WAYS:
        batch = tasks.sample(2, w, generator, queries=1, same_query_hand=True)
        for t in range(2):
            s, y, q = batch.support[t].unsqueeze(1), batch.support_labels[t], batch.query[t].unsqueeze(1)
            ref_p, ref_l = reference_adaptation(params, s.double(), y, q.double(), inner_lr, steps)
            got_p, got_l = run_onnx(path, s.numpy(), y.numpy(), q.numpy(), inner_lr)
            if got_p.shape != tuple(ref_p.shape) or not np.isfinite(got_p).all():
                return float("inf")
            worst = max(worst, float(np.abs(got_p - ref_p.numpy()).max()),
                        float(np.abs(got_l - ref_l.numpy()).max()))
    return worst


def check_conv_models(exported: Path, entries: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(problems, notes) for `maml-site check`: each conv model's files are as
    recorded and its graph matches autograd within 1e-4. A manifest from
    before these models existed (none listed) is a note."""
    names = model_names()
    if not any(name in entries for name in names):
        return [], ["the manifest lists no conv models yet; `maml-site build` trains them"]
    problems: list[str] = []
    for name in names:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"{name}: not in the manifest; run `maml-site build`")
            continue
        records = {"graph": {"file": entry.get("file"), "sha256": entry.get("sha256")},
                   "weights": entry.get("weights"), "results": entry.get("results")}
        bad = [(kind, (r or {}).get("file")) for kind, r in records.items() if not _intact(exported, r)]
        if bad:
            problems += [(f"{name}: {file} is missing or does not match the sha256 in the manifest"
                          if file else f"{name}: the manifest records no {kind} file")
                         + "; run `maml-site build`" for kind, file in bad]
            continue
        params = torch.load(exported / entry["weights"]["file"], map_location="cpu",
                            weights_only=True)["params"]
        error = parity_error(exported / entry["file"], params, entry["inner_lr"], entry["steps"])
        if error > PARITY_TOLERANCE:
            problems.append(f"{name}: ONNX and PyTorch adaptation differ by {error:.3g} "
                            f"(> {PARITY_TOLERANCE:g}); run `maml-site build`")
        else:
            log.info("%s: files match the manifest; ONNX vs PyTorch max error %.2g", name, error)
    return problems, []

"""The whole build, and single stages of it, as functions the CLI and the tests call.

    build(options): every model through train -> evaluate -> export -> figures
                    (each cached), the manifest, then the staged docs and MkDocs.
    run_stages(options, names, stages): only some stages for some models.

Models are independent, so with jobs > 1 each model's pipeline runs in its own
process (one torch thread each); the manifest is written once by the parent,
including the models that finished when another one failed.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import atomic, manifest
from .config import CONV_MODELS, MODELS, BuildOptions
from .errors import BuildFailure, ConfigError, disk_full
from .stages import STAGES, ModelJob, ModelOutcome, pending_stages, run_model

log = logging.getLogger("site_builder")

LOG_FORMAT = "maml-site: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Plain lines on stderr for the build's own log; MkDocs' warnings too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for name, lvl in (("site_builder", level), ("mkdocs", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(lvl)
        logger.propagate = False


def _init_worker(level: int) -> None:
    import torch

    torch.set_num_threads(1)
    configure_logging(level)


@dataclass
class BuildReport:
    ran: dict[str, list[str]] = field(default_factory=dict)   # model -> stages that did work
    manifest_changed: bool = False
    site_dir: Path | None = None
    seconds: float = 0.0

    @property
    def ran_anything(self) -> bool:
        return any(self.ran.values())

    def stages_run(self, stage: str) -> list[str]:
        """Models for which `stage` computed and wrote a file."""
        return [name for name, stages in self.ran.items() if stage in stages]


def _describe(name: str, exc: Exception) -> str:
    """One line for a model whose stages failed."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{name}: {disk_full(exc)}"
    return f"{name}: {type(exc).__name__}: {exc}"


def _has_work(job: ModelJob) -> bool:
    try:
        return bool(pending_stages(job))
    except Exception:          # a damaged manifest entry: run_model says what is wrong
        return True


def _run_in_process(jobs: list[ModelJob]) -> tuple[list[ModelOutcome], list[str]]:
    outcomes, errors = [], []
    for job in jobs:
        try:
            outcomes.append(run_model(job))
        except BuildFailure as exc:
            errors.append(str(exc))
            break
        except Exception as exc:
            errors.append(_describe(job.name, exc))
            break
    return outcomes, errors


def _run_in_workers(run, jobs: list, workers: int, stop_at_first: bool = False) -> tuple[list, list[str]]:
    """``run(job)`` for each job (anything with a ``name``, picklable) in worker
    processes with one torch thread and the build's log format. Returns the
    outcomes and one error line per failed job, naming it. ``stop_at_first``:
    the first failure stops the other workers instead of waiting for them."""
    outcomes, errors = [], []
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                               mp_context=multiprocessing.get_context("spawn"),  # fork + torch threads can deadlock
                               initializer=_init_worker, initargs=(log.getEffectiveLevel(),))
    try:
        futures = {pool.submit(run, job): job.name for job in jobs}
        for future in as_completed(futures):
            try:
                outcomes.append(future.result())
            except BuildFailure as exc:
                errors.append(str(exc))
            except BrokenProcessPool:
                errors.append(f"{futures[future]}: its worker process died (out of memory? killed?)")
            except Exception as exc:
                errors.append(_describe(futures[future], exc))
            if errors and stop_at_first:
                _terminate_workers(pool)
                break
    except BaseException:
        # Interrupted (Ctrl+C, SIGTERM): stop the workers rather than wait for them.
        _terminate_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return outcomes, errors


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    if hasattr(pool, "terminate_workers"):       # Python >= 3.14
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def run_stages(options: BuildOptions, names: list[str] | None = None,
               stages: tuple[str, ...] = STAGES) -> BuildReport:
    """Run `stages` (cached) for the models `names` (all by default) and update
    the manifest. `options` must be validated."""
    started = time.perf_counter()
    names = list(MODELS) if names is None else names
    # Every stage writes into a copy of exported/ (hard links: cheap) that
    # replaces the folder as a whole at the end, so the manifest and the files
    # it records change together: a build killed at any moment leaves the old
    # exported/ or the new one, never files the manifest does not describe.
    atomic.remove_leftovers(options.exported)
    staging = atomic.work_dir(options.exported, ".staging-")
    try:
        if options.exported.is_dir():
            atomic.link_copy(options.exported, staging)
        with _one_torch_thread():
            report, errors = _run_stages_in(replace(options, exported=staging), names, stages)
        if report.ran_anything or report.manifest_changed:
            atomic.replace_dir(staging, options.exported)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if errors:
        raise BuildFailure("; ".join(errors))
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _one_torch_thread():
    """One torch thread, as in a worker process: how many threads sum a
    product changes its rounding, and the files must not depend on whether a
    model was built here or in a worker (reproducible builds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run_stages_in(options: BuildOptions, names: list[str],
                   stages: tuple[str, ...]) -> tuple[BuildReport, list[str]]:
    """run_stages' work, in the folder options.exported (the staging copy).
    Returns the report and the errors of the models that failed."""
    exported = options.exported
    old = manifest.read(exported)
    recorded = manifest.entries_by_name(old)
    # Conv nets named on their own (`maml-site train maml-glyphs`) go through
    # conv_stage below; the sinusoid models are jobs.
    conv_names = [name for name in names if name in CONV_MODELS]
    names = [name for name in names if name not in CONV_MODELS]
    jobs = [ModelJob(name=name, profile=options.profile, seed=options.seed, device=options.device,
                     exported=exported, repo_root=options.repo_root,
                     recorded=recorded.get(name, {}), stages=stages, retrain=options.retrain)
            for name in names]
    # Only models with work to do are worth a worker process (starting one
    # costs seconds); up-to-date models are checked in this process. With one
    # job everything runs here, and asking which models are busy would only
    # hash every input and output a second time.
    pending = [_has_work(job) for job in jobs] if options.jobs > 1 else []
    busy = [job for job, work in zip(jobs, pending) if work]
    idle = [job for job, work in zip(jobs, pending) if not work]
    if len(busy) > 1:
        # One progress bar per terminal: parallel workers log plain lines instead.
        busy = [replace(job, progress=False) for job in busy]
        outcomes, errors = _run_in_workers(run_model, busy, options.jobs)
        more, more_errors = _run_in_process(idle)
        outcomes, errors = outcomes + more, errors + more_errors
    else:
        terminal = sys.stderr.isatty()
        outcomes, errors = _run_in_process(
            [replace(job, progress=None, log_progress=not terminal) for job in jobs])
    report = BuildReport(ran={o.name: o.ran for o in outcomes})
    updated = {o.name: o.entry for o in outcomes}
    # The toy problems' graphs and figures (nothing to train) go with the
    # export and figures stages of a whole build.
    toy_stages = tuple(s for s in stages if s in ("export", "figures"))
    if toy_stages and not errors and names == list(MODELS):
        from .toy_stage import run_toy_stages

        exported.mkdir(parents=True, exist_ok=True)
        try:
            toy_entries, toy_ran = run_toy_stages(exported, options.repo_root, recorded, toy_stages)
        except Exception as exc:
            errors.append(_describe("toy problems", exc))
        else:
            updated.update(toy_entries)
            report.ran["toy problems"] = toy_ran
    if "export" in stages and not errors and names == list(MODELS):   # meta-step graphs (issue 12)
        from .meta_step_stage import run_meta_step_stage
        try:
            meta_entries, meta_ran = run_meta_step_stage(exported, options.repo_root, recorded)
        except Exception as exc:
            errors.append(_describe("meta-step graphs", exc))
        else:
            updated.update(meta_entries)
            report.ran.update({"meta-step graphs": meta_ran} if meta_ran else {})
    # The conv nets (issue 13): those named on their own, or all of them in a
    # full build of every model and in `maml-site export` (they have no static
    # figures: the Results page tabulates their manifest metrics).
    every_model = names == list(MODELS)
    conv_stages = tuple(s for s in stages if s in ("train", "evaluate", "export"))
    conv_run = conv_names or (list(CONV_MODELS) if every_model and "export" in conv_stages else [])
    if conv_run and not errors:
        from .conv_stage import run_conv_stage
        try:
            conv_entries, conv_ran = run_conv_stage(exported, options.repo_root, recorded,
                                                    options.profile, options.seed, options.device,
                                                    options.retrain, names=conv_run, stages=conv_stages,
                                                    jobs=options.jobs)
        except BuildFailure as exc:                    # a worker's failure, naming its model
            errors.append(str(exc))
        except Exception as exc:
            errors.append(_describe(", ".join(conv_names) or "conv nets", exc))
        else:
            updated.update(conv_entries)
            if conv_names:
                for name in conv_names:
                    report.ran[name] = [r.split(": ", 1)[1] for r in conv_ran
                                        if r.startswith(f"{name}: ")]
                names = names + conv_names             # for the lines below
            elif conv_ran:
                report.ran["conv nets"] = conv_ran
    if updated:
        exported.mkdir(parents=True, exist_ok=True)
        report.manifest_changed = manifest.write(exported, old, updated)
    for name in [*names, "toy problems"]:
        if name in report.ran:
            ran = report.ran[name]
            skipped = [s for s in (toy_stages if name == "toy problems" else stages) if s not in ran]
            line = f"ran {', '.join(ran) or 'nothing'}"
            if skipped:
                line += (f"; skipped {', '.join(skipped)}: up to date (the hash of each one's inputs "
                         "matches the manifest's and its file is intact)")
            log.info("%s: %s", name, line)
    return report, errors


def build(options: BuildOptions) -> BuildReport:
    """Everything: the stages for every model, then the site. Validates first."""
    from .site import build_site, check_site_tools

    options = options.validate()
    check_site_tools(options.repo_root)
    started = time.perf_counter()
    report = run_stages(options, stages=STAGES)
    entries = manifest.read(options.exported)["models"]
    build_site(options.repo_root, options.exported, entries, options.site_dir)
    report.site_dir = options.site_dir
    report.seconds = time.perf_counter() - started
    log.info("built %s in %.1f s", options.site_dir, report.seconds)
    return report


__all__ = ["BuildOptions", "BuildReport", "ConfigError", "BuildFailure", "build", "run_stages",
           "configure_logging"]

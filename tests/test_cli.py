"""`maml-site` from the outside: exit status, the one-line errors of bad usage,
and that bad usage writes nothing."""
from __future__ import annotations

import json
import logging
import shutil
import signal

import pytest
import torch

from meta.evaluate import EVAL_SEED
from site_builder.cli import main
from site_builder.config import CONV_MODELS, MODELS, REPO_ROOT


@pytest.fixture
def run_cli(capsys, tmp_path):
    """Run `maml-site ARGS...` in-process with exported/ and site/ in tmp_path
    (unless given); returns (exit status, stdout, stderr)."""
    loggers = [logging.getLogger(n) for n in ("site_builder", "mkdocs")]

    def run(*argv: str, dirs: bool = True) -> tuple[int, str, str]:
        argv = list(argv)
        if dirs and argv and argv[0] in ("build", "serve", "train", "export", "figures", "check"):
            argv += ["--exported", str(tmp_path / "exported")]
            if argv[0] in ("build", "serve"):
                argv += ["--site-dir", str(tmp_path / "site")]
        saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            status = main(argv)
        except SystemExit as exc:   # argparse's own exits (--help, parse errors)
            status = exc.code
        finally:
            for lg, (handlers, level, propagate) in zip(loggers, saved):
                lg.handlers[:], lg.propagate = handlers, propagate
                lg.setLevel(level)
            signal.signal(signal.SIGTERM, sigterm)
        out, err = capsys.readouterr()
        return status, out, err

    return run


BAD_USAGE = [
    # argv, the bad value, what is allowed (both must be named)
    (["build", "--profile", "fast"], "'fast'", "paper, quick"),
    (["build", "--device", "tpu"], "'tpu'", "auto, cpu, cuda"),
    (["serve", "--device", "gpu"], "'gpu'", "auto, cpu, cuda"),
    (["build", "--jobs", "0"], "0", "integer >= 1"),
    (["build", "--jobs", "two"], "'two'", "integer"),
    (["build", "--seed", "-3"], "-3", "0 to 2**63-1"),
    (["build", "--seed", str(EVAL_SEED)], str(EVAL_SEED), "any other integer"),
    (["train", "reptile-mnist"], "'reptile-mnist'", "pretrained-sinusoid, maml-sinusoid"),
    (["train", "glyphs", "--profile", "quick"], "'glyphs'", "maml-glyphs, pretrained-glyphs"),
    (["export", "--profile", "paperr"], "'paperr'", "paper, quick"),
    (["check", "--jobs", "-1"], "-1", "integer >= 1"),
    (["serve", "--port", "70000"], "70000", "1 to 65535"),
    (["publish"], "'publish'", "'build', 'serve', 'train', 'export', 'figures', 'check'"),
    (["build", "--frobnicate"], "'--frobnicate'", "--profile, --device, --jobs, --seed"),
    (["build", "--learning-rate", "-0.1"], "'--learning-rate'", "--profile, --device"),
    (["check", "everything"], "'everything'", "--exported"),
]


@pytest.mark.parametrize("argv,value,allowed", BAD_USAGE, ids=[" ".join(a) for a, _, _ in BAD_USAGE])
def test_bad_usage_exits_2_with_one_line_naming_value_and_allowed_and_writes_nothing(
        run_cli, tmp_path, argv, value, allowed):
    status, out, err = run_cli(*argv)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("maml-site") and "error:" in lines[0]
    assert value in lines[0] and allowed in lines[0]
    assert out == ""
    assert list(tmp_path.iterdir()) == []


def test_a_site_dir_that_would_replace_the_repository_or_other_files_is_refused(run_cli, tmp_path):
    status, _, err = run_cli("build", "--site-dir", str(REPO_ROOT), dirs=False)
    assert status == 2 and "overlaps the repository" in err and len(err.splitlines()) == 1
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "todo.txt").write_text("keep me")
    status, _, err = run_cli("build", "--site-dir", str(stranger), "--exported",
                             str(tmp_path / "exported"), dirs=False)
    assert status == 2 and "no index.html" in err
    assert (stranger / "todo.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


def test_an_exported_path_that_is_a_file_is_refused(run_cli, tmp_path):
    (tmp_path / "exported").write_text("not a folder")
    status, _, err = run_cli("build", "--exported", str(tmp_path / "exported"),
                             "--site-dir", str(tmp_path / "site"), dirs=False)
    assert status == 2 and "is a file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(run_cli, tmp_path):
    status, _, err = run_cli("build", "--device", "cuda")
    assert status == 2 and "'cuda'" in err and "auto, cpu" in err
    assert list(tmp_path.iterdir()) == []


def test_help_and_a_missing_command(run_cli):
    status, out, _ = run_cli("--help")
    assert status == 0
    for command in ("build", "serve", "train", "export", "figures", "check"):
        assert command in out
    status, _, err = run_cli()
    assert status == 2 and "COMMAND" in err and len(err.splitlines()) == 1


def test_train_help_names_every_model_it_accepts(run_cli):
    status, out, _ = run_cli("train", "--help")
    assert status == 0
    help_text = " ".join(out.split()).replace("- ", "-")     # argparse wraps at hyphens
    for name in [*MODELS, *CONV_MODELS]:
        assert name in help_text, f"{name} is not in `maml-site train --help`"


def test_check_without_exports_fails_with_exit_1(run_cli, tmp_path):
    status, _, err = run_cli("check")
    assert status == 1
    assert "manifest.json does not exist" in err and "maml-site build" in err


def test_export_without_weights_fails_with_exit_1_naming_the_model(run_cli):
    status, _, err = run_cli("export")
    assert status == 1
    assert "pretrained-sinusoid: no weights" in err and "maml-site train pretrained-sinusoid" in err


@pytest.mark.slow
def test_stage_commands_on_an_up_to_date_export_do_nothing_and_check_passes(
        run_cli, quick_build, tmp_path):
    shutil.copytree(quick_build.exported, tmp_path / "exported")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "exported").rglob("*")}
    status, _, err = run_cli("train", "maml-sinusoid", "--profile", "quick", "--device", "cpu")
    assert status == 0 and "maml-sinusoid is up to date" in err
    for command in ("export", "figures"):
        status, _, err = run_cli(command, "--profile", "quick")
        assert status == 0 and "maml-sinusoid: ran nothing" in err
    status, _, err = run_cli("check")
    assert status == 0 and "check passed" in err
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "exported").rglob("*")} == before


@pytest.mark.slow
def test_export_covers_the_conv_nets(run_cli, quick_build, tmp_path):
    """`maml-site export` re-exports a conv net's missing graph (the same bytes)
    and, without its weights, names the model and the command that trains it."""
    exported = tmp_path / "exported"
    shutil.copytree(quick_build.exported, exported)
    graph = exported / "maml-glyphs.onnx"
    before = graph.read_bytes()
    graph.unlink()
    status, _, err = run_cli("export", "--profile", "quick")
    assert status == 0 and "maml-glyphs: export" in err
    assert graph.read_bytes() == before
    (exported / "pretrained-glyphs.pt").unlink()
    status, _, err = run_cli("export", "--profile", "quick")
    assert status == 1
    assert "pretrained-glyphs: no weights" in err and "maml-site train pretrained-glyphs" in err


@pytest.mark.slow
def test_check_exits_1_when_a_file_does_not_match_the_manifest(run_cli, quick_build, tmp_path):
    shutil.copytree(quick_build.exported, tmp_path / "exported")
    (tmp_path / "exported" / "pretrained-sinusoid.results.json").write_text("{}")
    status, _, err = run_cli("check")
    assert status == 1
    assert "pretrained-sinusoid: pretrained-sinusoid.results.json has sha256" in err


def test_parity_check_skips_only_the_steps_where_descent_blew_up():
    import numpy as np

    from site_builder.check import _stable_steps

    assert _stable_steps(np.array([1.0, 0.5, 0.2])).tolist() == [True, True, True]
    # Overshoot (loss above twice the start) and everything after it is skipped.
    assert _stable_steps(np.array([1.0, 0.5, 2.5, 0.1])).tolist() == [True, True, False, False]
    assert _stable_steps(np.array([0.3, np.inf, np.nan])).tolist() == [True, False, False]


# ------------------------------------------------------------ the quiz's conv nets

@pytest.mark.parametrize("name", list(CONV_MODELS))
def test_train_a_conv_net_alone_writes_its_weights_and_manifest_entry(run_cli, tmp_path, name):
    from site_builder.hashing import file_sha256

    exported = tmp_path / "exported"
    status, out, err = run_cli("train", name, "--profile", "quick", "--device", "cpu", "--seed", "3")
    assert status == 0, err
    assert out == ""
    cfg = CONV_MODELS[name].train_config("quick", 3)
    # Progress as plain lines (stderr is not a terminal here), then what to do next.
    assert f"{name}: training ({cfg.algorithm}, {cfg.iterations} iterations" in err
    assert f"iteration {cfg.iterations}/{cfg.iterations}" in err
    assert f"new weights for {name}: run `maml-site build`" in err
    # The training stage of this model alone: its weights, no graph, no results,
    # nothing of the other conv net, no temporary file left beside them.
    assert sorted(p.name for p in exported.iterdir()) == sorted(["manifest.json", f"{name}.pt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]
    manifest = json.loads((exported / "manifest.json").read_text())
    assert [e["name"] for e in manifest["models"]] == [name]
    entry = manifest["models"][0]
    assert entry["algorithm"] == CONV_MODELS[name].algorithm
    assert entry["task"]["family"] == "glyphs"
    assert entry["weights"] == {"file": f"{name}.pt", "sha256": file_sha256(exported / f"{name}.pt")}
    assert entry["train"] == cfg.to_dict() and entry["train"]["seed"] == 3
    assert sorted(entry["inputs"]) == ["train"]
    assert "metrics" not in entry and "sha256" not in entry       # evaluate/export not run
    checkpoint = torch.load(exported / f"{name}.pt", map_location="cpu", weights_only=True)
    from meta.conv import param_names

    assert list(checkpoint["params"]) == list(param_names())
    assert all(torch.isfinite(p).all() for p in checkpoint["params"].values())
    assert entry["inner_lr"] == checkpoint["inner_lr"] > 0
    # Cached: the same command again trains nothing and writes nothing.
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in exported.iterdir()}
    status, _, err = run_cli("train", name, "--profile", "quick", "--device", "cpu", "--seed", "3")
    assert status == 0 and f"{name} is up to date (use --retrain" in err
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in exported.iterdir()} == before


@pytest.mark.slow
def test_after_train_a_build_of_the_conv_nets_keeps_the_trained_weights(run_cli, tmp_path):
    """`maml-site train maml-glyphs` and the build's conv stage agree on what is
    up to date: the build then evaluates and exports those weights, and
    --retrain trains them again."""
    from site_builder import manifest
    from site_builder.conv_stage import run_conv_stage

    exported = tmp_path / "exported"
    status, _, err = run_cli("train", "maml-glyphs", "--profile", "quick", "--device", "cpu")
    assert status == 0, err
    weights = (exported / "maml-glyphs.pt").read_bytes()
    recorded = manifest.entries_by_name(manifest.read(exported))
    entries, ran = run_conv_stage(exported, REPO_ROOT, recorded, "quick", 0, "cpu", False,
                                  names=["maml-glyphs"])
    assert ran == ["maml-glyphs: evaluate", "maml-glyphs: export"]
    assert (exported / "maml-glyphs.pt").read_bytes() == weights
    assert (exported / "maml-glyphs.onnx").is_file()
    assert set(entries["maml-glyphs"]["metrics"]) >= {"acc_5way_1shot", "acc_20way_1shot"}
    status, _, err = run_cli("train", "maml-glyphs", "--profile", "quick", "--device", "cpu",
                             "--retrain")
    assert status == 0 and "new weights for maml-glyphs" in err
    assert (exported / "maml-glyphs.pt").read_bytes() != weights        # trained again


# ------------------------------------------------------------ the right project

def _copy_project(target):
    """A second copy of the repository (as `cp -r` would make it), sharing node_modules."""
    skip = {".git", ".venv", "node_modules", "site", "__pycache__", ".pytest_cache"}
    shutil.copytree(REPO_ROOT, target, ignore=lambda folder, names: [n for n in names if n in skip])
    (target / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    return target


@pytest.mark.slow
def test_commands_work_on_the_project_of_the_current_folder(run_cli, tmp_path, monkeypatch):
    copy = _copy_project(tmp_path / "second-copy")
    graph = copy / "exported" / "maml-sinusoid.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")        # damaged in the copy only
    monkeypatch.chdir(copy / "docs")                           # anywhere inside the copy
    status, _, err = run_cli("check", dirs=False)
    assert status == 1 and "maml-sinusoid: maml-sinusoid.onnx has sha256" in err
    # The same command in the original checkout reads the original (intact) files.
    status, _, err = run_cli("check", "--project", str(REPO_ROOT), dirs=False)
    assert status == 0, err
    # A build inside the copy writes the copy's site/, and nothing in the repository.
    graph.write_bytes((REPO_ROOT / "exported" / "maml-sinusoid.onnx").read_bytes())
    repo_site = REPO_ROOT / "site" / "index.html"
    before = repo_site.stat().st_mtime_ns if repo_site.exists() else None
    status, _, err = run_cli("build", dirs=False)
    assert status == 0, err
    assert (copy / "site" / "index.html").is_file()
    assert (repo_site.stat().st_mtime_ns if repo_site.exists() else None) == before


def test_outside_any_project_the_command_says_so(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli("check", dirs=False)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and "no maml-site project in" in err and "--project" in err
    status, _, err = run_cli("build", "--project", str(tmp_path), dirs=False)
    assert status == 2 and "is not a maml-site project" in err and "mkdocs.yml" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--site-dir", "--exported"])
def test_a_folder_that_cannot_be_written_is_a_usage_error(run_cli, tmp_path, option):
    argv = ["build", option, "/proc/maml-site-test/x", "--retrain"]
    if option == "--site-dir":
        argv += ["--exported", str(tmp_path / "exported")]
    else:
        argv += ["--site-dir", str(tmp_path / "site")]
    status, _, err = run_cli(*argv, dirs=False)
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "cannot be written" in err
    assert "/proc/maml-site-test/x" in err and "allowed: a folder you can write to" in err
    assert list(tmp_path.iterdir()) == []


def test_a_new_exported_folder_does_not_start_training_by_surprise(run_cli, tmp_path):
    status, out, err = run_cli("build", "--exported", str(tmp_path / "new" / "models"),
                               "--site-dir", str(tmp_path / "site"), dirs=False)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert "holds no models" in err and "--retrain" in err and "minutes" in err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ bad configuration

def _bad_spec(name, **overrides):
    from site_builder.config import ModelSpec, sinusoid_config

    spec = MODELS[name]
    return ModelSpec(name, spec.algorithm,
                     lambda profile, seed: sinusoid_config(spec.algorithm, profile, seed, **overrides),
                     adapt_lr=spec.adapt_lr)


BAD_CONFIG = [
    # model, its settings in site_builder/config.py, the value, what is allowed
    ("maml-sinusoid", dict(inner_lr=-0.01), "-0.01", "inner_lr must be a positive number"),
    ("maml-sinusoid", dict(meta_lr=float("nan")), "nan", "meta_lr must be a positive number"),
    ("fomaml-sinusoid", dict(k_support=0), "got 0", "k_support must be a positive integer"),
    ("reptile-sinusoid", dict(inner_steps=-1), "-1", "inner_steps must be an integer >= 1"),
    ("imaml-sinusoid", dict(inner_steps=10, options={"lamda": 0.1}), "lamda", "allowed: lam, cg_steps"),
    ("maml-sinusoid", dict(warmup=5), "warmup", "unexpected keyword"),
]


@pytest.mark.parametrize("name,settings,value,allowed", BAD_CONFIG,
                         ids=[f"{n}-{sorted(s)[0]}" for n, s, _, _ in BAD_CONFIG])
def test_a_model_configured_out_of_range_is_a_usage_error_naming_it(
        run_cli, tmp_path, monkeypatch, name, settings, value, allowed):
    monkeypatch.setitem(MODELS, name, _bad_spec(name, **settings))
    status, out, err = run_cli("build", "--retrain")
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert f"model {name!r} in site_builder/config.py" in err and value in err and allowed in err
    assert list(tmp_path.iterdir()) == []


def test_an_adaptation_rate_grid_out_of_range_is_a_usage_error(run_cli, tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(MODELS, "imaml-sinusoid",
                        replace(MODELS["imaml-sinusoid"], adapt_lr=(0.001, -0.002)))
    status, _, err = run_cli("train", "imaml-sinusoid", "--retrain")
    assert status == 2 and len(err.splitlines()) == 1
    assert "adapt_lr -0.002 is out of range; allowed: a finite number > 0" in err
    assert list(tmp_path.iterdir()) == []


def test_a_build_without_nodejs_stops_before_writing_anything(run_cli, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))            # no node, no npm
    status, out, err = run_cli("build", "--retrain")
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert "Node.js (`node`) is not on PATH" in err and "npm ci" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_a_build_without_the_browser_libraries_asks_for_npm_ci(run_cli, tmp_path):
    copy = tmp_path / "project"
    for name in ("mkdocs.yml", "pyproject.toml", "package.json", "package-lock.json"):
        copy.mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / name, copy / name)
    (copy / "docs").mkdir()
    status, out, err = run_cli("build", "--retrain", "--project", str(copy))
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert "node_modules' does not exist" in err or "node_modules does not exist" in err
    assert "npm ci" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
    assert sorted(p.name for p in copy.iterdir()) == ["docs", "mkdocs.yml", "package-lock.json",
                                                      "package.json", "pyproject.toml"]


@pytest.mark.slow
def test_a_full_disk_during_export_fails_in_one_line_and_half_writes_nothing(
        run_cli, quick_build, tmp_path, monkeypatch):
    import errno
    import os

    exported = tmp_path / "exported"
    shutil.copytree(quick_build.exported, exported)
    (exported / "maml-sinusoid.onnx").unlink()               # so that export has work to do
    before = {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()}

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)                 # every atomic write fails
    status, out, err = run_cli("export", "--profile", "quick", "--jobs", "1")
    monkeypatch.undo()
    assert status == 1 and out == ""
    failure = [line for line in err.splitlines() if line.startswith("maml-site: failed")]
    assert len(failure) == 1, err
    assert "maml-sinusoid: no space left on the device" in failure[0]
    assert "free some space" in failure[0]
    assert "Traceback" not in err
    # Nothing half-written: exported/ is exactly as it was, with no temporary
    # file and no work folder beside it.
    after = {p.relative_to(exported): p.read_bytes() for p in exported.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


@pytest.mark.slow
def test_a_full_disk_while_writing_the_site_keeps_the_previous_site(
        run_cli, quick_build, tmp_path, monkeypatch):
    import errno

    import site_builder.mathrender

    shutil.copytree(quick_build.exported, tmp_path / "exported")
    shutil.copytree(quick_build.site, tmp_path / "site")
    before = {p.relative_to(tmp_path / "site"): p.read_bytes()
              for p in (tmp_path / "site").rglob("*") if p.is_file()}

    def disk_full(repo_root, site):
        raise OSError(errno.ENOSPC, "No space left on device", str(site / "index.html"))

    monkeypatch.setattr(site_builder.mathrender, "render_site_math", disk_full)
    monkeypatch.setattr("site_builder.site.render_site_math", disk_full)
    status, _, err = run_cli("build", "--profile", "quick")
    assert status == 1
    failure = [line for line in err.splitlines() if line.startswith("maml-site: failed")]
    assert len(failure) == 1 and "no space left on the device while writing" in failure[0], err
    after = {p.relative_to(tmp_path / "site"): p.read_bytes()
             for p in (tmp_path / "site").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "site"]

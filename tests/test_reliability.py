"""Builds that are killed, and builds that must come out the same twice.

- Interrupted builds: `maml-site build --profile quick` runs in a subprocess
  and is killed (SIGKILL, no chance to clean up) at seeded random moments
  during training, ONNX export, the copy of the browser libraries and MkDocs.
  After every kill, exported/ and site/ each hold either the old or the new
  complete version (never a mix), the manifest's sha256 match its files, and
  the next build succeeds and leaves nothing behind.
- Reproducibility: two quick builds from clean copies give byte-identical
  exported/ and site/.

Both work on copies of the session's quick build (tests/conftest.py), never
on the repository's own exported/ or site/.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from site_builder.config import REPO_ROOT
from site_builder.hashing import file_sha256
from site_builder.site import recorded_files

#: What the build logs when a phase begins (the model made stale is maml-sinusoid).
PHASES = {
    "training": "maml-sinusoid: training (",
    "export": "maml-sinusoid: exporting the ONNX",
    "asset copy": "copying the browser libraries",
    "MkDocs": "running MkDocs",
}
KILLS_PER_PHASE = 5
SEED = 20261130


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under folder ({} if it is missing)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): file_sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


#: Measured, not computed: how long training took, which the checkpoint, its
#: results file and the manifest record; the one thing two runs of the same
#: training cannot share. Through the checkpoint's sha256 it reaches the
#: manifest's records of the weights and results and the stages' inputs
#: hashes. Versions are compared without these (the manifest's hashes are
#: still checked against the files exactly, after every kill).
DURATION_KEYS = {"seconds"}
DERIVED_FROM_DURATIONS = ("weights", "results")


def _without_durations(value):
    if isinstance(value, dict):
        return {k: _without_durations(v) for k, v in value.items() if k not in DURATION_KEYS}
    if isinstance(value, list):
        return [_without_durations(v) for v in value]
    return value


def version(folder: Path) -> dict[str, str]:
    """snapshot(), with the training durations left out of the weights,
    results and manifest files (so a retrain of the same inputs is the same
    version)."""
    import io

    import torch

    files = snapshot(folder)
    for name in files:
        path = folder / name
        if name.endswith(".json"):
            data = _without_durations(json.loads(path.read_text(encoding="utf-8")))
            if name == "manifest.json":
                for entry in data["models"]:
                    entry.pop("inputs", None)
                    for key in DERIVED_FROM_DURATIONS:
                        if isinstance(entry.get(key), dict):
                            entry[key].pop("sha256", None)
            files[name] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        elif name.endswith(".pt"):
            checkpoint = _without_durations(torch.load(path, map_location="cpu", weights_only=True))
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            files[name] = hashlib.sha256(buffer.getvalue()).hexdigest()
    return files


def _manifest_problems(exported: Path) -> list[str]:
    data = json.loads((exported / "manifest.json").read_text(encoding="utf-8"))
    problems = []
    for entry in data["models"]:
        for record in recorded_files(entry):
            path = exported / record["file"]
            if not path.is_file():
                problems.append(f"{entry['name']}: {record['file']} missing")
            elif file_sha256(path) != record["sha256"]:
                problems.append(f"{entry['name']}: {record['file']} does not match the manifest")
    return problems


class Build:
    """`maml-site build` in its own process group, killed when told."""

    def __init__(self, exported: Path, site: Path, *extra: str):
        self.argv = [sys.executable, "-m", "site_builder.cli", "build", "--profile", "quick",
                     "--device", "cpu", "--jobs", "1", "--exported", str(exported),
                     "--site-dir", str(site), *extra]
        self.lines: list[tuple[float, str]] = []

    def run(self, marker: str | None = None, delay: float = 0.0, timeout: float = 900) -> bool:
        """Run; if ``marker`` appears in the log, SIGKILL the build ``delay`` s
        later. Returns True if it was killed, False if it finished (exit 0)."""
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        started, seen = time.monotonic(), threading.Event()
        self.lines = []

        def read() -> None:
            for line in process.stderr:
                self.lines.append((time.monotonic() - started, line.rstrip()))
                if marker and marker in line:
                    seen.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        killed = False
        while process.poll() is None and time.monotonic() - started < timeout:
            if seen.wait(0.05):
                time.sleep(delay)
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    killed = True
                break
        process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        reader.join(timeout=10)
        if not killed:
            log = "\n".join(line for _, line in self.lines[-15:])
            assert process.returncode == 0, f"the build failed ({process.returncode}):\n{log}"
        return killed

    def phase_seconds(self, marker: str) -> float:
        """How long the phase that ``marker`` starts lasted in the last run."""
        times = [t for t, line in self.lines]
        start = next(t for t, line in self.lines if marker in line)
        later = [t for t in times if t > start]
        return (later[0] if later else times[-1]) - start


def _old_exported(quick_build, folder: Path, stale: str) -> Path:
    """The quick build's exported/ with maml-sinusoid's files replaced by
    other, complete ones (those of pretrained-sinusoid, recorded as its own in
    the manifest), and its "train" or "export" stage made stale."""
    shutil.copytree(quick_build.exported, folder)
    data = json.loads((folder / "manifest.json").read_text())
    entries = {e["name"]: e for e in data["models"]}
    maml, other = entries["maml-sinusoid"], entries["pretrained-sinusoid"]
    keys = ["weights", "results", "figure"] if stale == "train" else []
    for key in keys:
        shutil.copyfile(folder / other[key]["file"], folder / maml[key]["file"])
        maml[key]["sha256"] = other[key]["sha256"]
    shutil.copyfile(folder / other["file"], folder / maml["file"])
    maml["sha256"] = other["sha256"]
    if stale == "train":
        maml["inputs"] = {}
    else:
        del maml["inputs"]["export"]
    (folder / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")
    assert _manifest_problems(folder) == []
    return folder


def _reset(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


@pytest.mark.slow
def test_a_build_killed_at_random_moments_leaves_old_or_new_files_and_the_next_build_succeeds(
        quick_build, tmp_path):
    rng = random.Random(SEED)
    work = tmp_path / "work"
    work.mkdir()
    exported, site = work / "exported", work / "site"
    old_site = tmp_path / "old-site"
    shutil.copytree(quick_build.site, old_site)
    (old_site / "old-site.txt").write_text("the previous site\n")   # old and new differ
    shutil.copytree(old_site, site)
    starts = {"train": _old_exported(quick_build, tmp_path / "stale-train", "train"),
              "export": _old_exported(quick_build, tmp_path / "stale-export", "export")}
    build = Build(exported, site)

    kills: list[tuple[str, dict, dict]] = []      # phase, exported and site after the kill
    new_exported: dict[str, dict] = {}            # start -> exported after a finished build
    sites = [snapshot(old_site)]                  # every complete site seen
    durations: dict[str, float] = {}
    began = time.monotonic()

    def after_kill(phase: str) -> None:
        # Checked at once: the manifest matches its files, and neither folder
        # holds a temporary file (work folders beside them are allowed until
        # the next build removes them).
        assert (exported / "manifest.json").is_file(), phase
        assert _manifest_problems(exported) == [], phase
        for folder in (exported, site):
            assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], phase
        assert (site / "index.html").is_file(), phase
        kills.append((phase, version(exported), snapshot(site)))

    for start, phases in (("train", ["training"]), ("export", ["export", "asset copy", "MkDocs"])):
        _reset(starts[start], exported)
        # One uninterrupted build first: the new version, and how long each phase lasts.
        assert not build.run()
        new_exported[start] = version(exported)
        sites.append(snapshot(site))
        for phase in phases:
            durations[phase] = build.phase_seconds(PHASES[phase])
        for phase in phases:
            done = 0
            while done < KILLS_PER_PHASE:
                stage_phase = phase in ("training", "export")
                if not stage_phase and version(exported) != new_exported[start]:
                    assert not build.run()             # the stages first, once
                    sites.append(snapshot(site))
                if stage_phase and version(exported) != version(starts[start]):
                    # The last build got past the stages: the next one succeeds
                    # from there; then start over from the old version.
                    assert not build.run()
                    sites.append(snapshot(site))
                    _reset(starts[start], exported)
                delay = rng.uniform(0, durations[phase])
                if build.run(PHASES[phase], delay):
                    after_kill(phase)
                    done += 1
                    print(f"killed {delay:.2f} s into {phase} ({len(kills)} kills, "
                          f"{time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
                else:
                    sites.append(snapshot(site))
        # The next build after the last kill succeeds and leaves nothing behind.
        assert not build.run()
        assert version(exported) == new_exported[start]
        sites.append(snapshot(site))
        assert sorted(p.name for p in work.iterdir()) == ["exported", "site"]

    assert len(kills) >= 20
    for phase, exported_files, site_files in kills:
        olds = [version(folder) for folder in starts.values()]
        assert exported_files in olds + list(new_exported.values()), (
            f"killed during {phase}: exported/ is neither the old nor the new version")
        assert site_files in sites, f"killed during {phase}: site/ is neither the old nor a new site"
    # The check command agrees with the last build's files.
    done = subprocess.run([sys.executable, "-m", "site_builder.cli", "check", "--exported",
                           str(exported)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------ reproducibility

def _clean_copy(target: Path, exported: Path) -> Path:
    """A copy of the project as a clone would have it (no site/, no caches),
    sharing node_modules, with ``exported`` as its committed models."""
    skip = {".git", ".venv", "node_modules", "site", "exported", "__pycache__", ".pytest_cache"}
    shutil.copytree(REPO_ROOT, target, ignore=lambda folder, names: [
        n for n in names if n in skip or n.startswith((".exported.", ".site."))])
    (target / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    shutil.copytree(exported, target / "exported")
    return target


@pytest.mark.slow
def test_two_builds_from_clean_copies_give_byte_identical_exported_and_site(quick_build, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    copies = [_clean_copy(tmp_path / side, quick_build.exported) for side in ("first", "second")]
    for copy in copies:
        done = subprocess.run([sys.executable, "-m", "site_builder.cli", "build", "--profile", "quick",
                               "--device", "cpu"], cwd=copy, env={**env, "TQDM_DISABLE": "1"},
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    first, second = ({"exported": snapshot(c / "exported"), "site": snapshot(c / "site")}
                     for c in copies)
    assert first["exported"] == second["exported"] == snapshot(quick_build.exported)
    assert sorted(first["site"]) == sorted(second["site"])
    differ = [path for path in first["site"] if first["site"][path] != second["site"][path]]
    assert differ == [], f"files that differ between the two builds: {differ}"
    # The files a build is most tempted to stamp: the sitemap (and its gzip
    # header), the search index, the figures and the pages with results.
    for path in ("sitemap.xml", "sitemap.xml.gz", "search/search_index.json", "results/index.html"):
        assert path in first["site"], path
    sitemap = (copies[0] / "site" / "sitemap.xml").read_text()
    assert str(copies[0]) not in sitemap and "first" not in json.dumps(sorted(first["site"]))

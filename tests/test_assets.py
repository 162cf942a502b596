"""copy_browser_assets: exactly the pinned files, and a clear error otherwise."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from site_builder.assets import BrowserAssetsError, copy_browser_assets, locked_versions
from site_builder.errors import BuildFailure

REPO = Path(__file__).resolve().parent.parent


def test_copies_only_the_files_pages_load(tmp_path):
    files = copy_browser_assets(REPO, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in files}
    assert {"onnxruntime-web/ort.wasm.bundle.min.mjs", "onnxruntime-web/ort-wasm-simd-threaded.wasm",
            "katex/katex.min.css",
            "d3-array/d3-array.min.js", "d3-array/LICENSE",
            "d3-contour/d3-contour.min.js", "d3-contour/LICENSE"} <= names
    # Only what a page loads: d3's UMD bundles, not their ES or unminified builds.
    assert {n for n in names if n.startswith("d3-")} == {
        "d3-array/d3-array.min.js", "d3-array/LICENSE", "d3-contour/d3-contour.min.js", "d3-contour/LICENSE"}
    assert not any(n.endswith(".md") for n in names)          # a README would become a page
    # The math is typeset at build time: KaTeX's script is not shipped.
    assert not any(n.startswith("katex/") and n.endswith(".js") for n in names)
    fonts = {n for n in names if n.startswith("katex/fonts/")}
    css = (tmp_path / "katex/katex.min.css").read_text()
    assert fonts and all(Path(f).name in css for f in fonts)
    # woff2 only: every browser that runs the site's module scripts reads it first.
    assert all(f.endswith(".woff2") for f in fonts)
    assert {Path(f).name for f in fonts} == set(re.findall(r"fonts/([\w-]+\.woff2)", css))
    assert sum(p.stat().st_size for p in files) < 20_000_000   # vs ~150 MB of node_modules
    for p in files:
        rel = p.relative_to(tmp_path)
        source = REPO / "node_modules" / rel.parts[0]
        assert p.read_bytes() == next(source.rglob(rel.name)).read_bytes()


def test_second_run_keeps_files_and_removes_strays(tmp_path):
    copy_browser_assets(REPO, tmp_path)
    wasm = tmp_path / "onnxruntime-web/ort-wasm-simd-threaded.wasm"
    mtime = wasm.stat().st_mtime_ns
    stray = tmp_path / "katex/README.md"
    stray.write_text("old")
    copy_browser_assets(REPO, tmp_path)
    assert wasm.stat().st_mtime_ns == mtime
    assert not stray.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def fake_repo(tmp_path, installed: dict[str, str] | None):
    shutil.copy(REPO / "package-lock.json", tmp_path / "package-lock.json")
    if installed is not None:
        for name, version in installed.items():
            (tmp_path / "node_modules" / name).mkdir(parents=True)
            (tmp_path / "node_modules" / name / "package.json").write_text(json.dumps({"version": version}))
    return tmp_path


def test_missing_node_modules_says_to_run_npm_ci(tmp_path):
    with pytest.raises(BrowserAssetsError, match="npm ci") as err:
        copy_browser_assets(fake_repo(tmp_path, None), tmp_path / "out")
    assert isinstance(err.value, BuildFailure)
    assert not (tmp_path / "out").exists()


def test_version_differing_from_the_lock_is_refused(tmp_path):
    versions = locked_versions(REPO)
    wrong = {**versions, "katex": "0.0.1"}
    with pytest.raises(BrowserAssetsError, match=r"katex is version 0\.0\.1 but package-lock\.json pins .*npm ci"):
        copy_browser_assets(fake_repo(tmp_path, wrong), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_site_ships_no_source_maps_and_no_lunr_languages_it_does_not_search(built_site):
    """Material copies source maps and lunr's other-language support into every
    site; this one searches English only and no page loads either."""
    scripts = built_site / "assets" / "javascripts"
    assert not list(built_site.rglob("*.map"))
    assert not (scripts / "lunr").exists()
    bundles = list(scripts.glob("bundle.*.min.js")) + list((scripts / "workers").glob("search.*.min.js"))
    assert len(bundles) == 2
    for bundle in bundles:
        assert "sourceMappingURL" not in bundle.read_text(encoding="utf-8")
    assert (built_site / "search" / "search_index.json").is_file()

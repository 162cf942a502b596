"""Copy the pinned browser libraries from node_modules/ into the staged site.

The site serves onnxruntime-web, KaTeX and two d3 modules from its own host
(no CDN), and only the handful of files a page actually loads: the npm packages are
~150 MB unpacked, the copied set is ~15 MB (almost all of it the one
WebAssembly binary).

Versions are pinned exactly in package.json / package-lock.json; before
copying we check that what is installed in node_modules/ is what the lock
file says, so a stale install can never end up in a published site.
"""
from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

from . import atomic
from .errors import BuildFailure

# npm package -> files (relative to the package root) -> path under dest/<package>/.
# onnxruntime-web: the ES-module bundle inlines the WebAssembly glue, so the
# only other file it fetches is the .wasm binary (from env.wasm.wasmPaths).
# KaTeX: the stylesheet and the fonts it refers to (added by _katex_fonts)
# plus the licence; the math itself is typeset at build time (mathrender.py).
# d3-array + d3-contour: the contour widgets' marching squares, as UMD bundles
# (their ES builds import the bare specifier "d3-array", which a browser
# cannot resolve); docs/javascripts/lib/d3.js injects them in this order.
BROWSER_PACKAGES: dict[str, dict[str, str]] = {
    "onnxruntime-web": {
        "dist/ort.wasm.bundle.min.mjs": "ort.wasm.bundle.min.mjs",
        "dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
    },
    "katex": {
        "dist/katex.min.css": "katex.min.css",
        "LICENSE": "LICENSE",
    },
    "d3-array": {
        "dist/d3-array.min.js": "d3-array.min.js",
        "LICENSE": "LICENSE",
    },
    "d3-contour": {
        "dist/d3-contour.min.js": "d3-contour.min.js",
        "LICENSE": "LICENSE",
    },
}

_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_NPM_HINT = "run `npm ci` in the repository root (needs Node.js/npm) to install the pinned versions"


class BrowserAssetsError(BuildFailure):
    """node_modules/ is missing, incomplete, or not the versions package-lock.json pins."""


def locked_versions(repo_root: Path) -> dict[str, str]:
    """The exact versions package-lock.json pins for the browser packages."""
    lock_path = repo_root / "package-lock.json"
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BrowserAssetsError(f"{lock_path} is missing; it pins the browser libraries") from None
    except json.JSONDecodeError as err:
        raise BrowserAssetsError(f"{lock_path} is not valid JSON ({err})") from None
    packages = lock.get("packages", {})
    versions = {}
    for name in BROWSER_PACKAGES:
        entry = packages.get(f"node_modules/{name}")
        if not entry or "version" not in entry:
            raise BrowserAssetsError(f"{lock_path} does not pin {name!r}; add it with "
                                     f"`npm install --save-exact {name}@<version>`")
        versions[name] = entry["version"]
    return versions


def installed_version(repo_root: Path, name: str) -> str | None:
    manifest = repo_root / "node_modules" / name / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def check_node_modules(repo_root: Path) -> dict[str, str]:
    """Raise BrowserAssetsError unless node_modules/ holds exactly the locked versions."""
    versions = locked_versions(repo_root)
    if not (repo_root / "node_modules").is_dir():
        raise BrowserAssetsError(f"{repo_root / 'node_modules'} does not exist: {_NPM_HINT}")
    for name, wanted in versions.items():
        found = installed_version(repo_root, name)
        if found is None:
            raise BrowserAssetsError(f"node_modules/{name} is not installed: {_NPM_HINT}")
        if found != wanted:
            raise BrowserAssetsError(f"node_modules/{name} is version {found} but package-lock.json "
                                     f"pins {wanted}: {_NPM_HINT}")
    return versions


def _katex_fonts(package_dir: Path) -> dict[str, str]:
    """The woff2 files katex.min.css refers to. The CSS lists woff2, woff and
    ttf for each font and a browser takes the first format it reads; every
    browser that runs the site's ES-module scripts reads woff2, so the other
    two (0.8 MB) would never be fetched."""
    css = (package_dir / "dist" / "katex.min.css").read_text(encoding="utf-8")
    fonts = {}
    for url in sorted(set(_CSS_URL.findall(css))):
        if url.startswith(("data:", "http:", "https:", "//")) or ".." in Path(url).parts:
            raise BrowserAssetsError(f"katex.min.css refers to {url!r}, which is not a local font file")
        if url.endswith(".woff2"):
            fonts[f"dist/{url}"] = url
    return fonts


def planned_files(repo_root: Path) -> dict[Path, Path]:
    """Source file in node_modules -> destination relative to dest, for every asset."""
    plan: dict[Path, Path] = {}
    for name, files in BROWSER_PACKAGES.items():
        package_dir = repo_root / "node_modules" / name
        if name == "katex":
            files = {**files, **_katex_fonts(package_dir)}
        for source, target in files.items():
            plan[package_dir / source] = Path(name) / target
    return plan


def copy_browser_assets(repo_root: Path, dest: Path) -> list[Path]:
    """Copy the needed files of each browser package into dest/<package>/ (the
    build passes dest = <staged docs>/assets/vendor).

    Files already identical in dest are left alone; files in those folders
    that are not part of the set are removed, so dest holds exactly the set.
    Returns the destination paths of every asset, sorted.
    """
    repo_root, dest = Path(repo_root), Path(dest)
    check_node_modules(repo_root)
    plan = planned_files(repo_root)
    missing = [str(src.relative_to(repo_root)) for src in plan if not src.is_file()]
    if missing:
        raise BrowserAssetsError(f"node_modules is incomplete (missing {', '.join(missing)}): {_NPM_HINT}")

    written = []
    for source, relative in plan.items():
        target = dest / relative
        if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            atomic.write_bytes(target, source.read_bytes())   # the largest, the wasm, is 14 MB
        written.append(target)

    wanted = set(written)
    for name in BROWSER_PACKAGES:
        for stale in sorted((dest / name).rglob("*"), reverse=True):
            if stale.is_file() and stale not in wanted:
                stale.unlink()
            elif stale.is_dir() and not any(stale.iterdir()):
                stale.rmdir()
    return sorted(written)

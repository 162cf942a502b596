"""`maml-site serve`: build, then serve site/ on 127.0.0.1 with live reload.

After the full build, MkDocs' own LiveReloadServer serves the site folder and
watches docs/, overrides/, mkdocs.yml and meta/ (the code listings). On a change it
re-stages docs/ with the current exported/ files and reruns MkDocs into the
site folder; open pages reload themselves. Models are not retrained while
serving: run `maml-site build` for that.
"""
from __future__ import annotations

import logging
import socket
import tempfile
from pathlib import Path

from . import manifest
from .build import build
from .config import BuildOptions
from .errors import ConfigError
from .site import run_mkdocs, stage_docs

log = logging.getLogger("site_builder")

HOST = "127.0.0.1"


def check_port(port: int) -> None:
    """ConfigError unless port is a valid, free port on 127.0.0.1."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"port must be from 1 to 65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise ConfigError(f"port {port} on {HOST} is not free ({exc.strerror}); "
                              "allowed: a free port, e.g. --port 8001") from None


def serve(options: BuildOptions, port: int = 8000) -> None:
    from mkdocs.livereload import LiveReloadServer

    # "Detected file changes", "Reloading browsers": worth seeing while serving.
    logging.getLogger("mkdocs.livereload").setLevel(logging.INFO)
    options = options.validate()
    check_port(port)
    build(options)
    repo, site_dir = options.repo_root, options.site_dir

    with tempfile.TemporaryDirectory(prefix="maml-site-serve-") as work:
        docs = Path(work) / "docs"

        def rebuild() -> None:
            stage_docs(repo, options.exported, manifest.read(options.exported)["models"], docs)
            run_mkdocs(repo, docs, site_dir)

        server = LiveReloadServer(builder=rebuild, host=HOST, port=port, root=str(site_dir))

        def error_page(code: int) -> bytes | None:
            page = site_dir / f"{code}.html"
            return page.read_bytes() if code == 404 and page.is_file() else None

        server.error_handler = error_page
        for path in (repo / "docs", repo / "overrides", repo / "mkdocs.yml", repo / "meta"):
            server.watch(str(path))
        log.info("serving %s on http://%s:%d/ (Ctrl+C stops)", site_dir, HOST, port)
        try:
            server.serve()
        except KeyboardInterrupt:
            log.info("stopped")
        finally:
            server.shutdown()

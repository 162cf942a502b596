"""Shared fixtures: one quick build of the whole site per test session.

``quick_build`` runs the real pipeline (train -> evaluate -> export -> figures
-> MkDocs strict) with the quick profile on the CPU, into exported/ and site/
folders under pytest's temporary directory, so the repository's own exported/
and site/ are never touched. ``built_site`` is the site folder of that build
(the browser tests serve it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from site_builder.build import BuildReport, build
from site_builder.config import BuildOptions


@dataclass(frozen=True)
class QuickBuild:
    options: BuildOptions
    report: BuildReport

    @property
    def exported(self) -> Path:
        return self.options.exported

    @property
    def site(self) -> Path:
        return self.options.site_dir


def quick_options(root: Path, **changes) -> BuildOptions:
    settings = dict(profile="quick", device="cpu", exported=root / "exported", site_dir=root / "site")
    settings.update(changes)
    return BuildOptions(**settings).validate()


@pytest.fixture(scope="session")
def quick_build(tmp_path_factory) -> QuickBuild:
    options = quick_options(tmp_path_factory.mktemp("quick-build"))
    return QuickBuild(options, build(options))


@pytest.fixture(scope="session")
def built_site(quick_build) -> Path:
    """The folder of a site built with --profile quick --device cpu."""
    return quick_build.site

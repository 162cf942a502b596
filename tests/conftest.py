"""Shared fixtures: one quick build of the whole site per test session.

``quick_build`` runs the real pipeline (train -> evaluate -> export -> figures
-> MkDocs strict) with the quick profile on the CPU, into exported/ and site/
folders under pytest's temporary directory, so the repository's own exported/
and site/ are never touched. ``built_site`` is the site folder of that build
(the browser tests serve it).

The browser fixtures (helpers in tests/browser_support.py):
``browser_type_launch_args`` makes pytest-playwright drive Debian's Chromium;
``site_url`` serves ``built_site`` on 127.0.0.1 for a test module; ``log``
records what the ``page`` requested and logged; ``touch_page`` is a page on a
phone-sized touch screen.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_FLAGS, PageLog, QuietHandler, serve

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


# ---------------------------------------------------------------- browser

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium instead of downloading a browser."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) "
                    "or point MAML_SITE_CHROMIUM at a Chromium binary")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="module")
def site_url(built_site):
    """The built site served over HTTP on 127.0.0.1 at a free port."""
    with serve(functools.partial(QuietHandler, directory=str(built_site))) as url:
        yield url


@pytest.fixture
def log(page):
    return PageLog(page)


@pytest.fixture
def touch_page(browser):
    """A page in a phone-sized browser context with a touch screen."""
    context = browser.new_context(has_touch=True, is_mobile=True, viewport={"width": 390, "height": 844})
    yield context.new_page()
    context.close()

"""Shared fixtures: the default recipe's full run is made once per session and reused read-only."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from fpgadl.hls.csim_build import ENV_VAR as PCH_ENV_VAR


def pytest_configure(config):
    """One precompiled ap_types header for every csim build of the session (set before xdist starts its
    workers, which inherit it): about a third of a small project's g++ time (fpgadl/hls/csim_build.py)."""
    if PCH_ENV_VAR not in os.environ:
        os.environ[PCH_ENV_VAR] = config._fpgadl_pch = tempfile.mkdtemp(prefix="fpgadl-csim-pch-")


def pytest_unconfigure(config):
    if getattr(config, "_fpgadl_pch", None):
        shutil.rmtree(config._fpgadl_pch, ignore_errors=True)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """(run_dir, report, stage events) of `fpgadl run` on the default recipe. Tests must not modify it."""
    from fpgadl import api

    out = tmp_path_factory.mktemp("run") / "mlp-digits"
    events: list[tuple[str, str]] = []
    report = api.run("mlp-digits", out=out, reporter=lambda s, e, i: events.append((s, e)), warn=lambda m: None)
    return out, report, events


@pytest.fixture(scope="session")
def default_bundle(default_run, tmp_path_factory):
    """`fpgadl package` of the default run for pynq-z2 (read-only for tests)."""
    from fpgadl import api

    out = tmp_path_factory.mktemp("bundle") / "mlp-digits-pynq-z2"
    api.package(default_run[0], board="pynq-z2", out=out)
    return out


# `make test` spreads tests over two xdist workers (--dist loadgroup). A test that uses an expensive shared
# fixture (the default run, a module's compiled projects) goes to the worker that already built it, so no
# fixture is built twice: one group for the default run, one per module for module/session fixtures.
@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = None if item.get_closest_marker("xdist_group") else _shared_fixture_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def _shared_fixture_group(item) -> str | None:
    names = getattr(item, "fixturenames", ())
    if "default_run" in names:
        return "default-run"
    defs = getattr(item, "_fixtureinfo", None)
    for name in names:
        for fixturedef in defs.name2fixturedefs.get(name, ()) if defs else ():
            if fixturedef.scope in ("module", "session") and fixturedef.baseid.endswith(".py"):
                return item.module.__name__
    return None


def pytest_runtest_setup(item):
    """Under --dist loadgroup xdist suffixes a grouped test's node id with @group; without it the grouping is
    silently lost and shared fixtures are built on every worker (pytest-xdist#1386, with pytest 9.2)."""
    grouped = getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group")
    if grouped and "@" not in item.nodeid:
        pytest.fail(f"--dist loadgroup is not grouping {item.nodeid}: pytest/pytest-xdist pair known to break it")

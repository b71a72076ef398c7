"""Shared fixtures: the default recipe's full run is made once per session and reused read-only."""

from __future__ import annotations

import pytest


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

"""report.html in a real headless browser (Debian's Chromium driven by Playwright): self-contained, no console
errors, every plot rendered; the screenshot of the default run goes to docs/ with FPGADL_DOCS_SCREENSHOT=1."""

from __future__ import annotations

import os
import re

import pytest
from helpers import REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "report-mlp-digits.png"
_RENDERED = """els => els.map(e => {
  const r = e.getBoundingClientRect();
  const drawn = e.tagName === 'IMG' ? e.naturalWidth > 0 : e.querySelectorAll('path,use,rect,text').length > 0;
  return {tag: e.tagName, width: r.width, height: r.height, drawn: drawn};
})"""


@pytest.fixture(scope="module")
def project_page(default_run, tmp_path_factory):
    """report.html of an `fpgadl hls` project (the default run's QONNX file)."""
    from fpgadl import api

    out = tmp_path_factory.mktemp("hls") / "prj"
    api.hls(default_run[0] / "model.qonnx.onnx", out=out, warn=lambda m: None)
    return out / "report.html"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _load(browser, path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            return r.continue_()
        remote.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    plots = page.eval_on_selector_all("figure.plot > svg, figure.plot > img", _RENDERED)
    return page, errors, remote, plots


def test_run_report_renders_every_plot(default_run, browser, tmp_path):
    path = default_run[0] / "report.html"
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']https?:|url\(\s*["']?https?:|<script[^>]+src=""", text)
    n_figures = text.count('<figure class="plot">')
    assert n_figures == 4  # metric per stage, identity matrix, precision profile, resources (no pictures)
    page, errors, remote, plots = _load(browser, path)
    assert errors == [] and remote == []
    assert len(plots) == n_figures and all(p["drawn"] and p["width"] > 100 and p["height"] > 100 for p in plots)
    assert page.inner_text("body").count("PASS") >= 4
    png = page.screenshot(full_page=True)
    assert len(png) > 20_000
    # the README's picture: written into docs/ only when asked (a test run leaves the checkout as it was)
    if os.environ.get("FPGADL_DOCS_SCREENSHOT") == "1":
        from fpgadl.core.artifacts import atomic_path

        with atomic_path(SCREENSHOT, ".png") as tmp:
            tmp.write_bytes(png)


def test_report_identity_matrix_holds_the_measured_values(default_run):
    text = (default_run[0] / "report.html").read_text()
    rep = default_run[1]
    for pair, c in rep["comparisons"].items():
        assert f"{c['identical_values']:.2%}" in text, pair


def test_hls_project_report_renders(project_page, browser):
    _, errors, remote, plots = _load(browser, project_page)
    assert errors == [] and remote == []
    assert len(plots) == 2 and all(p["drawn"] and p["width"] > 100 for p in plots)  # profile + resources


def test_sample_pictures_are_inlined(tmp_path):
    """An autoencoder's reconstructions are drawn; a generator's samples.png is embedded as base64."""
    import base64

    import numpy as np

    from fpgadl.flow.report_html import samples_section

    (tmp_path / "data").mkdir()
    (tmp_path / "predictions").mkdir()
    x = np.random.default_rng(0).uniform(0, 1, (10, 64)).astype(np.float32)
    np.save(tmp_path / "data/x_test.npy", x)
    np.save(tmp_path / "predictions/fast.npy", x[:, ::-1])
    section = samples_section(tmp_path)
    assert "Reconstructions" in section and section.count("<svg") == 1 and section.count("<image") == 16
    png = SCREENSHOT.read_bytes() if SCREENSHOT.is_file() else b"\x89PNG\r\n\x1a\n"
    (tmp_path / "samples.png").write_bytes(png)
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in samples_section(tmp_path)

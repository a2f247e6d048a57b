"""dashboard.html: written by the seed report from a real sweep, self-contained, and working in a real
browser (Debian's chromium driven by Playwright, every request but file:// blocked); usable at 200 jobs."""

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from lga.analysis.record import RunRecord, write_record
from lga.analysis.report import write_report
from tests.conftest import ROOT, run_lga_in

PANELS = {
    "cells": "each cell's seeds, mean ± 95% CI",
    "forest": "Paired differences",
    "curves": "Learning curves per cell",
    "cost": "Cost against",
    "weights": "LGA learned weights per epoch",
}


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """A real tiny sweep through run.py (3 attentions x 2 seeds, 2 one-batch epochs), then its seed report."""
    tmp = tmp_path_factory.mktemp("real")
    sweep = tmp / "sweep"
    args = ["-m", "attention=none,se,lga", "seed=0,1", "trainer=debug", "trainer.max_epochs=2", "logger=none",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    run = run_lga_in(tmp, *args, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = subprocess.run([sys.executable, "-m", "lga.report", str(sweep)], cwd=ROOT, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"dashboard: {sweep / 'dashboard.html'}" in report.stdout
    return sweep


@contextmanager
def browser_page():
    """A page in Debian's chromium with every request that is not file:// aborted (and listed in
    ``page.blocked``), console errors and page errors in ``page.errors``. Skips where chromium is
    missing, except under CI, which must run it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        reason = "no chromium on this machine (`make install`, or apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the browser tests, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.blocked, page.errors = [], []

        def route(request_route):
            if request_route.request.url.startswith("file://"):
                request_route.continue_()
            else:
                page.blocked.append(request_route.request.url)
                request_route.abort()

        page.route("**/*", route)
        page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()


def test_without_chromium_the_browser_tests_skip_but_fail_under_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"), browser_page():
        pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runs the browser tests"), browser_page():
        pass


def open_dashboard(page, path) -> None:
    page.goto(path.as_uri())
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {len(PANELS)}")


@pytest.mark.slow  # with the real sweep: about 70 s
def test_dashboard_is_one_file_with_nothing_to_fetch(real_sweep):
    from plotly.offline import get_plotlyjs

    text = (real_sweep / "dashboard.html").read_text()
    assert text.count(get_plotlyjs()) == 1  # inlined, once
    page = text.replace(get_plotlyjs(), "")
    assert page.count("Plotly.newPlot(") == len(PANELS)
    assert "<script src" not in page and "<link" not in page and "http" not in page  # no CDN, fonts or MathJax


@pytest.mark.slow  # the real sweep (about 60 s), then a browser
def test_dashboard_in_a_real_browser(real_sweep, tmp_path):
    """Every panel renders from file:// with all else blocked, without a console error; its numbers are the
    report's; a legend click hides a cell's curves."""
    with browser_page() as page:
        open_dashboard(page, real_sweep / "dashboard.html")
        titles = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]"
            ".map((plot) => [plot.id, plot.querySelector('.gtitle').textContent]))"
        )
        assert titles.keys() == PANELS.keys()
        for div_id, title in PANELS.items():
            assert title in titles[div_id]
        # the cells' means and the forest's differences are report.md's (cells.csv, report.csv)
        cells = list(csv.DictReader((real_sweep / "cells.csv").open()))
        means = page.evaluate("document.getElementById('cells').data.find((t) => t.name === 'mean ± 95% CI').y")
        assert means == pytest.approx([float(c["mean"]) for c in cells])
        comparisons = list(csv.DictReader((real_sweep / "report.csv").open()))
        differences = page.evaluate("document.getElementById('forest').data.flatMap((t) => t.x)")
        assert sorted(differences) == pytest.approx(sorted(float(c["diff"]) for c in comparisons))
        # a click on the first legend entry hides that cell's mean and band in every panel, and only those
        legend = page.locator("#curves .legendtext").first.text_content()
        page.locator("#curves .legendtoggle").first.click()
        page.wait_for_function("document.getElementById('curves').data.some((t) => t.visible === 'legendonly')")
        visible = page.evaluate("document.getElementById('curves').data.map((t) => [t.legendgroup, t.visible])")
        assert {v for group, v in visible if group == legend} == {"legendonly"}
        assert all(v in (None, True) for group, v in visible if group != legend)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert page.errors == [] and page.blocked == []
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


STATUS_MESSAGES = {
    "failed": "missing train-images-idx3-ubyte",
    "diverged": "training diverged: loss nan at step 3",
    "interrupted": "stopped by SIGTERM; re-run the same command to resume",
    "not_learned": "top-1 stayed at chance",
}


def synthetic_sweep(directory, seeds: int = 10) -> int:
    """Job records of a sweep of 2 datasets x 2 backbones x 5 attentions x ``seeds`` seeds (200 at 10), with
    10 epochs of history, LGA weights, and one job of each status that did not finish ok."""
    rng = np.random.default_rng(0)
    attentions = ["none", "se", "cbam", "lga", "lga_released"]
    grid = [(d, b, a, s) for d in ("mnist_5k", "fashion") for b in ("mobilenetv3", "resnet18") for a in attentions
            for s in range(seeds)]  # fmt: skip
    odd_ones = dict(zip((7, 51, 102, 163), STATUS_MESSAGES))
    for job, (dataset, backbone, attention, seed) in enumerate(grid):
        status = odd_ones.get(job, "ok")
        base = 0.9 + 0.01 * attentions.index(attention) + 0.002 * rng.standard_normal()
        history = [{"epoch": e, "train/loss": 1 / e + 0.01 * rng.random(), "val/loss": 1.2 / e,
                    "val/top1": base - 0.3 / e, "lr": 1e-3, "epoch_time_s": 5.0} for e in range(1, 11)]  # fmt: skip
        weights = [{"epoch": e, "step": 10 * e, "backbone.attention.3": {
            "a_local": 0.5 + 0.01 * e, "a_global": 0.5 - 0.01 * e, **{f"scale_w{i}": 0.25 for i in range(4)},
            "scale_entropy": 1.38 - 0.01 * e}} for e in range(10)] if attention.startswith("lga") else None  # fmt: skip
        finished = status in ("ok", "not_learned")
        write_record(directory / str(job), RunRecord(
            status=status, dataset=dataset, backbone=backbone, attention=attention, seed=seed,
            error=STATUS_MESSAGES.get(status), metrics={"test/top1": base, "test/top5": 0.99} if finished else {},
            history=history if status != "failed" else [], params=1_000_000 + 1000 * len(attention),
            flops=9_000_000, throughput={"train_images_per_s": 100.0 + 10 * rng.random()}, lga_weights=weights,
        ))  # fmt: skip
    return len(grid)


def test_dashboard_of_200_jobs_stays_small_and_quick(tmp_path):
    jobs = synthetic_sweep(tmp_path)
    start = time.perf_counter()
    path = write_report(tmp_path)["dashboard"]
    seconds, size = time.perf_counter() - start, path.stat().st_size
    print(
        f"\n{jobs} jobs: dashboard.html {size / 1e6:.2f} MB (plotly.js inlined once), report with it in {seconds:.1f} s"
    )
    assert jobs == 200 and size < 6e6 and seconds < 60
    text = path.read_text()
    for status, message in STATUS_MESSAGES.items():  # every job that did not finish ok, with its message
        assert re.search(f"<td>{status}</td><td class=error>{re.escape(message)}", text), status


def test_dashboard_filters_by_dataset_and_backbone(tmp_path):
    synthetic_sweep(tmp_path, seeds=2)
    path = write_report(tmp_path)["dashboard"]
    with browser_page() as page:
        open_dashboard(page, path)
        page.select_option("#filter-dataset", "fashion")
        page.select_option("#filter-backbone", "resnet18")
        shown = page.evaluate(
            "[...document.querySelectorAll('.js-plotly-plot')].flatMap((plot) => plot.data.map((t) => "
            "[t.meta && t.meta.dataset, t.meta && t.meta.backbone, t.visible !== false]))"
        )
        assert {(d, b) for d, b, visible in shown if visible} <= {("fashion", "resnet18"), ("fashion", None)}
        assert any(d == "fashion" and b == "resnet18" and visible for d, b, visible in shown)
        rows = page.evaluate(
            "[...document.querySelectorAll('tr[data-dataset]')].map((r) => [r.dataset.dataset, r.hidden])"
        )
        assert {d for d, hidden in rows if not hidden} <= {"fashion"} and any(hidden for _, hidden in rows)
        assert page.errors == [] and page.blocked == []


def test_a_name_holding_a_closing_script_tag_stays_data():
    from lga.analysis.dashboard import _plot

    html = _plot("x", {"data": [{"name": "</script><script>alert(1)</script>"}], "layout": {}})
    assert html.count("</script>") == 1 and "<\\/script><script>alert(1)<\\/script>" in html

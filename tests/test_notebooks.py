"""The notebooks run headless (nbclient) on sweep data, so they cannot rot."""

import os
import re

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from lga.analysis.sweep import write_summary
from tests.conftest import ROOT
from tests.test_report import _fake_sweep


def _execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    chunks = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            chunks.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(chunks)


@pytest.mark.parametrize("with_baseline", [True, False])
def test_sweep_summary_notebook_reads_the_sweep_it_is_given(tmp_path, with_baseline):
    results = [("lga", s, 97.0 + s / 10, "ok") for s in range(2)] + [("se", 0, 0.0, "diverged")]
    if with_baseline:
        results += [("none", s, 96.5, "ok") for s in range(2)]
    sweep = _fake_sweep(tmp_path / "multiruns" / "2026-01-01_00-00-00-000000", results)
    write_summary(sweep)
    notebook = _execute("sweep_summary.ipynb", {"LGA_LOG_DIR": str(tmp_path)})  # the newest sweep under it
    text = _text(notebook)
    assert f"{sweep}: {len(results) - 1} of {len(results)} jobs finished" in text
    assert "training diverged" in text  # the job that did not finish is shown, not averaged
    comparison = _text(nbformat.from_dict({"cells": notebook.cells[-1:]}))
    assert "nan" not in comparison.lower()
    if with_baseline:
        assert "0.55" in comparison  # lga's mean 97.05 - none's 96.5
    else:
        assert "no `none` runs in this sweep" in comparison


STUDY_ROOT = ROOT / "experiments" / "study"
HEADLINE = {"classification": "test_top1", "detection": "test_map50"}


def _committed_studies():
    return {p.parent.name: pd.read_csv(p) for p in sorted(STUDY_ROOT.glob("*/jobs.csv")) if p.parent.name in HEADLINE}


@pytest.mark.skipif(not _committed_studies(), reason="no study committed under experiments/study yet")
def test_study_notebook_runs_on_the_committed_study():
    notebook = _execute("study_analysis.ipynb", {"LGA_STUDY_DIR": str(STUDY_ROOT)})
    text = _text(notebook)
    for name, jobs in _committed_studies().items():
        ok = jobs[jobs.status == "ok"]
        assert f"{name}: {HEADLINE[name]} (%)" in text
        # the paired difference of lga to none on the main cells, computed here from the CSV
        for dataset, group in ok.groupby("dataset"):
            options = group.variant.fillna("").str.len()
            group = group[options == options.min()]
            by_seed = group.pivot_table(index="seed", columns="attention", values=HEADLINE[name])
            if {"lga", "none"} <= set(by_seed):
                both = by_seed[["lga", "none"]].dropna()
                shown = re.search(rf"^\s*{dataset}\s+lga\s+{len(both)}\s+(\S+)", text, re.MULTILINE)
                assert shown, f"no paired difference of lga on {dataset} in the notebook's output"
                assert float(shown.group(1)) == pytest.approx((both.lga - both.none).mean(), abs=5e-4)

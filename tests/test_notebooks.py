"""The notebooks run headless (nbclient) on sweep data, so they cannot rot."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from lga.sweep import write_summary
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

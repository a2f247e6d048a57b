"""hparams_search=optuna (seeded TPE on validation, SQLite storage, resumable) and the tune-then-compare protocol."""

import csv
import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT, _lga_env

SEARCH = ["-m", "hparams_search=optuna", "trainer=debug", "logger=none"]


def _trials(sweep):
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    return rows, sorted(r["variant"] for r in rows)


@pytest.mark.slow
def test_a_search_is_seeded_never_tests_and_resumes_from_its_sqlite_storage(tmp_path, run_lga):
    sweep = tmp_path / "search"
    first = run_lga(*SEARCH, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (sweep / "optuna.db").is_file() and (sweep / "optimization_results.yaml").is_file()
    rows, trials = _trials(sweep)
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)
    assert all(r["test_top1"] == "" and r["val_top1_best"] for r in rows)  # selected on validation, test never run
    assert all(
        "optimizer.lr=" in t and "optimizer.weight_decay=" in t and "model.label_smoothing=" in t for t in trials
    )
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert float(best.best_value) * 100 == pytest.approx(max(float(r["val_top1_best"]) for r in rows), abs=0.01)

    resumed = run_lga(*SEARCH, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={sweep}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3 of 4 trials done" in resumed.stdout + resumed.stderr
    rows_after, trials_after = _trials(sweep)
    assert len(rows_after) == 4 and set(trials) < set(trials_after)  # one new trial, the old ones kept

    again = run_lga(*SEARCH, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _trials(tmp_path / "again")[1] == trials  # the same seed proposes the same trials


def test_a_search_cannot_select_on_test(run_lga):
    result = run_lga("objective=test/top1", "trainer=debug", "logger=none")
    assert result.returncode != 0
    assert "objective='test/top1': a search selects on validation only" in result.stderr


@pytest.mark.slow
def test_tune_then_compare_at_a_tiny_budget(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    command = [sys.executable, "-m", "lga.tools.tune_compare", "--attentions", "none,lga", "--trials", "2",
               "--seeds", "2", "--work", str(work), "--out", str(out), "trainer=debug", "logger=none"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=_lga_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.csv", "report.png", "tuned.md", "tuned.csv"}
    tuned = {r["attention"]: r for r in csv.DictReader((out / "tuned.csv").open())}
    assert set(tuned) == {"none", "lga"}
    for job in sorted((work / "compare").glob("*/result.json")):
        record = json.loads(job.read_text())
        best = OmegaConf.load(work / "search" / record["attention"] / "optimization_results.yaml").best_params
        assert record["tuned"]["params"] == dict(best)  # each variant trained at its own best hyperparameters
        assert float(tuned[record["attention"]]["optimizer.lr"]) == pytest.approx(best["optimizer.lr"], rel=1e-3)
        assert record["config"]["optimizer"]["lr"] == best["optimizer.lr"]
    (comparison,) = list(csv.DictReader((out / "report.csv").open()))
    assert comparison["comparison"] == "lga vs none" and comparison["n"] == "2"  # paired by seed despite other lrs


def test_the_same_search_runs_for_detection_without_label_smoothing(tmp_path, run_lga):
    sweep = tmp_path / "search"
    result = run_lga(*SEARCH, "task=detection", "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not searched: model.label_smoothing (this config has no such option)" in result.stdout + result.stderr
    (row,) = list(csv.DictReader((sweep / "summary.csv").open()))
    assert (
        "optimizer.lr=" in row["job"]
        and "label_smoothing" not in row["job"]
        and row["val_map50_best"] != ""
        and row["test_map50"] == ""
    )

"""W&B set up for comparison, read back from a real tiny offline sweep with wandb's own reader of a run's
transaction log (`wandb leet inspect --json`); the saved view's spec; TensorBoard's HParams."""

import json
import re
import subprocess
import sys

import pytest

from lga.analysis.wandb_compare import SUMMARY_JOB_TYPE, optuna_parameters, workspace, workspace_spec
from tests.conftest import ROOT, _lga_env, run_lga_in


def inspect(run_dir, summary: bool = False):
    """A W&B run directory's records (one dict each), or with ``summary`` its merged state (config, summary)."""
    args = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *(["--summary"] * summary), str(run_dir)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out) if summary else [json.loads(line) for line in out.splitlines()]


def flat(mapping, prefix=""):
    """Nested keys joined by dots, as W&B's UI and views name them (``optimizer.lr``, ``val/top1.max``)."""
    for key, value in mapping.items():
        if isinstance(value, dict) and not key.startswith("_"):
            yield from flat(value, f"{prefix}{key}.")
        yield f"{prefix}{key}"


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory):
    """``run.py -m attention=none,lga trainer=debug`` (2 epochs) with W&B offline, WANDB_DIR under tmp."""
    tmp = tmp_path_factory.mktemp("wandb")
    sweep = tmp / "sweep"
    args = ["-m", "attention=none,lga", "trainer=debug", "trainer.max_epochs=2", "logger=wandb",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = run_lga_in(tmp, *args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def training_run(sweep, job: int):
    (run_dir,) = (sweep / str(job) / "wandb").glob("offline-run-*")
    return run_dir


def test_training_runs_carry_axes_and_best_validation(wandb_sweep):
    for job, attention in enumerate(["none", "lga"]):
        run_dir = training_run(wandb_sweep, job)
        state = inspect(run_dir, summary=True)
        config, summary = state["config"], state["summary"]
        assert {k: config[k] for k in ("axes/dataset", "axes/backbone", "axes/attention", "seed")} == {
            "axes/dataset": "mnist_5k", "axes/backbone": "mobilenetv3", "axes/attention": attention, "seed": 0,
        }  # fmt: skip
        assert config["axes/variant"] == "trainer.max_epochs=2 trainer=debug"
        history = [r["history"]["item"] for r in inspect(run_dir) if r["type"] == "history"]
        validation = [row for row in history if "val/top1" in row]
        assert [row["epoch"] for row in validation] == [0, 1]  # logged with its epoch, the x-axis
        assert summary["val/top1"] == {
            "max": max(r["val/top1"] for r in validation),
            "last": validation[-1]["val/top1"],
        }
        assert summary["val/loss"]["min"] == min(r["val/loss"] for r in validation)
        result = json.loads((wandb_sweep / str(job) / "result.json").read_text())
        assert summary["test/top1"] == pytest.approx(result["metrics"]["test/top1"])  # test metrics as they are
        assert summary["val/top1_best"] == pytest.approx(result["metrics"]["val/top1_best"])


def test_sweep_ends_with_a_summary_run_in_its_group(wandb_sweep):
    (run_dir,) = (wandb_sweep / "wandb").glob("offline-run-*")
    (run,) = [r["run"] for r in inspect(run_dir) if r["type"] == "run"]
    assert run["job_type"] == SUMMARY_JOB_TYPE and run["run_group"] == wandb_sweep.name
    summary = inspect(run_dir, summary=True)["summary"]
    assert summary["summary"]["_type"] == summary["report"]["_type"] == "table-file"
    table = json.loads((run_dir / "files" / summary["summary"]["path"]).read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert [(r["attention"], r["status"]) for r in rows] == [("none", "ok"), ("lga", "ok")]
    report = json.loads((run_dir / "files" / summary["report"]["path"]).read_text())
    assert [dict(zip(report["columns"], row))["comparison"] for row in report["data"]] == ["lga vs none"]
    assert summary["report_figure"]["_type"] == "image-file" and summary["dashboard"]["_type"] == "html-file"
    assert "Plotly.newPlot(" in (run_dir / "files" / summary["dashboard"]["path"]).read_text()


def panel_keys(view):
    """Every metric or config key a panel of the view reads: {"history"|"summary"|"config"|"regex": keys}."""
    keys = {"history": set(), "summary": set(), "config": set(), "regex": set()}

    def add(metric, section):
        kind = type(metric).__name__
        if kind == "Config":
            keys["config"].add(metric.name)
        elif kind == "SummaryMetric":
            keys["summary"].add(metric.name)
        elif metric is not None:
            keys[section].add(metric if isinstance(metric, str) else metric.name)

    for section in view.sections:
        for panel in section.panels:
            kind = type(panel).__name__
            if kind == "LinePlot":
                for metric in (panel.x, *panel.y, panel.groupby):
                    add(metric, "history")
                if panel.metric_regex:
                    keys["regex"].add(panel.metric_regex)
            elif kind == "BarPlot":
                for metric in (*panel.metrics, panel.groupby):
                    add(metric, "summary")
            elif kind == "ScatterPlot":
                add(panel.x, "summary"), add(panel.y, "summary")
            elif kind == "ParallelCoordinatesPlot":
                for column in panel.columns:
                    add(column.metric, "summary")
            else:
                raise AssertionError(f"a panel this test does not read: {kind}")
    return keys


def missing_keys(view, run_dir) -> set[str]:
    """The view's keys that the offline run never logged (regexes: that match none of its history keys)."""
    state = inspect(run_dir, summary=True)
    history = {k for r in inspect(run_dir) if r["type"] == "history" for k in r["history"]["item"]}
    logged = {"history": history, "summary": set(flat(state["summary"])), "config": set(flat(state["config"]))}
    keys = panel_keys(view)
    missing = {k for section in logged for k in keys[section] - logged[section]}
    return missing | {r for r in keys["regex"] if not any(re.search(r, k) for k in history)}


def test_saved_view_spec_round_trips_and_reads_only_logged_keys(wandb_sweep):
    from wandb_workspaces.workspaces import Workspace, internal

    view = workspace("entity", "lga", wandb_sweep.name)
    spec = workspace_spec(view)
    again = Workspace._from_model(internal.View.model_validate_json(spec))
    assert workspace_spec(again) == spec
    assert f'"value": "{wandb_sweep.name}"' in spec  # the view shows the sweep's group
    assert set(optuna_parameters()) <= panel_keys(view)["config"]
    lga_run = training_run(wandb_sweep, 1)
    assert missing_keys(view, lga_run) == set()
    # a renamed metric is caught
    assert missing_keys(workspace("entity", "lga", wandb_sweep.name, "test/acc"), lga_run) == {
        "test/acc", "val/acc", "val/acc_best"
    }  # fmt: skip


def test_saving_a_view_without_an_api_key_prints_it_and_fails(tmp_path):
    env = {**_lga_env(tmp_path), "HOME": str(tmp_path)}  # no ~/.netrc either
    save = [sys.executable, "-m", "lga.analysis.dashboard", "--wandb", "entity/lga", "--group", "sweep-1"]
    proc = subprocess.run(save, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "needs an API key" in proc.stderr
    assert json.loads(proc.stdout)["displayName"] == "lga: compare sweep-1"
    bad = subprocess.run([*save[:4], "lga", *save[5:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "ENTITY/PROJECT" in bad.stderr


def test_tensorboard_logs_hparams_with_the_final_metrics(run_lga, tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    proc = run_lga("trainer=debug", "logger=tensorboard", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    hparams, metrics, scalars = {}, set(), {}
    for events in sorted((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.tag.startswith("_hparams_/"):
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    started = data.session_start_info.hparams
                    hparams.update({k: v.string_value or v.number_value for k, v in started.items()})
                    metrics |= {m.name.tag for m in data.experiment.metric_infos}
                else:  # the loader gives scalars as tensors
                    scalars[value.tag] = value.tensor.float_val[0]
    assert hparams["axes/attention"] == "lga" and hparams["axes/backbone"] == "mobilenetv3"
    assert hparams["optimizer/lr"] == pytest.approx(0.002)
    assert {"test/top1", "val/top1", "val/top1_best"} <= metrics
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert scalars["test/top1"] == pytest.approx(result["metrics"]["test/top1"])

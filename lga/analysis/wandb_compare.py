"""W&B set up to compare a sweep's runs: the mode a run logs in, the sweep's summary run, the saved view.

Each training run carries its cell's axes as flat config keys (``axes/dataset``, ``axes/backbone``,
``axes/attention``, ``axes/variant``, and ``seed``), best-so-far validation summaries and ``epoch``
as the x-axis (:mod:`lga.loggers`). When a sweep that logs to W&B ends, :func:`log_summary_run` adds
one run to its group (``job_type="summary"``) with the sweep summary, the seed report's tables, its
figure and the offline dashboard. :func:`workspace` is the saved W&B view of a group (wandb-workspaces);
``python -m lga.analysis.dashboard --wandb ENTITY/PROJECT --group G`` saves it where an API key is.

Imports no torch; wandb and wandb-workspaces only when used.
"""

from __future__ import annotations

import enum
import logging
import netrc
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ..utils import REPO_ROOT, reachable

log = logging.getLogger(__name__)
WANDB_HOST = "api.wandb.ai"
SUMMARY_JOB_TYPE = "summary"
# conf/logger/wandb.yaml's _target_ (lga.loggers.LOGGERS["wandb"]; a test checks they agree)
WANDB_LOGGER = "lga.loggers.wandb_loggers"


class WandbMode(enum.Enum):
    auto = "auto"  # online when an API key and the server are there, offline otherwise
    online = "online"
    offline = "offline"
    disabled = "disabled"


# the grouping keys every training run carries (seed is the config's own key)
AXIS_KEYS = ("axes/dataset", "axes/backbone", "axes/attention", "axes/variant")
OPTUNA_SEARCH = REPO_ROOT / "conf" / "hparams_search" / "optuna.yaml"
# cost against accuracy: the summary keys each training run logs (lga.models.base, lga.callbacks.RunClock)
COST_KEYS = {"model/params_M": "parameters (M)", "model/gflops": "GFLOPs", "perf/train_images_per_s": "train images/s"}


def has_wandb_key() -> bool:
    """An API key in WANDB_API_KEY or ~/.netrc (an empty WANDB_API_KEY is none)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``online`` only with an API key and a reachable server, else ``offline``."""
    if mode != "auto":
        return mode
    if not has_wandb_key():
        log.info("W&B: no API key (WANDB_API_KEY or ~/.netrc), logging offline; `wandb sync` uploads later")
        return "offline"
    if not reachable(WANDB_HOST):
        log.info("W&B: %s unreachable, logging offline; `wandb sync` uploads later", WANDB_HOST)
        return "offline"
    return "online"


def log_summary_run(sweep_dir: str | Path, logger: Any) -> Path | None:
    """When the sweep logs to W&B (``logger``: its ``logger`` config), one more run in its group, online or
    offline like the jobs: tables ``summary`` (one row per job), ``report`` (one per comparison) and
    ``cells``, the report figure and ``dashboard.html``; the seed report is written first. Returns the run's
    directory (None without W&B). A failure here is logged: it never fails the sweep."""
    sweep_dir = Path(sweep_dir)
    if logger.get("_target_") != WANDB_LOGGER:
        return None
    try:
        mode = resolve_wandb_mode(WandbMode(logger.mode).value)
        return None if mode == "disabled" else _summary_run(sweep_dir, logger, mode)
    except Exception as err:  # a summary, never a reason for the sweep to fail
        log.warning("W&B summary run not written: %s: %s", type(err).__name__, err)
        return None


def _summary_run(sweep_dir: Path, logger: Any, mode: str) -> Path:
    import pandas as pd
    import wandb

    from .report import write_report

    try:
        report = write_report(sweep_dir)
    except SystemExit as err:  # write_report's message for a sweep it cannot report
        log.warning("no seed report for the W&B summary run: %s", err)
        report = {}
    group = logger.group or sweep_dir.name
    run = wandb.init(
        project=logger.project, entity=logger.entity, group=group, job_type=SUMMARY_JOB_TYPE,
        name=f"{group}-summary", id=re.sub(r"[^A-Za-z0-9_-]", "-", f"{group}-summary"), resume="allow",
        dir=str(sweep_dir), mode=mode, config={"sweep_dir": str(sweep_dir)},
        settings=wandb.Settings(console="off", init_timeout=60, silent=True),
    )  # fmt: skip
    tables = {"summary": sweep_dir / "summary.csv", "report": report.get("csv"), "cells": report.get("cells")}
    logged: dict[str, Any] = {
        name: wandb.Table(dataframe=pd.read_csv(path, keep_default_na=False))
        for name, path in tables.items()
        if path is not None and path.is_file()
    }
    if report.get("png"):
        logged["report_figure"] = wandb.Image(str(report["png"]))
    if report.get("dashboard"):
        logged["dashboard"] = wandb.Html(report["dashboard"].read_text(), inject=False)  # inject: a CDN stylesheet
    run.log(logged)
    run.finish()
    return Path(run.dir).parent


def optuna_parameters() -> list[str]:
    """The config keys ``hparams_search=optuna`` searches (its ``hydra.sweeper.params``)."""
    return list(yaml.safe_load(OPTUNA_SEARCH.read_text())["hydra"]["sweeper"]["params"])


def workspace(entity: str, project: str, group: str, metric: str = "test/top1"):
    """The W&B view of the sweep ``group``'s training runs (wandb-workspaces), runs grouped by cell:
    ``metric`` per attention over seeds with error bars, validation curves per attention, the LGA weights
    per epoch, parallel coordinates over the axes and Optuna's hyperparameters, cost against ``metric``."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    validation = metric.replace("test/", "val/")
    by_attention = {"groupby": wr.Config("axes/attention"), "groupby_aggfunc": "mean"}
    searched = (*AXIS_KEYS[:3], *optuna_parameters())
    columns = [*(wr.Config(key) for key in searched), wr.SummaryMetric(f"{validation}_best")]
    sections = [
        ws.Section(name="Cells over seeds", is_open=True, panels=[
            wr.BarPlot(title=f"{metric} per attention: mean ± standard error over seeds", metrics=[metric],
                       orientation="v", groupby_rangefunc="stderr", **by_attention),
            *(wr.ScatterPlot(title=f"{metric} against {label}", x=wr.SummaryMetric(key), y=wr.SummaryMetric(metric))
              for key, label in COST_KEYS.items()),
        ]),
        ws.Section(name="Learning curves", is_open=True, panels=[
            wr.LinePlot(title=f"{key} per epoch by attention: mean ± sd over seeds", x="epoch", y=[key],
                        groupby_rangefunc="stddev", **by_attention)
            for key in (validation, "val/loss")
        ]),
        ws.Section(name="LGA learned weights", is_open=True, panels=[
            wr.LinePlot(title="LGA fusion weights per epoch", x="epoch", metric_regex=r"^lga/.*/a_(local|global)$"),
            wr.LinePlot(title="LGA scale-weight entropy per epoch", x="epoch", metric_regex=r"^lga/.*/scale_entropy$"),
        ]),
        ws.Section(name="Hyperparameters", is_open=True, panels=[
            wr.ParallelCoordinatesPlot(title="axes and Optuna's hyperparameters against the best validation metric",
                                       columns=[wr.ParallelCoordinatesPlotColumn(metric=c) for c in columns]),
        ]),
    ]  # fmt: skip
    return ws.Workspace(
        entity=entity, project=project, name=f"lga: compare {group}", sections=sections,
        settings=ws.WorkspaceSettings(x_axis="epoch"),
        runset_settings=ws.RunsetSettings(
            filters=[expr.Metric("Group") == group, expr.Metric("JobType") == "train"],
            groupby=[expr.Config(key) for key in AXIS_KEYS],
        ),
    )  # fmt: skip


def workspace_spec(view) -> str:
    """The view as W&B stores it (JSON): what :func:`save_workspace` would save."""
    return view._to_model().model_dump_json(by_alias=True, exclude_none=True, indent=1)


def save_workspace(where: str, group: str, metric: str = "test/top1") -> int:
    """Save the view of ``group`` to ``ENTITY/PROJECT``; without an API key print its spec and say so.
    Returns the exit code."""
    entity, _, project = where.partition("/")
    if not entity or not project or "/" in project:
        print(f"error: --wandb takes ENTITY/PROJECT, not {where!r}", file=sys.stderr)
        return 2
    view = workspace(entity, project, group, metric)
    if not has_wandb_key():
        print(workspace_spec(view))
        print(
            "error: saving a W&B view needs an API key (WANDB_API_KEY, or `wandb login`); nothing was saved. "
            "Above: the view it would save.",
            file=sys.stderr,
        )
        return 1
    view.save()
    print(f"saved: {view.url}")
    return 0

"""The results contract: what every job records, and how a sweep's records read back.

A job writes ``result.json`` in its directory, whatever happens to it: a
:class:`lga.analysis.record.RunRecord` with its axes, its status and, when it finished,
metrics, per-epoch history, cost and throughput. :func:`sweep_rows` turns a sweep directory into
one flat row per job (metrics in percent, raw floats), :func:`sweep_frame` into a pandas DataFrame.
The summary, the seed report, the launchers and the notebooks all read through here.

Nothing here imports torch or Lightning: reading results must stay cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from omegaconf import OmegaConf

from .identity import job_axes
from .record import ATTEMPT_GLOB, RESULT_FILE, STATUSES, RunRecord, read_record

# summary column -> result metric, per task (percent)
TASK_METRICS = {
    "classification": {"test_top1": "test/top1", "test_top5": "test/top5", "val_top1_best": "val/top1_best"},
    "detection": {
        "test_map50": "test/map50", "test_map": "test/map", "test_map_small": "test/map_small",
        "test_mar100": "test/mar100", "val_map50_best": "val/map50_best",
    },
}  # fmt: skip
METRIC_COLUMNS = [column for cols in TASK_METRICS.values() for column in cols]
# decimals a summary shows (rows keep raw floats: rounding is for display only)
DISPLAY_DIGITS = {**dict.fromkeys(METRIC_COLUMNS, 2), "params_M": 4, "gflops": 4, "train_time_s": 1}
TAIL = [
    "test_images", "params_M", "gflops", "train_time_s", "train_img_s", "eval_img_s", "step_ms", "wait_ms", "threads",
    "device", "status", "error",
]  # fmt: skip


def job_dirs(sweep_dir: str | Path) -> list[Path]:
    """Job directories, in job order: those Hydra wrote a config into, and those of jobs
    the scheduler ended before they started (the launcher left only a ``result.json``)."""
    sweep_dir = Path(sweep_dir)
    dirs = {p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")}
    dirs |= {p.parent for p in sweep_dir.glob(f"**/{RESULT_FILE}")}
    return sorted(dirs, key=lambda d: (len(d.name), d.name))


def read_result(job_dir: str | Path) -> RunRecord:
    """The job's latest record; for a job that never wrote one, its axes from Hydra's files and status
    ``incomplete``."""
    job_dir = Path(job_dir)
    if (job_dir / RESULT_FILE).is_file():
        # a rerun that did not finish left its record beside a finished one (lga.train): the newest counts
        newest = max([job_dir / RESULT_FILE, *job_dir.glob(ATTEMPT_GLOB)], key=lambda p: (p.stat().st_mtime_ns, p.name))
        return read_record(newest)
    cfg = OmegaConf.load(job_dir / ".hydra/config.yaml")
    hydra = OmegaConf.load(job_dir / ".hydra/hydra.yaml").hydra if (job_dir / ".hydra/hydra.yaml").is_file() else None
    choices = hydra.runtime.choices if hydra is not None else {}
    overrides = list(hydra.overrides.task) if hydra is not None else []
    return RunRecord(**job_axes(cfg, choices, overrides), status="incomplete", error=STATUSES["incomplete"])


def _percent(value: float | None) -> float | None:
    """A metric in percent, not rounded (the tests run on it; rounding each job before averaging moved a
    mean by up to 0.005). Metrics are logged as float32, read here as the shortest decimal that gives the
    same float32: a test top-1 of 9261 / 10000 reads 92.61, not 92.61000156..., so equal differences in
    counts are equal differences here; any other metric moves by less than one float32 step.
    COCO's mAP is -1 for a size class without objects: no value rather than a number."""
    return None if value is None or value < 0 else 100 * float(str(np.float32(value)))


def _test_images(tested: float | None, total: int | None) -> str | None:
    """How much of the test set the test metrics cover: ``10000``, or ``2000 of 10000`` when partial."""
    if tested is None:
        return None
    return f"{int(tested)}" if total is None or int(tested) >= total else f"{int(tested)} of {total}"


def _tuned(tuned: dict[str, Any] | None) -> str:
    """Which search's hyperparameters a job used (``tuned=DIR``), marked when it was made in another setting."""
    if not tuned:
        return ""
    return str(tuned.get("from", "?")) + (" (other setting)" if tuned.get("other_setting") else "")


def result_row(record: RunRecord, job: str) -> dict[str, Any]:
    """One job's record as a flat row: axes, metrics (percent), test coverage, cost, throughput, status."""
    metrics, throughput = record.metrics, record.throughput or {}
    return {
        "job": job,
        "dataset": record.dataset,
        "backbone": record.backbone,
        "attention": record.attention,
        "seed": record.seed,
        "variant": record.variant,
        "tuned": _tuned(record.tuned),
        "task": record.task,
        **{column: _percent(metrics.get(key)) for cols in TASK_METRICS.values() for column, key in cols.items()},
        "test_images": _test_images(metrics.get("test/images"), record.test_images_total),
        "params_M": record.params / 1e6 if record.params is not None else None,
        "gflops": record.flops / 1e9 if record.flops is not None else None,
        "train_time_s": record.train_time_s,
        "train_img_s": throughput.get("train_images_per_s"),
        "eval_img_s": throughput.get("eval_images_per_s"),
        "step_ms": throughput.get("step_ms"),
        "wait_ms": throughput.get("data_wait_ms"),
        "threads": record.threads,
        "device": record.device or "cpu",  # records from before the field all trained on CPU
        "status": record.status,
        "error": record.error or "",
    }


def sweep_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job of a sweep directory (see :func:`result_row`), in job order."""
    sweep_dir = Path(sweep_dir)
    return [result_row(read_result(d), str(d.relative_to(sweep_dir))) for d in job_dirs(sweep_dir)]


def history_frame(directory: str | Path):
    """Every job's per-epoch history as a long pandas DataFrame: one row per job x epoch x key
    (``train/loss``, ``val/loss``, ``val/top1``, ``lr``, ``epoch_time_s``, ...). Jobs recorded
    before schema 2 have no history and no rows."""
    import pandas as pd

    directory = Path(directory)
    rows = []
    for job_dir in job_dirs(directory):
        record = read_result(job_dir)
        axes = {"job": str(job_dir.relative_to(directory)), "dataset": record.dataset, "backbone": record.backbone,
                "attention": record.attention, "variant": record.variant, "seed": record.seed,
                "status": record.status}  # fmt: skip
        for epoch in record.history:
            rows += [{**axes, "epoch": epoch["epoch"], "key": k, "value": v} for k, v in epoch.items() if k != "epoch"]
    columns = ["job", "dataset", "backbone", "attention", "variant", "seed", "status", "epoch", "key", "value"]
    return pd.DataFrame(rows, columns=columns)


def sweep_frame(sweep_dir: str | Path):
    """:func:`sweep_rows` as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(sweep_rows(sweep_dir))


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Summary columns: the axes (``variant`` only where jobs differ in it, ``tuned`` where a job used a
    search's hyperparameters), the metrics of the tasks the sweep ran, then test coverage, cost and status."""
    tasks = {r["task"] for r in rows} or {"classification"}
    axes = ["job", "dataset", "backbone", "attention", "seed"]
    if len({r.get("variant", "") for r in rows}) > 1:
        axes.append("variant")
    if any(r.get("tuned") for r in rows):  # the hyperparameters came from a search, not the config
        axes.append("tuned")
    return axes + [c for task, cols in TASK_METRICS.items() if task in tasks for c in cols] + TAIL

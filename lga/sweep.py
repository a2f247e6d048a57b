"""The sweep summary: one row per job, written when a multirun ends (CSV and Markdown)."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .train import RESULT_FILE
from .utils import csv_text, markdown_table, write_atomic

log = logging.getLogger(__name__)

AXES = ["job", "dataset", "backbone", "attention", "seed"]
# summary column -> result metric, per task (percent)
TASK_METRICS = {
    "classification": {"test_top1": "test/top1", "test_top5": "test/top5", "val_top1_best": "val/top1_best"},
    "detection": {
        "test_map50": "test/map50", "test_map": "test/map", "test_map_small": "test/map_small",
        "test_mar100": "test/mar100", "val_map50_best": "val/map50_best",
    },
}  # fmt: skip
TAIL = ["test_images", "params_M", "gflops", "train_time_s", "train_img_s", "threads", "status", "error"]
METRIC_COLUMNS = [column for cols in TASK_METRICS.values() for column in cols]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The axes, the metrics of the tasks the sweep ran, then cost and status."""
    tasks = {r["task"] for r in rows} or {"classification"}
    return AXES + [c for task, cols in TASK_METRICS.items() if task in tasks for c in cols] + TAIL


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories, in job order: those Hydra wrote a config into, and those of jobs
    the scheduler ended before they started (the launcher left only a ``result.json``)."""
    dirs = {p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")}
    dirs |= {p.parent for p in sweep_dir.glob(f"**/{RESULT_FILE}")}
    return sorted(dirs, key=lambda d: (len(d.name), d.name))


def _percent(value: float | None) -> float | None:
    # COCO's mAP is -1 for a size class without objects: no value rather than a number
    return None if value is None or value < 0 else round(100 * value, 2)


def _test_images(tested: float | None, total: int | None) -> str | None:
    """How much of the test set the test metrics cover: ``10000``, or ``2000 of 10000`` when partial."""
    if tested is None:
        return None
    return f"{int(tested)}" if total is None or int(tested) >= total else f"{int(tested)} of {total}"


def _row(job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    result_file = job_dir / RESULT_FILE
    if result_file.is_file():
        result = json.loads(result_file.read_text())
    else:  # killed before it could record anything
        cfg = OmegaConf.load(job_dir / ".hydra/config.yaml")
        result = {
            "dataset": cfg.dataset.name, "backbone": cfg.backbone.name, "attention": cfg.attention.name,
            "seed": cfg.seed, "task": cfg.model.name, "status": "incomplete",
            "error": "no result.json: the job was killed or is still running",
        }  # fmt: skip
    metrics = result.get("metrics", {})
    return {
        "job": str(job_dir.relative_to(sweep_dir)),
        **{k: result.get(k) for k in ("dataset", "backbone", "attention", "seed")},
        "task": result.get("task", "classification"),
        **{column: _percent(metrics.get(key)) for cols in TASK_METRICS.values() for column, key in cols.items()},
        "params_M": round(result["params"] / 1e6, 4) if "params" in result else None,
        "gflops": round(result["flops"] / 1e9, 4) if "flops" in result else None,
        "train_time_s": result.get("train_time_s"),
        "train_img_s": result.get("throughput", {}).get("train_images_per_s"),
        "threads": result.get("threads"),
        "test_images": _test_images(metrics.get("test/images"), result.get("test_images_total")),
        "status": result.get("status"),
        "error": result.get("error", ""),
    }


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    sweep_dir = Path(sweep_dir)
    return [_row(d, sweep_dir) for d in _job_dirs(sweep_dir)]


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    return markdown_table(cols, ([r[c] for c in cols] for r in rows)) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    return csv_text(({c: r[c] for c in cols} for r in rows), cols)


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``; return the rows."""
    sweep_dir = Path(sweep_dir)
    rows = collect(sweep_dir)
    write_atomic(sweep_dir / "summary.csv", to_csv(rows))
    write_atomic(sweep_dir / "summary.md", to_markdown(rows))
    return rows


def ensure_writable(directory: str | Path, option: str) -> None:
    """Create ``directory`` and check a file can be written in it, or exit with a message
    that names it and the option that sets it (before Hydra's own logging would fail on it)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise SystemExit(
            f"error: cannot write the output directory {directory} ({err.strerror or err}); "
            f"set {option}=... or paths.log_dir (LGA_LOG_DIR) to a writable place"
        ) from None


class CheckOutputDir(Callback):
    """Hydra callback: fail with a clear message when the run or sweep directory is not writable."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_writable(config.hydra.sweep.dir, "hydra.sweep.dir")


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep when it ends; exit non-zero if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_summary(sweep_dir)
        log.info("sweep summary (%s):\n%s", sweep_dir / "summary.md", to_markdown(rows))
        bad = [r for r in rows if r["status"] != "ok"]
        if bad:
            sys.exit(f"{len(bad)} of {len(rows)} jobs did not finish; see {sweep_dir / 'summary.md'}")

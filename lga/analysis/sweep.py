"""The sweep summary (one row per job, CSV and Markdown, written when a multirun ends) and
the Hydra callbacks that write it and check the output directory first."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..utils import csv_text, markdown_table, write_atomic
from .results import columns, sweep_rows

log = logging.getLogger(__name__)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    return markdown_table(cols, ([r[c] for c in cols] for r in rows)) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = columns(rows)
    return csv_text(({c: r[c] for c in cols} for r in rows), cols)


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``; return the rows."""
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir)
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

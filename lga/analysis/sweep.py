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

from ..utils import csv_text, csv_value, markdown_table, write_atomic
from .results import DISPLAY_DIGITS, columns, job_dirs, sweep_rows
from .wandb_compare import log_summary_run

log = logging.getLogger(__name__)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The summary for people: metrics to 2 decimals, cost to its own (:data:`DISPLAY_DIGITS`)."""
    cols = columns(rows)

    def shown(column: str, value: Any) -> Any:
        digits = DISPLAY_DIGITS.get(column)
        return f"{value:.{digits}f}" if digits is not None and isinstance(value, float) else value

    return markdown_table(cols, ([shown(c, r[c]) for c in cols] for r in rows)) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The summary for programs: raw values (:func:`lga.utils.csv_value`)."""
    cols = columns(rows)
    return csv_text(({c: csv_value(r[c]) for c in cols} for r in rows), cols)


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``; return the rows."""
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir)
    write_atomic(sweep_dir / "summary.csv", to_csv(rows))
    write_atomic(sweep_dir / "summary.md", to_markdown(rows))
    return rows


def ensure_writable(
    directory: str | Path,
    option: str,
    what: str = "the output directory",
    alternative: str = "paths.log_dir (LGA_LOG_DIR)",
) -> None:
    """Create ``directory`` and check a file can be written in it, or exit with a message
    that names it and the option that sets it (before Hydra's own logging would fail on it)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise SystemExit(
            f"error: cannot write {what} {directory} ({err.strerror or err}); "
            f"set {option}=... or {alternative} to a writable place"
        ) from None


def preflight(config: DictConfig) -> None:
    """What would otherwise fail only after every job trained: a study directory that cannot be written,
    an objective the task's model does not log (or a test metric)."""
    if config.get("study_dir"):
        ensure_writable(config.study_dir, "study_dir", "the study directory", "LGA_STUDY_DIR")
    if config.get("objective"):
        from ..tuning import check_objective
        from ..utils import LGAError

        try:
            check_objective(config.objective, config.hydra.runtime.choices.get("model"))
        except LGAError as err:
            raise SystemExit(f"error: {err}") from None


class CheckOutputDir(Callback):
    """Hydra callback: before anything runs, fail with a clear message when the run, sweep or study
    directory is not writable or the objective is not a validation metric the model logs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_writable(config.hydra.run.dir, "hydra.run.dir")
        preflight(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_writable(config.hydra.sweep.dir, "hydra.sweep.dir")
        preflight(config)


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep when it ends (once the jobs other processes are running in
    its directory have ended); exit non-zero if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ..claims import wait_for_other_writers

        sweep_dir = Path(config.hydra.sweep.dir)
        wait_for_other_writers(job_dirs(sweep_dir))
        rows = write_summary(sweep_dir)
        log.info("sweep summary (%s):\n%s", sweep_dir / "summary.md", to_markdown(rows))
        log_summary_run(sweep_dir, config.logger)  # W&B only: the sweep's summary run in its group
        # a job that ran to its end but diverged or did not learn is a result (the reports count it as a
        # failure of its cell); the sweep fails only for jobs that did not run to their end
        unlearned = [r for r in rows if r["status"] in ("diverged", "not_learned")]
        if unlearned:
            log.warning(
                "%d of %d jobs diverged or did not learn; see %s", len(unlearned), len(rows), sweep_dir / "summary.md"
            )
        bad = [r for r in rows if r["status"] not in ("ok", "diverged", "not_learned")]
        if bad:
            sys.exit(f"{len(bad)} of {len(rows)} jobs did not finish; see {sweep_dir / 'summary.md'}")

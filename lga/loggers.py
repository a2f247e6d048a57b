"""Experiment loggers: W&B (never blocking: offline without a key or a network), TensorBoard, CSV, none;
``conf/logger/<name>.yaml`` names one of :data:`LOGGERS`.

W&B and TensorBoard are set up to compare runs: each run carries its sweep cell's axes as flat
keys (``axes/dataset``, ``axes/backbone``, ``axes/attention``, ``axes/variant``, and ``seed``),
so runs group by them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch import loggers as lightning_loggers
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import OmegaConf

from .analysis.identity import job_axes
from .analysis.results import TASK_METRICS
from .analysis.wandb_compare import WandbMode, resolve_wandb_mode
from .registry import Registry

log = logging.getLogger(__name__)


def axis_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The job's axes as flat config keys (``axes/attention``: ``lga``), for W&B's group-by and
    TensorBoard's HParams table; the backbone is its preset's name, as in the run's name."""
    hydra = HydraConfig.get()
    axes = job_axes(OmegaConf.create(config), hydra.runtime.choices, list(hydra.overrides.task))
    return {f"axes/{k}": axes[k] for k in ("dataset", "backbone", "attention", "variant", "task")}


def define_comparison_metrics(run: Any, task: str) -> None:
    """Validation metrics against ``epoch``, each with its best so far in the summary (max, min for the
    loss) beside its last value; ``val/*_best`` are best-so-far already and stay plain numbers; test
    metrics keep W&B's default (their one value). Exact names: W&B's glob definitions do not reliably
    set summaries."""
    run.define_metric("epoch")
    for metric in ("val/loss", *(key.replace("test/", "val/") for key in TASK_METRICS.get(task, {}).values())):
        best = "min" if metric.endswith("loss") else "max"
        summary = None if metric.endswith("_best") else f"{best},last"
        run.define_metric(metric, step_metric="epoch", summary=summary)


class TensorBoardLogger(lightning_loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger that keeps each metric's last value, so :func:`finish_loggers` can
    write the hyperparameters with the final metrics: TensorBoard's HParams view then compares the runs."""

    def __init__(self, *args: Any, comparison_params: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, default_hp_metric=False, **kwargs)
        self.comparison_params = comparison_params
        self.last_values: dict[str, tuple[int, float]] = {}

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        for key, value in metrics.items():
            if key.startswith(("val/", "test/")):
                self.last_values[key] = (step or 0, float(value))

    def log_final_hyperparams(self) -> None:
        """The axes and config with the last value of every validation and test metric."""
        if self.last_values:
            step = max(step for step, _ in self.last_values.values())
            metrics = {key: value for key, (_, value) in self.last_values.items()}
            self.log_hyperparams(self.comparison_params, metrics, step=step)


@dataclass
class RunLogging:
    """What every logger is told about its run: where it writes, its name and W&B group and id, its tags, and
    the resolved config (the code fills it in; ``conf/logger`` gives the rest)."""

    save_dir: Path
    run_name: str
    group: str
    tags: list[str]
    config: dict[str, Any]
    run_id: str


# each entry takes the run and the options of conf/logger/<name>.yaml, and returns the run's loggers
LOGGERS = Registry("logger", partial=True, filled=("run",))


@LOGGERS.register("none")
def no_loggers(run: RunLogging) -> list[Logger]:
    """No experiment logger (metrics still go to result.json and the sweep summary)."""
    return []


@LOGGERS.register("csv")
def csv_loggers(run: RunLogging) -> list[Logger]:
    """CSV files in ``<run dir>/csv``."""
    return [CSVLogger(save_dir=str(run.save_dir), name="csv", version="")]


@LOGGERS.register("tensorboard")
def tensorboard_loggers(run: RunLogging) -> list[Logger]:
    """TensorBoard event files in ``<run dir>/tensorboard``, the final metrics with the hyperparameters."""
    params = {**axis_keys(run.config), **run.config}
    return [TensorBoardLogger(save_dir=str(run.save_dir), name="tensorboard", version="", comparison_params=params)]


@LOGGERS.register("wandb")
def wandb_loggers(
    run: RunLogging,
    *,
    project: str = "lga",
    entity: Optional[str] = None,
    mode: WandbMode = WandbMode.auto,
    group: Optional[str] = None,
) -> list[Logger]:
    """Weights & Biases, never blocking: ``mode=auto`` is online with an API key and a reachable server,
    offline otherwise. ``group`` defaults to the sweep's (or single run's) directory name."""
    mode = resolve_wandb_mode(WandbMode(mode).value)
    if mode == "disabled":
        return []
    import wandb

    axes = axis_keys(run.config)
    logger = WandbLogger(
        project=project,
        entity=entity,
        name=run.run_name,
        group=group or run.group,
        tags=run.tags,
        save_dir=str(run.save_dir),
        id=run.run_id,
        resume="allow",  # a resumed run (same output directory) continues the same W&B run
        offline=mode == "offline",
        config={**run.config, **axes},
        job_type="train",
        settings=wandb.Settings(console="off", init_timeout=60, silent=True),
    )
    # Lightning passes wandb.init an `anonymous` argument that W&B warns is deprecated, on every run
    logger._wandb_init.pop("anonymous", None)
    define_comparison_metrics(logger.experiment, axes["axes/task"])
    return [logger]


def finish_loggers(loggers: list[Logger], *, failed: bool) -> None:
    """Close each W&B run so the next job of a sweep starts a new one; give TensorBoard the final metrics.

    A job that failed before W&B started still gets its run, marked failed, so the
    W&B workspace shows every job of the sweep. When the job is already failing (or
    being requeued: SLURM's SIGTERM also ends the W&B service process), an error
    while closing is logged, not raised, so it cannot hide the original exception.
    """
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_final_hyperparams()
        if isinstance(logger, WandbLogger):
            try:
                logger.experiment.finish(exit_code=1 if failed else 0)
            except Exception as err:
                if not failed:
                    raise
                log.warning("could not close the W&B run: %s: %s", type(err).__name__, err)

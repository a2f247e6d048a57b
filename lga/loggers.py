"""Experiment loggers: W&B (never blocking: offline without a key or a network), CSV, none."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from .config import LoggerBackend, LoggerConfig, WandbMode
from .utils import reachable

log = logging.getLogger(__name__)
WANDB_HOST = "api.wandb.ai"


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: WandbMode) -> str:
    """``auto`` -> ``online`` only with an API key and a reachable server, else ``offline``."""
    if mode is not WandbMode.auto:
        return mode.value
    if not _has_wandb_key():
        log.info("W&B: no API key (WANDB_API_KEY or ~/.netrc), logging offline; `wandb sync` uploads later")
        return "offline"
    if not reachable(WANDB_HOST):
        log.info("W&B: %s unreachable, logging offline; `wandb sync` uploads later", WANDB_HOST)
        return "offline"
    return "online"


def build_loggers(
    cfg: LoggerConfig,
    *,
    save_dir: Path,
    run_name: str,
    group: str,
    tags: list[str],
    config: dict[str, Any],
    run_id: str,
) -> list[Logger]:
    backend = LoggerBackend(cfg.backend)
    if backend is LoggerBackend.none:
        return []
    if backend is LoggerBackend.csv:
        return [CSVLogger(save_dir=str(save_dir), name="csv", version="")]
    mode = resolve_wandb_mode(WandbMode(cfg.mode))
    if mode == "disabled":
        return []
    import wandb

    return [
        WandbLogger(
            project=cfg.project,
            entity=cfg.entity,
            name=run_name,
            group=cfg.group or group,
            tags=tags,
            save_dir=str(save_dir),
            id=run_id,
            resume="allow",  # a resumed run (same output directory) continues the same W&B run
            offline=mode == "offline",
            config=config,
            job_type="train",
            settings=wandb.Settings(console="off", init_timeout=60, silent=True),
        )
    ]


def finish_loggers(loggers: list[Logger], *, failed: bool) -> None:
    """Close each W&B run so the next job of a sweep starts a new one.

    A job that failed before W&B started still gets its run, marked failed, so the
    W&B workspace shows every job of the sweep. When the job is already failing (or
    being requeued: SLURM's SIGTERM also ends the W&B service process), an error
    while closing is logged, not raised, so it cannot hide the original exception.
    """
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            try:
                logger.experiment.finish(exit_code=1 if failed else 0)
            except Exception as err:
                if not failed:
                    raise
                log.warning("could not close the W&B run: %s: %s", type(err).__name__, err)

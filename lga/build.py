"""From a composed config to the objects of a run: the datamodule, the model, callbacks,
loggers and the Lightning Trainer, each by ``hydra.utils.instantiate`` of its config group
(whose options are the registered constructors of :mod:`lga.registry`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from .analysis.identity import run_identity, run_name, without_introduced
from .loggers import RunLogging
from .models import TaskModule
from .runtime import choose_threads
from .utils import LGAError

log = logging.getLogger(__name__)


def _partial(node: DictConfig, group: str):
    """``instantiate(node, _partial_=True)``: nothing is constructed yet, so nothing can fail here
    but an unknown ``_target_``."""
    try:
        return instantiate(node, _partial_=True)
    except InstantiationException as err:
        raise LGAError(f"{group}: {err}") from None


def build_datamodule(cfg: DictConfig):
    """The dataset's LightningDataModule (cheap: most read their files in setup())."""
    try:
        return instantiate(cfg.dataset)
    except InstantiationException as err:  # Hydra wraps the constructor's own error
        if isinstance(err.__cause__, (LGAError, ValueError)):
            raise LGAError(f"dataset={cfg.dataset.name}: {err.__cause__}") from None
        raise


def build_model(cfg: DictConfig, datamodule) -> TaskModule:
    """attention factory -> backbone -> the task's LightningModule, each from its config group by
    ``hydra.utils.instantiate``; what only the data knows (classes, input shape, ...) comes from
    the datamodule (:meth:`lga.models.TaskModule.data_options`). Raises LGAError on bad options."""
    module_class = get_class(cfg.model._target_)
    data_task = getattr(datamodule, "task", "classification")
    if module_class.task != data_task:
        raise LGAError(
            f"dataset={cfg.dataset.name} is a {data_task} dataset, but the model is for {module_class.task}: "
            f"add task={data_task}, or pick a {module_class.task} dataset"
        )
    attention = instantiate(cfg.attention)  # a partial: the backbone adds each slot's channels
    backbone, module = _partial(cfg.backbone, "backbone"), _partial(cfg.model, "model")
    try:  # constructor checks: heads not dividing channels, even kernels, FPN widths, ...
        return module(
            backbone(in_chans=datamodule.in_chans, attention=attention),
            optimizer=instantiate(cfg.optimizer),
            scheduler=instantiate(cfg.scheduler),
            **module_class.data_options(datamodule),
        )
    except ValueError as err:
        raise LGAError(
            f"cannot build {module_class.__name__} on {backbone.func.__name__} "
            f"with attention={cfg.attention.name}: {err}"
        ) from None


def configured_callbacks(cfg: DictConfig, *, with_loggers: bool) -> list[Callback]:
    """The callbacks of ``conf/callbacks`` (an entry set to null is off). A learning-rate
    monitor needs a logger, so ``logger=none`` drops it."""
    callbacks = []
    for name, node in cfg.callbacks.items():
        if node is None:
            continue
        try:
            callback = instantiate(node)
        except InstantiationException as err:
            raise LGAError(f"callbacks.{name}: {err}") from None
        if isinstance(callback, LearningRateMonitor) and not with_loggers:
            continue
        callbacks.append(callback)
    return callbacks


def set_threads(cfg: DictConfig) -> None:
    """Intra-op threads from what this job was given (see :func:`lga.runtime.choose_threads`)."""
    launcher = OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)
    threads, why = choose_threads(cfg.runtime.threads, launcher)
    torch.set_num_threads(threads)
    policy = {key: os.environ[key] for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if key in os.environ}
    log.info("%d intra-op threads (%s); %s", threads, why, " ".join(f"{k}={v}" for k, v in policy.items()))


def sweep_identity(cfg: DictConfig) -> tuple[str, str]:
    """(W&B group, run id): the sweep directory's name groups every job of a multirun; a job's run id
    is its group plus a digest of its run identity, so the same job resumed (or rerun in the same sweep
    directory) continues its W&B run, and two jobs of one directory never share one."""
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        group = Path(hc.sweep.dir).name
        identity = without_introduced(run_identity(cfg))  # a job resumed across a new option keeps its run
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
        return group, f"{group}-{digest[:12]}"
    group = Path(hc.run.dir).name
    return group, group


def loggers(cfg: DictConfig, axes: dict[str, Any]) -> list[Logger]:
    """The loggers of ``conf/logger`` (a partial of one of :data:`lga.loggers.LOGGERS`), told about this run."""
    group, run_id = sweep_identity(cfg)
    run = RunLogging(
        save_dir=Path(cfg.paths.output_dir),
        run_name=run_name(axes),
        group=group,
        tags=[axes["dataset"], axes["backbone"], axes["attention"], f"seed{axes['seed']}", *cfg.tags],
        config=OmegaConf.to_container(cfg, resolve=True),
        run_id=re.sub(r"[^A-Za-z0-9_-]", "-", run_id),
    )
    return _partial(cfg.logger, "logger")(run)


def _progress_bar(cfg: DictConfig) -> bool:
    """``trainer.enable_progress_bar``; ``null``: only when the console is a terminal (a redirected
    bar writes lines of thousands of characters; the per-epoch log line replaces it)."""
    setting = cfg.trainer.enable_progress_bar
    return sys.stdout.isatty() if setting is None else bool(setting)


def build_trainer(cfg: DictConfig, loggers: list[Logger], callbacks: list[Callback]) -> L.Trainer:
    """The Trainer of ``conf/trainer`` (a partial), with the run's loggers, callbacks and directory."""
    # under SLURM, submitit requeues (timeouts, preemption); Lightning's own requeue
    # would answer the same signal a second time
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    return _partial(cfg.trainer, "trainer")(
        enable_progress_bar=_progress_bar(cfg),
        plugins=plugins,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=cfg.paths.output_dir,
    )

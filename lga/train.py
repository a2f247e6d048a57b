"""Build a run from its config, train, test, and record the result for the sweep summary."""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from .backbones import create_backbone
from .loggers import build_loggers, finish_loggers
from .models import ClassificationModule, DetectionModule, TaskModule
from .utils import LGAError, write_json

log = logging.getLogger(__name__)
RESULT_FILE = "result.json"


class EpochSeed(Callback):
    """Reseed at every epoch start from (seed, optimizer steps so far): the global RNGs
    (dropout) and the training sampler's order (if it has ``reseed``).

    Randomness then does not depend on what ran before, so a run resumed from a
    checkpoint ends exactly where an uninterrupted one does. ``global_step`` is what
    checkpoints restore exactly; Lightning's epoch counters can be one behind after a
    restore from an end-of-epoch checkpoint.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_seed = self.seed * 100_003 + trainer.global_step + 1
        seed_everything(epoch_seed, workers=True, verbose=False)
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        if hasattr(sampler, "reseed"):
            sampler.reseed(epoch_seed)


def describe(cfg: DictConfig) -> dict[str, Any]:
    """The axes a sweep varies, as they appear in names, tags and the summary."""
    return {
        "dataset": cfg.dataset.name,
        "backbone": cfg.backbone.name,
        "attention": cfg.attention.name,
        "seed": int(cfg.seed),
    }


def job_record(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """What ``result.json`` says of any job, finished or not: its axes, task and overrides."""
    return {**describe(cfg), "task": cfg.model.name, "overrides": overrides}


def build_model(cfg: DictConfig, datamodule) -> TaskModule:
    """Backbone with the configured attention + the task's model; raises LGAError on bad options."""
    task, data_task = cfg.model.name, getattr(datamodule, "task", "classification")
    if task != data_task:
        raise LGAError(
            f"dataset={cfg.dataset.name} is a {data_task} dataset, but the model is for {task}: "
            f"add task={data_task}, or pick a {task} dataset"
        )
    backbone_opts = {k: v for k, v in OmegaConf.to_container(cfg.backbone, resolve=True).items() if k != "name"}
    attention_opts = {k: v for k, v in OmegaConf.to_container(cfg.attention, resolve=True).items() if k != "name"}
    model_opts = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "name"}
    common = {
        "optimizer": instantiate(cfg.optimizer),
        "scheduler": instantiate(cfg.scheduler),
        "input_shape": (datamodule.in_chans, datamodule.image_size, datamodule.image_size),
    }
    if task == "detection":
        common.update(class_names=datamodule.class_names, image_mean=datamodule.mean, image_std=datamodule.std)
    try:  # constructor checks: heads not dividing channels, even kernels, FPN widths, ...
        backbone = create_backbone(
            cfg.backbone.name,
            in_chans=datamodule.in_chans,
            attention=cfg.attention.name,
            attention_options=attention_opts,
            **backbone_opts,
        )
        module = DetectionModule if task == "detection" else ClassificationModule
        return module(backbone, datamodule.num_classes, **common, **model_opts)
    except ValueError as err:
        raise LGAError(
            f"cannot build model={task} backbone={cfg.backbone.name} attention={cfg.attention.name}: {err}"
        ) from None


def _sweep_identity() -> tuple[str, str]:
    """(W&B group, run id): the sweep directory's name groups every job of a multirun."""
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        group = Path(hc.sweep.dir).name
        return group, f"{group}-{hc.job.num}"
    group = Path(hc.run.dir).name
    return group, group


def _build_datamodule(cfg: DictConfig):
    """The dataset's LightningDataModule (cheap: most read their files in setup())."""
    try:
        return instantiate(cfg.dataset)
    except InstantiationException as err:  # Hydra wraps the constructor's own error
        if isinstance(err.__cause__, (LGAError, ValueError)):
            raise LGAError(f"dataset={cfg.dataset.name}: {err.__cause__}") from None
        raise


def _check_resumable(checkpoint: Path, model: TaskModule) -> None:
    """The checkpoint holds this model's weights (same names and shapes), or a clear error."""
    saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)["state_dict"]
    expected = model.state_dict()
    if {k: tuple(v.shape) for k, v in saved.items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise LGAError(
            f"{checkpoint} holds a different model than this config builds, so this run cannot resume "
            f"from it; give the run a new directory (hydra.run.dir=... or hydra.sweep.dir=...) or delete {checkpoint.parent}"
        )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train and test one configuration; returns its metrics and cost."""
    if os.environ.get("SLURM_CPUS_PER_TASK"):
        # torch would start a thread per core of the node, not per CPU the job was given;
        # jobs sharing a node then fight over cores
        torch.set_num_threads(int(os.environ["SLURM_CPUS_PER_TASK"]))
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    axes = describe(cfg)
    datamodule = _build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    # resume: a run restarted in the same directory (same hydra.run.dir / sweep.dir, or a
    # SLURM requeue of the same job) continues from its last checkpoint
    last = output_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if last.is_file() else None
    if resume_from:
        _check_resumable(last, model)
        log.info("resuming from %s", resume_from)

    group, run_id = _sweep_identity()
    run_name = "-".join(f"{v}" for k, v in axes.items() if k != "seed") + f"-s{axes['seed']}"
    loggers = build_loggers(
        cfg.logger,
        save_dir=output_dir,
        run_name=run_name,
        group=group,
        tags=[axes["dataset"], axes["backbone"], axes["attention"], f"seed{axes['seed']}", *cfg.tags],
        config=OmegaConf.to_container(cfg, resolve=True),
        run_id=re.sub(r"[^A-Za-z0-9_-]", "-", run_id),
    )
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", monitor=model.monitor, mode="max", filename="best")
    # save_last would refresh last.ckpt only when best.ckpt changes; resuming needs every epoch
    last_checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", enable_version_counter=False)
    callbacks = [checkpoint, last_checkpoint, EpochSeed(cfg.seed)] + ([LearningRateMonitor(logging_interval="epoch")] if loggers else [])
    # under SLURM, submitit requeues (timeouts, preemption); Lightning's own requeue
    # would answer the same signal a second time
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        plugins=plugins,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(output_dir),
    )
    failed = True
    try:
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        train_time = time.perf_counter() - start
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.test:
            ckpt = "best" if checkpoint.best_model_path else None
            for result in trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
                metrics.update({k: float(v) for k, v in result.items()})
        failed = False
    finally:
        finish_loggers(loggers, failed=failed)
    return {
        **axes,
        "metrics": metrics,
        "params": model.cost["params"],
        "flops": model.cost["flops"],
        "train_time_s": round(train_time, 2),
        "resumed_from": resume_from,
        "monitor": model.monitor,
    }


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task: train, and write ``result.json`` (ok or failed) in the run directory.

    In a multirun a failed job is recorded and the sweep goes on (the summary lists it
    and the sweep exits non-zero). In a single run an input error ends the program with
    its message alone; any other exception propagates with its traceback.
    """
    output_dir = Path(cfg.paths.output_dir)
    record = job_record(cfg, list(HydraConfig.get().overrides.task))
    # under DDP every process runs this; only the first writes the record
    write_record = rank_zero_only(lambda data: write_json(output_dir / RESULT_FILE, data))
    try:
        result = train(cfg)
    except Exception as err:
        message = str(err) if isinstance(err, LGAError) else f"{type(err).__name__}: {err}"
        write_record({**record, "status": "failed", "error": message})
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error("job failed: %s%s", message, "" if isinstance(err, LGAError) else "\n" + traceback.format_exc())
            return None
        if isinstance(err, LGAError):
            raise SystemExit(f"error: {message}") from None
        raise
    write_record({**record, **result, "status": "ok"})
    headline = result["monitor"].replace("val/", "test/")
    value = result["metrics"].get(headline)
    log.info("%s: %s %s", record, headline, "n/a" if value is None else f"{100 * value:.2f}%")
    return result

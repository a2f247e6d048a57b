"""Build a run from its config, train, test, and record the result for the sweep summary."""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from .backbones import create_backbone
from .callbacks import Diverged, DivergenceGuard, EpochLine, EpochSeed, RunClock, RunIdentity, StopOnSignal
from .config import check_ranges
from .loggers import build_loggers, finish_loggers
from .models import ClassificationModule, DetectionModule, TaskModule
from .results import job_axes, run_name, write_result
from .runtime import Interrupted, StopSignals, choose_threads
from .utils import LGAError

log = logging.getLogger(__name__)


def _job_axes(cfg: DictConfig) -> dict[str, Any]:
    hydra = HydraConfig.get()
    return job_axes(cfg, hydra.runtime.choices, list(hydra.overrides.task))


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


# trainer options that change how a run is shown or where it runs, not what it computes
_PRESENTATION = (
    "accelerator",
    "devices",
    "strategy",
    "num_nodes",
    "enable_progress_bar",
    "enable_model_summary",
    "log_every_n_steps",
)


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run: the resolved config of everything
    that shapes training (seed, data, model, optimisation, schedule, trainer limits)."""
    identity = OmegaConf.to_container(cfg, resolve=True)
    keep = ("seed", "dataset", "backbone", "attention", "model", "optimizer", "scheduler", "trainer")
    identity = {k: identity[k] for k in keep}
    identity["trainer"] = {k: v for k, v in identity["trainer"].items() if k not in _PRESENTATION}
    return identity


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            d
            for k in sorted(set(saved) | set(current), key=str)
            for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")
        ]
    return [] if saved == current else [f"{prefix[:-1]}: {saved!r} in the checkpoint, {current!r} now"]


def _check_resumable(checkpoint: Path, model: TaskModule, identity: dict[str, Any]) -> None:
    """The checkpoint was written by this configuration (and holds this model's weights), or a clear error."""
    saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)
    fresh = (
        "give the run a new directory (hydra.run.dir=... or hydra.sweep.dir=...) "
        f"or delete {checkpoint.parent} to start fresh"
    )
    differences = _differences(saved.get(RunIdentity.KEY), identity) if RunIdentity.KEY in saved else []
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise LGAError(
            f"{checkpoint} was written by another configuration ({shown}), so this run cannot resume from it; {fresh}"
        )
    expected = model.state_dict()
    if {k: tuple(v.shape) for k, v in saved["state_dict"].items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise LGAError(
            f"{checkpoint} holds a different model than this config builds, so this run cannot resume from it; {fresh}"
        )


def _set_threads(cfg: DictConfig) -> None:
    """Intra-op threads from what this job was given (see :func:`lga.runtime.choose_threads`)."""
    launcher = OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)
    threads, why = choose_threads(cfg.runtime.threads, launcher)
    torch.set_num_threads(threads)
    log.info("%d intra-op threads (%s); OMP_WAIT_POLICY=%s", threads, why, os.environ.get("OMP_WAIT_POLICY"))


def _progress_bar(cfg: DictConfig) -> bool:
    """``trainer.enable_progress_bar``; ``null``: only when the console is a terminal (a redirected
    bar writes lines of thousands of characters; the per-epoch log line replaces it)."""
    setting = cfg.trainer.enable_progress_bar
    return sys.stdout.isatty() if setting is None else bool(setting)


def _test_set(datamodule) -> int | None:
    data = getattr(datamodule, "data", None) or {}
    return len(data["test"]) if "test" in data else None


def train(cfg: DictConfig, signals: StopSignals) -> dict[str, Any]:
    """Train and test one configuration; returns its metrics and cost.

    Raises :class:`lga.runtime.Interrupted` on SIGTERM/SIGINT (at a batch boundary),
    :class:`lga.callbacks.Diverged` on a non-finite loss, :class:`LGAError` on bad input.
    """
    _set_threads(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    axes = _job_axes(cfg)
    datamodule = _build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    if cfg.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    identity = run_identity(cfg)
    # resume: a run restarted in the same directory (same hydra.run.dir / sweep.dir, or a
    # SLURM requeue of the same job) continues from its last checkpoint
    last = output_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if last.is_file() else None
    if resume_from:
        _check_resumable(last, model, identity)
        log.info("resuming from %s", resume_from)

    group, run_id = _sweep_identity()
    loggers = build_loggers(
        cfg.logger,
        save_dir=output_dir,
        run_name=run_name(axes),
        group=group,
        tags=[axes["dataset"], axes["backbone"], axes["attention"], f"seed{axes['seed']}", *cfg.tags],
        config=OmegaConf.to_container(cfg, resolve=True),
        run_id=re.sub(r"[^A-Za-z0-9_-]", "-", run_id),
    )
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", monitor=model.monitor, mode="max", filename="best")
    # save_last would refresh last.ckpt only when best.ckpt changes; resuming needs every epoch
    last_checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", enable_version_counter=False)
    clock = RunClock()
    callbacks = [
        checkpoint, last_checkpoint, EpochSeed(cfg.seed), StopOnSignal(signals), DivergenceGuard(),
        clock, EpochLine(clock),
        RunIdentity(identity), *([LearningRateMonitor(logging_interval="epoch")] if loggers else []),
    ]  # fmt: skip
    # under SLURM, submitit requeues (timeouts, preemption); Lightning's own requeue
    # would answer the same signal a second time
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    trainer_options = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_options["enable_progress_bar"] = _progress_bar(cfg)
    trainer = L.Trainer(
        **trainer_options,
        plugins=plugins,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(output_dir),
    )
    failed = True
    try:
        with signals.deferred():
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        train_time_s = clock.train_time_s  # now: testing from a checkpoint restores the clock's saved state
        if trainer.global_step == 0:
            raise LGAError(
                f"trained 0 steps: the training loader gave no batch ({len(datamodule.train_dataloader().dataset)} "
                f"training images, batch size {datamodule.batch_size}, incomplete batches dropped); "
                "lower dataset.batch_size or use more training data"
            )
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.test:
            ckpt = "best" if checkpoint.best_model_path else None
            with signals.deferred():
                results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
            for result in results:
                metrics.update({k: float(v) for k, v in result.items()})
        failed = False
    finally:
        finish_loggers(loggers, failed=failed)
    return {
        "metrics": metrics,
        "test_images_total": _test_set(datamodule) if cfg.test else None,
        "params": model.cost["params"],
        "flops": model.cost["flops"],
        "train_time_s": round(train_time_s, 2),
        "throughput": clock.summary(),
        "threads": torch.get_num_threads(),
        "resumed_from": resume_from,
        "monitor": model.monitor,
    }


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task: train, and write ``result.json`` in the run directory with its status:
    ``ok``, ``failed`` (bad input, or an error), ``diverged`` (non-finite loss) or
    ``interrupted`` (SIGTERM/SIGINT; ``last.ckpt`` stays, and the same command resumes).

    In a multirun a failed or diverged job is recorded and the sweep goes on (the summary
    lists it and the sweep exits non-zero); an interrupted job stops the sweep, which
    writes its summary and exits 128 + the signal's number. In a single run an input error
    or a divergence ends the program with its message alone; any other exception
    propagates with its traceback.
    """
    output_dir = Path(cfg.paths.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    record = {**_job_axes(cfg), "overrides": list(HydraConfig.get().overrides.task)}
    # under DDP every process runs this; only the first writes the record
    write_record = rank_zero_only(lambda data: write_result(output_dir, data))
    signals = StopSignals().install()
    try:
        check_ranges(cfg)
        result = train(cfg, signals)
    except Interrupted as stop:
        last = output_dir / "checkpoints" / "last.ckpt"
        where = f"hydra.sweep.dir={HydraConfig.get().sweep.dir}" if multirun else f"hydra.run.dir={output_dir}"
        resume = f"re-run the same command with {where} to resume" + (
            f" from {last}" if last.is_file() else " (no checkpoint yet: the job starts again)"
        )
        write_record({**record, "status": "interrupted", "error": f"{stop}; {resume}"})
        log.error("job %s: %s", stop, resume)
        if multirun:
            from .sweep import write_summary

            write_summary(Path(HydraConfig.get().sweep.dir))
        raise SystemExit(stop.exit_code) from None
    except Exception as err:
        expected = isinstance(err, (LGAError, Diverged))
        message = str(err) if expected else f"{type(err).__name__}: {err}"
        write_record({**record, "status": "diverged" if isinstance(err, Diverged) else "failed", "error": message})
        if multirun:
            log.error("job failed: %s%s", message, "" if expected else "\n" + traceback.format_exc())
            return None
        if expected:
            raise SystemExit(f"error: {message}") from None
        raise
    finally:
        signals.uninstall()
    write_record({**record, **result, "status": "ok"})
    headline = result["monitor"].replace("val/", "test/")
    value = result["metrics"].get(headline)
    log.info("%s: %s %s", record, headline, "n/a" if value is None else f"{100 * value:.2f}%")
    return result

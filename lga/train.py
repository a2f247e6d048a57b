"""Build a run from its config, train, test, and record the result for the sweep summary."""

from __future__ import annotations

import json
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
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from .analysis.results import RUN_ONLY, job_axes, run_name, study_record, write_result
from .callbacks import Diverged, DivergenceGuard, EpochSeed, LGAWeights, RunClock, RunIdentity, StopOnSignal
from .config import check_ranges
from .loggers import build_loggers, finish_loggers
from .models import TaskModule
from .runtime import Interrupted, StopSignals, choose_threads, to_channels_last
from .utils import LGAError

log = logging.getLogger(__name__)


def _job_axes(cfg: DictConfig) -> dict[str, Any]:
    hydra = HydraConfig.get()
    return job_axes(cfg, hydra.runtime.choices, list(hydra.overrides.task))


def _partial(node: DictConfig, group: str):
    """``instantiate(node, _partial_=True)``: nothing is constructed yet, so nothing can fail here
    but an unknown ``_target_``."""
    try:
        return instantiate(node, _partial_=True)
    except InstantiationException as err:
        raise LGAError(f"{group}: {err}") from None


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
_PRESENTATION = tuple(k.split(".", 1)[1] for k in RUN_ONLY if k.startswith("trainer."))
# dataset options that say where the files are, which differs between machines, not which data
_DATA_LOCATION = ("search_dirs", "download", "download_root", "download_url", "hint")


def _without_location(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_location(v) for k, v in node.items() if k not in _DATA_LOCATION}
    return node


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run: the resolved config of everything
    that shapes training (seed, data, model, optimisation, schedule, trainer limits)."""
    identity = OmegaConf.to_container(cfg, resolve=True)
    keep = ("seed", "dataset", "backbone", "attention", "model", "optimizer", "scheduler", "trainer")
    identity = {k: identity[k] for k in keep}
    identity["dataset"] = _without_location(identity["dataset"])
    identity["trainer"] = {k: v for k, v in identity["trainer"].items() if k not in _PRESENTATION}
    return identity


def _differences(saved: Any, current: Any, source: str, prefix: str = "") -> list[str]:
    """``key: <saved> in the <source>, <current> now`` for every leaf where the two configs differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            d
            for k in sorted(set(saved) | set(current), key=str)
            for d in _differences(saved.get(k), current.get(k), source, f"{prefix}{k}.")
        ]
    return [] if saved == current else [f"{prefix[:-1]}: {saved!r} in the {source}, {current!r} now"]


def _shown(differences: list[str]) -> str:
    return "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")


def _check_resumable(checkpoint: Path, model: TaskModule, identity: dict[str, Any]) -> None:
    """The checkpoint was written by this configuration (and holds this model's weights), or a clear error."""
    saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=False)
    fresh = (
        "give the run a new directory (hydra.run.dir=... or hydra.sweep.dir=...) "
        f"or delete {checkpoint.parent} to start fresh"
    )
    differences = _differences(saved.get(RunIdentity.KEY), identity, "checkpoint") if RunIdentity.KEY in saved else []
    if differences:
        raise LGAError(
            f"{checkpoint} was written by another configuration ({_shown(differences)}), "
            f"so this run cannot resume from it; {fresh}"
        )
    expected = model.state_dict()
    if {k: tuple(v.shape) for k, v in saved["state_dict"].items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise LGAError(
            f"{checkpoint} holds a different model than this config builds, so this run cannot resume from it; {fresh}"
        )


def _configured_callbacks(cfg: DictConfig, *, with_loggers: bool) -> list[Callback]:
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


def _resume_point(cfg: DictConfig, model: TaskModule, identity: dict[str, Any]) -> str | None:
    """``last.ckpt`` of this run directory, if there is one this configuration wrote: a run restarted
    in the same directory (same hydra.run.dir / sweep.dir, or a SLURM requeue) continues from it."""
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    _check_resumable(last, model, identity)
    log.info("resuming from %s", last)
    return str(last)


def _loggers(cfg: DictConfig, axes: dict[str, Any]) -> list:
    group, run_id = _sweep_identity()
    return build_loggers(
        cfg.logger,
        save_dir=Path(cfg.paths.output_dir),
        run_name=run_name(axes),
        group=group,
        tags=[axes["dataset"], axes["backbone"], axes["attention"], f"seed{axes['seed']}", *cfg.tags],
        config=OmegaConf.to_container(cfg, resolve=True),
        run_id=re.sub(r"[^A-Za-z0-9_-]", "-", run_id),
    )


def _trainer(cfg: DictConfig, loggers: list, callbacks: list[Callback]) -> L.Trainer:
    # under SLURM, submitit requeues (timeouts, preemption); Lightning's own requeue
    # would answer the same signal a second time
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    options["enable_progress_bar"] = _progress_bar(cfg)
    return L.Trainer(
        **options, plugins=plugins, logger=loggers or False, callbacks=callbacks, default_root_dir=cfg.paths.output_dir
    )


def _check_trained(trainer: L.Trainer, datamodule) -> None:
    if trainer.global_step == 0:
        raise LGAError(
            f"trained 0 steps: the training loader gave no batch ({len(datamodule.train_dataloader().dataset)} "
            f"training images, batch size {datamodule.batch_size}, incomplete batches dropped); "
            "lower dataset.batch_size or use more training data"
        )


def train(cfg: DictConfig, signals: StopSignals) -> dict[str, Any]:
    """Train and test one configuration; returns its metrics, cost, throughput and learned LGA weights.

    Raises :class:`lga.runtime.Interrupted` on SIGTERM/SIGINT (at a batch boundary),
    :class:`lga.callbacks.Diverged` on a non-finite loss, :class:`LGAError` on bad input.
    """
    _set_threads(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = _build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    if cfg.runtime.channels_last:
        to_channels_last(model)
    identity = run_identity(cfg)
    resume_from = _resume_point(cfg, model, identity)
    loggers = _loggers(cfg, _job_axes(cfg))

    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    best = ModelCheckpoint(dirpath=checkpoints, monitor=model.monitor, mode="max", filename="best")
    # save_last would refresh last.ckpt only when best.ckpt changes; resuming needs every epoch
    last = ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    clock = RunClock()
    # what resuming and the results rely on is always on; conf/callbacks adds the rest
    callbacks = [
        best, last, EpochSeed(cfg.seed), StopOnSignal(signals), DivergenceGuard(), clock, RunIdentity(identity),
        *_configured_callbacks(cfg, with_loggers=bool(loggers)),
    ]  # fmt: skip
    trainer = _trainer(cfg, loggers, callbacks)
    failed = True
    try:
        with signals.deferred():
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        _check_trained(trainer, datamodule)
        # read now: testing from a checkpoint restores the callbacks' saved states
        train_time_s = clock.train_time_s
        lga_weights = next((list(c.history) for c in callbacks if isinstance(c, LGAWeights)), None)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.test:
            tested = "best" if best.best_model_path else None
            with signals.deferred():
                results = trainer.test(model, datamodule=datamodule, ckpt_path=tested, verbose=False)
            metrics.update({k: float(v) for result in results for k, v in result.items()})
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
        "lga_weights": lga_weights or None,
        "threads": torch.get_num_threads(),
        "resumed_from": resume_from,
        "monitor": model.monitor,
    }


def check_objective(objective: str | None) -> None:
    if objective is not None and objective != "val_best" and not objective.startswith("val/"):
        raise LGAError(
            f"objective={objective!r}: a search selects on validation only (val_best, or a val/... metric such as "
            "val/top1_best); selecting on a test metric would make the test set part of training"
        )


def objective_value(objective: str, result: dict[str, Any] | None) -> float | None:
    """The number a sweeper maximises, from a finished job's result (None for a job that did not finish)."""
    if result is None:
        return None
    key = f"{result['monitor']}_best" if objective == "val_best" else objective
    if key not in result["metrics"]:
        raise LGAError(
            f"objective={objective!r}: this job logged no {key}; it has {', '.join(sorted(result['metrics']))}"
        )
    return result["metrics"][key]


def apply_tuned(cfg: DictConfig) -> dict[str, Any] | None:
    """Set the best hyperparameters of the search in ``cfg.tuned`` (its ``optimization_results.yaml``)."""
    if cfg.tuned is None:
        return None
    results = Path(cfg.tuned) / "optimization_results.yaml"
    if not results.is_file():
        raise LGAError(
            f"tuned={cfg.tuned}: no optimization_results.yaml there; run the search first "
            "(python run.py -m hparams_search=optuna ... hydra.sweep.dir=<that directory>)"
        )
    best = OmegaConf.to_container(OmegaConf.load(results).best_params)
    for key, value in best.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return {"from": str(results), "params": best}


# outcomes a study keeps: the job ran to its end (a divergence is a result too)
_RECORDED = ("ok", "diverged")


def _recorded_result(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The study's record of this job, if it has one the configuration ``identity`` (:func:`run_identity`)
    wrote; a record of another configuration is an error that names the differences."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("status") not in _RECORDED:
        return None
    differences = _differences(saved.get("config"), identity, "record")
    if differences:
        raise LGAError(
            f"the study record {path} was written by another configuration ({_shown(differences)}); "
            f"delete it to train this job again, or give the study another study_dir"
        )
    return saved


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
    study_path = study_record(cfg.study_dir, record) if cfg.study_dir else None

    @rank_zero_only  # under DDP every process runs this; only the first writes the record
    def write_record(data: dict[str, Any]) -> None:
        write_result(output_dir, data)
        if study_path is not None and data["status"] in _RECORDED:
            write_result(study_path.parent, data)

    signals = StopSignals().install()
    try:
        tuned = apply_tuned(cfg)
        if tuned is not None:
            record["tuned"] = tuned
        check_ranges(cfg)
        check_objective(cfg.objective)
        record["config"] = run_identity(cfg)  # what a study record must match to stand for this job
        recorded = _recorded_result(study_path, record["config"]) if study_path is not None else None
        if recorded is not None:
            write_result(output_dir, recorded)
            log.info("job %s: already in the study (%s), not trained again", run_name(record), study_path)
            return recorded
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


def task(cfg: DictConfig) -> dict[str, Any] | float | None:
    """What ``run.py`` returns to Hydra: the job's result, or with ``objective`` set, the one
    number a sweeper such as Optuna maximises (None when the job did not finish: a failed trial)."""
    result = run(cfg)
    return objective_value(cfg.objective, result) if cfg.objective else result

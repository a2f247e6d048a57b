"""Train one configuration and record what happened to it.

:func:`train` builds the run (:mod:`lga.build`), resumes it where its directory says
(:mod:`lga.resume`), trains, tests and returns the record's measurements. :func:`run` is the
status policy around it: every job ends with a ``result.json`` (:mod:`lga.analysis.record`),
whatever happened, and a study skips a job it already recorded. :func:`task` is what
``run.py`` hands Hydra.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from .analysis.identity import job_axes, recordable_overrides, run_identity, run_name, study_record
from .analysis.record import RESULT_FILE, RunRecord, not_learned_reason, read_record, write_record
from .build import build_datamodule, build_model, build_trainer, configured_callbacks, loggers, set_threads
from .callbacks import (
    Diverged,
    DivergenceGuard,
    EpochHistory,
    EpochSeed,
    LGAWeights,
    RunClock,
    RunIdentity,
    StopOnSignal,
)
from .claims import claim_job
from .config import check_ranges
from .console import header, quiet_libraries, result_block
from .loggers import finish_loggers
from .resume import identity_differences, resume_point, shown
from .runtime import Interrupted, StopSignals, to_channels_last
from .tuning import apply_tuned, check_objective, objective_value
from .utils import LGAError, write_json

log = logging.getLogger(__name__)


def _job_axes(cfg: DictConfig) -> dict[str, Any]:
    hydra = HydraConfig.get()
    return job_axes(cfg, hydra.runtime.choices, list(hydra.overrides.task))


def _test_set(datamodule) -> int | None:
    data = getattr(datamodule, "data", None) or {}
    return len(data["test"]) if "test" in data else None


def _check_trained(trainer: L.Trainer, datamodule) -> None:
    if trainer.global_step == 0:
        raise LGAError(
            f"trained 0 steps: the training loader gave no batch ({len(datamodule.train_dataloader().dataset)} "
            f"training images, batch size {datamodule.batch_size}, incomplete batches dropped); "
            "lower dataset.batch_size or use more training data"
        )


def train(cfg: DictConfig, signals: StopSignals, axes: dict[str, Any]) -> dict[str, Any]:
    """Train and test one configuration; returns the record's measurements (metrics, history, cost,
    throughput, learned LGA weights).

    Raises :class:`lga.runtime.Interrupted` on SIGTERM/SIGINT (at a batch boundary),
    :class:`lga.callbacks.Diverged` on a non-finite loss, :class:`LGAError` on bad input.
    """
    set_threads(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    if cfg.runtime.channels_last:
        to_channels_last(model)
    identity = run_identity(cfg)
    output_dir = Path(cfg.paths.output_dir)
    resume_from = resume_point(output_dir, model, identity)
    if cfg.runtime.compile:  # in place: the checkpoint's keys stay those of the eager model
        model.compile()
    run_loggers = loggers(cfg, axes)
    header(axes, model.cost, torch.get_num_threads(), output_dir, run_loggers)

    checkpoints = output_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=checkpoints, monitor=model.monitor, mode="max", filename="best")
    # save_last would refresh last.ckpt only when best.ckpt changes; resuming needs every epoch
    last = ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False)
    clock, history = RunClock(), EpochHistory()
    # what resuming and the record rely on is always on; conf/callbacks adds the rest
    callbacks = [
        best, last, EpochSeed(cfg.seed), StopOnSignal(signals), DivergenceGuard(), clock, history,
        RunIdentity(identity), *configured_callbacks(cfg, with_loggers=bool(run_loggers)),
    ]  # fmt: skip
    trainer = build_trainer(cfg, run_loggers, callbacks)
    failed = True
    try:
        with signals.deferred():
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        _check_trained(trainer, datamodule)
        # read now: testing from a checkpoint restores the callbacks' saved states
        train_time_s, rows = clock.train_time_s, list(history.rows)
        lga_weights = next((list(c.history) for c in callbacks if isinstance(c, LGAWeights)), None)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.test:
            tested = "best" if best.best_model_path else None
            with signals.deferred():
                results = trainer.test(model, datamodule=datamodule, ckpt_path=tested, verbose=False)
            metrics.update({k: float(v) for result in results for k, v in result.items()})
        failed = False
    finally:
        finish_loggers(run_loggers, failed=failed)
    return {
        "metrics": metrics,
        "history": rows,
        "test_images_total": _test_set(datamodule) if cfg.test else None,
        "params": model.cost["params"],
        "flops": model.cost["flops"],
        "train_time_s": train_time_s,
        "train_steps": trainer.global_step,
        "throughput": clock.summary(),
        "lga_weights": lga_weights or None,
        "threads": torch.get_num_threads(),
        "device": _device_name(trainer.strategy.root_device),
        "resumed_from": str(Path(resume_from).relative_to(output_dir)) if resume_from else None,
        "monitor": model.monitor,
    }


def _device_name(device: torch.device) -> str:
    """``cpu``, or the accelerator's type and name (``cuda: NVIDIA H200``): compute is counted per device."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return device.type


def _recorded_result(path: Path, identity: dict[str, Any]) -> RunRecord | None:
    """The study's record of this job, if it has one the configuration ``identity`` wrote; a record
    of another configuration is an error that names the differences."""
    if not path.is_file():
        return None
    saved = read_record(path)
    if not saved.finished:
        return None
    found = identity_differences(saved.config, identity, "record")
    if found:
        raise LGAError(
            f"the study record {path} was written by another configuration ({shown(found)}); "
            f"delete it to train this job again, or give the study another study_dir"
        )
    return saved


def _keep_finished(output_dir: Path, record: RunRecord) -> bool:
    """A rerun that did not finish must not overwrite a finished record: its outcome goes to
    ``attempt-<time>.json`` beside it instead (the summary shows the newest attempt). True when
    the record was written aside."""
    existing = output_dir / RESULT_FILE
    if record.finished or not existing.is_file():
        return False
    try:
        finished = read_record(existing).finished
    except LGAError:
        return False  # a damaged record is not worth keeping
    if finished:
        aside = output_dir / f"attempt-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}.json"
        record.error = f"{record.error}; the finished record {RESULT_FILE} of the earlier run is kept"
        write_json(aside, record.to_dict())
        log.error("this attempt did not finish; the finished record %s is kept, this attempt is in %s", existing, aside)
    return finished


def run(cfg: DictConfig) -> RunRecord:
    """Hydra task: train, and write ``result.json`` in the run directory with its status:
    ``ok``, ``not_learned`` (finished, but its task's rule says it did not learn), ``failed``
    (bad input, or an error), ``diverged`` (non-finite loss) or ``interrupted`` (SIGTERM/SIGINT;
    ``last.ckpt`` stays, and the same command resumes).

    In a multirun a failed or diverged job is recorded and the sweep goes on (the summary
    lists it and the sweep exits non-zero); an interrupted job stops the sweep, which
    writes its summary and exits 128 + the signal's number. In a single run an input error
    or a divergence ends the program with its message alone; any other exception
    propagates with its traceback.
    """
    quiet_libraries(cfg.verbose)
    output_dir = Path(cfg.paths.output_dir)
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    axes = _job_axes(cfg)
    base = {**axes, "overrides": recordable_overrides(hydra.overrides.task)}
    study_path = study_record(cfg.study_dir, axes) if cfg.study_dir else None

    @rank_zero_only  # under DDP every process runs this; only the first writes the record
    def write(record: RunRecord) -> None:
        if not _keep_finished(output_dir, record):
            write_record(output_dir, record)
        if study_path is not None and record.finished:
            write_record(study_path.parent, record)

    signals = StopSignals().install()
    try:
        tuned = apply_tuned(cfg)
        if tuned is not None:
            base["tuned"] = tuned
        check_ranges(cfg)
        check_objective(cfg.objective, axes["task"])
        base["config"] = run_identity(cfg)  # what a study record must match to stand for this job
        recorded = _recorded_result(study_path, base["config"]) if study_path is not None else None
        if recorded is not None:
            write_record(output_dir, recorded)
            log.info("job %s: already in the study (%s), not trained again", run_name(axes), study_path)
            return recorded
        measured = train(cfg, signals, axes)
    except Interrupted as stop:
        last = output_dir / "checkpoints" / "last.ckpt"
        where = f"hydra.sweep.dir={hydra.sweep.dir}" if multirun else f"hydra.run.dir={output_dir}"
        resume = f"re-run the same command with {where} to resume" + (
            f" from {last}" if last.is_file() else " (no checkpoint yet: the job starts again)"
        )
        write(RunRecord(**base, status="interrupted", error=f"{stop}; {resume}"))
        log.error("job %s: %s", stop, resume)
        if multirun:
            from .analysis.sweep import write_summary

            write_summary(Path(hydra.sweep.dir))
        raise SystemExit(stop.exit_code) from None
    except Exception as err:
        expected = isinstance(err, (LGAError, Diverged))
        message = str(err) if expected else f"{type(err).__name__}: {err}"
        record = RunRecord(**base, status="diverged" if isinstance(err, Diverged) else "failed", error=message)
        write(record)
        if multirun:
            log.error("job failed: %s%s", message, "" if expected else "\n" + traceback.format_exc())
            return record
        if expected:
            raise SystemExit(f"error: {message}") from None
        raise
    finally:
        signals.uninstall()
    reason = not_learned_reason(
        axes["task"], measured["metrics"], measured["history"], base["config"], measured["train_steps"]
    )
    record = RunRecord(**base, **measured, status="ok" if reason is None else "not_learned", error=reason)
    write(record)
    if reason is not None:
        log.warning("job %s did not learn: %s", run_name(axes), reason)
    result_block(record, output_dir, sweep=multirun)
    return record


def task(cfg: DictConfig) -> dict[str, Any] | float | None:
    """What ``run.py`` returns to Hydra: the job's record as a dict, or with ``objective`` set, the
    one number a sweeper such as Optuna maximises (None when the job did not finish: a failed trial)."""
    with claim_job(cfg) as skipped:  # one process per job (lga.claims): one another process runs is skipped
        record = skipped or run(cfg)
    if not cfg.objective:
        return record.to_dict()
    trained = record.status in ("ok", "not_learned")  # a not-learned trial is a (poor) value, not a failure
    return objective_value(cfg.objective, record.metrics, record.monitor) if trained else None

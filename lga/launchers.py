"""Launchers that keep lga's promises: every job ends with a record, the sweep with a summary.

:class:`ParallelJobs` (``hydra/launcher=parallel``) runs jobs in joblib's loky worker processes
and stops them as a sweep in one process stops: SIGINT (Ctrl-C, to the parent alone or to its
whole process group) or SIGTERM is forwarded to the workers, each records its job
``interrupted`` at the next batch boundary, jobs not yet started are not started, and the parent
writes the summary and exits 130 / 143 once every worker has stopped (none outlives it).
(joblib's own Parallel answers Ctrl-C with a KeyboardInterrupt that kills the workers mid-job, and
SIGTERM ends the parent at once, leaving the workers training.)

The submitit launchers (SLURM and local) survive jobs the scheduler ends; the local one stops its
jobs on SIGINT / SIGTERM the same way (SLURM jobs answer ``scancel``).

Hydra accepts launchers only from its ``hydra_plugins`` namespace: the classes
``hydra_plugins.lga_launcher.launchers.SlurmLauncher`` / ``LocalLauncher`` combine
:class:`WaitForAllJobs` with hydra-submitit-launcher's.

hydra-submitit-launcher collects results with ``[job.results()[0] for job in jobs]``: the
first job that was cancelled (``scancel``), hit its time limit without a resubmission
left, or died with its node raises ``UncompletedJobError`` while the other jobs are still
running, and Hydra's ``on_multirun_end`` callbacks (the sweep summary) never run. These
launchers wait for every job, record each one that ended without a result as ``failed``
in its ``result.json`` (with the SLURM state and the path of its log), and hand Hydra an
ordinary return so the summary is written and the sweep exits non-zero.

Requeueing (timeouts with ``max_num_timeout`` left, preemption) is submitit's job: it
resubmits the same Hydra job into the same directory, where ``train`` resumes from
``last.ckpt``. Lightning's own SLURM requeue is switched off in ``train``, so exactly
one mechanism requeues.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, open_dict

from .analysis.identity import job_axes, recordable_overrides
from .analysis.record import RESULT_FILE, RunRecord, write_record
from .runtime import INTERRUPT_SIGNALS, Interrupted

log = logging.getLogger(__name__)


def record_unless_recorded(
    config_loader: Any, config: DictConfig, overrides: list[str], job_num: int, status: str, message: str
) -> None:
    """Write the job's ``result.json`` with ``status``, unless the job wrote one itself."""
    cfg = config_loader.load_sweep_config(config, overrides)
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.num = job_num
    job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    if not (job_dir / RESULT_FILE).is_file():
        axes = job_axes(cfg, cfg.hydra.runtime.choices, overrides)
        record = RunRecord(**axes, overrides=recordable_overrides(overrides), status=status, error=message)
        write_record(job_dir, record)


# -- hydra/launcher=parallel: loky workers that stop as the sweep does --------------------------------------


@dataclass
class _Stopped:
    """A worker's answer for a job a stop signal interrupted (it recorded it) or kept from starting."""

    signum: int


_stop_signal: int | None = None  # in a worker: the stop signal it received, if any
_in_job = False


def _on_stop_signal(signum: int, frame: Any) -> None:
    global _stop_signal
    if _stop_signal is not None:  # a second signal (the terminal's and the forwarded Ctrl-C): in hand
        return
    _stop_signal = signum
    if _in_job:  # inside a job, before lga.train.run takes the signals over (or after it gave them back)
        raise Interrupted(signum)


def _worker_started() -> None:
    """loky's initializer, in each worker: a stop signal between jobs keeps the next job from starting."""
    for signum in INTERRUPT_SIGNALS:
        signal.signal(signum, _on_stop_signal)


def _run_in_worker(idx: int, overrides: Sequence[str], hydra_context: Any, config: DictConfig, *rest: Any) -> Any:
    """One job in a worker (hydra-joblib-launcher's ``execute_job``); an interrupted job returns
    :class:`_Stopped` instead of raising, so that the other workers are not killed mid-job."""
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    global _in_job, _stop_signal
    if _stop_signal is not None:
        return _Stopped(_stop_signal)
    _in_job = True
    try:
        return execute_job(idx, overrides, hydra_context, config, *rest)
    except SystemExit as stop:  # lga.train.run recorded the job interrupted and exits 128 + the signal
        if not isinstance(stop.code, int) or stop.code - 128 not in INTERRUPT_SIGNALS:
            raise
        _stop_signal = stop.code - 128  # jobs already queued to this worker must not start
        return _Stopped(_stop_signal)
    except Interrupted as stop:  # the signal came before training started (or after it ended)
        _stop_signal = stop.signum
        message = f"{stop} before its training started; re-run the same command to run it"
        record_unless_recorded(hydra_context.config_loader, config, list(overrides), idx, "interrupted", message)
        return _Stopped(stop.signum)
    finally:
        _in_job = False


def _refuse_unused_options(options: dict[str, Any]) -> None:
    """joblib's launcher options that :class:`ParallelJobs` does not use (all but ``n_jobs``) must keep
    their defaults: one that is set would be silently ignored."""
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

    defaults = {f.name: f.default for f in fields(JobLibLauncherConf) if f.name not in ("_target_", "n_jobs")}
    changed = sorted(key for key, default in defaults.items() if options.get(key, default) != default)
    if changed:  # before any job: a message, not a traceback
        raise SystemExit(
            f"error: hydra/launcher=parallel does not use {', '.join(f'hydra.launcher.{k}' for k in changed)} "
            "(each job runs in its own loky worker process; only hydra.launcher.n_jobs counts): drop "
            "the option, or use hydra/launcher=joblib for joblib's own launcher"
        )


class ParallelJobs:
    """hydra-joblib-launcher's ``launch`` on loky's executor (the one joblib's Parallel uses), with stop
    signals forwarded to the workers. Combined with ``JoblibLauncher`` in ``hydra_plugins.lga_launcher``;
    of its options, ``n_jobs`` counts (jobs are handed out one at a time, so no batching ones)."""

    joblib: dict[str, Any]
    config: DictConfig
    hydra_context: Any
    task_function: Any

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import configure_log, filter_overrides, setup_globals
        from joblib import effective_n_jobs
        from joblib.externals.loky import get_reusable_executor

        _refuse_unused_options(self.joblib)
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        n_jobs = min(effective_n_jobs(self.joblib.get("n_jobs", -1)), len(job_overrides))
        log.info("launching %d jobs, %d at a time in worker processes; sweep directory %s",
                 len(job_overrides), n_jobs, sweep_dir)  # fmt: skip
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))
        executor = get_reusable_executor(max_workers=n_jobs, initializer=_worker_started)
        state = Singleton.get_state()
        futures = [
            executor.submit(_run_in_worker, initial_job_idx + idx, overrides, self.hydra_context, self.config,
                            self.task_function, state)
            for idx, overrides in enumerate(job_overrides)
        ]  # fmt: skip
        stop = _ForwardStops(lambda: list(getattr(executor, "_processes", {})))  # loky's pid -> worker
        with stop:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
                for future in done:
                    if not future.cancelled() and isinstance(future.result(), _Stopped):
                        stop.stop(future.result().signum)  # a worker was signalled on its own: stop them all
                if stop.signum is not None:
                    for future in pending:
                        future.cancel()  # not started yet (those already queued to a worker return _Stopped)
        if stop.signum is not None:
            executor.shutdown(wait=True)  # every worker has returned: none outlives the sweep
            # every job ends with a record: those the stop kept from starting too
            name = signal.Signals(stop.signum).name
            message = f"not started: the sweep was stopped by {name}; re-run the same command"
            for idx, overrides in enumerate(job_overrides):
                record_unless_recorded(self.hydra_context.config_loader, self.config, list(overrides),
                                       initial_job_idx + idx, "interrupted", message)  # fmt: skip
            _stopped(sweep_dir, stop.signum)
        return [future.result() for future in futures]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _stopped(sweep_dir: Path, signum: int) -> None:
    """Every job has recorded itself: write the summary, exit 128 + the signal."""
    from .analysis.sweep import write_summary

    write_summary(sweep_dir)
    log.error("sweep %s: stopped by %s; its summary: %s", sweep_dir, signal.Signals(signum).name,
              sweep_dir / "summary.md")  # fmt: skip
    raise SystemExit(128 + signum)


class _ForwardStops:
    """While the sweep's process waits for its jobs: SIGINT and SIGTERM go to the processes that run them
    (``workers()`` lists their pids; each stops its job at the next batch boundary and records it)
    instead of ending this process."""

    def __init__(self, workers: Callable[[], list[int]]) -> None:
        self.workers = workers
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_ForwardStops":
        for signum in INTERRUPT_SIGNALS:
            self._previous[signum] = signal.signal(signum, lambda signum, frame: self.stop(signum, forward=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def stop(self, signum: int, forward: bool = False) -> None:
        if self.signum is None:
            log.warning("%s: stopping the sweep; its workers record their jobs as interrupted",
                        signal.Signals(signum).name)  # fmt: skip
            self.signum = signum
            forward = True
        if forward:
            for pid in self.workers():
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass


class WaitForAllJobs:
    """Mixin over hydra-submitit-launcher's launchers: one failed job does not end the wait."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit
        from submitit.core.utils import FailedJobError, UncompletedJobError

        captured: list[Any] = []
        submit_array = submitit.AutoExecutor.map_array

        # The parent builds the executor from the launcher config, submits, then ends with
        # `[j.results()[0] for j in jobs]`. Reusing its setup, hand it stand-ins whose
        # results() cannot raise, and collect the real jobs below.
        def map_array(executor: Any, fn: Any, *iterables: Any) -> list[_Submitted]:
            captured.extend(submit_array(executor, fn, *iterables))
            return [_Submitted() for _ in captured]

        submitit.AutoExecutor.map_array = map_array  # type: ignore[method-assign]
        # submitit's local controllers answer Ctrl-C by killing their job a second later, before it can record
        # itself: started with SIGINT ignored, they leave it to the job (lga.train handles it) and to this process
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]
        except FailedJobError as err:  # sbatch refused the array: nothing was submitted
            raise SystemExit(
                f"error: the scheduler did not accept the sweep: {str(err).strip()}"
                " (on this machine, `make slurm-up` starts a local cluster)"
            ) from None
        finally:
            del submitit.AutoExecutor.map_array  # back to the inherited Executor.map_array
            signal.signal(signal.SIGINT, previous)

        from submitit.local.local import LocalJob

        # local jobs stop as a sweep in one process does (SLURM jobs answer scancel, see the README)
        local = [job._process.pid for job in captured if isinstance(job, LocalJob) and job._process is not None]
        stop = _ForwardStops(lambda: [pid for controller in local for pid in _children(controller)])
        returns = []
        with stop if local else contextlib.nullcontext():
            for offset, (overrides, job) in enumerate(zip(job_overrides, captured)):
                try:
                    returns.append(job.results()[0])
                except (UncompletedJobError, FailedJobError) as err:
                    message = _unfinished_message(job, err)
                    if stop.signum is None:
                        log.error("job #%d (%s): %s", initial_job_idx + offset, " ".join(overrides), message)
                    self._record_failure(list(overrides), initial_job_idx + offset, message)
                    returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None))
        if stop.signum is not None:
            _stopped(Path(str(self.config.hydra.sweep.dir)), stop.signum)  # type: ignore[attr-defined]
        return returns

    def _record_failure(self, overrides: list[str], job_num: int, message: str) -> None:
        """Write the job's ``result.json`` as failed, unless the job wrote one itself."""
        loader = self.hydra_context.config_loader  # type: ignore[attr-defined]
        record_unless_recorded(loader, self.config, overrides, job_num, "failed", message)  # type: ignore[attr-defined]


class _Submitted:
    def results(self) -> list[None]:
        return [None]


def _unfinished_message(job: Any, err: Exception) -> str:
    from submitit.core.utils import UncompletedJobError

    if isinstance(err, UncompletedJobError):
        return (
            f"SLURM job {job.job_id} ended {job.state} before the run finished "
            f"(scancel, time limit, or node failure); its log: {job.paths.stdout}"
        )
    last_line = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    return f"job {job.job_id} failed: {last_line}; its log: {job.paths.stderr}"

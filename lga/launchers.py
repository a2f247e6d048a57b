"""submitit launchers (SLURM and local) that survive jobs the scheduler ends.

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

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import open_dict

from .analysis.identity import job_axes, recordable_overrides
from .analysis.record import RESULT_FILE, RunRecord, write_record

log = logging.getLogger(__name__)


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
        try:
            super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]
        except FailedJobError as err:  # sbatch refused the array: nothing was submitted
            raise SystemExit(
                f"error: the scheduler did not accept the sweep: {str(err).strip()}"
                " (on this machine, `make slurm-up` starts a local cluster)"
            ) from None
        finally:
            del submitit.AutoExecutor.map_array  # back to the inherited Executor.map_array

        returns = []
        for offset, (overrides, job) in enumerate(zip(job_overrides, captured)):
            try:
                returns.append(job.results()[0])
            except (UncompletedJobError, FailedJobError) as err:
                message = _unfinished_message(job, err)
                log.error("job #%d (%s): %s", initial_job_idx + offset, " ".join(overrides), message)
                self._record_failure(list(overrides), initial_job_idx + offset, message)
                returns.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None))
        return returns

    def _record_failure(self, overrides: list[str], job_num: int, message: str) -> None:
        """Write the job's ``result.json`` as failed, unless the job wrote one itself."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)  # type: ignore[attr-defined]
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = job_num
        job_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        if not (job_dir / RESULT_FILE).is_file():
            axes = job_axes(cfg, cfg.hydra.runtime.choices, overrides)
            record = RunRecord(**axes, overrides=recordable_overrides(overrides), status="failed", error=message)
            write_record(job_dir, record)


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

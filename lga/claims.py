"""One writer per job: a job is claimed with an exclusive lock for as long as it runs.

Two processes can work on the same jobs: two ``run.py -m`` of one study (its sweep directory is
fixed), two Optuna searches on one storage, a sweep restarted while the first still runs. Each
job holds ``.lga.lock`` in its run directory and, in a study, in its study record's directory,
with ``fcntl.flock``: the kernel releases the lock when the process ends, however it ends, so a
crash never blocks a rerun. A process that finds a job's run directory claimed skips the job
(its log says so, and it writes nothing there); one that finds only the study record claimed (its
own run directory is elsewhere) waits for it, then takes the record like any recorded job. The
sweep summary waits for the jobs other processes are still running (:func:`wait_for_other_writers`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

LOCK_FILE = ".lga.lock"


class FileLock:
    """An exclusive ``flock`` on ``path``, which is created when taken and removed when released
    (a job's directory keeps no trace of it unless its process died holding it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it if ``blocking``); False if another process holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without locks
                    log.warning("%s: this file system has no file locks (%s); running without one writer "
                                "per job: do not run one job from two processes", self.path, err.strerror)  # fmt: skip
                    return True
                raise
            # the previous holder removes the file as it releases: a lock on that removed file guards nothing
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (``pid 123 on node1``)."""
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "another process"
        return "another process"

    def held_elsewhere(self) -> bool:
        """Whether another process (or another lock object of this one) holds the lock now."""
        if self._fd is not None:
            return False
        if not self.path.exists():
            return False
        if self.acquire(blocking=False):
            self.release()
            return False
        return True


def _study_lock(study_path: Path) -> FileLock:
    try:
        study_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(
            f"error: cannot write the study record directory {study_path.parent} ({err.strerror or err}); "
            "set study_dir=... (LGA_STUDY_DIR) to a writable place"
        ) from None
    return FileLock(study_path.parent / LOCK_FILE)


@contextlib.contextmanager
def claim_job(cfg: Any) -> Iterator[Any]:
    """Hold the job of ``cfg`` while the ``with`` block runs it. Yields None when this process has the
    job, or, when another process is running it in the same run directory, an ``incomplete`` record
    (not written anywhere) that says so: the caller skips the job. A single run in a directory
    another process is using ends with an error instead."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from .analysis.identity import job_axes, run_name, study_record
    from .analysis.record import RunRecord

    if rank_zero_only.rank != 0:  # DDP's other processes run the job its first process holds
        yield None
        return
    hydra = HydraConfig.get()
    axes = job_axes(cfg, hydra.runtime.choices, list(hydra.overrides.task))
    run_dir = Path(cfg.paths.output_dir)
    own = FileLock(run_dir / LOCK_FILE)
    if not own.acquire(blocking=False):
        holder = own.holder()
        if hydra.mode != RunMode.MULTIRUN:
            raise SystemExit(
                f"error: {run_dir} is in use by another run ({holder}); wait for it to end, "
                "or give this run another hydra.run.dir"
            )
        message = f"being run by another process ({holder}) in {run_dir}; skipped here, that process records it"
        log.warning("job %s: %s", run_name(axes), message)
        yield RunRecord(**axes, status="incomplete", error=message)
        return
    study = _study_lock(study_record(cfg.study_dir, axes)) if cfg.get("study_dir") else None
    try:
        if study is not None and not study.acquire(blocking=False):
            log.warning(
                "job %s: its study record %s is being written by another process (%s); waiting for it",
                run_name(axes), study.path.parent, study.holder(),
            )  # fmt: skip
            study.acquire(blocking=True)
        yield None
    finally:
        if study is not None:
            study.release()
        own.release()


def wait_for_other_writers(job_dirs: list[Path]) -> None:
    """Wait until no other process holds any of ``job_dirs`` (a shared sweep's summary lists every job
    finished, not those another process is still running as ``incomplete``)."""
    for job_dir in job_dirs:
        lock = FileLock(job_dir / LOCK_FILE)
        if lock.held_elsewhere():
            log.info("waiting for job %s: another process is running it (%s)", job_dir, lock.holder())
            lock.acquire(blocking=True)
            lock.release()

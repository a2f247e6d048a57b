"""How a run uses the machine: OpenMP's wait policy, intra-op threads, and stop signals.

Imported by ``lga/__init__.py`` before anything loads torch, so the wait policy is in
the environment when torch's OpenMP runtime starts (it reads it once, at load).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)

# OpenMP threads that finish a parallel region spin for the next one (libgomp: 300,000 times) before
# they sleep. On a machine where anything else runs the spinning threads take the cores the working
# ones need; never spinning (PASSIVE) pays for every wake-up on an idle machine. A short spin keeps
# most of both (experiments/busy_machine.md: a sweep 12% slower than the best idle, 7% slower than
# the best single-process policy loaded). A policy the user set wins (OMP_WAIT_POLICY=ACTIVE, ...).
SPIN_COUNT = "3000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT

INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def to_channels_last(module: Any) -> Any:
    """Every 4-D parameter and buffer of ``module`` in channels_last (``Module.to(memory_format=...)``
    fails on any 5-D tensor, such as a relative-position table).

    Strides are set even where a tensor already counts as channels_last: a 1-input-channel
    stem conv's weight does, and unless its strides say so, its output (and so the whole
    network) stays NCHW."""
    import torch

    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.clone(memory_format=torch.channels_last)
    return module


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, cgroups, SLURM's binding),
    not the machine's core count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def choose_threads(requested: int | None, launcher: Mapping[str, Any] | None = None) -> tuple[int, str]:
    """(intra-op threads, why) for one job.

    In order: ``runtime.threads``; SLURM's ``SLURM_CPUS_PER_TASK``; a launcher's
    ``cpus_per_task`` (submitit); the CPUs of the affinity mask divided among a
    joblib launcher's ``n_jobs`` parallel jobs; the affinity mask.
    """
    if requested:
        return int(requested), "runtime.threads"
    if os.environ.get("SLURM_CPUS_PER_TASK"):
        return int(os.environ["SLURM_CPUS_PER_TASK"]), "SLURM_CPUS_PER_TASK"
    launcher = launcher or {}
    cpus = available_cpus()
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"]), "hydra.launcher.cpus_per_task"
    n_jobs = launcher.get("n_jobs")  # joblib's launcher, or lga's parallel launcher on it
    if n_jobs is not None and any(name in str(launcher.get("_target_", "")) for name in ("joblib", "ParallelLauncher")):
        parallel = cpus if n_jobs < 0 else min(int(n_jobs), cpus)
        return max(1, cpus // max(1, parallel)), f"{cpus} CPUs shared by hydra.launcher.n_jobs={n_jobs}"
    return cpus, f"{cpus} CPUs in the affinity mask"


class Interrupted(BaseException):
    """The run was asked to stop by a signal (SIGTERM from a scheduler or `kill`, SIGINT from Ctrl-C).

    A BaseException, like KeyboardInterrupt: raised from a signal handler it can surface
    inside any library call, and ``except Exception`` there (Hydra's import of a target,
    say) must not turn it into an ordinary error."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for a process ended by a signal


class StopSignals:
    """SIGTERM and SIGINT end a run cleanly at a safe point, with :class:`Interrupted`.

    Outside training the handler raises at once. Inside :meth:`deferred` (around
    ``trainer.fit``/``test``) it only records the signal, and the training loop raises
    at the next batch boundary (``check``, called from a callback; Lightning's own
    ``SIGTERMException`` is turned into :class:`Interrupted` too), never in the middle of
    writing a checkpoint.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False
        self._previous: dict[int, Any] = {}

    def install(self) -> "StopSignals":
        for signum in INTERRUPT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # a second signal (Ctrl-C reaches a worker twice): the first is in hand
            return
        self.received = signum
        if not self._deferring:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop signal has arrived (call at safe points)."""
        if self.received is not None:
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self._deferring = True
        try:
            yield
        except SIGTERMException:
            raise Interrupted(self.received or signal.SIGTERM) from None
        finally:
            self._deferring = False
        self.check()  # arrived after the last batch

"""A real single-node SLURM cluster on localhost (python -m lga.tools.slurm), and a sweep through it."""

import csv
import json
import subprocess
import time

import pytest

from lga.tools import slurm

pytestmark = [
    pytest.mark.skipif(slurm.can_run() is not None, reason=f"local SLURM cluster: {slurm.can_run()}"),
    pytest.mark.slow,  # a cluster start and about 90 s of jobs
]


@pytest.fixture(scope="module")
def cluster():
    slurm.up()
    yield
    slurm.down()


def test_sweep_runs_as_slurm_jobs(cluster, run_lga, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m", "attention=lga,se,cbam", "dataset=mnist_5k", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=5", "trainer=debug", "logger=none", f"hydra.sweep.dir={sweep}", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert sorted((r["attention"], r["status"]) for r in rows) == [("cbam", "ok"), ("lga", "ok"), ("se", "ok")]
    # each job ran as a task of one SLURM job array, with submitit's logs per task
    logs = sorted(p.name for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 3 and all("_" in name for name in logs)
    assert "running" in slurm.status()


def _squeue() -> dict[str, str]:
    """job id -> state, for the jobs SLURM still lists as pending or running."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_cancelled_job_is_reported_interrupted(cluster, start_lga, tmp_path):
    """`scancel` of one job mid-sweep: the job records itself interrupted by SIGTERM (resumable),
    the launcher waits for the others, writes the summary, and exits non-zero instead of hanging."""
    sweep = tmp_path / "sweep"
    proc = start_lga(
        "-m", "attention=none", "trainer=debug", "trainer.max_epochs=1,1000", "logger=none", "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    _wait_for(lambda: (sweep / "1/.hydra/config.yaml").is_file(), 180, "job 1 to start")
    long_job = next(job for job in _squeue() if job.endswith("_1"))
    subprocess.run(["scancel", long_job], check=True)
    proc.wait(timeout=240)  # submitit polls job states about once a minute
    assert proc.returncode == 1, proc.log.read_text()[-3000:]
    assert "1 of 2 jobs did not finish" in proc.log.read_text()
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "interrupted"]
    assert "interrupted by SIGTERM; re-run the same command with hydra.sweep.dir=" in rows[1]["error"]


def test_preempted_job_is_requeued_once_and_resumes(cluster, start_lga, tmp_path):
    """SLURM signals a job before preemption or its time limit (USR2 for submitit): submitit
    requeues it, the same job resumes from last.ckpt in the same directory and W&B run, and
    Lightning does not requeue it a second time."""
    sweep = tmp_path / "sweep"
    proc = start_lga(
        "-m", "attention=none", "trainer=debug", "trainer.max_epochs=40", "logger=wandb", "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    _wait_for(lambda: (sweep / "0/checkpoints/last.ckpt").is_file(), 180, "the first checkpoint")
    (job,) = _squeue()
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _wait_for(lambda: _squeue().get(job) == "PENDING", 60, "the requeue")
    # a requeued job waits about two minutes (its BeginTime) before SLURM starts it again
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    proc.wait(timeout=240)
    assert proc.returncode == 0, proc.log.read_text()[-3000:]
    info = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
    assert " Restarts=1 " in info, info
    result = json.loads((sweep / "0/result.json").read_text())
    assert result["status"] == "ok" and result["resumed_from"] == "checkpoints/last.ckpt"
    run_files = sorted((sweep / "0").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 2 and len({p.name for p in run_files}) == 1  # two sessions, one W&B run id

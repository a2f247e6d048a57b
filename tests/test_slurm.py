"""A real single-node SLURM cluster on localhost (python -m lga.slurm), and a sweep through it."""

import csv

import pytest

from lga import slurm

pytestmark = pytest.mark.skipif(slurm.can_run() is not None, reason=f"local SLURM cluster: {slurm.can_run()}")


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

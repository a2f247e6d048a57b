"""End-to-end: the real run.py, real data, real Lightning, real W&B (offline)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def _result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def _accuracy_of(run_dir: Path, checkpoint: str, count: int) -> float:
    """Top-1 of a run's checkpoint on the first ``count`` test images, computed here from scratch."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lga.runtime import to_channels_last
    from lga.train import build_model

    cfg = OmegaConf.load(run_dir / ".hydra/config.yaml")
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule)
    if cfg.runtime.channels_last:  # the same kernels as the run
        to_channels_last(model)
    model.load_state_dict(torch.load(run_dir / "checkpoints" / checkpoint, weights_only=False)["state_dict"])
    datamodule.setup()
    images, labels = datamodule.data["test"].tensors
    with torch.no_grad():
        predictions = model.eval()(datamodule.preprocess(images[:count])).argmax(1)
    return (predictions == labels[:count]).float().mean().item()


def test_single_run_trains_and_records(run_lga, tmp_path):
    proc = run_lga("trainer=debug", "logger=csv", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = _result(tmp_path / "run")
    assert result["status"] == "ok" and result["attention"] == "lga" and result["backbone_class"] == "MobileNetV3"
    # trainer=debug tests one batch: the record says how much, and its top-1 is best.ckpt's on those images
    assert (result["metrics"]["test/images"], result["test_images_total"]) == (500, 10000)
    assert result["metrics"]["test/top1"] == pytest.approx(_accuracy_of(tmp_path / "run", "best.ckpt", 500), abs=1e-6)
    assert result["params"] > 0 and result["flops"] > 0
    assert (tmp_path / "run/checkpoints/last.ckpt").is_file()
    assert (tmp_path / "run/csv/metrics.csv").is_file()


def test_same_seed_same_metrics(run_lga, tmp_path):
    metrics = []
    for i in range(2):
        proc = run_lga(
            "trainer=debug", "trainer.limit_train_batches=3", "logger=none", "seed=7", f"hydra.run.dir={tmp_path}/r{i}"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics.append(_result(tmp_path / f"r{i}")["metrics"])
    assert metrics[0]["test/loss"] == metrics[1]["test/loss"]
    assert metrics[0]["test/top1"] == metrics[1]["test/top1"]


def test_bad_input_fails_with_a_clear_message(run_lga, tmp_path):
    proc = run_lga("attention.num_heads=5", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode != 0
    assert "num_heads=5 does not divide the block width 96" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _result(tmp_path / "run")["status"] == "failed"


def test_tiny_multirun_writes_summary_and_wandb_runs(run_lga, tmp_path):
    """2 attentions x (embedded data, missing full MNIST): failed jobs are listed, others kept."""
    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m",
        "attention=none,lga",
        "dataset=mnist_5k,mnist",
        "trainer=debug",
        "logger=wandb",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # some jobs failed: the sweep says so
    assert "2 of 4 jobs did not finish" in proc.stderr
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["dataset"], r["attention"], r["status"]) for r in rows] == [
        ("mnist_5k", "none", "ok"),
        ("mnist", "none", "failed"),
        ("mnist_5k", "lga", "ok"),
        ("mnist", "lga", "failed"),
    ]
    for job, row in enumerate(rows):
        if row["status"] == "ok":
            result = _result(sweep / str(job))
            assert float(row["test_top1"]) == round(100 * result["metrics"]["test/top1"], 2)
            assert row["test_images"] == "500 of 10000"  # trainer=debug: one test batch, and the summary says so
            assert (
                float(row["params_M"]) == pytest.approx(result["params"] / 1e6, rel=1e-9) and float(row["gflops"]) > 0
            )
        else:
            assert "missing train-images-idx3-ubyte" in row["error"] and "dataset=mnist_5k" in row["error"]
    assert "| mnist_5k | mobilenetv3 | lga | 0 |" in (sweep / "summary.md").read_text()
    # one offline W&B run per job (failed ones marked failed), all in the sweep's group, none merged
    runs = sorted(sweep.glob("*/wandb/offline-run-*/*.wandb"))
    assert len(runs) == 4
    assert len({p.parent.name for p in runs}) == 4
    for run_file in runs:
        assert sweep.name.encode() in run_file.read_bytes()
    # the seed report reads the same directory and lists the failed jobs with their errors
    from lga.analysis.report import write_report

    report = write_report(sweep)["md"].read_text()
    assert "Jobs that did not finish: 2" in report and "missing train-images-idx3-ubyte" in report


@pytest.mark.slow  # about 100 s: every block x every backbone preset
def test_sweep_smoke_every_attention_and_backbone(run_lga, tmp_path):
    """-m attention=<all> backbone=<all> with a one-batch trainer: every job must finish."""
    from lga.attention import list_attentions
    from tests.conftest import ROOT

    attentions = ",".join(list_attentions())
    backbones = ",".join(sorted(p.stem for p in (ROOT / "conf/backbone").glob("*.yaml")))
    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m", f"attention={attentions}", f"backbone={backbones}", "trainer=debug", "logger=none",
        "dataset.batch_size=8", "dataset.eval_batch_size=8", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    failed = [(r["attention"], r["backbone"], r["error"]) for r in rows if r["status"] != "ok"]
    assert proc.returncode == 0 and not failed, failed or proc.stderr[-3000:]
    assert len(rows) == len(list_attentions()) * len(backbones.split(","))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["parallel", "local"])
def test_sweep_through_parallel_launchers(run_lga, tmp_path, launcher):
    """joblib workers and submitit's local executor: same jobs, same summary."""
    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m",
        f"hydra/launcher={launcher}",
        "attention=none,se",
        "trainer=debug",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert sorted((r["attention"], r["status"]) for r in rows) == [("none", "ok"), ("se", "ok")]


@pytest.mark.slow
def test_ddp_two_cpu_processes(run_lga, tmp_path):
    """trainer=ddp as 2 CPU processes (gloo): both ranks train, rank 0 records the synced metrics."""
    proc = run_lga(
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
        "logger=none", "verbose=true", f"hydra.run.dir={tmp_path}/run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr  # verbose=true: Lightning's own messages, which name the ranks
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output and "distributed_backend=gloo" in output
    result = _result(tmp_path / "run")
    assert result["status"] == "ok"
    # The ranks' test shards (2 batches of 500 each, interleaved) are test images 0..1999:
    # the synced top-1 must equal one process evaluating the same checkpoint on them.
    assert result["metrics"]["test/images"] == 2000
    assert result["metrics"]["test/top1"] == pytest.approx(_accuracy_of(tmp_path / "run", "best.ckpt", 2000), abs=1e-6)


def _signal_once_written(proc, path: Path, signum: int, settle: float = 0.0) -> None:
    """Send ``signum`` to a running ``proc`` as soon as ``path`` exists (after ``settle`` seconds)."""
    import time

    deadline = time.monotonic() + 300
    while not path.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    assert proc.poll() is None, f"the run finished before {path.name} appeared"
    proc.send_signal(signum)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(run_lga, start_lga, tmp_path):
    """Kill a run mid-training, re-run the same command: it resumes from last.ckpt, ends with the
    metrics of an uninterrupted run, and continues the same W&B run."""
    import signal

    args = [
        "trainer.max_epochs=4", "trainer.limit_train_batches=12", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "logger=wandb",
    ]  # fmt: skip
    straight = run_lga(*args, f"hydra.run.dir={tmp_path}/straight")
    assert straight.returncode == 0, straight.stderr[-3000:]

    run_dir = tmp_path / "resumed"
    victim = start_lga(*args, f"hydra.run.dir={run_dir}")
    last = run_dir / "checkpoints/last.ckpt"
    _signal_once_written(victim, last, signal.SIGKILL, settle=0.5)  # let the checkpoint be written completely
    victim.wait()
    assert not (run_dir / "result.json").exists()
    saved = torch.load(last, map_location="cpu", weights_only=False)["callbacks"]
    clock_before = next(state["train_time_s"] for name, state in saved.items() if name.startswith("RunClock"))

    resumed = run_lga(*args, f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, second = _result(tmp_path / "straight"), _result(run_dir)
    assert second["resumed_from"] == "checkpoints/last.ckpt" and first["resumed_from"] is None
    for key in ("test/top1", "test/loss", "val/top1_best"):
        assert second["metrics"][key] == first["metrics"][key], key
    # train time adds up over the two sessions: the first one's, as checkpointed, plus the epochs trained after
    # (no comparison with the straight run's time: on a busy machine wall times measure the load)
    assert 0 < clock_before < second["train_time_s"]
    run_files = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 2 and len({p.name for p in run_files}) == 1  # two sessions, one W&B run id


@pytest.mark.slow
def test_resuming_a_different_model_is_a_clear_error(run_lga, tmp_path):
    """A run directory holding another config's last.ckpt is not silently mixed with this one."""
    first = run_lga("trainer=debug", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert first.returncode == 0, first.stderr[-3000:]
    other = run_lga("trainer=debug", "logger=none", "attention=se", f"hydra.run.dir={tmp_path}/run")
    assert other.returncode == 1
    assert (
        "was written by another configuration" in other.stderr
        and "attention.name: 'lga' in the checkpoint, 'se' now" in other.stderr
    )
    assert "Traceback" not in other.stderr


def _summary(sweep: Path) -> list[dict]:
    return list(csv.DictReader((sweep / "summary.csv").open()))


def test_resume_refuses_a_checkpoint_of_another_seed(run_lga, tmp_path):
    """-m seed=0,1 then -m seed=1 in the same sweep directory: job 0 now is seed 1 and must not
    continue seed 0's run (same shapes, other configuration)."""
    sweep = tmp_path / "sweep"
    first = run_lga("-m", "seed=0,1", "trainer=debug", "logger=none", f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-3000:]
    kept = (sweep / "0/result.json").read_bytes()
    second = run_lga("-m", "seed=1", "trainer=debug", "logger=none", f"hydra.sweep.dir={sweep}")
    assert second.returncode == 1
    row = _summary(sweep)[0]
    assert (row["seed"], row["status"]) == ("1", "failed")
    assert "was written by another configuration (seed: 0 in the checkpoint, 1 now)" in row["error"]
    assert "give the run a new directory" in row["error"]
    # the finished run's record is intact; the refused attempt is recorded beside it
    assert (sweep / "0/result.json").read_bytes() == kept
    assert [json.loads(p.read_text())["status"] for p in (sweep / "0").glob("attempt-*.json")] == ["failed"]


def test_diverged_training_is_not_a_result(run_lga, tmp_path):
    proc = run_lga(
        "optimizer.lr=1e6",
        "trainer=debug",
        "trainer.limit_train_batches=6",
        "logger=none",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert proc.returncode == 1
    assert "error: training diverged: loss nan at step" in proc.stderr and "Traceback" not in proc.stderr
    text = (tmp_path / "run/result.json").read_text()
    assert "NaN" not in text  # strict JSON
    result = json.loads(text)
    assert result["status"] == "diverged" and "last finite loss" in result["error"] and not result["metrics"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1 is out of range: it must be >= 1"),
        ("optimizer.lr=-1", "optimizer.lr=-1 is out of range: it must be > 0"),
        ("model.dropout=1.5", "model.dropout=1.5 is out of range: it must be in [0, 1)"),
    ],
)
def test_out_of_range_options_fail_before_anything_is_built(run_lga, tmp_path, override, message):
    proc = run_lga(override, "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 1
    assert f"error: {message}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run/checkpoints").exists()


def test_training_set_smaller_than_a_batch_fails(run_lga, tmp_path):
    proc = run_lga("dataset.batch_size=8192", "trainer=debug", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 1
    result = _result(tmp_path / "run")
    assert result["status"] == "failed"
    assert "trained 0 steps" in result["error"] and "4500 training images, batch size 8192" in result["error"]


def test_unwritable_run_directory_is_named(run_lga, tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_lga("trainer=debug", "logger=none", f"hydra.run.dir={tmp_path}/a_file/run")
    assert proc.returncode == 1
    assert f"error: cannot write the output directory {tmp_path}/a_file/run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_records_are_readable_by_others(run_lga, tmp_path):
    proc = run_lga("-m", "trainer=debug", "logger=none", f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in (tmp_path / "sweep/0/result.json", tmp_path / "sweep/summary.csv"):
        assert path.stat().st_mode & 0o044 == 0o044, path  # group and others may read (umask 022)


def test_explicit_threads_are_used(run_lga, tmp_path):
    proc = run_lga("runtime.threads=1", "trainer=debug", "logger=none", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _result(tmp_path / "run")["threads"] == 1
    assert "1 intra-op threads (runtime.threads); GOMP_SPINCOUNT=3000" in (tmp_path / "run/train.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_parallel_jobs_share_the_affinity_mask(tmp_path):
    """hydra/launcher=parallel n_jobs=2 on a 2-CPU mask: each job runs 1 intra-op thread."""
    from tests.conftest import ROOT, _lga_env

    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
         "attention=none,se", "trainer=debug", "logger=none", f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, env=_lga_env(tmp_path), capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2]),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [row["threads"] for row in _summary(sweep)] == ["1", "1"]


@pytest.mark.slow
def test_sigterm_stops_a_sweep_with_a_summary_and_it_resumes(run_lga, start_lga, tmp_path):
    """A real SIGTERM to `run.py -m` during its second job: non-zero exit, the summary lists the
    finished job and the interrupted one, and the same command finishes the sweep from last.ckpt."""
    import signal

    sweep = tmp_path / "sweep"
    args = [
        "-m", "attention=none,se", "trainer.max_epochs=4", "trainer.limit_train_batches=12",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0", "logger=none", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    victim = start_lga(*args)
    last = sweep / "1/checkpoints/last.ckpt"
    _signal_once_written(victim, last, signal.SIGTERM)
    assert victim.wait(timeout=120) == 128 + signal.SIGTERM
    rows = _summary(sweep)
    assert [(r["attention"], r["status"]) for r in rows] == [("none", "ok"), ("se", "interrupted")]
    assert "interrupted by SIGTERM; re-run the same command with hydra.sweep.dir=" in rows[1]["error"]

    again = run_lga(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [(r["attention"], r["status"]) for r in _summary(sweep)] == [("none", "ok"), ("se", "ok")]
    assert _result(sweep / "1")["resumed_from"] == "checkpoints/last.ckpt"


def test_sigint_interrupts_a_single_run_which_resumes(run_lga, start_lga, tmp_path):
    """Ctrl-C (a real SIGINT) during training: exit 130, status interrupted, last.ckpt left; re-run resumes."""
    import signal

    run_dir = tmp_path / "run"
    args = ["trainer.max_epochs=3", "trainer.limit_train_batches=10", "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "logger=none", f"hydra.run.dir={run_dir}"]  # fmt: skip
    victim = start_lga(*args)
    last = run_dir / "checkpoints/last.ckpt"
    _signal_once_written(victim, last, signal.SIGINT)
    assert victim.wait(timeout=120) == 128 + signal.SIGINT
    result = _result(run_dir)
    assert result["status"] == "interrupted" and "interrupted by SIGINT" in result["error"]
    again = run_lga(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _result(run_dir)["status"] == "ok" and _result(run_dir)["resumed_from"] == "checkpoints/last.ckpt"


@pytest.mark.slow
def test_presets_of_one_class_stay_apart(run_lga, tmp_path):
    """Three presets of the MobileNetV3 class x two blocks: 6 run names, 6 summary rows, 6 report cells."""
    from lga.analysis.identity import run_name
    from lga.analysis.report import write_report

    sweep = tmp_path / "sweep"
    proc = run_lga(
        "-m", "backbone=mobilenetv3,mobilenetv3_large,mobilenetv3_paper", "attention=none,lga", "trainer=debug",
        "logger=none", "dataset.batch_size=16", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [_result(sweep / str(job)) for job in range(6)]
    assert len({run_name(r) for r in results}) == 6
    assert {r["backbone_class"] for r in results} == {"MobileNetV3"}
    assert len({(r["backbone"], r["attention"]) for r in _summary(sweep)}) == 6
    cells = list(csv.DictReader(write_report(sweep)["cells"].open()))
    assert sorted((r["backbone"], r["attention"]) for r in cells) == sorted(
        (b, a) for b in ("mobilenetv3", "mobilenetv3_large", "mobilenetv3_paper") for a in ("none", "lga")
    )

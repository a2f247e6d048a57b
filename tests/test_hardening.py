"""Issue 23: bad input through the entry points a user calls (``python run.py``, ``python -m lga.report`` /
``lga.study``, two processes at once, real signals) ends in a message that names the problem and the fix,
before any compute where it can, with nothing half-written."""

import csv
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lga.data.idx import read_idx, write_idx
from tests.conftest import ROOT, _lga_env

DEBUG = ["trainer=debug", "logger=none"]
SEARCH = ["-m", "hparams_search=optuna", *DEBUG]
MNIST_5K = ROOT / "data/mnist_5k"


def _rows(sweep: Path) -> list[dict]:
    return list(csv.DictReader((sweep / "summary.csv").open()))


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def _clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The run failed with ``error: ...`` holding every fragment, and no traceback."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for fragment in fragments:
        assert fragment in output, output[-3000:]
    return output


def _python(tmp_path: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python ARGS`` in the repository with run_lga's environment (plus ``env``)."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**_lga_env(tmp_path), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _wait_all(procs: list[subprocess.Popen], timeout: int = 600) -> list[str]:
    for proc in procs:
        proc.wait(timeout=timeout)
    return [proc.log.read_text() for proc in procs]


# -- 3: two processes on one study ----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_on_one_study_train_each_job_once(start_lga, tmp_path):
    """Both at once, as the issue ran them: every job is trained by one process; the other skips it (or,
    once it is recorded, takes the record); both end with the whole study recorded and summarised."""
    procs = [start_lga("-m", "experiment=study_tiny", "logger=none") for _ in range(2)]
    logs = _wait_all(procs)
    assert [p.returncode for p in procs] == [0, 0], logs
    trainings = sum(log.count("] epoch 1/1 |") for log in logs)
    assert trainings == 4, logs  # 2 blocks x 2 seeds, each trained once (8 before: every job twice)
    skipped = sum(log.count("being run by another process") + log.count("already in the study") for log in logs)
    assert skipped == 4, logs  # the other process's 4 jobs
    records = sorted(p.parent.name for p in (tmp_path / "study/tiny/jobs").glob("*/result.json"))
    assert len(records) == 4 and all(_record(tmp_path / "study/tiny/jobs" / r)["status"] == "ok" for r in records)
    assert [r["status"] for r in _rows(tmp_path / "logs/study/tiny")] == ["ok"] * 4
    assert not list((tmp_path / "study").rglob(".lga.lock")), "a finished job leaves no lock file"


@pytest.mark.slow
def test_a_crashed_run_never_blocks_its_directory(run_lga, tmp_path):
    """A run directory in use is refused by name; the lock dies with its process (SIGKILL), so the rerun works."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lga.claims import FileLock; "
         f"FileLock({str(run_dir / '.lga.lock')!r}).acquire(); print('held', flush=True); time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    busy = run_lga(*DEBUG, f"hydra.run.dir={run_dir}")
    _clean_error(busy, f"error: {run_dir} is in use by another run (pid {holder.pid}", "hydra.run.dir")
    assert not (run_dir / "result.json").exists()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    again = run_lga(*DEBUG, f"hydra.run.dir={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _record(run_dir)["status"] == "ok"


# -- 4: two searches on one storage --------------------------------------------------------------------------


@pytest.mark.slow
def test_two_searches_on_one_storage_share_its_trials(start_lga, tmp_path):
    """n_trials=4 from two processes at once: 4 trials in all (8 before, the first pairs identical), each in
    its own directory, and both processes end with the same best hyperparameters."""
    import optuna

    sweep = tmp_path / "search"
    procs = [start_lga(*SEARCH, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={sweep}") for _ in range(2)]
    logs = _wait_all(procs)
    assert [p.returncode for p in procs] == [0, 0], logs
    study = optuna.load_study(study_name="mnist_5k-mobilenetv3-lga", storage=f"sqlite:///{sweep}/optuna.db")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [
        (t.number, t.state.name, t.params) for t in trials
    ]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # no trial ran twice
    trained = sum(log.count("] epoch 1/1 |") for log in logs)
    assert trained == 4 and all("] epoch 1/1 |" in log for log in logs), logs  # both processes worked
    rows = _rows(sweep)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    best = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {study.best_value}" in best


def test_a_trial_that_ends_while_a_search_counts_still_takes_its_place(tmp_path, monkeypatch):
    """The race behind a fifth trial of 4 (two searches on one storage): another process's trial ends (told
    COMPLETE, then its lock released) between the count's two reads, here at the worst moment: as its lock is
    checked. Counted with the states read first, it was neither running nor finished. A RUNNING trial whose
    lock file nobody holds (a killed run's) still gives its place back."""
    import optuna

    from hydra_plugins.lga_launcher.optuna_sweeper import SharedSearch
    from lga.claims import FileLock

    storage = f"sqlite:///{tmp_path}/optuna.db"
    other_process = optuna.create_study(study_name="search", storage=storage)
    ending, killed = other_process.ask(), other_process.ask()
    (tmp_path / f"{killed.number}.lock").write_text("pid 1 on a node that died\n")
    ending_lock = FileLock(tmp_path / f"{ending.number}.lock")
    ending_lock.acquire()
    search = SharedSearch.__new__(SharedSearch)  # only what counting reads: the study and the trial locks
    search.study, search.trial_locks = optuna.load_study(study_name="search", storage=storage), tmp_path
    check = FileLock.held_elsewhere

    def ends_as_it_is_checked(lock: FileLock) -> bool:
        if lock.path == ending_lock.path and ending_lock._fd is not None:
            other_process.tell(ending, 1.0)  # the order SharedSearch.run keeps: the result, then the lock
            ending_lock.release()
        return check(lock)

    monkeypatch.setattr(FileLock, "held_elsewhere", ends_as_it_is_checked)
    try:
        trials, finished, running = search._places_taken()
    finally:
        ending_lock.release()
    assert [t.number for t in trials] == [ending.number, killed.number]
    assert (finished, running) == (1, 0)  # the trial that ended; the killed run's place is free


# -- 5: interrupts in parallel sweeps -------------------------------------------------------------------------


def _in_group(pgid: int) -> list[int]:
    """Processes still in the process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    alive.append(int(entry.name))
            except ProcessLookupError:
                pass
    return alive


@pytest.mark.parametrize(
    "launcher, target, signum",
    [
        # Ctrl-C in a terminal: the whole foreground process group
        pytest.param("parallel", "group", signal.SIGINT, marks=pytest.mark.slow),
        pytest.param("parallel", "parent", signal.SIGINT, marks=pytest.mark.slow),
        pytest.param("parallel", "parent", signal.SIGTERM, marks=pytest.mark.slow),  # kill, a scheduler
        pytest.param("local", "group", signal.SIGINT, marks=pytest.mark.slow),
        pytest.param("local", "parent", signal.SIGTERM, marks=pytest.mark.slow),
    ],
)
def test_a_parallel_sweep_stops_on_a_signal_with_a_summary(tmp_path, launcher, target, signum):
    """Jobs mid-training (with the parallel launcher's 2 workers, a third job queued): the signal reaches
    every job, each records itself interrupted, a queued one never starts (and is recorded so), the
    summary is written, the exit code is 128 + the signal, and no process of the sweep outlives it."""
    sweep = tmp_path / "sweep"
    workers = (
        ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"] if launcher == "parallel" else ["hydra/launcher=local"]
    )
    args = ["-m", *workers, "attention=none,se,eca",
            "trainer.max_epochs=100", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0", "logger=none",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=_lga_env(tmp_path), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,  # its own process group, as a shell gives a command
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        training = ("0", "1") if launcher == "parallel" else ("0", "1", "2")
        while not all((sweep / job / "checkpoints/last.ckpt").is_file() for job in training):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        (os.killpg if target == "group" else os.kill)(proc.pid, signum)
        assert proc.wait(timeout=300) == 128 + signum, log.read_text()[-3000:]
        rows = {r["job"]: r for r in _rows(sweep)}
        assert sorted(rows) == ["0", "1", "2"], rows  # parallel: 2 was queued, and is recorded as such
        name = signal.Signals(signum).name
        for job, row in rows.items():
            assert row["status"] == "interrupted", row
            expected = f"interrupted by {name}" if job in training else f"not started: the sweep was stopped by {name}"
            assert expected in row["error"] and "re-run the same command" in row["error"], row
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        deadline = time.monotonic() + 10
        while _in_group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _in_group(proc.pid), "a worker outlived the sweep"
    finally:
        for pid in _in_group(proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


# -- 7: fail at start, not after training ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "objective, message",
    [
        ("val/nonexistent", "objective='val/nonexistent': the classification model logs no such metric; use val_best"),
        ("test/top1", "objective='test/top1': a search selects on validation only"),
    ],
)
def test_a_search_checks_its_objective_before_any_trial(run_lga, tmp_path, objective, message):
    sweep = tmp_path / "search"
    proc = run_lga(*SEARCH, "hydra.sweeper.n_trials=2", f"objective={objective}", f"hydra.sweep.dir={sweep}")
    _clean_error(proc, f"error: {message}")
    assert not list(sweep.glob("*/.hydra")), "no trial may start"


def test_validation_metrics_are_those_the_models_log(run_lga, tmp_path):
    """The names the objective check reads (lga.tuning.VALIDATION_METRICS) are what the models log."""
    from lga.models.detection import MAP_KEYS
    from lga.tuning import VALIDATION_METRICS

    assert set(VALIDATION_METRICS["detection"]) == {f"val/{k}" for k in MAP_KEYS.values()} | {"val/map50_best"}
    proc = run_lga(*DEBUG, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = {k for k in _record(tmp_path / "run")["metrics"] if k.startswith("val/")}
    assert logged == set(VALIDATION_METRICS["classification"])


def test_an_unwritable_study_dir_fails_before_training(tmp_path):
    """study_dir under a regular file: refused at the start, naming it and LGA_STUDY_DIR (before: every job
    trained, then NotADirectoryError, with no record and no summary)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sweep = tmp_path / "sweep"
    proc = _python(tmp_path, "run.py", "-m", "experiment=study_tiny", "logger=none", f"hydra.sweep.dir={sweep}",
                   env={"LGA_STUDY_DIR": str(blocker / "study")})  # fmt: skip
    _clean_error(proc, f"error: cannot write the study directory {blocker / 'study' / 'tiny'}", "LGA_STUDY_DIR")
    assert not list(sweep.glob("*/.hydra")), "no job may start"


# -- 8: data checked at load ----------------------------------------------------------------------------------


def _bad_copy(tmp_path: Path, case: str) -> Path:
    """mnist_5k with one defect: a training label 12, a test label 12, or a float image with NaN."""
    data = tmp_path / case
    shutil.copytree(MNIST_5K, data)
    if case in ("train_label", "test_label"):
        name = "train-5k-labels-idx1-ubyte.gz" if case == "train_label" else "t10k-labels-idx1-ubyte.gz"
        labels = read_idx(data / name)
        labels[7] = 12
        write_idx(data / name, labels)
    else:  # IDX float32 images (type 0x0D), one NaN pixel
        images = read_idx(data / "train-5k-images-idx3-ubyte.gz").numpy().astype(">f4")
        images[5, 3, 3] = float("nan")
        header = bytes([0, 0, 0x0D, 3]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
        (data / "train-5k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes(), mtime=0))
    return data


@pytest.mark.parametrize(
    "case, file, message",
    [
        (
            "train_label",
            "train-5k-labels-idx1-ubyte.gz",
            "label 12 at index 7 is outside 0..9 (dataset.num_classes=10)",
        ),
        ("test_label", "t10k-labels-idx1-ubyte.gz", "label 12 at index 7 is outside 0..9"),
        ("nan", "train-5k-images-idx3-ubyte.gz", "image 5 holds NaN or infinite pixels"),
    ],
)
def test_bad_data_is_named_at_load_before_training(run_lga, tmp_path, case, file, message):
    """Before: an IndexError naming no file (a test label only after all training); NaN pixels ended as
    `diverged` with advice to lower the learning rate."""
    data = _bad_copy(tmp_path, case)
    run_dir = tmp_path / "run"
    proc = run_lga(*DEBUG, f"dataset.search_dirs=[{data}]", f"hydra.run.dir={run_dir}")
    _clean_error(proc, f"error: {data / file}: {message}")
    record = _record(run_dir)
    assert record["status"] == "failed" and str(data / file) in record["error"]
    assert not (run_dir / "checkpoints").exists(), "nothing may train on bad data"


def test_a_nan_box_is_named_by_the_detection_loader(run_lga, tmp_path):
    from torchvision.io import write_png

    (tmp_path / "img").mkdir()
    write_png(torch.full((3, 30, 40), 128, dtype=torch.uint8), str(tmp_path / "img/a.png"))
    annotations = tmp_path / "ann.json"
    annotations.write_text(json.dumps({  # json.dumps writes NaN, and json.loads reads it back
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, float("nan"), 10, 5]}],
        "categories": [{"id": 1, "name": "thing"}],
    }))  # fmt: skip
    proc = run_lga(*DEBUG, "task=detection", "dataset=coco", f"dataset.annotations.train={annotations}",
                   f"dataset.annotations.val={annotations}", f"dataset.images.train={tmp_path / 'img'}",
                   f"dataset.images.val={tmp_path / 'img'}", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    _clean_error(proc, f"{annotations}: annotations[0] (id 1): box [2, nan, 12, nan] has a NaN or infinite coordinate")


# -- 9: silently wrong options --------------------------------------------------------------------------------


def test_a_fractional_validation_count_is_refused(run_lga, tmp_path):
    """val_size=1.5 kept 1 validation image and picked the best checkpoint on it."""
    proc = run_lga(*DEBUG, "dataset.val_size=1.5", f"hydra.run.dir={tmp_path / 'run'}")
    _clean_error(proc, "error: dataset.val_size=1.5 is out of range: it must be a fraction below 1", "whole number")


def test_a_typo_in_the_search_space_is_an_error(run_lga, tmp_path):
    """A searched key no config has (before: logged once at INFO, and the search ran without it)."""
    conf = tmp_path / "conf"
    (conf / "hparams_search").mkdir(parents=True)
    (conf / "hparams_search/typo.yaml").write_text(
        "# @package _global_\ndefaults:\n  - optuna\nhydra:\n  sweeper:\n    params:\n"
        "      optimizer.lrr: tag(log, interval(0.0001, 0.01))\n"
    )
    sweep = tmp_path / "search"
    proc = run_lga("-m", "--config-dir", str(conf), "hparams_search=typo", *DEBUG, f"hydra.sweep.dir={sweep}")
    output = _clean_error(proc, "error: hydra.sweeper.params (hparams_search=typo) searches optimizer.lrr, which this "
                          "config does not have (did you mean optimizer.lr?)")  # fmt: skip
    assert "the optimizer options are optimizer.lr, " in output and "optimizer.weight_decay" in output
    assert not list(sweep.glob("*/.hydra"))


def test_a_joblib_option_the_parallel_launcher_ignores_is_an_error(run_lga, tmp_path):
    """hydra/launcher=parallel runs loky workers itself: joblib's backend, timeout, ... would be ignored."""
    sweep = tmp_path / "sweep"
    proc = run_lga("-m", "hydra/launcher=parallel", "hydra.launcher.backend=threading", "hydra.launcher.timeout=5",
                   *DEBUG, f"hydra.sweep.dir={sweep}")  # fmt: skip
    _clean_error(proc, "error: hydra/launcher=parallel does not use hydra.launcher.backend, hydra.launcher.timeout")
    assert not list(sweep.glob("*/result.json"))


def test_no_trials_is_a_clear_error(run_lga, tmp_path):
    proc = run_lga(*SEARCH, "hydra.sweeper.n_trials=0", f"hydra.sweep.dir={tmp_path / 'search'}")
    _clean_error(proc, "error: hydra.sweeper.n_trials=0: a search runs at least 1 trial")


@pytest.mark.slow
def test_tuned_refuses_another_setting_unless_asked_and_the_summary_shows_it(run_lga, tmp_path):
    """A search of attention=se feeds attention=lga only with LGA_TUNED_FROM_OTHER=1, recorded; the sweep
    summary has a tuned column. (Before: accepted silently, and nothing in the summary said so.)"""
    search = tmp_path / "search-se"
    made = run_lga(*SEARCH, "attention=se", "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={search}")
    assert made.returncode == 0, made.stderr[-3000:]
    refused = run_lga(*DEBUG, f"tuned={search}", "attention=lga", f"hydra.run.dir={tmp_path / 'refused'}")
    setting = "that search was made in another setting (attention se there, lga here)"
    _clean_error(refused, f"error: tuned={search}: {setting}", "python run.py -m hparams_search=optuna attention=lga",
                 "LGA_TUNED_FROM_OTHER=1")  # fmt: skip
    sweep = tmp_path / "sweep"
    taken = _python(tmp_path, "run.py", "-m", *DEBUG, f"tuned={search}", "attention=lga,se", f"hydra.sweep.dir={sweep}",
                    env={"LGA_TUNED_FROM_OTHER": "1"})  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-3000:]
    rows = {r["attention"]: r for r in _rows(sweep)}
    assert rows["lga"]["tuned"] == "search-se (other setting)" and rows["se"]["tuned"] == "search-se"
    assert _record(sweep / "0")["tuned"]["other_setting"] == "attention se there, lga here"


# -- 10: reports ---------------------------------------------------------------------------------------------

STUDY = ROOT / "experiments/study"


def _sweep_of_records(directory: Path, jobs: dict[str, Path]) -> Path:
    for name, source in jobs.items():
        (directory / name).mkdir(parents=True)
        shutil.copy(source / "result.json", directory / name / "result.json")
    return directory


def _mixed_sweep(directory: Path) -> Path:
    jobs = {}
    for seed in (0, 1, 2):
        for attention in ("none", "lga"):
            jobs[f"c-{attention}-{seed}"] = STUDY / f"classification/jobs/fashion-mobilenetv3_paper-{attention}-s{seed}"
            jobs[f"d-{attention}-{seed}"] = STUDY / f"detection/jobs/tiny_objects-mobilenetv3-{attention}-s{seed}"
    return _sweep_of_records(directory, jobs)


def test_report_on_a_mixed_sweep_has_a_section_per_task(tmp_path):
    """Before: the detection jobs vanished without a word."""
    sweep = _mixed_sweep(tmp_path / "mixed")
    proc = _python(tmp_path, "-m", "lga.report", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (sweep / "report.md").read_text()
    assert "# classification" in report and "# detection" in report
    assert "| fashion | lga |" in report and "| tiny_objects | lga |" in report
    assert (sweep / "report-classification.png").is_file() and (sweep / "report-detection.png").is_file()
    one = _python(tmp_path, "-m", "lga.report", str(sweep), "--metric", "test_top1")
    assert one.returncode == 0, one.stderr[-3000:]
    assert "6 detection job(s) left out: test_top1 is a classification metric" in (sweep / "report.md").read_text()


def _damage(path: Path, how: str) -> None:
    record = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[:200])
        return
    del record[how]
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "how, message",
    [("metrics", "status 'ok' but no metrics; the record is damaged, rerun the job"),
     ("truncated", "cannot read the run record")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["lga.report", "lga.study"])
def test_report_and_study_name_a_damaged_record(tmp_path, command, how, message):
    jobs = {f"{a}-{s}": STUDY / f"classification/jobs/fashion-mobilenetv3_paper-{a}-s{s}"
            for a in ("none", "lga") for s in (0, 1)}  # fmt: skip
    root = tmp_path / "studies"
    directory = _sweep_of_records(root / "s" / "jobs" if command == "lga.study" else tmp_path / "sweep", jobs)
    damaged = directory / "lga-1/result.json"
    _damage(damaged, how)
    target = ["--root", str(root)] if command == "lga.study" else [str(directory)]
    proc = _python(tmp_path, "-m", command, *target)
    assert proc.returncode == 1
    _clean_error(proc, f"error: {damaged}: {message}")


def test_study_figures_without_a_parameter_count(tmp_path):
    """Records with no `params` (before: a TypeError deep in matplotlib) leave the cost figure with a note."""
    jobs = {f"{a}-{s}": STUDY / f"classification/jobs/fashion-mobilenetv3_paper-{a}-s{s}"
            for a in ("none", "lga") for s in (0, 1)}  # fmt: skip
    directory = _sweep_of_records(tmp_path / "studies/s/jobs", jobs)
    for path in directory.glob("lga-*/result.json"):
        _damage(path, "params")
    proc = _python(tmp_path, "-m", "lga.study", "--root", str(tmp_path / "studies"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "Not on the cost figure (their records have no parameter or FLOP count): fashion lga."
        in (tmp_path / "studies/s.md").read_text()
    )


# -- 11: timm backbones and options ---------------------------------------------------------------------------

HOOK_FAMILIES = {"pit_ti_224": 224, "xception41": 64, "legacy_xception": 64, "nasnetalarge": 64, "pnasnet5large": 64}


@pytest.mark.parametrize("model_name", HOOK_FAMILIES)
def test_hook_feature_families_take_a_block_after_the_network(model_name):
    """timm reads these models' maps with hooks inside blocks: placement=last works (the block acts on the
    final map), a block between stages is refused with why and which families take one."""
    from functools import partial

    from lga.attention import create_attention
    from lga.backbones import BACKBONES

    se = partial(create_attention, "se")
    backbone = BACKBONES.get("timm")(model_name=model_name, in_chans=1, attention=se, placement="last")
    assert list(backbone.attention) == [str(len(backbone.stage_channels) - 1)]
    if model_name in ("pit_ti_224", "legacy_xception"):  # the others' forward passes take seconds
        side = HOOK_FAMILIES[model_name]
        maps = backbone(torch.randn(1, 1, side, side))
        assert [m.shape[1] for m in maps.values()] == backbone.out_channels
    with pytest.raises(ValueError, match="hooks inside its blocks.*use placement=last.*resnet, efficientnet"):
        BACKBONES.get("timm")(model_name=model_name, in_chans=1, attention=se, placement="stages")


def test_a_hook_family_trains_through_run_py(run_lga, tmp_path):
    small = ["dataset.image_size=64", "dataset.batch_size=8", "dataset.eval_batch_size=8"]
    proc = run_lga("backbone=timm", "backbone.model_name=legacy_xception", *small, *DEBUG,
                   f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = run_lga("backbone=timm", "backbone.model_name=legacy_xception", "backbone.placement=stages", *small,
                     *DEBUG, f"hydra.run.dir={tmp_path / 'stages'}")  # fmt: skip
    _clean_error(stages, "placement='stages' on legacy_xception: timm reads its feature maps with hooks")


def test_pretrained_weights_offline_fail_fast_naming_the_option(run_lga, tmp_path):
    """Before: huggingface_hub retried for 55 s, then a traceback that did not mention the option."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}  # nothing listens on port 9
    started = time.monotonic()
    proc = _python(tmp_path, "run.py", "backbone=timm", "backbone.pretrained=true", "dataset.image_size=64", *DEBUG,
                   f"hydra.run.dir={tmp_path / 'run'}", env=env)  # fmt: skip
    _clean_error(proc, "backbone.pretrained=true: timm's weights for 'resnet18d' are not cached here and "
                 "http://127.0.0.1:9 cannot be reached", "backbone.model_options.pretrained_cfg_overlay.file=",
                 "backbone.pretrained=false")  # fmt: skip
    assert time.monotonic() - started < 50


@pytest.mark.parametrize(
    "override", ["+backbone.model_options={drop_rate: 0.1}", "+backbone.model_options.drop_rate=0.1"]
)
def test_timm_model_options_from_the_command_line(run_lga, tmp_path, override):
    run_dir = tmp_path / "run"
    small = ["dataset.image_size=64", "dataset.batch_size=8", "dataset.eval_batch_size=8"]
    proc = run_lga("backbone=timm", override, *small, *DEBUG, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _record(run_dir)["config"]["backbone"]["model_options"] == {"drop_rate": 0.1}

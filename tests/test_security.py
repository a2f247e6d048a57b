"""Files in a run or search directory are data: none of them may run code (each test plants a
payload that would create a marker file, and checks that the marker never appears)."""

import pathlib

import pytest
import torch
import yaml


class _Payload:
    """Unpickling this creates the marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_crafted_checkpoint_runs_no_code_when_a_run_resumes(run_lga, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, run_dir / "checkpoints/last.ckpt")
    proc = run_lga("trainer=debug", "logger=none", f"hydra.run.dir={run_dir}")
    assert not marker.exists(), "loading the checkpoint ran its payload"
    assert proc.returncode == 1
    assert "lga does not run code from a run directory" in proc.stderr and "Traceback" not in proc.stderr


def test_a_truncated_checkpoint_is_named_and_keeps_the_finished_record(run_lga, tmp_path):
    run_dir = tmp_path / "run"
    first = run_lga("trainer=debug", "logger=none", f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr[-3000:]
    record = (run_dir / "result.json").read_bytes()
    last = run_dir / "checkpoints/last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    again = run_lga("trainer=debug", "logger=none", f"hydra.run.dir={run_dir}")
    assert again.returncode == 1 and f"{last} is not a readable checkpoint" in again.stderr
    assert (run_dir / "result.json").read_bytes() == record
    assert len(list(run_dir.glob("attempt-*.json"))) == 1


def _search_dir(path: pathlib.Path, best: dict, params: dict) -> pathlib.Path:
    """A finished search's directory as hparams_search=optuna leaves it (the two files tuned= reads)."""
    path.mkdir(parents=True)
    (path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": params}}}))
    (path / "optimization_results.yaml").write_text(yaml.safe_dump({"name": "optuna", "best_params": best}))
    return path


SEARCHED = {"optimizer.lr": "tag(log, interval(0.0001, 0.01))", "model.label_smoothing": "interval(0.0, 0.2)"}


@pytest.mark.parametrize(
    "key, declared, message",
    [
        ("callbacks.epoch_line", SEARCHED, "which is not a hyperparameter"),
        ("model", SEARCHED, "which its search did not search"),
        ("model", {**SEARCHED, "model": "choice(x)"}, "outside its search's space"),
    ],
)
def test_tuned_applies_no_key_its_search_did_not_declare(run_lga, tmp_path, key, declared, message):
    marker = tmp_path / "pwned"
    payload = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    search = _search_dir(tmp_path / "search", {"optimizer.lr": 0.001, key: payload}, declared)
    proc = run_lga("trainer=debug", "logger=none", f"tuned={search}", f"hydra.run.dir={tmp_path}/run")
    assert not marker.exists(), "tuned= instantiated a target from the results file"
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_tuned_refuses_a_value_outside_the_searched_space(run_lga, tmp_path):
    search = _search_dir(tmp_path / "search", {"optimizer.lr": 5.0}, SEARCHED)
    proc = run_lga("trainer=debug", "logger=none", f"tuned={search}", f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 1 and "sets optimizer.lr=5.0, outside its search's space" in proc.stderr


def test_tuned_refuses_an_interpolation_that_would_build_an_object(run_lga, tmp_path):
    """A declared choice whose value is an OmegaConf interpolation (``${oc.create:{_target_: ...}}``) would
    build an object when the optimizer's config resolves: only numbers and plain words are applied."""
    marker = tmp_path / "pwned"
    payload = "${oc.create:{_target_: builtins.open, file: %s, mode: w}}" % marker
    declared = {**SEARCHED, "optimizer.betas": f"choice('{payload}')"}
    search = _search_dir(tmp_path / "search", {"optimizer.betas": payload}, declared)
    proc = run_lga("trainer=debug", "logger=none", f"tuned={search}", f"hydra.run.dir={tmp_path}/run")
    assert not marker.exists(), "an interpolation from the results file built an object"
    assert proc.returncode == 1 and "outside its search's space" in proc.stderr and "Traceback" not in proc.stderr

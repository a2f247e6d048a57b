import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from lga.schemas import register_configs

ROOT = Path(__file__).resolve().parents[1]
register_configs()


@pytest.fixture
def compose_cfg():
    """Compose conf/train.yaml with overrides, as run.py would (without running)."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()


def _lga_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LGA_LOG_DIR": str(tmp_path / "logs"),
        "LGA_DATA_DIR": str(tmp_path / "data"),
        "LGA_STUDY_DIR": str(tmp_path / "study"),  # study records never land in the repository
        "WANDB_API_KEY": "",  # offline W&B, whatever the machine has configured
        "WANDB_DIR": str(tmp_path / "wandb"),
        "HYDRA_FULL_ERROR": "1",
    }


def run_lga_in(tmp: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` in a subprocess with logs and data under ``tmp`` (module-scoped fixtures
    call it with their own directory)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=ROOT, env=_lga_env(tmp), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def run_lga(tmp_path):
    """Run ``python run.py ARGS`` in a subprocess with logs and data under tmp_path."""
    return lambda *args, timeout=600: run_lga_in(tmp_path, *args, timeout=timeout)


@pytest.fixture
def start_lga(tmp_path):
    """Start ``python run.py ARGS`` in the background (same environment as ``run_lga``), its
    output going to ``proc.log`` (a file); killed at teardown if it is still running."""
    procs: list[subprocess.Popen] = []

    def _start(*args: str) -> subprocess.Popen:
        log = tmp_path / f"background-{len(procs)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "run.py"), *args],
                cwd=ROOT, env=_lga_env(tmp_path), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        proc.log = log
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

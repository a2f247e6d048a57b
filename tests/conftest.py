import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from lga.config import register_configs

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


@pytest.fixture
def run_lga(tmp_path):
    """Run ``python run.py ARGS`` in a subprocess with logs and data under tmp_path."""

    def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "LGA_LOG_DIR": str(tmp_path / "logs"),
            "LGA_DATA_DIR": str(tmp_path / "data"),
            "WANDB_API_KEY": "",  # offline W&B, whatever the machine has configured
            "WANDB_DIR": str(tmp_path / "wandb"),
            "HYDRA_FULL_ERROR": "1",
        }
        return subprocess.run(
            [sys.executable, str(ROOT / "run.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run

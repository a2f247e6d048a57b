"""What a run prints: a header, one line per epoch, a short result block; the libraries' noise only with
verbose=true, and train.log in its full form."""

import re
from pathlib import Path

import pytest

EPOCHS = 2


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    from tests.conftest import run_lga_in

    tmp = tmp_path_factory.mktemp("console")
    proc = run_lga_in(
        tmp, "trainer=debug", f"trainer.max_epochs={EPOCHS}", "trainer.limit_train_batches=2", "logger=csv"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_run_prints_a_header_an_epoch_line_each_and_a_result_block(quiet_run):
    lines = (quiet_run.stdout + quiet_run.stderr).strip().splitlines()
    assert len(lines) <= 6 + EPOCHS, "\n".join(lines)
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in lines), "\n".join(lines)
    assert any(" run mnist_5k-mobilenetv3-lga-s0 " in line for line in lines[:3])
    epochs = [line for line in lines if re.search(r"\] epoch \d+/\d+ \| ", line)]
    assert len(epochs) == EPOCHS
    for line in epochs:  # one value per metric: no train/loss beside train/loss_epoch
        keys = re.findall(r"\| ([\w/]+) [-\d.e]+", line)
        assert keys and len(keys) == len(set(keys)) and not any(k.endswith(("_epoch", "_step")) for k in keys)
    assert "] result: test/loss " in lines[-3] and "] run directory: " in lines[-2]
    for noise in ("Total FLOPs", "was configured so", "LeafSpec", "litlogger", "GPU available"):
        assert noise not in quiet_run.stdout + quiet_run.stderr


def test_train_log_keeps_the_full_form(quiet_run):
    directory = re.search(r"\] run directory: (\S+) ", quiet_run.stdout + quiet_run.stderr).group(1)
    log = (Path(directory) / "train.log").read_text()
    assert re.search(r"\]\[lga\.callbacks\]\[INFO\] - epoch 1/2 \|", log), log[:2000]


def test_a_warning_shows_its_level_on_the_console():
    import logging

    from lga.console import ConsoleFormatter

    formatter = ConsoleFormatter(fmt="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    record = logging.LogRecord("lga", logging.WARNING, __file__, 1, "job %s did not learn", ("x",), None)
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] warning: job x did not learn", formatter.format(record))
    record.levelno = logging.INFO
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] job x did not learn", formatter.format(record))

"""What a run prints: a header (what runs, on what, where it logs), one line per epoch
(:class:`lga.callbacks.EpochLine`), and a short result block. Lightning's and W&B's
informational messages are silenced unless ``verbose=true``; real warnings stay."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from .analysis.identity import run_name
from .analysis.record import RunRecord

log = logging.getLogger("lga")

# informational messages of the libraries that say nothing about this run: device lists,
# advertising, "limit_*_batches=1.0 was configured", which checkpoint test() restores
_CHATTY_LOGGERS = ("lightning.pytorch", "lightning.fabric")
_NOISE = (
    r".*isinstance\(treespec, LeafSpec\)",  # a deprecation inside Lightning, not ours to fix
    r".*is called with Trainer configured with multiple `ModelCheckpoint`",  # best and last: on purpose
    r".*The `srun` command is available on your system but is not used",  # lga's launchers handle SLURM
)


class ConsoleFormatter(logging.Formatter):
    """The console's form (``conf/hydra/default.yaml``): time and message, and the level of a message
    that is not INFO (``warning: ...``)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.INFO:
            return text
        stamp, _, message = text.partition("] ")
        return f"{stamp}] {record.levelname.lower()}: {message}"


def quiet_libraries(verbose: bool) -> None:
    """Silence the libraries' informational messages (``verbose=false``, the default)."""
    if verbose:
        return
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("WANDB_SILENT", "true")


def _where_logged(loggers: list, output_dir: Path) -> str:
    for logger in loggers:
        name = type(logger).__name__
        if name == "WandbLogger":
            offline = getattr(logger, "_offline", False)
            return f"W&B {'offline (wandb sync ' + str(output_dir / 'wandb') + ' uploads it)' if offline else 'online'}"
        return f"{name.removesuffix('Logger')} in {output_dir}"
    return "no logger (logger=none)"


def header(axes: dict[str, Any], cost: dict[str, int], threads: int, output_dir: Path, loggers: list) -> None:
    """Two lines: what runs, its size, where it logs."""
    variant = f" [{axes['variant']}]" if axes.get("variant") else ""
    log.info(
        "run %s%s: %s %s model, %.2f M params, %.1f MFLOPs/image, %d threads",
        run_name(axes), variant, axes["task"], axes["backbone_class"], cost["params"] / 1e6, cost["flops"] / 1e6,
        threads,
    )  # fmt: skip
    log.info("logs: %s; %s", output_dir, _where_logged(loggers, output_dir))


def result_block(record: RunRecord, output_dir: Path, sweep: bool) -> None:
    """3-4 lines: the test metrics, the run directory, the next command to compare."""
    tested = {k: v for k, v in record.metrics.items() if k.startswith("test/") and k != "test/images"}
    shown = ", ".join(
        f"{k} {v:.4g}" if k.endswith("loss") else f"{k} {100 * v:.2f}%"
        for k, v in sorted(tested.items())
        if v is not None and v >= 0  # COCO's -1: no object of that size
    )
    best = record.metrics.get(f"{record.monitor}_best") if record.monitor else None
    status = record.status + (f" ({record.error})" if record.error else "")
    log.info("result: %s | best %s %.2f%% | %s", shown or "not tested", record.monitor, 100 * (best or 0), status)
    log.info("run directory: %s (result.json, checkpoints/, train.log)", output_dir)
    if not sweep:
        log.info(
            "compare over seeds: python run.py -m attention=none,%s seed=0,1,2; then python -m lga.report <sweep>",
            record.attention,
        )

"""Resuming a run from its directory's ``last.ckpt``, only when this configuration wrote it.

The checkpoint is opened with ``torch.load(weights_only=True)``: a file in a run directory
is data, and a crafted pickle must not run code. lga's own checkpoints hold only tensors,
numbers, strings and containers, which the safe loader reads.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .analysis.identity import identity_of, with_introduced
from .callbacks import RunIdentity
from .utils import LGAError

log = logging.getLogger(__name__)


def differences(saved: Any, current: Any, source: str, prefix: str = "") -> list[str]:
    """``key: <saved> in the <source>, <current> now`` for every leaf where the two configs differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            d
            for k in sorted(set(saved) | set(current), key=str)
            for d in differences(saved.get(k), current.get(k), source, f"{prefix}{k}.")
        ]
    return [] if saved == current else [f"{prefix[:-1]}: {saved!r} in the {source}, {current!r} now"]


def shown(found: list[str]) -> str:
    return "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")


def identity_differences(saved: dict[str, Any] | None, identity: dict[str, Any], source: str) -> list[str]:
    """Where a saved run identity differs from this run's, both read through today's classification
    (a key since reclassified as run-only is dropped from both sides)."""
    return differences(with_introduced(identity_of(saved or {}), identity), identity, source)


def _fresh(checkpoint: Path) -> str:
    return (
        "to start over (or to train longer: trainer.max_epochs is part of a run's identity), give the run a new "
        f"directory (hydra.run.dir=... or hydra.sweep.dir=...) or delete {checkpoint.parent}"
    )


def load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's contents, read without running any code it may hold; a clear error otherwise."""
    try:
        return torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LGAError(
            f"{checkpoint} holds objects that only code can rebuild ({first}); lga does not run code from a run "
            f"directory, so this run cannot resume from it; {_fresh(checkpoint)}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise LGAError(
            f"{checkpoint} is not a readable checkpoint (truncated or damaged: {err}); {_fresh(checkpoint)}"
        ) from None


def check_resumable(checkpoint: Path, model: torch.nn.Module, identity: dict[str, Any]) -> None:
    """The checkpoint was written by this configuration (and holds this model's weights), or a clear error."""
    saved = load_checkpoint(checkpoint)
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise LGAError(f"{checkpoint} is not a Lightning checkpoint (no state_dict); {_fresh(checkpoint)}")
    found = identity_differences(saved[RunIdentity.KEY], identity, "checkpoint") if RunIdentity.KEY in saved else []
    if found:
        raise LGAError(
            f"{checkpoint} was written by another configuration ({shown(found)}), "
            f"so this run cannot resume from it; {_fresh(checkpoint)}"
        )
    expected = model.state_dict()
    if {k: tuple(v.shape) for k, v in saved["state_dict"].items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise LGAError(
            f"{checkpoint} holds a different model than this config builds, so this run cannot resume from it; "
            f"{_fresh(checkpoint)}"
        )


def resume_point(output_dir: Path, model: torch.nn.Module, identity: dict[str, Any]) -> str | None:
    """``last.ckpt`` of this run directory, if there is one this configuration wrote: a run restarted
    in the same directory (same hydra.run.dir / sweep.dir, or a SLURM requeue) continues from it."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    check_resumable(last, model, identity)
    log.info("resuming from %s", last)
    return str(last)

"""The run record: what every job writes to ``result.json``, typed, versioned and validated.

:class:`RunRecord` is written by :func:`write_record` and read by :func:`read_record` only.
Reading checks every field and names the file and the field on a problem; a record of an
older schema is migrated on read (:func:`_migrate`), one of a newer lga is refused.

Schema versions:

1. (no ``schema_version``) the records of the first study: overrides could hold a machine's
   path (``study_dir=/...``), ``resumed_from`` an absolute path, no per-epoch history, and a
   job that never learned was ``ok``.
2. location overrides left out, paths relative to the run directory, ``history`` (one row per
   epoch), and the ``not_learned`` status (:func:`not_learned_reason`). Later, within version 2,
   ``device`` (optional: a record without it trained on CPU).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ..utils import LGAError, write_json
from .identity import recordable_overrides

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
ATTEMPT_GLOB = "attempt-*.json"  # a rerun that did not finish, beside a finished record it must not overwrite

STATUSES = {
    "ok": "trained and tested",
    "not_learned": "ran to its end but did not learn (the rule of its task: lga.analysis.record.not_learned_reason)",
    "failed": "bad input, 0 training steps, or an error",
    "diverged": "the loss or a validation metric became NaN or infinite",
    "interrupted": "stopped by SIGTERM or SIGINT; the same command resumes it",
    "incomplete": "no result.json: killed before it could record, or still running",
}
# outcomes that are results of a study: the job ran to its end
FINISHED = ("ok", "not_learned", "diverged")


@dataclass
class RunRecord:
    """One job: its place in the sweep, its status, and when it trained, what it measured."""

    status: str
    dataset: str
    backbone: str
    attention: str
    seed: int
    variant: str = ""
    task: str = "classification"
    backbone_class: str | None = None
    overrides: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the run identity (lga.analysis.identity.run_identity)
    error: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    history: list[dict[str, float | None]] = field(default_factory=list)  # one row per epoch
    monitor: str | None = None  # the validation metric that picks the best checkpoint
    test_images_total: int | None = None
    params: int | None = None
    flops: int | None = None
    train_time_s: float | None = None
    train_steps: int | None = None  # optimizer steps
    throughput: dict[str, float | None] | None = None
    lga_weights: list[dict[str, Any]] | None = None
    threads: int | None = None
    # where it trained: "cpu", or the accelerator's name ("cuda: NVIDIA H200"); None in records
    # written before lga recorded it, all of which trained on CPU
    device: str | None = None
    resumed_from: str | None = None  # relative to the run directory
    tuned: dict[str, Any] | None = None  # the search whose best hyperparameters this job used
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


_FIELDS = {f.name: f for f in dataclasses.fields(RunRecord)}
_REQUIRED = [
    n for n, f in _FIELDS.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]
_TYPES = {"status": str, "dataset": str, "backbone": str, "attention": str, "seed": int, "metrics": dict,
          "history": list, "overrides": list}  # fmt: skip


def write_record(job_dir: str | Path, record: RunRecord) -> None:
    write_json(Path(job_dir) / RESULT_FILE, record.to_dict())


def record_from_dict(data: dict[str, Any], source: str) -> RunRecord:
    """Validate ``data`` (migrating an older schema) into a :class:`RunRecord`; ``source`` names it in errors."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise LGAError(
            f"{source}: schema_version {version!r} is newer than this lga reads ({SCHEMA_VERSION}); update lga"
        )
    if version < SCHEMA_VERSION:
        data = _migrate(dict(data))
    unknown = sorted(set(data) - set(_FIELDS))
    missing = [n for n in _REQUIRED if n not in data]
    if unknown or missing:
        problems = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing field(s) {', '.join(missing)}"] if missing else []
        )
        raise LGAError(f"{source}: not a run record of schema {SCHEMA_VERSION}: {'; '.join(problems)}")
    for name, kind in _TYPES.items():
        if name in data and not isinstance(data[name], kind):
            raise LGAError(f"{source}: field {name!r} must be a {kind.__name__}, not {type(data[name]).__name__}")
    if data["status"] not in STATUSES:
        raise LGAError(f"{source}: status {data['status']!r} is not one of {', '.join(STATUSES)}")
    if data["status"] in ("ok", "not_learned") and not data.get("metrics"):
        raise LGAError(f"{source}: status {data['status']!r} but no metrics; the record is damaged, rerun the job")
    return RunRecord(**data)


def read_record(path: str | Path) -> RunRecord:
    """The record in ``path`` (a ``result.json``), validated; :class:`LGAError` naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LGAError(f"{path}: cannot read the run record ({err}); delete it and rerun the job") from None
    if not isinstance(data, dict):
        raise LGAError(f"{path}: a run record is a JSON object, not a {type(data).__name__}")
    return record_from_dict(data, str(path))


def _relative_checkpoint(path: str | None) -> str | None:
    """An absolute checkpoint path of a v1 record as the run directory sees it (``checkpoints/last.ckpt``)."""
    return None if path is None else str(PurePath(*PurePath(path).parts[-2:]))


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: no machine paths, an empty history, and ``not_learned`` where the task's rule says so."""
    data["overrides"] = recordable_overrides(data.get("overrides", []))
    data["resumed_from"] = _relative_checkpoint(data.get("resumed_from"))
    if isinstance(data.get("tuned"), dict) and "from" in data["tuned"]:
        data["tuned"] = {**data["tuned"], "from": PurePath(data["tuned"]["from"]).parent.name}
    data.setdefault("history", [])
    data["schema_version"] = SCHEMA_VERSION
    if data.get("status") == "ok":
        reason = not_learned_reason(data.get("task", "classification"), data.get("metrics") or {},
                                    data["history"], data.get("config"))  # fmt: skip
        if reason is not None:
            data["status"], data["error"] = "not_learned", reason
    return data


# a FCOS box regressor that learned has a GIoU loss far below this (0.16-0.17 in every tiny_objects
# study job that learned); 0.5 means its boxes overlap their objects by little more than chance
DETECTION_MAX_BOX_LOSS = 0.5
# a run shorter than this (trainer=debug: 1 step) is a smoke test, too short to say whether it learns
MIN_JUDGED_STEPS = 100
# the training loss of a run that learns falls by more than this fraction from its first epoch to its last
MIN_LOSS_DROP = 0.05


def not_learned_reason(
    task: str,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    config: dict[str, Any] | None,
    steps: int | None = None,
) -> str | None:
    """Why a run that ran to its end did not learn, or None if it did (or if it trained fewer than
    :data:`MIN_JUDGED_STEPS` steps: too short to tell). The rule, per task:

    - classification: the best validation top-1 is under twice chance (2 / number of classes);
    - detection with FCOS: the last training box-regression loss (GIoU) is above :data:`DETECTION_MAX_BOX_LOSS`
      (a threshold set on the tiny_objects study, where every run that learned ends near 0.16);
    - any task with 3 or more epochs of history: the last epoch's training loss is above
      ``1 - MIN_LOSS_DROP`` times the first epoch's.
    """
    if steps is not None and steps < MIN_JUDGED_STEPS:
        return None
    if task == "classification":
        classes = ((config or {}).get("dataset") or {}).get("num_classes")
        best = metrics.get("val/top1_best")
        if classes and best is not None and best < 2 / classes:
            return f"best validation top-1 {100 * best:.1f}% is under twice chance ({200 / classes:.1f}%)"
    detector = (((config or {}).get("model") or {}).get("detector")) or "fcos"
    if task == "detection" and detector == "fcos":  # FCOS's box loss is GIoU; RetinaNet's is L1 on deltas
        box = metrics.get("train/loss_bbox_regression")
        if box is not None and box > DETECTION_MAX_BOX_LOSS:
            return f"box regression never learned: training GIoU loss {box:.2f} > {DETECTION_MAX_BOX_LOSS}"
    losses = [row.get("train/loss") for row in history]
    if len(losses) >= 3 and None not in (losses[0], losses[-1]) and losses[-1] > (1 - MIN_LOSS_DROP) * losses[0]:
        return f"training loss fell by under {100 * MIN_LOSS_DROP:.0f}% ({losses[0]:.3g} -> {losses[-1]:.3g})"
    return None


def main(argv: list[str] | None = None) -> None:
    """``python -m lga.analysis.record DIR...``: rewrite every ``result.json`` under DIR in the current schema."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dirs", nargs="+", type=Path)
    for directory in parser.parse_args(argv).dirs:
        for path in sorted(directory.rglob(RESULT_FILE)):
            try:
                record = read_record(path)
            except LGAError as err:
                raise SystemExit(f"error: {err}") from None
            write_record(path.parent, record)
            print(f"{path}: schema {SCHEMA_VERSION}, {record.status}")


if __name__ == "__main__":
    main()

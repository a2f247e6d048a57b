"""The results contract: what every job records, and how a sweep's records read back.

A job writes ``result.json`` in its directory (:func:`write_result`), whatever happens
to it: its axes (:func:`job_axes`), its status (:data:`STATUSES`) and, when it
finished, metrics, cost and throughput. :func:`sweep_rows` turns a sweep directory into
one flat row per job (metrics in percent), :func:`sweep_frame` into a pandas DataFrame.
The summary, the seed report, the launchers and the notebooks all read through here.

Nothing here imports torch or Lightning: reading results must stay cheap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from ..utils import write_json

RESULT_FILE = "result.json"
# config groups whose chosen option (the preset's name: mobilenetv3_paper, not the class mobilenetv3) is an axis
AXIS_GROUPS = ("dataset", "backbone", "attention")
AXES = ("dataset", "backbone", "attention", "seed", "variant")
STATUSES = {
    "ok": "trained and tested",
    "failed": "bad input, 0 training steps, or an error",
    "diverged": "the loss or a validation metric became NaN or infinite",
    "interrupted": "stopped by SIGTERM or SIGINT; the same command resumes it",
    "incomplete": "no result.json: killed before it could record, or still running",
}
# summary column -> result metric, per task (percent)
TASK_METRICS = {
    "classification": {"test_top1": "test/top1", "test_top5": "test/top5", "val_top1_best": "val/top1_best"},
    "detection": {
        "test_map50": "test/map50", "test_map": "test/map", "test_map_small": "test/map_small",
        "test_mar100": "test/mar100", "val_map50_best": "val/map50_best",
    },
}  # fmt: skip
METRIC_COLUMNS = [column for cols in TASK_METRICS.values() for column in cols]
TAIL = [
    "test_images", "params_M", "gflops", "train_time_s", "train_img_s", "eval_img_s", "step_ms", "wait_ms", "threads",
    "status", "error",
]  # fmt: skip


# overrides that change where or how a job runs or is shown, not what it computes: never a variant
RUN_ONLY = (
    "logger", "runtime", "paths", "tags", "study_dir", "callbacks", "trainer.accelerator", "trainer.devices",
    "trainer.strategy", "trainer.num_nodes", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
)  # fmt: skip


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def is_run_only(override: str) -> bool:
    """Whether an override only changes where or how a job runs (:data:`RUN_ONLY`)."""
    key = _override_key(override)
    return any(key == k or key.startswith(k + ".") for k in RUN_ONLY)


# named by an axis already (a timm model: backbone=timm/efficientnet_b0), or each variant's own (tune, then compare)
NAMED_ELSEWHERE = ("seed", "backbone.model_name", "tuned")


def _is_variant(override: str) -> bool:
    return _override_key(override) not in (*AXIS_GROUPS, *NAMED_ELSEWHERE) and not is_run_only(override)


def job_axes(cfg: DictConfig, choices: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A job's place in its sweep, from what the user chose.

    ``dataset``/``backbone``/``attention``: the option chosen in each group (Hydra's
    runtime choices), so two presets of one class stay apart; ``seed``; ``variant``:
    every other override that changes what is computed (not :data:`RUN_ONLY`), so two
    jobs that differ in anything else stay apart too.
    Also records the class behind the backbone preset and the task (the ``model`` option).
    """
    axes: dict[str, Any] = {group: choices.get(group) or _option_name(cfg[group]) for group in AXIS_GROUPS}
    if cfg.backbone.get("model_name"):  # backbone=timm: the model is the axis (timm/efficientnet_b0)
        axes["backbone"] = f"{axes['backbone']}/{cfg.backbone.model_name}"
    axes["seed"] = int(cfg.seed)
    axes["variant"] = " ".join(sorted(o for o in overrides if _is_variant(o)))
    axes["backbone_class"] = _option_name(cfg.backbone)
    axes["task"] = choices.get("model") or _option_name(cfg.model)
    return axes


def _option_name(node: Any) -> str:
    """A config node's name, or the class its ``_target_`` names."""
    return node.get("name") or str(node.get("_target_", "?")).rsplit(".", 1)[-1]


def run_name(axes: Mapping[str, Any]) -> str:
    """``<dataset>-<backbone>-<attention>-s<seed>``: the W&B run name and tags' basis."""
    return f"{axes['dataset']}-{axes['backbone']}-{axes['attention']}-s{axes['seed']}"


def study_record(study_dir: str | Path, axes: Mapping[str, Any]) -> Path:
    """Where a study keeps a job's record: ``<study_dir>/jobs/<run name>[--<variant>]/result.json``.
    The ``experiment=`` that selects the study is left out of the name: every job shares it."""
    variant = [o for o in str(axes.get("variant", "")).split() if _override_key(o) != "experiment"]
    name = run_name(axes) + ("--" + ",".join(variant) if variant else "")
    return Path(study_dir) / "jobs" / re.sub(r"[^A-Za-z0-9_.=,+-]", "_", name) / RESULT_FILE


def write_result(job_dir: str | Path, record: Mapping[str, Any]) -> None:
    write_json(Path(job_dir) / RESULT_FILE, dict(record))


def job_dirs(sweep_dir: str | Path) -> list[Path]:
    """Job directories, in job order: those Hydra wrote a config into, and those of jobs
    the scheduler ended before they started (the launcher left only a ``result.json``)."""
    sweep_dir = Path(sweep_dir)
    dirs = {p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")}
    dirs |= {p.parent for p in sweep_dir.glob(f"**/{RESULT_FILE}")}
    return sorted(dirs, key=lambda d: (len(d.name), d.name))


def read_result(job_dir: str | Path) -> dict[str, Any]:
    """The job's record; for a job that never wrote one, its axes from Hydra's files and status ``incomplete``."""
    job_dir = Path(job_dir)
    if (job_dir / RESULT_FILE).is_file():
        return json.loads((job_dir / RESULT_FILE).read_text())
    cfg = OmegaConf.load(job_dir / ".hydra/config.yaml")
    hydra = OmegaConf.load(job_dir / ".hydra/hydra.yaml").hydra if (job_dir / ".hydra/hydra.yaml").is_file() else None
    choices = hydra.runtime.choices if hydra is not None else {}
    overrides = list(hydra.overrides.task) if hydra is not None else []
    return {**job_axes(cfg, choices, overrides), "status": "incomplete", "error": STATUSES["incomplete"]}


def _percent(value: float | None) -> float | None:
    # COCO's mAP is -1 for a size class without objects: no value rather than a number
    return None if value is None or value < 0 else round(100 * value, 2)


def _test_images(tested: float | None, total: int | None) -> str | None:
    """How much of the test set the test metrics cover: ``10000``, or ``2000 of 10000`` when partial."""
    if tested is None:
        return None
    return f"{int(tested)}" if total is None or int(tested) >= total else f"{int(tested)} of {total}"


def result_row(result: Mapping[str, Any], job: str) -> dict[str, Any]:
    """One job's record as a flat row: axes, metrics (percent), test coverage, cost, throughput, status."""
    metrics, throughput = result.get("metrics", {}), result.get("throughput") or {}
    return {
        "job": job,
        **{k: result.get(k) for k in ("dataset", "backbone", "attention", "seed")},
        "variant": result.get("variant", ""),
        "task": result.get("task", "classification"),
        **{column: _percent(metrics.get(key)) for cols in TASK_METRICS.values() for column, key in cols.items()},
        "test_images": _test_images(metrics.get("test/images"), result.get("test_images_total")),
        "params_M": round(result["params"] / 1e6, 4) if "params" in result else None,
        "gflops": round(result["flops"] / 1e9, 4) if "flops" in result else None,
        "train_time_s": result.get("train_time_s"),
        "train_img_s": throughput.get("train_images_per_s"),
        "eval_img_s": throughput.get("eval_images_per_s"),
        "step_ms": throughput.get("step_ms"),
        "wait_ms": throughput.get("data_wait_ms"),
        "threads": result.get("threads"),
        "status": result.get("status"),
        "error": result.get("error", ""),
    }


def sweep_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job of a sweep directory (see :func:`result_row`), in job order."""
    sweep_dir = Path(sweep_dir)
    return [result_row(read_result(d), str(d.relative_to(sweep_dir))) for d in job_dirs(sweep_dir)]


def sweep_frame(sweep_dir: str | Path):
    """:func:`sweep_rows` as a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame(sweep_rows(sweep_dir))


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Summary columns: the axes (``variant`` only where jobs differ in it), the metrics of the
    tasks the sweep ran, then test coverage, cost and status."""
    tasks = {r["task"] for r in rows} or {"classification"}
    axes = ["job", "dataset", "backbone", "attention", "seed"]
    if len({r.get("variant", "") for r in rows}) > 1:
        axes.append("variant")
    return axes + [c for task, cols in TASK_METRICS.items() if task in tasks for c in cols] + TAIL

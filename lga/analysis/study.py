"""The study's report: the committed job records of ``experiments/study/<study>/jobs/`` as
tables with seed statistics, the paper's numbers beside them, cost, the learned LGA
weights, and figures.

    python -m lga.study                       # every study under experiments/study
    python -m lga.study --root DIR --study classification

For each study directory ``<root>/<study>/`` that holds ``jobs/*/result.json`` (written by
``run.py -m experiment=study_<study>``, see :func:`lga.analysis.results.study_record`), writes:

- ``<root>/<study>/jobs.csv``: one row per job (the sweep summary's columns);
- ``<root>/<study>.md``: per metric, every cell's mean ± sd over seeds, its paired difference
  to ``none`` (same data, same options, same seeds) with a 95% t interval and a p-value,
  Holm-corrected over every comparison of that metric, the paper's number, the cost, the
  paper's text against its released code, whether another setting (say 64 px input) changes
  a block's effect, and the LGA blocks' learned weights at the end of training;
- ``<root>/figures/<study>_*.png``: the metric per cell with CIs, the metric against cost,
  and the learned weights per epoch.

Everything is computed from the records, nothing typed by hand, and the output depends on
the records alone: re-running it rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..utils import REPO_ROOT, csv_text, markdown_table, write_atomic
from .report import aggregate, ci_half, fmt, paired_difference, values_by_group, without_attention_options
from .results import columns as summary_columns
from .results import is_run_only, sweep_rows

# where the study presets keep their records (LGA_STUDY_DIR overrides, as in conf/experiment/study_*.yaml)
STUDY_ROOT = Path(os.environ.get("LGA_STUDY_DIR", REPO_ROOT / "experiments" / "study"))
BASELINE = "none"

# The paper's own numbers (../shared/docs/PAPER.md), per dataset -> metric -> attention. Its LGA
# results come from its released code, so the number stands beside both LGA products.
# Detection: the paper's TinyPerson column, the nearest of its datasets to tiny_objects in
# spirit (small objects) but another dataset: for direction, not for level.
PAPER = {
    "fashion": {"test_top1": {"none": 92.8, "mhsa": 92.1, "se": 92.7, "cbam": 92.5, "lga": 92.9,
                              "lga_released": 92.9}},
    "mnist_5k": {"test_top1": {"none": 99.3, "mhsa": 99.3, "se": 99.3, "cbam": 99.3, "lga": 99.4,
                               "lga_released": 99.4}},
    "tiny_objects": {
        "test_map50": {"none": 9.88, "mhsa": 10.4, "se": 10.1, "eca": 9.96, "cbam": 10.4, "sa": 10.3, "la": 10.3,
                       "ga": 10.5, "lga": 10.8, "lga_released": 10.8},
        "test_map": {"none": 3.56, "mhsa": 3.71, "se": 3.59, "eca": 3.58, "cbam": 3.74, "sa": 3.70, "la": 3.61,
                     "ga": 3.81, "lga": 3.85, "lga_released": 3.85},
    },
}  # fmt: skip
PAPER_DATA = {"fashion": "Fashion-MNIST", "mnist_5k": "MNIST (full 60k)", "tiny_objects": "TinyPerson"}
METRICS = {
    "classification": ["test_top1"],
    "detection": ["test_map50", "test_map", "test_map_small"],
}
METRIC_NAMES = {
    "test_top1": "test top-1 (%)", "test_map50": "test mAP50 (%)", "test_map": "test mAP50-95 (%)",
    "test_map_small": "test mAP_small (%)",
}  # fmt: skip


# -- statistics -----------------------------------------------------------------------------


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (``None`` entries are not tested):
    the k-th smallest of m becomes ``max over j <= k of min(1, (m - j + 1) p_(j))``."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m, adjusted, running = len(tested), list[float | None]([None] * len(p_values)), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _interval(row: dict[str, Any]) -> str:
    """``[-0.30, +0.54]``: the 95% CI of a paired difference; blank where there is none (under 2 seeds)."""
    if row["ci_low"] is None:
        return ""
    return f"[{fmt(row['ci_low'], sign=True)}, {fmt(row['ci_high'], sign=True)}]"


def _pm(mean: float | None, sd: float | None, digits: int = 2) -> str:
    return "" if mean is None else fmt(mean, digits) + (f" ± {sd:.{digits}f}" if sd is not None else "")


# -- cells ----------------------------------------------------------------------------------


def cell_labels(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(attention, variant) -> label: the attention, plus the override tokens that not every job
    of its dataset shares (``lga [attention.pos_embed=false]``, ``none [dataset.image_size=64]``)."""
    labels = {}
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_dataset[r["dataset"]].append(r)
    for dataset_rows in by_dataset.values():
        common = set.intersection(*(set((r.get("variant") or "").split()) for r in dataset_rows))
        for r in dataset_rows:
            extra = [t for t in (r.get("variant") or "").split() if t not in common]
            labels[(r["attention"], r.get("variant") or "")] = r["attention"] + (
                f" [{' '.join(extra)}]" if extra else ""
            )
    return labels


def study_table(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One row per cell: n, mean, sd over seeds, paired difference to ``none`` with its 95% CI
    and p (:func:`lga.report.aggregate`), the Holm-adjusted p over the table's comparisons, the
    paper's number, and the cell's cost (parameters, GFLOPs). Not train time: the jobs shared the
    machine with other work, so their wall times measure the load as much as the block."""
    table = aggregate(values_by_group(rows, metric), metric, BASELINE)
    for r, adjusted in zip(table, holm([r["p_value"] for r in table])):
        r["p_holm"] = adjusted
    labels = cell_labels(rows)
    for r in table:
        jobs = [
            j
            for j in rows
            if j["status"] == "ok"
            and (j["dataset"], j["backbone"], j["attention"], j.get("variant") or "")
            == (r["dataset"], r["backbone"], r["attention"], r["variant"])
        ]
        r["label"] = labels[(r["attention"], r["variant"])]
        main_cell = r["label"] == r["attention"]  # the paper ran no ablations or resolutions
        r["paper"] = PAPER.get(r["dataset"], {}).get(metric, {}).get(r["attention"]) if main_cell else None
        r["params_M"] = jobs[0]["params_M"]
        r["gflops"] = jobs[0]["gflops"]
    return table


def _order(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Baseline first, then the main cells, then variants; within each, by name."""
    mains = _main_variants((r["dataset"], r["variant"]) for r in table)
    return sorted(
        table,
        key=lambda r: (r["dataset"], r["variant"] != mains[r["dataset"]], r["attention"] != BASELINE, r["label"]),
    )


def _main_variants(dataset_variants: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each dataset's main setting: its shortest variant, the one with no extra overrides."""
    mains: dict[str, str] = {}
    for dataset, variant in dataset_variants:
        mains[dataset] = min(mains.get(dataset, variant), variant, key=len)
    return mains


# below this Holm-corrected p a paired difference counts as resolved
ALPHA = 0.05


def verdict(row: dict[str, Any], higher: str = "better", lower: str = "worse") -> str:
    """``higher`` / ``lower`` (better / worse than the baseline) when the Holm-corrected p is below
    :data:`ALPHA`, ``within noise`` when it is not, nothing where there was no paired comparison over 2+ seeds."""
    if row.get("p_holm") is None:
        return ""
    if row["p_holm"] < ALPHA:
        return higher if row["diff"] > 0 else lower
    return "within noise"


# the paper's text and its released code (PAPER.md, "What the released module really computes")
TEXT, RELEASED = "lga", "lga_released"


def text_vs_code(rows: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per dataset, setting and metric where both LGAs ran: ``lga_released - lga``, paired by seed,
    with its 95% CI, p, and p Holm-corrected over this table's comparisons."""
    labels = cell_labels(rows)
    table = []
    for metric in metrics:
        groups = values_by_group(rows, metric)
        for (dataset, backbone, attention, variant), text in sorted(groups.items()):
            released = groups.get((dataset, backbone, RELEASED, variant))
            if attention == TEXT and released is not None:
                setting = labels[(TEXT, variant)].removeprefix(TEXT).strip(" []")
                table.append(
                    {"dataset": dataset, "setting": setting, "metric": metric, **paired_difference(released, text)}
                )
    for r, adjusted in zip(table, holm([r["p_value"] for r in table])):
        r["p_holm"] = adjusted
    return table


def text_vs_code_markdown(table: list[dict[str, Any]]) -> str:
    columns = ["dataset", "setting", "metric", "seeds paired", f"{RELEASED} - {TEXT}", "95% CI", "p", "p (Holm)",
               "verdict"]  # fmt: skip
    cells = [
        [r["dataset"], r["setting"] or "main", METRIC_NAMES[r["metric"]], r["n_paired"], fmt(r["diff"], sign=True),
         _interval(r), fmt(r["p_value"], 3), fmt(r["p_holm"], 3),
         verdict(r, higher="released higher", lower="released lower")]
        for r in table
    ]  # fmt: skip
    return markdown_table(columns, cells)


def table_markdown(table: list[dict[str, Any]]) -> str:
    columns = [
        "dataset", "cell", "n", "mean ± sd", f"diff vs {BASELINE}", "95% CI", "p", "p (Holm)", "verdict", "paper",
        "params (M)", "GFLOPs",
    ]  # fmt: skip
    cells = [
        [r["dataset"], r["label"], r["n"], _pm(r["mean"], r["std"]), fmt(r["diff"], sign=True),
         _interval(r),
         fmt(r["p_value"], 3), fmt(r["p_holm"], 3), verdict(r), fmt(r["paper"]), fmt(r["params_M"], 4),
         fmt(r["gflops"], 4)]
        for r in _order(table)
    ]  # fmt: skip
    return markdown_table(columns, cells)


def settings_markdown(study_dir: Path) -> str:
    """Per dataset, what its baseline's first seed ran (its config and overrides): nothing typed by hand."""
    lines = []
    seen = set()
    records = [json.loads(path.read_text()) for path in sorted((study_dir / "jobs").glob("*/result.json"))]
    records.sort(key=lambda r: (r["attention"] != BASELINE, len(r.get("variant") or ""), r["seed"]))
    for result in records:
        config = result.get("config")
        if config is None or result["dataset"] in seen:
            continue
        seen.add(result["dataset"])
        data, optim, trainer = config["dataset"], config["optimizer"], config["trainer"]
        backbone = {k: v for k, v in config["backbone"].items() if not k.startswith("_")}
        optimizer, schedule = (config[k]["_target_"].rsplit(".", 1)[-1] for k in ("optimizer", "scheduler"))
        overrides = [o for o in result.get("overrides", []) if not is_run_only(o)]
        lines.append(
            f"- `{result['dataset']}` ({result['backbone']}: {backbone}): {trainer['max_epochs']} epochs, "
            f"batch {data['batch_size']}, {data['image_size']} px input, {optimizer} lr {optim['lr']} "
            f"weight decay {optim['weight_decay']}, {schedule}; `{' '.join(overrides)}`"
        )
    return "\n".join(lines)


def effect_change(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Does another setting (a non-attention override such as ``dataset.image_size=64``) change a
    block's effect? Per dataset, setting and block: its difference to ``none`` at that setting
    minus its difference to ``none`` at the dataset's main setting, paired by seed over the seeds
    all four cells ran, with its 95% CI, p, and p Holm-corrected over this table's comparisons."""
    groups = values_by_group(rows, metric)
    labels = cell_labels(rows)
    mains = _main_variants((dataset, variant) for dataset, _, _, variant in groups)
    table = []
    for (dataset, backbone, attention, variant), values in sorted(groups.items()):
        main = mains[dataset]
        if attention == BASELINE or variant == main or variant != without_attention_options(variant):
            continue
        cells = [
            groups.get((dataset, backbone, a, v)) for a, v in ((BASELINE, variant), (attention, main), (BASELINE, main))
        ]
        if any(c is None for c in cells):
            continue
        base, main_values, main_base = cells
        seeds = set(values) & set(base) & set(main_values) & set(main_base)
        if not seeds:
            continue
        at_setting = {s: values[s] - base[s] for s in seeds}
        at_main = {s: main_values[s] - main_base[s] for s in seeds}
        table.append({
            "dataset": dataset, "setting": labels[(attention, variant)].removeprefix(attention).strip(" []"),
            "attention": attention, "metric": metric, "effect_main": statistics.fmean(at_main.values()),
            "effect_setting": statistics.fmean(at_setting.values()),
            **paired_difference(at_setting, at_main),
        })  # fmt: skip
    for r, adjusted in zip(table, holm([r["p_value"] for r in table])):
        r["p_holm"] = adjusted
    return table


def effect_change_markdown(table: list[dict[str, Any]]) -> str:
    columns = ["dataset", "setting", "cell", "seeds paired", f"vs {BASELINE}: main", f"vs {BASELINE}: setting",
               "change", "95% CI", "p", "p (Holm)", "verdict"]  # fmt: skip
    cells = [
        [r["dataset"], r["setting"], r["attention"], r["n_paired"], fmt(r["effect_main"], sign=True),
         fmt(r["effect_setting"], sign=True), fmt(r["diff"], sign=True), _interval(r), fmt(r["p_value"], 3),
         fmt(r["p_holm"], 3), verdict(r, higher="higher at setting", lower="lower at setting")]
        for r in table
    ]  # fmt: skip
    return markdown_table(columns, cells)


# -- learned weights ------------------------------------------------------------------------


def weight_frame(study_dir: Path):
    """Long table of the LGA blocks' learned weights: one row per job x epoch x block x quantity
    (``a_local``, ``a_global``, ``scale_w<i>``, ``scale_entropy``), from each record's ``lga_weights``."""
    import pandas as pd

    labels = cell_labels(sweep_rows(study_dir))
    records = []
    for path in sorted((study_dir / "jobs").glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("status") != "ok":
            continue
        for epoch in result.get("lga_weights") or []:
            for block, values in epoch.items():
                if not isinstance(values, dict):
                    continue
                for quantity, value in values.items():
                    cell = labels[(result["attention"], result.get("variant") or "")]
                    records.append({
                        "dataset": result["dataset"], "cell": cell, "seed": result["seed"],
                        "epoch": epoch["epoch"] + 1, "block": block, "quantity": quantity, "value": value,
                    })  # fmt: skip
    return pd.DataFrame(records, columns=["dataset", "cell", "seed", "epoch", "block", "quantity", "value"])


def weights_markdown(weights) -> str:
    """At the last epoch, per dataset x cell x block: mean ± sd over seeds of every quantity."""
    if weights.empty:
        return "No LGA block in these jobs.\n"
    last = weights[weights.epoch == weights.groupby(["dataset", "cell", "seed"]).epoch.transform("max")]
    quantities = [q for q in ("a_local", "a_global") if q in set(last.quantity)]
    quantities += sorted(q for q in set(last.quantity) if q.startswith("scale_w")) + ["scale_entropy"]
    quantities = [q for q in quantities if q in set(last.quantity)]
    cells = []
    for (dataset, cell, block), group in last.groupby(["dataset", "cell", "block"], sort=True):
        by_quantity = group.groupby("quantity").value
        row = [dataset, cell, block, group.seed.nunique()]
        for q in quantities:
            values = list(by_quantity.get_group(q)) if q in by_quantity.groups else []
            row.append(_pm(*mean_sd(values), digits=3))
        cells.append(row)
    return markdown_table(["dataset", "cell", "block", "n", *quantities], cells) + "\n"


# -- figures --------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "lga"  # deterministic output
    return plt


def plot_cells(table: list[dict[str, Any]], rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Per dataset: every seed as a dot, the mean with its 95% CI, the baseline's mean dashed,
    the paper's number as a cross."""
    plt = _pyplot()
    datasets = sorted({r["dataset"] for r in table})
    fig, axes = plt.subplots(len(datasets), 1, figsize=(9, 3.6 * len(datasets)), squeeze=False)
    values = values_by_group(rows, metric)
    for ax, dataset in zip(axes[:, 0], datasets):
        cells = [r for r in _order(table) if r["dataset"] == dataset]
        for x, r in enumerate(cells):
            seeds = list(values[(r["dataset"], r["backbone"], r["attention"], r["variant"])].values())
            ax.scatter([x] * len(seeds), seeds, s=12, color="0.6", zorder=2)
            ax.errorbar(x, r["mean"], yerr=ci_half(r["n"], r["std"]), fmt="o", color="C0", capsize=4, zorder=3)
            if r["paper"] is not None:
                ax.plot(x, r["paper"], "x", color="C3", zorder=3)
            if r["label"] == BASELINE:
                ax.axhline(r["mean"], color="C0", linestyle="--", linewidth=0.8, zorder=1)
        ax.set_xticks(
            range(len(cells)), [f"{r['label']}\nn={r['n']}" for r in cells], fontsize=7, rotation=40, ha="right"
        )
        ax.set_title(f"{dataset}: seeds (grey), mean ± 95% CI (blue), paper (red x)", fontsize=9)
        ax.set_ylabel(METRIC_NAMES.get(metric, metric), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_differences(table: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Forest plot: each cell's paired difference to the baseline with its 95% CI; 0 marked."""
    plt = _pyplot()
    rows = [r for r in _order(table) if r["diff"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2))
    for y, r in enumerate(reversed(rows)):
        low = r["ci_low"] if r["ci_low"] is not None else r["diff"]
        high = r["ci_high"] if r["ci_high"] is not None else r["diff"]
        color = {"better": "C2", "worse": "C3"}.get(verdict(r), "C0")
        ax.errorbar(r["diff"], y, xerr=[[r["diff"] - low], [high - r["diff"]]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['dataset']}: {r['label']} (n={r['n_paired']})" for r in reversed(rows)])
    ax.tick_params(labelsize=7)
    ax.set_xlabel(f"{METRIC_NAMES.get(metric, metric)} minus `{BASELINE}`, paired by seed: mean and 95% CI", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_cost(table: list[dict[str, Any]], metric: str, path: Path) -> None:
    """The metric (mean ± 95% CI) against parameters and against GFLOPs, per cell."""
    plt = _pyplot()
    datasets = sorted({r["dataset"] for r in table})
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.8 * len(datasets)), squeeze=False)
    for (ax_params, ax_flops), dataset in zip(axes, datasets):
        for i, r in enumerate(r for r in _order(table) if r["dataset"] == dataset):
            for ax, x in ((ax_params, r["params_M"]), (ax_flops, r["gflops"])):
                ax.errorbar(x, r["mean"], yerr=ci_half(r["n"], r["std"]), fmt="o", color=f"C{i % 10}", capsize=3)
                ax.annotate(r["label"], (x, r["mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax_params.set_xlabel("parameters (M)", fontsize=8)
        ax_flops.set_xlabel("GFLOPs per image (forward)", fontsize=8)
        for ax in (ax_params, ax_flops):
            ax.set_ylabel(METRIC_NAMES.get(metric, metric), fontsize=8)
            ax.set_title(dataset, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def plot_weights(weights, path: Path) -> None:
    """Per dataset x cell: a_local and a_global per epoch (thin: seeds, thick: mean), the mean
    scale weights per epoch, and the scale weights' entropy against its uniform maximum."""
    plt = _pyplot()
    groups = sorted({(d, c) for d, c in zip(weights.dataset, weights.cell)})
    fig, axes = plt.subplots(len(groups), 3, figsize=(12, 2.6 * len(groups)), squeeze=False)
    for (ax_alpha, ax_scales, ax_entropy), (dataset, cell) in zip(axes, groups):
        data = weights[(weights.dataset == dataset) & (weights.cell == cell)]
        scales = sorted(q for q in set(data.quantity) if q.startswith("scale_w"))
        for ax, quantities in (
            (ax_alpha, ["a_local", "a_global"]),
            (ax_scales, scales),
            (ax_entropy, ["scale_entropy"]),
        ):
            for k, quantity in enumerate(quantities):
                series = data[data.quantity == quantity]
                if series.empty:
                    continue
                for _, seed in series.groupby("seed"):
                    ax.plot(seed.epoch, seed.value, color=f"C{k}", linewidth=0.5, alpha=0.5)
                mean = series.groupby("epoch").value.mean()
                ax.plot(mean.index, mean.values, color=f"C{k}", linewidth=2, label=quantity)
            ax.set_xlabel("epoch", fontsize=7)
            ax.tick_params(labelsize=7)
            if ax.lines:
                ax.legend(fontsize=6)
        if scales:
            ax_entropy.axhline(math.log(len(scales)), color="0.5", linestyle="--", linewidth=0.8)
        ax_alpha.set_title(f"{dataset} / {cell}: fusion weights", fontsize=8)
        ax_scales.set_title("mean scale weights", fontsize=8)
        ax_entropy.set_title("scale-weight entropy (dashed: uniform)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


# -- the report -----------------------------------------------------------------------------


def _task(rows: list[dict[str, Any]]) -> str:
    tasks = {r["task"] for r in rows}
    return "detection" if tasks == {"detection"} else "classification"


def distinct_metrics(rows: list[dict[str, Any]], metrics: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The metrics that say something of their own, and metric -> the earlier metric it equals in every
    finished job (mAP_small is mAP where every object is small): one table each, not two of one number."""
    ok = [r for r in rows if r["status"] == "ok"]
    kept: list[str] = []
    repeats: dict[str, str] = {}
    for metric in metrics:
        same = next((k for k in kept if all(r.get(metric) == r.get(k) for r in ok)), None)
        if same is None:
            kept.append(metric)
        else:
            repeats[metric] = same
    return kept, repeats


def _compute_line(rows: list[dict[str, Any]]) -> str:
    """Training compute in core-hours: each job's training wall time times its threads, summed."""
    ok = [r for r in rows if r["status"] == "ok"]
    core_s = sum((r["train_time_s"] or 0) * (r["threads"] or 1) for r in ok)
    threads = sorted({r["threads"] for r in ok if r["threads"] is not None})
    return (
        f"{len(ok)} finished jobs, {core_s / 3600:.2f} CPU core-hours of training (each job's training wall "
        f"time x its threads, {'/'.join(map(str, threads))} per job; validation and test not counted)."
    )


def write_study_report(study_dir: str | Path, root: str | Path | None = None) -> dict[str, Path]:
    """Write ``jobs.csv``, ``<study>.md`` and the figures for one study directory (see module docstring)."""
    study_dir = Path(study_dir)
    root = Path(root) if root is not None else study_dir.parent
    name = study_dir.name
    rows = sweep_rows(study_dir)
    if not rows:
        raise SystemExit(f"error: no job records under {study_dir / 'jobs'}; run the study first (see README)")
    rows.sort(key=lambda r: (r["dataset"], r["attention"], r.get("variant") or "", r["seed"]))
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    out = {"csv": study_dir / "jobs.csv", "md": root / f"{name}.md"}
    columns = summary_columns(rows)
    if "variant" not in columns:  # kept even where every job shares it: what the study ran is in the CSV
        columns.insert(columns.index("seed") + 1, "variant")
    write_atomic(out["csv"], csv_text(({c: r[c] for c in columns} for r in rows), columns))
    task = _task(rows)
    lines = [
        f"# Study: {name}",
        "",
        f"Written by `python -m lga.study` from the job records in `{name}/jobs/` (per job: `{name}/jobs.csv`).",
        "Cells are mean ± sd over seeds; the difference to `none` is paired by seed (same data, options and",
        "seed), with a 95% t interval and a paired t-test's p; `p (Holm)` corrects that p for every comparison",
        "in the same table; `verdict` says whether that corrected p is below 0.05. `paper`: the paper's own"
        + (
            " number (its TinyPerson column: another dataset, for direction only)."
            if task == "detection"
            else " number (its MNIST column is the full MNIST; here `mnist_5k`, 5,000 training digits)."
            if any(r["dataset"] == "mnist_5k" for r in rows)
            else " number."
        ),
        "Cost: parameters and forward GFLOPs of the whole model. No times: the jobs shared 2 CPU cores with",
        "other work, so their wall times would measure the load (see experiments/bench_cpu.md for timings).",
        "",
        f"Compute: {_compute_line(rows)}",
        "",
        "Setting (each dataset's `none` job of seed 0; other cells differ from it only as their labels say):",
        "",
        settings_markdown(study_dir),
        "",
    ]
    metrics, repeats = distinct_metrics(rows, METRICS[task])
    for metric, same in repeats.items():
        lines += [
            f"{METRIC_NAMES[metric]} equals {METRIC_NAMES[same]} in every job, so it has no table of its own"
            + (" (every test object is small, under 32x32 px)." if metric == "test_map_small" else "."),
            "",
        ]
    for metric in metrics:
        table = study_table(rows, metric)
        if not table:
            continue
        lines += [f"## {METRIC_NAMES[metric]}", "", table_markdown(table), ""]
        figure = figures / f"{name}_{metric}.png"
        plot_cells(table, rows, metric, figure)
        lines += [f"![{metric}](figures/{figure.name})", ""]
        if any(r["diff"] is not None for r in table):
            differences = figures / f"{name}_{metric}_vs_{BASELINE}.png"
            plot_differences(table, metric, differences)
            lines += [f"![differences](figures/{differences.name})", ""]
        if metric == METRICS[task][0]:
            cost_figure = figures / f"{name}_cost.png"
            plot_cost(table, metric, cost_figure)
            lines += [f"![cost](figures/{cost_figure.name})", ""]
            out["png"] = figure
    text_vs_code_table = text_vs_code(rows, metrics)
    if text_vs_code_table:
        lines += [
            "## The paper's text against its released code",
            "",
            f"`{RELEASED}` minus `{TEXT}` on the seeds both ran, per dataset, setting and metric; `p (Holm)`",
            "corrects over the rows of this table.",
            "",
            text_vs_code_markdown(text_vs_code_table),
            "",
        ]
    changes = [r for metric in metrics for r in effect_change(rows, metric)]
    if changes:
        lines += [
            "## Does the setting change the effect?",
            "",
            f"Each block's difference to `{BASELINE}` at another setting, against its difference at the main",
            "setting, over the seeds all four cells ran: `change` is the first minus the second, paired by",
            "seed; `p (Holm)` corrects over the rows of each metric.",
            "",
            effect_change_markdown(changes),
            "",
        ]
    weights = weight_frame(study_dir)
    lines += [
        "## Learned LGA weights at the last epoch",
        "",
        "`a_local`, `a_global`: the fusion weights (free scalars, initialised 0.5). `scale_w<i>`: the mean",
        "per-pixel weight of scale i over the validation images (0: the input itself, then strides 1, 2, 4);",
        "`scale_entropy`: their mean entropy in nats (uniform: ln 4 = 1.386; one scale only: 0).",
        "",
        weights_markdown(weights),
    ]
    if not weights.empty:
        weights_figure = figures / f"{name}_weights.png"
        plot_weights(weights, weights_figure)
        lines += [f"![weights](figures/{weights_figure.name})", ""]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines += ["## Jobs that did not finish", ""]
        cols = ["job", "dataset", "attention", "seed", "status", "error"]
        lines += [markdown_table(cols, ([r[c] for c in cols] for r in failed)), ""]
    write_atomic(out["md"], "\n".join(lines))
    return out


HEADLINE_START, HEADLINE_END = "<!-- study headline: python -m lga.study --readme -->", "<!-- end of study headline -->"


def _difference(row: dict[str, Any]) -> str:
    """``+0.12 [-0.30, +0.54]``: the paired difference and its interval, where there is one."""
    return f"{fmt(row['diff'], sign=True)} {_interval(row)}".strip()


def headline_markdown(root: Path, link: str = ".") -> str:
    """The short table README's Findings shows: every cell of every study on its headline metric,
    with its paired difference to ``none`` and the verdict; ``link``: ``root`` as the reader reaches it."""
    blocks = []
    for study_dir in studies(root):
        rows = sweep_rows(study_dir)
        metric = METRICS[_task(rows)][0]
        table = study_table(rows, metric)
        cells = [
            [r["dataset"], r["label"], r["n"], _pm(r["mean"], r["std"]), _difference(r), fmt(r["p_holm"], 3),
             verdict(r), fmt(r["paper"])]
            for r in _order(table)
        ]  # fmt: skip
        columns = [
            "dataset",
            "cell",
            "seeds",
            METRIC_NAMES[metric],
            f"vs {BASELINE} [95% CI]",
            "p (Holm)",
            "verdict",
            "paper",
        ]
        report = f"{link}/{study_dir.name}.md"
        blocks.append(f"**{study_dir.name}** ([{report}]({report}))\n\n" + markdown_table(columns, cells))
    return "\n\n".join(blocks)


def update_readme(readme: Path, root: Path) -> None:
    """Rewrite the block between the headline markers of ``readme`` from the committed records."""
    text = readme.read_text()
    if HEADLINE_START not in text or HEADLINE_END not in text:
        raise SystemExit(f"error: {readme} has no study headline block ({HEADLINE_START} ... {HEADLINE_END})")
    before, rest = text.split(HEADLINE_START, 1)
    after = rest.split(HEADLINE_END, 1)[1]
    headline = headline_markdown(root, os.path.relpath(root, readme.parent))
    write_atomic(readme, f"{before}{HEADLINE_START}\n{headline}\n{HEADLINE_END}{after}")


def studies(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/jobs") if p.is_dir())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=STUDY_ROOT, help="the studies' directory (experiments/study)")
    parser.add_argument("--study", action="append", help="a study's name (default: every one under --root)")
    parser.add_argument(
        "--readme", type=Path, nargs="?", const=REPO_ROOT / "README.md", help="also rewrite its headline"
    )
    args = parser.parse_args(argv)
    dirs = [args.root / s for s in args.study] if args.study else studies(args.root)
    if not dirs:
        raise SystemExit(f"error: no study under {args.root} (no <study>/jobs/); run `make study` first")
    for study_dir in dirs:
        for kind, path in write_study_report(study_dir, args.root).items():
            print(f"{kind}: {path}")
    if args.readme is not None:
        update_readme(args.readme, args.root)
        print(f"readme: {args.readme}")


if __name__ == "__main__":
    main()

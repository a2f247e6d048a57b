"""The reports' figures (matplotlib, headless, deterministic bytes): like is compared with like.

The paper's numbers are single runs on its own datasets and schedules: they get a panel of their
own, never the study's axis. A run that did not learn is drawn as a failure (a red marker at its
value, or at the axis edge with its value written), never inside a mean or an interval.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cells import BASELINE
from .paper import METRIC_NAMES, PAPER_DATA

# the narrowest y-axis drawn, in points: a 0.2-point gap between single runs (4 test images in
# 2,000) must not look like a landslide
MIN_SPAN = 2.0
VERDICT_COLOURS = {"better": "C2", "worse": "C3", "equivalent": "C0", "not better": "C1", "not worse": "C1"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "lga"  # deterministic output
    return plt


def save(fig, path: Path, dpi: int = 110) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    pyplot().close(fig)


def _limits(ax, values: list[float]) -> tuple[float, float]:
    """Zoom to ``values`` (with 15% room), never to less than :data:`MIN_SPAN` points, nor far past 100 when
    every value is a percentage (a 99.4% top-1 on an axis to 102 reads as a scale that goes beyond 100)."""
    low, high = min(values), max(values)
    room = max(0.15 * (high - low), (MIN_SPAN - (high - low)) / 2)
    bottom, top = low - room, high + room
    if high <= 100:
        top = min(top, 100 + 0.03 * (top - bottom))
    ax.set_ylim(bottom, top)
    return bottom, top


def plot_cells(cells: pd.DataFrame, values: dict, failed: dict, metric: str, path: Path, paper: bool = False) -> None:
    """Per dataset: every seed (grey), the mean with its 95% CI (blue), the baseline's mean dashed,
    seeds that did not learn (red); with ``paper``, the paper's numbers in a panel beside."""
    plt = pyplot()
    datasets = list(dict.fromkeys(cells.dataset))
    has_paper = {d: paper and cells[cells.dataset == d].paper.notna().any() for d in datasets}
    fig, axes = plt.subplots(
        len(datasets), 2, figsize=(12, 3.8 * len(datasets)), squeeze=False, gridspec_kw={"width_ratios": [3, 1]}
    )
    for (ax, ax_paper), dataset in zip(axes, datasets):
        rows = cells[cells.dataset == dataset].reset_index(drop=True)
        shown = []
        for x, r in rows.iterrows():
            seeds = list(values.get((dataset, r.cell), {}).values())
            ax.scatter([x] * len(seeds), seeds, s=12, color="0.6", zorder=2)
            shown += seeds
            if r.n > 1:
                ax.errorbar(x, r["mean"], yerr=[[r["mean"] - r.ci_low], [r.ci_high - r["mean"]]], fmt="o", color="C0",
                            capsize=4, zorder=3)  # fmt: skip
                shown += [r.ci_low, r.ci_high]
            if r.attention == BASELINE and r.cell == BASELINE:
                ax.axhline(r["mean"], color="C0", linestyle="--", linewidth=0.8, zorder=1)
        low, high = _limits(ax, shown)
        for x, r in rows.iterrows():
            for seed, value in failed.get((dataset, r.cell), {}).items():
                y = min(max(value, low), high)
                ax.plot(x, y, "v" if value < low else "^" if value > high else "X", color="C3", zorder=4)
                # written upwards from the marker: neighbouring cells' labels cannot overlap
                ax.annotate(f"seed {seed} did not learn: {value:.1f}", (x, y), fontsize=6, color="C3",
                            xytext=(3, 6), textcoords="offset points", rotation=90, va="bottom")  # fmt: skip
        ax.set_xticks(range(len(rows)), [f"{c}\nn={n}" for c, n in zip(rows.cell, rows.n)], fontsize=7, rotation=40,
                      ha="right")  # fmt: skip
        ax.set_title(f"{dataset}: seeds (grey), mean ± 95% CI (blue), did not learn (red)", fontsize=9)
        ax.set_ylabel(METRIC_NAMES.get(metric, metric), fontsize=8)
        ax_paper.set_visible(has_paper[dataset])
        if has_paper[dataset]:
            with_paper = rows[rows.paper.notna()].reset_index(drop=True)
            ax_paper.plot(range(len(with_paper)), with_paper.paper, "x", color="0.2")  # not red: red is a failure
            ax_paper.set_xticks(range(len(with_paper)), with_paper.cell, fontsize=7, rotation=40, ha="right")
            ax_paper.set_title(f"the paper: {PAPER_DATA.get(dataset, '?')},\nsingle runs (its own axis)", fontsize=8)
            _limits(ax_paper, list(with_paper.paper))
    save(fig, path)


def plot_comparisons(comparisons: pd.DataFrame, metric: str, path: Path) -> None:
    """Forest plot: each comparison's paired difference with its 95% CI, coloured by verdict
    (grey: inconclusive; hollow: exploratory, no verdict), the ±margin band shaded."""
    plt = pyplot()
    rows = comparisons[comparisons["diff"].notna()].iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(13, 0.3 * len(rows) + 1.8))
    for y, r in rows.iterrows():
        colour = next((c for word, c in VERDICT_COLOURS.items() if str(r.verdict).startswith(word)), "0.5")
        low = r.ci_low if pd.notna(r.ci_low) else r["diff"]
        high = r.ci_high if pd.notna(r.ci_high) else r["diff"]
        ax.errorbar(r["diff"], y, xerr=[[r["diff"] - low], [high - r["diff"]]], fmt="o", color=colour, capsize=3,
                    markerfacecolor="white" if r.exploratory else colour)  # fmt: skip
    margin = rows.margin.iloc[0] if len(rows) else 0
    ax.axvspan(-margin, margin, color="C0", alpha=0.12, linewidth=0)
    ax.axvline(0, color="0.4", linewidth=0.8)
    labels = [
        f"{r.family}: {r.dataset}: {r.comparison} (n={int(r.n)}) {r.verdict}{' (fragile)' * bool(r.robustness)}"
        for r in rows.itertuples()
    ]
    ax.set_yticks(range(len(rows)), labels)
    ax.tick_params(labelsize=6)
    ax.set_xlabel(f"{METRIC_NAMES.get(metric, metric)}: treated minus baseline, paired by seed: mean and 95% CI\n"
                  f"(shaded: ±{margin:g}, the margin; hollow: exploratory, no verdict)", fontsize=8)  # fmt: skip
    save(fig, path)


def plot_cost(cells: pd.DataFrame, metric: str, path: Path) -> None:
    """The metric (mean ± 95% CI) against parameters and against GFLOPs, per cell."""
    plt = pyplot()
    datasets = list(dict.fromkeys(cells.dataset))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.8 * len(datasets)), squeeze=False)
    for (ax_params, ax_flops), dataset in zip(axes, datasets):
        for i, r in enumerate(cells[(cells.dataset == dataset) & (cells.n > 0)].itertuples()):
            half = [[r.mean - r.ci_low], [r.ci_high - r.mean]] if r.n > 1 else None
            for ax, x in ((ax_params, r.params_M), (ax_flops, r.gflops)):
                ax.errorbar(x, r.mean, yerr=half, fmt="o", color=f"C{i % 10}", capsize=3)
                ax.annotate(r.cell, (x, r.mean), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax_params.set_xlabel("parameters (M)", fontsize=8)
        ax_flops.set_xlabel("GFLOPs per image (forward)", fontsize=8)
        for ax in (ax_params, ax_flops):
            ax.set_ylabel(METRIC_NAMES.get(metric, metric), fontsize=8)
            ax.set_title(dataset, fontsize=9)
    save(fig, path)


def plot_convergence(history: pd.DataFrame, label: str, path: Path) -> None:
    """Per dataset: the validation metric per epoch, per cell the mean over its ok seeds with a
    ±1 sd band; runs that did not learn dashed red."""
    plt = pyplot()
    datasets = list(dict.fromkeys(history.dataset))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(9, 3.6 * len(datasets)), squeeze=False)
    for ax, dataset in zip(axes[:, 0], datasets):
        data = history[history.dataset == dataset]
        ok = data[data.status == "ok"]
        for i, (cell, runs) in enumerate(ok.groupby("cell", sort=True)):
            per_epoch = runs.groupby("epoch").value
            mean, sd = per_epoch.mean(), per_epoch.std().fillna(0)
            label_n = f"{cell} (n={runs.seed.nunique()})"
            ax.plot(mean.index, mean.values, color=f"C{i % 10}", linewidth=1.5, label=label_n)
            ax.fill_between(mean.index, mean - sd, mean + sd, color=f"C{i % 10}", alpha=0.15, linewidth=0)
        for (cell, seed), run in data[data.status != "ok"].groupby(["cell", "seed"], sort=True):
            failed = f"{cell} seed {seed}: {run.status.iloc[0]}"
            ax.plot(run.epoch, run.value, color="C3", linestyle="--", linewidth=0.8, label=failed)
        ax.set_title(f"{dataset}: {label} per epoch, mean ± sd over seeds", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, ncol=2)
    save(fig, path)

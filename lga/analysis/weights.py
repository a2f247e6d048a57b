"""What the LGA blocks learned: the fusion and scale weights each record keeps per epoch (``lga_weights``)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..utils import markdown_table
from .cells import labelled
from .figures import pyplot, save
from .results import read_result, sweep_rows
from .stats import mean_interval
from .tables import pm

WEIGHTS_TEXT = """\
`a_local`, `a_global`: the fusion weights (free scalars, initialised 0.5). `scale_w<i>`: the mean
per-pixel weight of scale i over the validation images (0: the input itself, then strides 1, 2, 4);
`scale_entropy`: their mean entropy in nats (uniform: ln 4 = 1.386; one scale only: 0)."""


def weight_frame(study_dir: Path) -> pd.DataFrame:
    """Long table of the LGA blocks' learned weights: one row per job x epoch x block x quantity
    (``a_local``, ``a_global``, ``scale_w<i>``, ``scale_entropy``), from each ok record's ``lga_weights``."""
    study_dir = Path(study_dir)
    records = []
    for row in labelled(sweep_rows(study_dir)):
        if row["status"] != "ok":
            continue
        for epoch in read_result(study_dir / row["job"]).lga_weights or []:
            for block, values in epoch.items():
                if isinstance(values, dict):
                    records += [
                        {"dataset": row["dataset"], "cell": row["cell"], "seed": row["seed"],
                         "epoch": epoch["epoch"] + 1, "block": block, "quantity": quantity, "value": value}
                        for quantity, value in values.items()
                    ]  # fmt: skip
    return pd.DataFrame(records, columns=["dataset", "cell", "seed", "epoch", "block", "quantity", "value"])


def weights_markdown(weights: pd.DataFrame) -> str:
    """At the last epoch, per dataset x cell x block: mean ± sd over seeds of every quantity."""
    if weights.empty:
        return "No LGA block in these jobs.\n"
    last = weights[weights.epoch == weights.groupby(["dataset", "cell", "seed"]).epoch.transform("max")]
    present = set(last.quantity)
    quantities = [q for q in ("a_local", "a_global") if q in present]
    quantities += sorted(q for q in present if q.startswith("scale_w"))
    quantities += ["scale_entropy"] * ("scale_entropy" in present)
    cells = []
    for (dataset, cell, block), group in last.groupby(["dataset", "cell", "block"], sort=True):
        by_quantity = group.groupby("quantity").value
        row = [dataset, cell, block, group.seed.nunique()]
        for q in quantities:
            summary = mean_interval(list(by_quantity.get_group(q)) if q in by_quantity.groups else [])
            row.append(pm(summary["mean"], summary["sd"], digits=3))
        cells.append(row)
    return markdown_table(["dataset", "cell", "block", "n", *quantities], cells) + "\n"


def plot_weights(weights: pd.DataFrame, path: Path) -> None:
    """Per dataset x cell: a_local and a_global per epoch (thin: seeds, thick: mean), the mean
    scale weights per epoch, and the scale weights' entropy against its uniform maximum."""
    plt = pyplot()
    groups = sorted({(d, c) for d, c in zip(weights.dataset, weights.cell)})
    fig, axes = plt.subplots(len(groups), 3, figsize=(12, 2.6 * len(groups)), squeeze=False)
    for (ax_alpha, ax_scales, ax_entropy), (dataset, cell) in zip(axes, groups):
        data = weights[(weights.dataset == dataset) & (weights.cell == cell)]
        scales = sorted(q for q in set(data.quantity) if q.startswith("scale_w"))
        panels = ((ax_alpha, ["a_local", "a_global"]), (ax_scales, scales), (ax_entropy, ["scale_entropy"]))
        for ax, quantities in panels:
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
    save(fig, path, dpi=100)

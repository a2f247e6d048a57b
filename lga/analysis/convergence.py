"""Did the runs converge? The validation metric per epoch, from each record's ``history``.

A run is *still improving at the end* when its last epoch's validation metric beats the best of all
its earlier epochs by more than the margin m, the smallest difference its study cares about: trained
longer, it might have moved its cell's comparisons by m or more. Records written before per-epoch
history was kept have none; their cells are left out of the table and the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..utils import markdown_table
from . import figures
from .cells import labelled
from .results import history_frame
from .tables import fmt

# the validation metric each task's history is judged on (a fraction in the record, points here)
VALIDATION_KEYS = {"classification": "val/top1", "detection": "val/map50"}


def validation_curves(history: pd.DataFrame, rows: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """The validation metric ``key`` per job and epoch, in points, with each job's cell label
    (``history``: :func:`lga.analysis.results.history_frame`)."""
    cells = {r["job"]: r["cell"] for r in labelled(rows)}
    curves = history[history.key == key].copy()
    curves["value"] = 100 * curves.value.astype(float)
    curves["cell"] = curves.job.map(cells)
    return curves.sort_values(["dataset", "cell", "seed", "epoch"]).reset_index(drop=True)


def still_improving(curves: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per cell, over its ok runs with 2+ epochs: the last epoch's metric, the best before it, and
    how many runs were still improving at the end (the module docstring's rule)."""
    ok = curves[curves.status == "ok"]
    runs = []
    for (dataset, cell, seed), run in ok.groupby(["dataset", "cell", "seed"], sort=True):
        if run.epoch.nunique() > 1:
            last = run[run.epoch == run.epoch.max()].value.iloc[0]
            before = run[run.epoch < run.epoch.max()].value.max()
            runs.append({"dataset": dataset, "cell": cell, "seed": seed, "epochs": run.epoch.max(), "last": last,
                         "best_before": before, "improving": last > before + margin})  # fmt: skip
    if not runs:
        return pd.DataFrame(columns=["dataset", "cell", "runs", "epochs", "last", "best_before", "still_improving"])
    per_run = pd.DataFrame(runs)
    table = per_run.groupby(["dataset", "cell"], sort=True).agg(
        runs=("seed", "size"), epochs=("epochs", "max"), last=("last", "mean"), best_before=("best_before", "mean"),
        improving=("improving", "sum"),
    )  # fmt: skip
    table["still_improving"] = [f"{int(k)} of {n}" for k, n in zip(table.improving, table.runs)]
    return table.drop(columns="improving").reset_index()


def still_improving_markdown(table: pd.DataFrame, margin: float) -> str:
    columns = ["dataset", "cell", "runs", "epochs", "last epoch (mean)", "best before it (mean)",
               f"still improving (last > best before + {margin:g})"]  # fmt: skip
    rows = [
        [r.dataset, r.cell, r.runs, r.epochs, fmt(r.last), fmt(r.best_before), r.still_improving]
        for r in table.itertuples()
    ]
    return markdown_table(columns, rows)


def convergence_section(name: str, study_dir: Path, rows, task: str, margin: float, figure_dir: Path) -> list[str]:
    """The validation metric per epoch, for the cells whose records keep a history (none before it was kept)."""
    key = VALIDATION_KEYS[task]
    curves = validation_curves(history_frame(study_dir), rows, key)
    if curves.empty:
        return []
    figure = figure_dir / f"{name}_convergence.png"
    figures.plot_convergence(curves, f"{key} (%)", figure)
    return ["## Convergence", "",
            f"A run is still improving at the end when its last epoch's `{key}` beats the best of its earlier",
            f"epochs by more than the margin ({margin:g} points). Only cells whose records keep a per-epoch history.",
            "", still_improving_markdown(still_improving(curves, margin), margin), "",
            f"![convergence](figures/{figure.name})", ""]  # fmt: skip

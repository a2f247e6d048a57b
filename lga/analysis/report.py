"""The seed report of a finished sweep: is an attention block's effect larger than seed noise?

    python -m lga.report logs/multiruns/<sweep>   # writes report.md, report.csv, cells.csv, report.png, dashboard.html
    python -m lga.report <sweep> --metric test_top5 --baseline se --margin 0.2
    python -m lga.report <sweep> --comparisons conf/comparisons/classification.yaml

Per cell (dataset x backbone x attention x any other override the jobs differ in): mean, sd and
95% interval over the seeds that finished ``ok``. By default every cell is compared with the
baseline block (``none``) on the same dataset, backbone and other overrides, all in one Holm family,
at the metric's default margin (from the paper's claims); ``--comparisons`` declares families
and margins instead (the format: ``conf/comparisons/classification.yaml``). Every comparison goes
through :mod:`lga.analysis.stats`, as in the study, with the same verdicts. Jobs that did not learn
or diverged count as their cell's failures; the others that did not finish are listed; the report
warns about them, about missing baselines and about partial test sets. Imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..utils import LGAError, write_atomic
from . import figures, tables
from .cells import BASELINE, FAILED_TO_TRAIN, cell_table, cell_values
from .comparisons import default_declarations, evaluate, load_declarations
from .dashboard import write_dashboard
from .paper import METRIC_NAMES
from .results import METRIC_COLUMNS, TASK_METRICS, sweep_rows

HEADLINE = {"classification": "test_top1", "detection": "test_map50"}  # each task's metric by default


def warnings_for(rows: list[dict[str, Any]], metric: str, baseline: str) -> list[str]:
    """What a reader must know before trusting the tables: excluded jobs, missing baselines, partial test sets."""
    notes = []
    excluded = Counter(r["status"] for r in rows if r["status"] != "ok")
    if excluded:
        listed = ", ".join(f"{n} {status}" for status, n in sorted(excluded.items()))
        notes.append(f"{sum(excluded.values())} job(s) excluded ({listed}): listed below, not averaged in.")
    for dataset, backbone in sorted({(r["dataset"], r["backbone"]) for r in rows}):
        if not any(r["attention"] == baseline for r in rows if (r["dataset"], r["backbone"]) == (dataset, backbone)):
            notes.append(f"no `{baseline}` runs for {dataset} / {backbone}: no differences computed there.")
    if metric.startswith("test_"):
        partial = sorted({
            r["test_images"] for r in rows
            if r["status"] == "ok" and r.get("test_images") and " of " in str(r["test_images"])
        })  # fmt: skip
        if partial:
            notes.append(
                f"partial test sets: {metric} is measured on {', '.join(partial)} images, not the whole test set."
            )
    return notes


def to_markdown(rows: list[dict[str, Any]], cells, comparisons, metric: str, notes: list[str], source: str) -> str:
    name = METRIC_NAMES.get(metric, metric)
    lines = [f"## {name} over seeds", ""]
    lines += [f"> warning: {note}" for note in notes] + ([""] if notes else [])
    lines += [tables.cells_markdown(cells), ""]
    if not comparisons.empty:
        lines += [f"## Verdicts ({source})", "", tables.verdicts_markdown(comparisons), "",
                  "## Every test (p raw, and Holm within the family)", "", tables.tests_markdown(comparisons), "",
                  "## What the sweep could have seen", "", tables.power_markdown(comparisons), ""]  # fmt: skip
        if comparisons.exploratory.any():
            lines += ["## Exploratory: no verdict", "", tables.exploratory_markdown(comparisons), ""]
        lines += ["## How to read the verdicts", "", tables.METHODS, ""]
    lines += tables.failures_markdown(rows, metric)
    return "\n".join(lines) + "\n"


def write_report(
    sweep_dir: str | Path,
    metric: str | None = None,
    baseline: str = BASELINE,
    margin: float | None = None,
    comparisons: str | Path | None = None,
) -> dict[str, Path]:
    """Write report.md, report.csv (one row per comparison), cells.csv, report.png and dashboard.html
    (:mod:`lga.analysis.dashboard`) into ``sweep_dir``.
    ``metric`` defaults to the sweep's headline: test top-1 for classification, test mAP50 for detection."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SystemExit(f"error: {sweep_dir} is not a directory; pass a sweep directory written by `run.py -m`")
    rows = sweep_rows(sweep_dir)
    if not rows:
        raise SystemExit(f"error: no jobs under {sweep_dir} (no */.hydra/config.yaml); is it a sweep directory?")
    # one section per task the sweep ran (each on its own headline metric), or the one task --metric belongs to
    tasks = [task for task in TASK_METRICS if any(r["task"] == task for r in rows)] or ["classification"]
    if metric is not None:
        tasks = [next(task for task, columns in TASK_METRICS.items() if metric in columns)]
    out = {"md": sweep_dir / "report.md", "csv": sweep_dir / "report.csv", "cells": sweep_dir / "cells.csv"}
    markdown, judged_all, cells_all = [], [], []
    for task in tasks:
        task_rows = [r for r in rows if r["task"] == task] or rows
        task_metric = metric or HEADLINE[task]
        declarations = load_declarations(comparisons) if comparisons else default_declarations(task_rows, baseline)
        if margin is not None:
            declarations = replace(declarations, margins={**declarations.margins, task_metric: margin})
        cells = cell_table(task_rows, task_metric, baseline)
        judged = evaluate(task_rows, declarations, [task_metric])
        notes = warnings_for(task_rows, task_metric, baseline)
        left_out = Counter(r["task"] for r in rows if r["task"] != task) if metric is not None else {}
        notes += [f"{n} {other} job(s) left out: {metric} is a {task} metric; without --metric the report has a "
                  f"section per task" for other, n in sorted(left_out.items())]  # fmt: skip
        source = f"margin ±{declarations.margin(task_metric):g}; {declarations.source}"
        section = to_markdown(task_rows, cells, judged, task_metric, notes, source)
        markdown.append(section if len(tasks) == 1 else f"# {task}\n\n{section}")
        judged_all.append(judged)
        cells_all.append(cells)
        if not cells.empty:
            png = sweep_dir / ("report.png" if len(tasks) == 1 else f"report-{task}.png")
            failed = cell_values(task_rows, task_metric, statuses=FAILED_TO_TRAIN)
            figures.plot_cells(cells, cell_values(task_rows, task_metric), failed, task_metric, png)
            out["png" if len(tasks) == 1 else f"png_{task}"] = png
    judged, cells = (pd.concat(frames, ignore_index=True) for frames in (judged_all, cells_all))
    write_atomic(out["md"], "\n".join(markdown))
    write_atomic(out["csv"], tables.frame_csv(judged))
    write_atomic(out["cells"], tables.frame_csv(cells))
    first_metric = metric or HEADLINE[tasks[0]]
    out["dashboard"] = write_dashboard(sweep_dir, rows, judged, first_metric, f"Sweep {sweep_dir.name}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir")
    parser.add_argument("--metric", choices=METRIC_COLUMNS, help="default: test_top1, or test_map50 for detection")
    parser.add_argument("--baseline", default=BASELINE, help="the attention every cell is compared with by default")
    parser.add_argument("--margin", type=float, help="the smallest difference that matters, in points (default "
                        "from the paper's claims: 0.1 top-1, its claimed gain; 0.5 mAP50, half its TinyPerson "
                        "gain)")  # fmt: skip
    parser.add_argument("--comparisons", type=Path, help="a declaration file of families and margins (YAML)")
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.metric, args.baseline, args.margin, args.comparisons)
    except LGAError as err:  # a damaged record or declaration file: its message names it
        raise SystemExit(f"error: {err}") from None
    sys.stdout.write(paths["md"].read_text())
    print("\n" + "\n".join(f"{kind}: {path}" for kind, path in paths.items()))


if __name__ == "__main__":
    main()

"""The study's report: the committed job records of ``experiments/study/<study>/jobs/`` as cells,
declared comparisons with verdicts, power, convergence, cost and the learned LGA weights.

    python -m lga.study                       # every study under experiments/study
    python -m lga.study --root DIR --study classification
    python -m lga.study --readme              # also the README's headline block

For each study directory ``<root>/<study>/`` that holds ``jobs/*/result.json`` (written by
``run.py -m experiment=study_<study>``, see :func:`lga.analysis.results.study_record`), writes:

- ``<root>/<study>/jobs.csv``: one row per job; ``<root>/<study>/comparisons.csv``: one per comparison;
- ``<root>/<study>.md``: the comparisons declared in ``conf/comparisons/<study>.yaml`` (every cell
  against ``none`` without one), each judged by :mod:`lga.analysis.stats` within its family;
- ``<root>/figures/<study>_*.png``: cells, comparisons, cost, convergence and learned weights.
- ``<root>/<study>/dashboard.html``: all of it in one interactive page that works offline
  (:mod:`lga.analysis.dashboard`).

Everything comes from the records and the declarations, nothing is typed by hand, and rerunning
rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..utils import REPO_ROOT, LGAError, csv_text, csv_value, write_atomic
from . import figures, tables
from .cells import BASELINE, FAILED_TO_TRAIN, cell_table, cell_values, labelled
from .comparisons import Declarations, declarations_for, declarations_markdown, evaluate
from .convergence import convergence_section
from .dashboard import write_dashboard
from .identity import is_identity_override
from .paper import METRIC_NAMES, METRICS
from .results import columns as summary_columns
from .results import read_result, sweep_rows
from .weights import WEIGHTS_TEXT, plot_weights, weight_frame, weights_markdown

# where the study presets keep their records (LGA_STUDY_DIR overrides, as in conf/experiment/study_*.yaml)
STUDY_ROOT = Path(os.environ.get("LGA_STUDY_DIR", REPO_ROOT / "experiments" / "study"))
PAPER_NOTE = {
    "fashion": "the paper's Fashion-MNIST column (its schedule, single runs)",
    "mnist_5k": "the paper's MNIST column: the full MNIST, here `mnist_5k` (5,000 training digits)",
    "tiny_objects": "the paper's TinyPerson column: another dataset, for direction only",
}


def settings_markdown(study_dir: Path, rows: list[dict[str, Any]]) -> str:
    """Per dataset, what its baseline's first seed ran (its config and overrides): nothing typed by hand."""
    lines, seen = [], set()
    jobs = sorted(rows, key=lambda r: (r["attention"] != BASELINE, len(r.get("variant") or ""), r["seed"], r["job"]))
    for row in jobs:
        record = read_result(study_dir / row["job"])
        if record.config is None or record.dataset in seen:
            continue
        seen.add(record.dataset)
        config = record.config
        data, optim, trainer = config["dataset"], config["optimizer"], config["trainer"]
        backbone = {k: v for k, v in config["backbone"].items() if not k.startswith("_")}
        optimizer, schedule = (config[k]["_target_"].rsplit(".", 1)[-1] for k in ("optimizer", "scheduler"))
        overrides = [o for o in record.overrides if is_identity_override(o)]
        lines.append(
            f"- `{record.dataset}` ({record.backbone}: {backbone}): {trainer['max_epochs']} epochs, "
            f"batch {data['batch_size']}, {data['image_size']} px input, {optimizer} lr {optim['lr']} "
            f"weight decay {optim['weight_decay']}, {schedule}; `{' '.join(overrides)}`"
        )
    return "\n".join(lines)


def task_of(rows: list[dict[str, Any]]) -> str:
    return "detection" if {r["task"] for r in rows} == {"detection"} else "classification"


def _same_value(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6))


def distinct_metrics(rows: list[dict[str, Any]], metrics: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The metrics that say something of their own, and metric -> the earlier metric it equals in every
    finished job (mAP_small is mAP where every object is small): one table each, not two of one number.
    Equal to float32's precision: the two are computed apart and can differ in the last bits."""
    ok = [r for r in rows if r["status"] == "ok"]
    kept: list[str] = []
    repeats: dict[str, str] = {}
    for metric in metrics:
        same = next((k for k in kept if all(_same_value(r.get(metric), r.get(k)) for r in ok)), None)
        if same is None:
            kept.append(metric)
        else:
            repeats[metric] = same
    return kept, repeats


def _compute_line(rows: list[dict[str, Any]]) -> str:
    """Training compute per device: CPU core-hours (each job's training wall time x its threads) and
    accelerator-hours (training wall time) for jobs that trained on a GPU."""
    trained = [r for r in rows if r["status"] == "ok" or r["status"] in FAILED_TO_TRAIN]
    on_cpu = [r for r in trained if r["device"] == "cpu"]
    core_s = sum((r["train_time_s"] or 0) * (r["threads"] or 1) for r in on_cpu)
    threads = sorted({r["threads"] for r in on_cpu if r["threads"] is not None})
    parts = []
    if on_cpu:
        parts.append(
            f"{len(on_cpu)} on CPU, {core_s / 3600:.2f} core-hours (each job's training wall time x its threads, "
            f"{'/'.join(map(str, threads))} per job)"
        )
    for device in sorted({r["device"] for r in trained} - {"cpu"}):
        jobs = [r for r in trained if r["device"] == device]
        hours = sum(r["train_time_s"] or 0 for r in jobs) / 3600
        parts.append(f"{len(jobs)} on {device}, {hours:.2f} device-hours of training wall time")
    return f"{len(trained)} jobs trained to their end: {'; '.join(parts)}. Validation and test not counted."


def metric_section(name: str, rows, comparisons, metric: str, figure_dir: Path, headline: bool) -> list[str]:
    """One metric: its cells (with the paper and cost), the verdicts, every test, power, exploratory."""
    cells = cell_table(rows, metric)
    ours = comparisons[comparisons.metric == metric]
    failed = cell_values(rows, metric, statuses=FAILED_TO_TRAIN)
    notes = "; ".join(f"`{d}`: {PAPER_NOTE[d]}" for d in dict.fromkeys(cells.dataset) if d in PAPER_NOTE)
    figure = figure_dir / f"{name}_{metric}.png"
    figures.plot_cells(cells, cell_values(rows, metric), failed, metric, figure, paper=True)
    lines = [f"## {METRIC_NAMES[metric]}", "", "### Cells", "", tables.cells_markdown(cells, paper=True, cost=True),
             "", f"`paper`: {notes}." if notes else "", "", f"![{metric}](figures/{figure.name})", ""]  # fmt: skip
    # a record without a parameter or FLOP count (an older or damaged one) has no place on the cost figure
    costed = cells[cells.params_M.notna() & cells.gflops.notna()] if headline and not cells.empty else cells
    if headline and not costed.empty:
        figures.plot_cost(costed, metric, figure_dir / f"{name}_cost.png")
        lines += [f"![cost](figures/{name}_cost.png)", ""]
    if headline and len(costed) < len(cells):
        uncosted = ", ".join(f"{r.dataset} {r.cell}" for r in cells[~cells.index.isin(costed.index)].itertuples())
        lines += [f"Not on the cost figure (their records have no parameter or FLOP count): {uncosted}.", ""]
    if ours.empty:
        return lines
    forest = figure_dir / f"{name}_{metric}_comparisons.png"
    figures.plot_comparisons(ours, metric, forest)
    lines += ["### Verdicts", "", tables.verdicts_markdown(ours), "", f"![comparisons](figures/{forest.name})", "",
              "### Every test (p raw, and Holm within the family)", "", tables.tests_markdown(ours), "",
              "### What the study could have seen", "", tables.power_markdown(ours), ""]  # fmt: skip
    if ours.exploratory.any():
        lines += ["### Exploratory: no verdict", "", tables.exploratory_markdown(ours), ""]
    return lines


def write_study_report(
    study_dir: str | Path, root: str | Path | None = None, declarations: Declarations | None = None
) -> dict[str, Path]:
    """Write ``jobs.csv``, ``comparisons.csv``, ``<study>.md`` and the figures for one study directory."""
    study_dir = Path(study_dir)
    root = Path(root) if root is not None else study_dir.parent
    name = study_dir.name
    rows = sweep_rows(study_dir)
    if not rows:
        raise SystemExit(f"error: no job records under {study_dir / 'jobs'}; run the study first (see README)")
    rows.sort(key=lambda r: (r["dataset"], r["attention"], r.get("variant") or "", r["seed"]))
    figure_dir = root / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    out = {"csv": study_dir / "jobs.csv", "comparisons": study_dir / "comparisons.csv", "md": root / f"{name}.md"}
    columns = summary_columns(rows)
    if "variant" not in columns:  # kept even where every job shares it: what the study ran is in the CSV
        columns.insert(columns.index("seed") + 1, "variant")
    write_atomic(out["csv"], csv_text(({c: csv_value(r[c]) for c in columns} for r in rows), columns))
    task = task_of(rows)
    declarations = declarations or declarations_for(name, rows)
    metrics, repeats = distinct_metrics(rows, declarations.metrics or METRICS[task])
    comparisons = evaluate(rows, declarations, metrics)
    write_atomic(out["comparisons"], tables.frame_csv(comparisons))
    lines = [
        f"# Study: {name}", "",
        f"Written by `python -m lga.study` from the job records in `{name}/jobs/` (per job: `{name}/jobs.csv`;",
        f"per comparison, every statistic: `{name}/comparisons.csv`). Cost: parameters and forward GFLOPs of the",
        "whole model. No times: the jobs shared 2 CPU cores with other work, so their wall times would measure",
        "the load (see experiments/bench_cpu.md for timings).", "",
        f"Compute: {_compute_line(rows)}", "",
        "Setting (each dataset's `none` job of seed 0; other cells differ from it only as their labels say):", "",
        settings_markdown(study_dir, rows), "",
        "## Declared comparisons", "", declarations_markdown(declarations, metrics), "",
        "## How to read the verdicts", "", tables.METHODS, "",
    ]  # fmt: skip
    for metric, same in repeats.items():
        lines += [
            f"{METRIC_NAMES[metric]} equals {METRIC_NAMES[same]} in every job, so it has no table of its own"
            + (" (every test object is small, under 32x32 px)." if metric == "test_map_small" else "."),
            "",
        ]
    for metric in metrics:
        lines += metric_section(name, rows, comparisons, metric, figure_dir, headline=metric == metrics[0])
    lines += convergence_section(name, study_dir, rows, task, declarations.margin(metrics[0]), figure_dir)
    weights = weight_frame(study_dir)
    lines += ["## Learned LGA weights at the last epoch", "", WEIGHTS_TEXT, "", weights_markdown(weights)]
    if not weights.empty:
        plot_weights(weights, figure_dir / f"{name}_weights.png")
        lines += [f"![weights](figures/{name}_weights.png)", ""]
    lines += tables.failures_markdown(rows, metrics[0])
    write_atomic(out["md"], "\n".join(lines).rstrip("\n") + "\n")
    out["dashboard"] = write_dashboard(study_dir, rows, comparisons, metrics[0], f"Study: {name}")
    return out


HEADLINE_START, HEADLINE_END = "<!-- study headline: python -m lga.study --readme -->", "<!-- end of study headline -->"


def headline_markdown(root: Path, link: str = ".") -> str:
    """The verdict README shows: per study one line with the verdict counts of each other declared family (a
    family that repeats the primary questions on later seeds is one of them, named), then one line per primary
    comparison on the headline metric with its verdict and test (tests/test_study.py holds the README's block
    to 12 lines). The full tables are in each study's report (``link``: ``root`` as the reader reaches it)."""
    lines = []
    for study_dir in studies(root):
        rows = sweep_rows(study_dir)
        declarations = declarations_for(study_dir.name, rows)
        metric = distinct_metrics(rows, declarations.metrics or METRICS[task_of(rows)])[0][0]
        comparisons = tables.declared(evaluate(rows, declarations, [metric]))
        others = comparisons[comparisons.family != "primary"]
        untested = others.n.fillna(0).map(lambda n: f"untested ({int(n)} paired seed{'s' * (n != 1)})")
        words = others.verdict.where(others.verdict != "", untested)
        words = words + others.robustness.map(lambda r: " (fragile)" if r else "")
        counted = "; ".join(
            f"{family} {', '.join(f'{n} {word}' for word, n in sorted(group.value_counts().items()))}"
            for family, group in words.groupby(others.family, sort=False)
        )
        failed = [r for r in labelled(rows) if r["status"] in FAILED_TO_TRAIN]
        not_learned = f" {len(failed)} run(s) did not learn, left out as failures." if failed else ""
        primary = comparisons[comparisons.family == "primary"]
        heading = f"- **{study_dir.name}** ({METRIC_NAMES[metric]}, [report]({link}/{study_dir.name}.md))"
        if len(primary):
            heading += ", the primary comparisons below"
        if counted:
            heading += f"; the other declared families: {counted}"
        lines.append(f"{heading}.{not_learned}")
        for _, r in primary.iterrows():
            fragile = f"; {r['robustness']}" if r["robustness"] else ""
            measured = f"{tables.difference(r)} points over {tables.count(r['n'])} seed(s), " if r["n"] > 0 else ""
            word = f"**{r['verdict']}**" if r["verdict"] else "untested"
            lines.append(f"  - {r['dataset']} {r['comparison']}: {measured}{word} ({r['reason']}{fragile})")
    return "\n".join(lines)


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
    try:
        for study_dir in dirs:
            for kind, path in write_study_report(study_dir, args.root).items():
                print(f"{kind}: {path}")
        if args.readme is not None:
            update_readme(args.readme, args.root)
            print(f"readme: {args.readme}")
    except LGAError as err:  # a damaged record or declaration file: its message names it
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()

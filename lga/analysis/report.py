"""Aggregate a finished sweep over seeds: is an attention block's gain larger than seed noise?

    python -m lga.report logs/multiruns/<sweep>            # writes report.md, report.csv, report.png there
    python -m lga.report <sweep> --metric test_top5 --baseline se

Per dataset x backbone x attention (x any other override the jobs differ in): mean and
standard deviation of the metric over seeds. Against the baseline attention (``none``
by default) on the same dataset, backbone and other overrides: the mean difference over
the seeds both have, its 95% confidence interval (t distribution) and a paired t-test's
p-value. Only jobs with status ``ok`` are averaged; the others (failed, diverged,
interrupted, incomplete) are listed with their errors, and the report warns about
them, about missing baselines and about partial test sets. Works on any sweep
directory ``run.py -m`` wrote, whichever launcher ran it; imports no torch.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from scipy import stats

from ..utils import csv_text, markdown_table, write_atomic
from .results import METRIC_COLUMNS, sweep_rows


def fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    """A table cell: blank for no value (None or NaN), else ``digits`` decimals (``+``/``-`` with ``sign``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def ci_half(n: int, sd: float | None) -> float:
    """Half-width of the 95% t interval of a mean of ``n`` values with standard deviation ``sd`` (0 for n < 2)."""
    return stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) if n > 1 and sd else 0.0


def paired_difference(treated: dict[int, float], baseline: dict[int, float]) -> dict[str, Any]:
    """Mean of treated - baseline over shared seeds, 95% CI and paired t-test p-value."""
    seeds = sorted(set(treated) & set(baseline))
    diffs = [treated[s] - baseline[s] for s in seeds]
    out: dict[str, Any] = {"n_paired": len(diffs), "diff": None, "ci_low": None, "ci_high": None, "p_value": None}
    if not diffs:
        return out
    out["diff"] = statistics.fmean(diffs)
    if len(diffs) > 1:
        half = ci_half(len(diffs), statistics.stdev(diffs))
        out["ci_low"], out["ci_high"] = out["diff"] - half, out["diff"] + half
        if statistics.stdev(diffs) > 0:
            out["p_value"] = float(stats.ttest_rel([treated[s] for s in seeds], [baseline[s] for s in seeds]).pvalue)
        else:
            out["p_value"] = 0.0 if out["diff"] != 0 else 1.0
    return out


Cell = tuple[str, str, str, str]  # (dataset, backbone, attention, variant)


def values_by_group(rows: list[dict[str, Any]], metric: str) -> dict[Cell, dict[int, float]]:
    """(dataset, backbone, attention, variant) -> {seed: metric} over the jobs that finished ``ok``.
    Jobs that differ in any override (``variant``) never share a cell."""
    by_group: dict[Cell, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r["status"] == "ok" and r[metric] is not None:
            by_group[(r["dataset"], r["backbone"], r["attention"], r.get("variant") or "")][int(r["seed"])] = float(
                r[metric]
            )
    return by_group


def without_attention_options(variant: str) -> str:
    """A variant less its ``attention.*`` overrides: the baseline block has none of them."""
    return " ".join(o for o in variant.split() if not o.lstrip("+~").startswith("attention."))


def aggregate(by_group: dict[Cell, dict[int, float]], metric: str, baseline: str) -> list[dict[str, Any]]:
    """One row per cell: n, mean, sd over seeds, and the paired difference to the baseline block
    on the same data, backbone and other overrides."""
    table = []
    for (dataset, backbone, attention, variant), values in sorted(by_group.items()):
        base = by_group.get((dataset, backbone, baseline, without_attention_options(variant)))
        compared = paired_difference(values, base) if base is not None and attention != baseline else {}
        table.append({
            "dataset": dataset, "backbone": backbone, "attention": attention, "variant": variant, "metric": metric,
            "n": len(values), "mean": statistics.fmean(values.values()),
            "std": statistics.stdev(values.values()) if len(values) > 1 else None,
            "seeds": " ".join(str(s) for s in sorted(values)),
            **{k: compared.get(k) for k in ("n_paired", "diff", "ci_low", "ci_high", "p_value")},
        })  # fmt: skip
    return table


def _label(row: dict[str, Any], table: list[dict[str, Any]]) -> str:
    """The attention name, plus the variant where the table's variants differ."""
    varies = len({r["variant"] for r in table}) > 1
    return f"{row['attention']} [{row['variant']}]" if varies and row["variant"] else row["attention"]


def warnings_for(rows: list[dict[str, Any]], table: list[dict[str, Any]], metric: str, baseline: str) -> list[str]:
    """What a reader must know before trusting the table: excluded jobs, missing baselines, partial test sets."""
    notes = []
    excluded = Counter(r["status"] for r in rows if r["status"] != "ok")
    if excluded:
        listed = ", ".join(f"{n} {status}" for status, n in sorted(excluded.items()))
        notes.append(f"{sum(excluded.values())} job(s) excluded ({listed}): listed below, not averaged in.")
    for dataset, backbone in sorted({(r["dataset"], r["backbone"]) for r in table}):
        if not any(r["attention"] == baseline for r in table if (r["dataset"], r["backbone"]) == (dataset, backbone)):
            notes.append(f"no `{baseline}` runs for {dataset} / {backbone}: no differences computed there.")
    if metric.startswith("test_"):
        partial = sorted(
            {
                r["test_images"]
                for r in rows
                if r["status"] == "ok" and r.get("test_images") and " of " in str(r["test_images"])
            }
        )
        if partial:
            notes.append(
                f"partial test sets: {metric} is measured on {', '.join(partial)} images, not the whole test set."
            )
    return notes


def to_markdown(
    table: list[dict[str, Any]], failed: list[dict[str, Any]], metric: str, baseline: str, notes: list[str]
) -> str:
    columns = ["dataset", "backbone", "attention", "n", "mean", "std", f"diff vs {baseline}", "95% CI", "p (paired t)"]
    cells = [
        [r["dataset"], r["backbone"], _label(r, table), r["n"], fmt(r["mean"]), fmt(r["std"]),
         fmt(r["diff"], sign=True),
         f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["ci_low"] is not None else "", fmt(r["p_value"], 3)]
        for r in table
    ]  # fmt: skip
    lines = [f"## {metric} (%) over seeds; difference to `{baseline}` paired by seed", ""]
    lines += [f"> warning: {note}" for note in notes] + ([""] if notes else [])
    lines += [markdown_table(columns, cells), "", f"## Jobs that did not finish: {len(failed)}", ""]
    if failed:
        failed_columns = ["job", "dataset", "backbone", "attention", "seed", "status", "error"]
        lines.append(markdown_table(failed_columns, ([r[c] for c in failed_columns] for r in failed)))
    return "\n".join(lines) + "\n"


# the narrowest y-axis the plot draws, in percentage points: a 0.2-point gap between single
# runs (4 test images in 2,000) must not look like a landslide
MIN_SPAN = 2.0


def plot(
    table: list[dict[str, Any]], values: dict[Cell, dict[int, float]], metric: str, baseline: str, path: Path
) -> None:
    """Per dataset/backbone: every seed's value as a dot, the mean with its 95% CI (t) where
    n > 1, n under each variant, and the baseline's mean as a dashed line. Dots and
    intervals, not bars: the y-axis can then zoom to the data without faking ratios, but
    never to less than :data:`MIN_SPAN` points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["dataset"], r["backbone"]) for r in table})
    fig, axes = plt.subplots(1, len(groups), figsize=(max(4.5, 4 * len(groups)), 3.8), squeeze=False)
    for ax, (dataset, backbone) in zip(axes[0], groups):
        rows = [r for r in table if (r["dataset"], r["backbone"]) == (dataset, backbone)]
        rows.sort(key=lambda r: (r["attention"] != baseline, r["attention"]))  # baseline first
        for x, r in enumerate(rows):
            seeds = list(values[(dataset, backbone, r["attention"], r["variant"])].values())
            ax.scatter([x] * len(seeds), seeds, s=14, color="0.55", zorder=2)
            if r["n"] > 1:
                ax.errorbar(x, r["mean"], yerr=ci_half(r["n"], r["std"]), fmt="o", color="C0", capsize=4, zorder=3)
            else:
                ax.plot(x, r["mean"], "o", color="C0", zorder=3)
            if r["attention"] == baseline:
                ax.axhline(r["mean"], color="C0", linestyle="--", linewidth=0.8, zorder=1)
        ax.set_xticks(
            range(len(rows)),
            [f"{_label(r, table)}\nn={r['n']}" for r in rows],
            fontsize=8,
            rotation=45 if len(rows) > 5 else 0,
        )
        title = f"{dataset} / {backbone}"
        if not any(r["attention"] == baseline for r in rows):
            title += f"\n(no {baseline} baseline)"
        if all(r["n"] == 1 for r in rows):
            title += "\n(one seed each: seed noise unknown)"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(f"{metric} (%): seeds, mean ± 95% CI", fontsize=8)
        ax.margins(y=0.15)
        low, high = ax.get_ylim()
        if high - low < MIN_SPAN:  # never zoom so far that a few images' difference fills the axis
            middle = (low + high) / 2
            ax.set_ylim(middle - MIN_SPAN / 2, middle + MIN_SPAN / 2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(sweep_dir: str | Path, metric: str | None = None, baseline: str = "none") -> dict[str, Path]:
    """Write report.md, report.csv and report.png into ``sweep_dir``. ``metric`` defaults to
    the sweep's headline: test top-1 for classification, test mAP50 for detection."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SystemExit(f"error: {sweep_dir} is not a directory; pass a sweep directory written by `run.py -m`")
    rows = sweep_rows(sweep_dir)
    if not rows:
        raise SystemExit(f"error: no jobs under {sweep_dir} (no */.hydra/config.yaml); is it a sweep directory?")
    if metric is None:
        metric = next((m for m in ("test_top1", "test_map50") if any(r[m] is not None for r in rows)), "test_top1")
    values = values_by_group(rows, metric)
    table = aggregate(values, metric, baseline)
    failed = [r for r in rows if r["status"] != "ok"]
    notes = warnings_for(rows, table, metric, baseline)
    out = {"md": sweep_dir / "report.md", "csv": sweep_dir / "report.csv", "png": sweep_dir / "report.png"}
    write_atomic(out["md"], to_markdown(table, failed, metric, baseline, notes))
    write_atomic(out["csv"], csv_text(table, list(table[0]) if table else ["dataset"]))
    if table:
        plot(table, values, metric, baseline, out["png"])
    else:
        out.pop("png")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir")
    parser.add_argument("--metric", choices=METRIC_COLUMNS, help="default: test_top1, or test_map50 for detection")
    parser.add_argument("--baseline", default="none", help="attention the others are compared with")
    args = parser.parse_args(argv)
    paths = write_report(args.sweep_dir, args.metric, args.baseline)
    sys.stdout.write(paths["md"].read_text())
    print("\n" + "\n".join(f"{kind}: {path}" for kind, path in paths.items()))


if __name__ == "__main__":
    main()

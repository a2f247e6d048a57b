"""The Markdown tables the sweep report and the study report share: cells, verdicts, tests, power."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..utils import csv_text, csv_value, markdown_table
from .cells import FAILED_TO_TRAIN, labelled
from .paper import METRIC_NAMES
from .stats import ALPHA, POWER, SIGN_FLIP, p_text


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    """A table cell: blank for no value (None or NaN), else ``digits`` decimals (``+``/``-`` with ``sign``)."""
    if _missing(value):
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def pm(mean: float | None, sd: float | None, digits: int = 2) -> str:
    """``91.24 ± 0.31``; the mean alone where there is no sd."""
    return "" if _missing(mean) else fmt(mean, digits) + ("" if _missing(sd) else f" ± {sd:.{digits}f}")


def interval(low: float | None, high: float | None) -> str:
    """``[-0.30, +0.54]``: a 95% interval of a difference; blank where there is none."""
    return "" if _missing(low) else f"[{fmt(low, sign=True)}, {fmt(high, sign=True)}]"


def difference(row: Any) -> str:
    """``+0.12 [-0.30, +0.54]``: a paired difference and its interval, where there is one."""
    return f"{fmt(row['diff'], sign=True)} {interval(row['ci_low'], row['ci_high'])}".strip()


def count(value: Any) -> str:
    return "" if _missing(value) else str(int(value))


def frame_csv(frame: pd.DataFrame) -> str:
    """A frame as CSV: blanks for missing values, floats to 6 significant digits (stable bytes across
    library versions), whole-number columns as integers."""
    integers = {"n", "seeds_for_margin", "seeds_for_diff"}

    def cell(column: str, value: Any) -> Any:
        if _missing(value):
            return ""
        if column in integers:
            return int(value)
        return csv_value(value, digits=6)

    rows = [{c: cell(c, v) for c, v in row.items()} for row in frame.to_dict("records")]
    return csv_text(rows, list(frame.columns))


def cells_markdown(cells: pd.DataFrame, paper: bool = False, cost: bool = False) -> str:
    """Per cell: its ok seeds, mean ± sd, the 95% interval of the mean, its training failures
    (a rate, never averaged in), and optionally the paper's number and the cost."""
    columns = ["dataset", "cell", "seeds", "mean ± sd", "95% CI of the mean", "training failures"]
    columns += ["paper"] * paper + ["params (M)", "GFLOPs"] * cost
    rows = [
        [r["dataset"], r["cell"], r["n"], pm(r["mean"], r["sd"]),
         f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if not _missing(r["ci_low"]) else "", r["failures"]]
        + [fmt(r["paper"])] * paper + [fmt(r["params_M"], 4), fmt(r["gflops"], 4)] * cost
        for _, r in cells.iterrows()
    ]  # fmt: skip
    return markdown_table(columns, rows)


def declared(comparisons: pd.DataFrame) -> pd.DataFrame:
    return comparisons[~comparisons.exploratory.astype(bool)]


def verdicts_markdown(comparisons: pd.DataFrame) -> str:
    """Per declared comparison: the paired difference, its verdict, the test and adjusted p behind
    it, and whether the sign-flip test backs it."""
    columns = ["family", "dataset", "comparison", "seeds", "difference [95% CI]", "verdict", "why", "robustness"]
    rows = [
        [r["family"], r["dataset"], r["comparison"], count(r["n"]), difference(r), r["verdict"], r["reason"],
         r["robustness"]]
        for _, r in declared(comparisons).iterrows()
    ]  # fmt: skip
    return markdown_table(columns, rows)


def tests_markdown(comparisons: pd.DataFrame) -> str:
    """Every p of every declared comparison: raw, Holm-adjusted over its family's tests, and the exact
    sign-flip tests that back each kind of verdict, raw (Holm over the family's sign-flip tests)."""
    columns = ["family", "dataset", "comparison", "paired t", "Holm", "sign-flip (Holm)", "TOST ±m", "Holm",
               "not better by m", "Holm", "sign-flip (Holm)", "not worse by m", "Holm", "sign-flip (Holm)"]  # fmt: skip
    tests = ["p_t", "p_t_holm", "p_sign_flip", "p_tost", "p_tost_holm", "p_not_better", "p_not_better_holm",
             "p_sign_flip_not_better", "p_not_worse", "p_not_worse_holm", "p_sign_flip_not_worse"]  # fmt: skip

    def shown(r: pd.Series, test: str) -> str:
        raw = p_text(None if _missing(r[test]) else r[test])
        holm = r.get(f"{test}_holm")
        return f"{raw} ({p_text(holm)})" if test in SIGN_FLIP and raw and not _missing(holm) else raw

    rows = [[r["family"], r["dataset"], r["comparison"], *(shown(r, t) for t in tests)]
            for _, r in declared(comparisons).iterrows()]  # fmt: skip
    return markdown_table(columns, rows)


def power_markdown(comparisons: pd.DataFrame) -> str:
    """What the study could have seen: the smallest difference 80% power detects at its n and sd,
    and the seeds the margin (and the observed difference) would need."""
    columns = ["family", "dataset", "comparison", "seeds", "sd of differences", f"detectable at {POWER:.0%} power",
               "margin m", "seeds for m", "seeds for the observed difference"]  # fmt: skip
    rows = [
        [r["family"], r["dataset"], r["comparison"], count(r["n"]), fmt(r["sd"]), fmt(r["mde"]), f"{r['margin']:g}",
         count(r["seeds_for_margin"]), count(r["seeds_for_diff"])]
        for _, r in declared(comparisons).iterrows()
    ]  # fmt: skip
    return markdown_table(columns, rows)


def exploratory_markdown(comparisons: pd.DataFrame) -> str:
    """Comparisons no family declared: the difference and raw p-values, no verdict word."""
    rows = [
        [r["family"], r["dataset"], r["comparison"], count(r["n"]), difference(r), p_text(r["p_t"]),
         p_text(None if _missing(r["p_sign_flip"]) else r["p_sign_flip"])]
        for _, r in comparisons[comparisons.exploratory.astype(bool)].iterrows()
    ]  # fmt: skip
    columns = ["family", "dataset", "comparison", "seeds", "difference [95% CI]", "paired t (raw)", "sign-flip (raw)"]
    return markdown_table(columns, rows)


def failures_markdown(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """Runs that trained but did not learn or diverged (their cells' failure rates), and jobs that did not
    finish: listed with why, never averaged in."""
    rows = labelled(rows)
    failed = [r for r in rows if r["status"] in FAILED_TO_TRAIN]
    unfinished = [r for r in rows if r["status"] != "ok" and r["status"] not in FAILED_TO_TRAIN]
    lines = []
    if failed:
        columns = ["job", "dataset", "cell", "seed", "status", METRIC_NAMES.get(metric, metric), "why"]
        listed = [[r["job"], r["dataset"], r["cell"], r["seed"], r["status"], fmt(r.get(metric)), r["error"]]
                  for r in failed]  # fmt: skip
        lines += [f"## Runs that did not learn or diverged: {len(failed)}", "",
                  "Left out of every mean and test; their cells count them as a failure rate (`training failures`).",
                  "", markdown_table(columns, listed), ""]  # fmt: skip
    if unfinished:
        columns = ["job", "dataset", "cell", "seed", "status", "error"]
        listed = [[r[c] for c in columns] for r in unfinished]
        lines += [f"## Jobs that did not finish: {len(unfinished)}", "", markdown_table(columns, listed), ""]
    return lines


def _robust_from(tests: int) -> int:
    """The fewest seeds at which k / 2^n, the least Holm p a family of k sign-flip tests can give, is under ALPHA."""
    return math.floor(math.log2(tests / ALPHA)) + 1


METHODS = f"""\
Each comparison is paired by seed: seed s of one cell against seed s of the other (same data order,
initialisation and options), over the seeds both finished; `difference` is the mean of the paired
differences with its 95% t interval (unadjusted: the verdicts come from the Holm-adjusted tests, so an
interval that excludes 0 can go with a verdict other than better / worse). Only jobs that trained and
learned enter; runs that did not learn are a failure rate of their cell, listed below. A verdict answers
a declared comparison (see `Declared comparisons`), with Holm's correction over every test of its family
at once (the paired t-test and both one-sided tests of each comparison, so the family-wise error rate
holds over every null the family tests; a declared comparison without records counts as a test that did
not reject):

- **better** / **worse**: the two-sided paired t-test rejects no difference (Holm p < {ALPHA});
- else **equivalent within ±m**: both one-sided tests reject (TOST), a difference of m or more either way;
- else **not better by m** / **not worse by m**: one one-sided t-test rejects a gain (a loss) of m or more;
- else **inconclusive**, with the seeds a paired t-test would need to detect m with {POWER:.0%} power.

`robustness`: a verdict whose exact sign-flip test (no normality assumed, a symmetric distribution of the
differences; two-sided against 0 for better / worse, one-sided against the margin for the others),
Holm-corrected over its family like the t-tests, gives p >= {ALPHA} is **fragile**: it rests on the t-test
alone. With n seeds that test cannot go below 2/2^n two-sided (0.25 at 3 seeds, 0.0625 at 5, 0.0156 at 7)
or 1/2^n one-sided, and Holm's adjusted p is at least k times the smallest p of a family of k tests: no
verdict of a family can be robust below log2(k / {ALPHA}) seeds ({_robust_from(3)} for 3 tests,
{_robust_from(6)} for 6, {_robust_from(21)} for 21), and a better / worse verdict usually needs one more.
Below that, fragile reports the number of seeds, not evidence against the t-test. The
power table says what each comparison could have seen: the smallest true difference a paired t-test detects
with {POWER:.0%} power at its seeds and observed sd (a planning figure, as rough as an sd from a few seeds).
Exploratory comparisons (pairs no family declared) show raw p and no verdict word."""

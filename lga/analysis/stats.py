"""Paired comparisons over seeds and the verdicts drawn from them: the one place lga computes a test.

A comparison pairs a treated cell with a baseline cell on the seeds both ran (same data order,
initialisation and options), so what a seed does to both cancels. Everything is scipy or statsmodels:

- the mean difference, its 95% t interval and the two-sided paired t-test (scipy ``ttest_rel``);
- the sign-flip permutation test (scipy ``permutation_test``), exact over all 2^n sign vectors up to 16
  pairs (drawn beyond): it assumes no normality, and its smallest two-sided p is 2 / 2^n (0.0625 at 5
  seeds, 0.25 at 3); for the one-sided verdicts it runs one-sided on the differences shifted by the
  margin. Corrected by Holm over the same family as the t-tests, a verdict it does not back is flagged
  fragile: the verdict then rests on the t-test alone (at few seeds, because of the test's floor);
- equivalence within ±margin (TOST, statsmodels ``ttost_paired``) and its two one-sided halves:
  not better by the margin (H0: the treated cell is better by m or more) and not worse by it;
- power (statsmodels ``TTestPower``) at the observed sd of the differences: the smallest difference a
  paired t-test would detect with 80% power at this n, and the seeds the margin (or the observed
  difference) would need; planning numbers, as uncertain as an sd from a few seeds;
- Holm's correction (statsmodels ``multipletests``) over every test of a declared family: the paired t and
  both one-sided tests of each comparison, so that the family-wise error rate holds over all the nulls
  the family tests (no difference, better by m, worse by m), not only within one kind of test. It is
  conservative: the three nulls of one comparison cannot all be true. A declared comparison without a test (no records
  yet) counts as a test that did not reject (p = 1), so a family's correction does not shrink while it
  waits for data. Equivalence (TOST) holds when both one-sided tests reject (intersection-union): its
  Holm p is the larger of theirs.

Higher is better unless told otherwise (top-1 and mAP are). numpy, scipy, statsmodels, pandas: no torch.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

ALPHA = 0.05
POWER = 0.8
# sign vectors the sign-flip test enumerates: all of them up to 16 seeds; beyond, this many drawn (seeded)
SIGN_FLIP_RESAMPLES = 2**16
# a comparison's tests: the paired t-test, TOST, non-superiority (H0: better by m or more), non-inferiority
# (H0: worse by m or more); Holm runs over the FAMILY_TESTS of every comparison of a family (TOST follows)
TESTS = ("p_t", "p_tost", "p_not_better", "p_not_worse")
FAMILY_TESTS = ("p_t", "p_not_better", "p_not_worse")
# exact sign-flip tests: two-sided against no difference, and one-sided against each margin (the
# distribution-free twins of FAMILY_TESTS, corrected over the family in the same way)
SIGN_FLIP = ("p_sign_flip", "p_sign_flip_not_better", "p_sign_flip_not_worse")
COLUMNS = [
    "n", "diff", "sd", "ci_low", "ci_high", *TESTS, *SIGN_FLIP, "margin", "mde", "seeds_for_margin",
    "seeds_for_diff",
]  # fmt: skip


def mean_interval(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, sd and 95% t interval of the mean (scipy ``t.interval``); no sd or interval under 2 values."""
    x = np.asarray(values, dtype=float)
    out: dict[str, float | None] = {"n": len(x), "mean": None, "sd": None, "ci_low": None, "ci_high": None}
    if len(x) == 0:
        return out
    out["mean"] = float(x.mean())
    if len(x) > 1:
        out["sd"] = float(x.std(ddof=1))
        out["ci_low"], out["ci_high"] = out["mean"], out["mean"]
        if out["sd"] > 0:
            low, high = stats.t.interval(1 - ALPHA, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
            out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def sign_flip_p(
    treated: Sequence[float], baseline: Sequence[float], shift: float = 0.0, alternative: str = "two-sided"
) -> float:
    """p of the paired sign-flip test on the mean of (treated - baseline - ``shift``) (exact up to 16 pairs):
    two-sided against 0, or one-sided (``alternative`` "less" / "greater": the mean is below / above
    ``shift``). The differences are rounded to 1e-9 first: counts over a fixed test set give exact ties
    (+0.10 and -0.10 top-1 points), which float noise would otherwise break."""
    differences = np.round(np.asarray(treated, float) - np.asarray(baseline, float) - shift, 9)
    result = stats.permutation_test(
        (differences, np.zeros_like(differences)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples", vectorized=True, n_resamples=SIGN_FLIP_RESAMPLES, alternative=alternative,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    return float(result.pvalue)


def minimal_detectable_effect(sd: float, n: int) -> float | None:
    """The true difference a two-sided paired t-test at :data:`ALPHA` detects with :data:`POWER` at n pairs."""
    if n < 2 or not sd:
        return None
    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=ALPHA, power=POWER)) * sd


def seeds_needed(effect: float | None, sd: float | None) -> int | None:
    """Seeds (pairs) a two-sided paired t-test needs to detect ``effect`` with :data:`POWER` at this sd."""
    if effect is None or not sd or effect == 0:
        return None
    size = abs(effect) / sd
    if not TTestPower().power(effect_size=size, nobs=2, alpha=ALPHA) < POWER:  # NaN: an effect too large to compute
        return 2
    needed = TTestPower().solve_power(effect_size=size, nobs=None, alpha=ALPHA, power=POWER)
    return None if math.isnan(needed) else math.ceil(needed)


def compare(
    treated: Mapping[Any, float], baseline: Mapping[Any, float], margin: float, higher_is_better: bool = True
) -> dict[str, Any]:
    """Treated minus baseline over the seeds both have: :data:`COLUMNS`. Under 2 pairs, or when every
    pair differs by the same amount (sd 0), the t-tests are undefined: their p stays ``None`` (the
    sign-flip tests are there from 2 pairs)."""
    seeds = sorted(set(treated) & set(baseline))
    t = np.array([treated[s] for s in seeds], dtype=float)
    b = np.array([baseline[s] for s in seeds], dtype=float)
    out: dict[str, Any] = {**dict.fromkeys(COLUMNS), "n": len(seeds), "margin": margin}
    if not seeds:
        return out
    # equal counts give equal differences that float noise would make unequal (sd 1e-15, p 1e-27): rounded
    # as in sign_flip_p, equal pairs have sd 0 and no t-test
    diffs = np.round(t - b, 9)
    out["diff"] = float(diffs.mean())
    if len(seeds) < 2:
        return out
    better = 1 if higher_is_better else -1  # the direction of "better by m": +m, or -m for lower-is-better
    more, less = ("greater", "less") if higher_is_better else ("less", "greater")
    # the sign-flip tests need no spread: n equal non-zero differences still reach p = 2 / 2^n
    out.update(
        p_sign_flip=sign_flip_p(t, b),
        p_sign_flip_not_better=sign_flip_p(t, b, better * margin, less),
        p_sign_flip_not_worse=sign_flip_p(t, b, -better * margin, more),
    )  # fmt: skip
    out["sd"] = float(diffs.std(ddof=1))
    if out["sd"] < 1e-9:
        out["sd"] = 0.0
        return out
    test = stats.ttest_rel(t, b)
    interval = test.confidence_interval(1 - ALPHA)
    out.update(
        ci_low=float(interval.low), ci_high=float(interval.high), p_t=float(test.pvalue),
        p_tost=float(ttost_paired(t, b, -margin, margin)[0]),
        p_not_better=float(stats.ttest_rel(t, b + better * margin, alternative=less).pvalue),
        p_not_worse=float(stats.ttest_rel(t, b - better * margin, alternative=more).pvalue),
        mde=minimal_detectable_effect(out["sd"], len(seeds)),
        seeds_for_margin=seeds_needed(margin, out["sd"]), seeds_for_diff=seeds_needed(out["diff"], out["sd"]),
    )  # fmt: skip
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of one family (statsmodels); ``None`` entries are not tests and stay ``None``."""
    tested = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    if tested:
        for i, p in zip(tested, multipletests([p_values[i] for i in tested], method="holm")[1]):
            adjusted[i] = float(p)
    return adjusted


def p_text(p: float | None) -> str:
    """A p-value as the reports print it: 3 significant digits (0.0625 stays exact), ``<0.001`` below."""
    return "" if p is None or math.isnan(p) else "<0.001" if p < 0.001 else f"{p:.3g}"


def verdict(row: Mapping[str, Any], family: str, size: int, higher_is_better: bool = True):
    """(verdict, reason, robustness) of one comparison from its Holm-adjusted p-values (``<test>_holm``).

    In order: better / worse when the paired t-test rejects no difference; equivalent within ±m when
    both one-sided tests reject a difference of m or more (TOST); not better by m / not worse by m when
    one of them does; inconclusive otherwise, with the seeds a paired t-test would need to detect m (80%
    power, at an unadjusted 5%: a floor, since Holm and TOST ask more). ``size``: the tests
    Holm ran over in the family. A verdict that its exact sign-flip test (two-sided for better / worse,
    one-sided against the margin for the others), Holm-corrected over the same family
    (``<test>_holm``), does not back at p < 0.05 is flagged fragile.
    """
    row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
    m, n = f"{row['margin']:g}", int(row["n"])
    if row.get("p_t_holm") is None:
        if n >= 2 and row.get("sd") == 0:
            holm = row.get("p_sign_flip_holm")
            flip = p_text(row["p_sign_flip"]) + (f", Holm p {p_text(holm)}" if holm is not None else "")
            return "", (f"no test: every pair differs by {row['diff']:+.2f} (sd 0), where a t-test is undefined; "
                        f"sign-flip p {flip}"), ""  # fmt: skip
        why = {0: "no paired seeds (a cell has no run that learned, or none yet)", 1: "1 paired seed"}.get(
            n, "no t-test"
        )
        return "", f"no test: {why}", ""

    def why(test: str, label: str) -> str:
        return f"{label}, Holm p {p_text(row[test + '_holm'])} over {size} tests in family {family}"

    def fragile(*tests: str) -> str:
        worst = max(row[f"{t}_holm"] for t in tests)
        return f"fragile: sign-flip Holm p {p_text(worst)}" if worst >= ALPHA else ""

    if row["p_t_holm"] < ALPHA:
        gained = row["diff"] > 0 if higher_is_better else row["diff"] < 0
        return ("better" if gained else "worse"), why("p_t", "paired t"), fragile("p_sign_flip")
    if row["p_tost_holm"] < ALPHA:
        robustness = fragile("p_sign_flip_not_better", "p_sign_flip_not_worse")
        return f"equivalent within ±{m}", why("p_tost", f"TOST ±{m} (both one-sided t)"), robustness
    one_sided = [(row[f"{k}_holm"], k) for k in ("p_not_better", "p_not_worse") if row[f"{k}_holm"] < ALPHA]
    if one_sided:
        test = min(one_sided)[1]
        word = "not better" if test == "p_not_better" else "not worse"
        hypothesis = f"H0 {'better' if test == 'p_not_better' else 'worse'} by {m}+"
        robustness = fragile(test.replace("p_", "p_sign_flip_", 1))
        return f"{word} by {m}", why(test, f"one-sided t ({hypothesis})"), robustness
    tests = f"paired t Holm p {p_text(row['p_t_holm'])}, TOST Holm p {p_text(row['p_tost_holm'])}"
    seeds = row["seeds_for_margin"]
    needed = f"; {int(seeds)} seeds to detect ±{m} (80% power, before Holm)" if seeds else ""
    return "inconclusive", f"{tests}, over {size} tests in family {family}{needed}", ""


def judge(comparisons: pd.DataFrame, by: Sequence[str] = ("family",), higher_is_better: bool = True) -> pd.DataFrame:
    """``comparisons`` (rows of :func:`compare` plus ``family`` and the columns in ``by``) with
    ``<test>_holm`` for each of :data:`TESTS` and :data:`SIGN_FLIP`, and ``verdict``, ``reason``,
    ``robustness``. Holm runs over the :data:`FAMILY_TESTS` of every comparison in a group of ``by`` at
    once (a comparison without a test counts as p = 1), and separately over their sign-flip twins (where a
    comparison whose differences are all equal has a p, though no t-test); TOST's Holm p is the larger of
    its two one-sided tests'. Rows with a true ``exploratory`` column are no family's: raw p only, no
    verdict word."""
    out = comparisons.copy()
    exploratory = out["exploratory"].astype(bool) if "exploratory" in out else pd.Series(False, index=out.index)
    for test in (*TESTS, *SIGN_FLIP):
        out[f"{test}_holm"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    out["verdict"], out["reason"], out["robustness"] = "", "exploratory: raw p, no verdict", ""
    declared = out[~exploratory]
    for _, group in declared.groupby(list(by), sort=False):
        for tests in (FAMILY_TESTS, SIGN_FLIP):
            cells = [(index, test) for index in group.index for test in tests]
            raw = [out.at[index, test] for index, test in cells]
            tested = [p is not None and not pd.isna(p) for p in raw]
            adjusted = holm([p if ok else 1.0 for p, ok in zip(raw, tested)])
            for (index, test), p, ok in zip(cells, adjusted, tested):
                out.at[index, f"{test}_holm"] = p if ok else None
        for index in group.index:
            halves = [out.at[index, f"{test}_holm"] for test in ("p_not_better", "p_not_worse")]
            out.at[index, "p_tost_holm"] = None if None in halves else max(halves)
        for index in group.index:
            row = out.loc[index].to_dict()
            out.loc[index, ["verdict", "reason", "robustness"]] = verdict(
                row, row["family"], len(FAMILY_TESTS) * len(group), higher_is_better
            )
    return out

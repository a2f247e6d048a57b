"""Confirmatory tests on the seeds run after a question was written down, beside the same on every seed.

    python experiments/confirm_new_seeds.py

- Fashion-MNIST (test top-1, margin 0.1 points): the primary comparisons, lga and lga_released vs none. Their
  families were declared after seeds 0-4 ran; seeds 5-14 came after.
- tiny_objects (test mAP50, margin 0.5 points): the primary comparisons, and the two pairs that the 3-seed
  table suggested (mhsa and cbam above lga, "leads for a confirmatory run" in findings.md, committed before
  seeds 3-7 ran).

One family per question and seed set, Holm within it, through lga.analysis.stats like the study's report. Runs
that did not learn are left out, as in the study.
"""

import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lga.analysis.record import read_record  # noqa: E402
from lga.analysis.stats import compare, judge, p_text  # noqa: E402

STUDY = Path(__file__).resolve().parents[1] / "experiments" / "study"
# (study, job-name prefix, metric, margin, first seed run after the question, questions: family -> pairs)
CONFIRMATIONS = (
    ("classification", "fashion-mobilenetv3_paper", "test/top1", 0.1, 5, {
        "primary": [("lga", "none"), ("lga_released", "none")],
    }),
    ("detection", "tiny_objects-mobilenetv3", "test/map50", 0.5, 3, {
        "primary": [("lga", "none"), ("lga_released", "none")],
        "after_the_table": [("mhsa", "lga"), ("cbam", "lga")],
    }),
)  # fmt: skip


def seed_values(study: str, prefix: str, attention: str, metric: str) -> dict[int, float]:
    """Seed -> ``metric`` (points) of the study's plain cell (no variant) for ``attention``, runs that learned."""
    cell = re.compile(rf"{re.escape(prefix)}-{attention}-s\d+")  # a variant's job adds --<overrides>
    paths = (path for path in (STUDY / study / "jobs").glob("*/result.json") if cell.fullmatch(path.parent.name))
    records = [read_record(path) for path in paths]
    # to 2 decimals, as the study's rows (lga.analysis.results): a top-1 over 10,000 test images is a multiple
    # of 0.01 points, the rest is float32 noise that would break the sign-flip test's exact ties
    return {r.seed: round(100 * r.metrics[metric], 2) for r in records if r.status == "ok"}


def confirmations() -> pd.DataFrame:
    """Every question on every seed and on the seeds after it was asked: one judged row per comparison."""
    tables = []
    for study, prefix, metric, margin, first_new, families in CONFIRMATIONS:
        for seeds, keep in (("every seed", lambda s: True), (f"seeds {first_new}+", lambda s: s >= first_new)):
            rows = []
            for family, pairs in families.items():
                for treated, baseline in pairs:
                    values = {a: seed_values(study, prefix, a, metric) for a in (treated, baseline)}
                    kept = {a: {s: v for s, v in by_seed.items() if keep(s)} for a, by_seed in values.items()}
                    comparison = compare(kept[treated], kept[baseline], margin)
                    family_name = f"{study} {family}, {seeds}"
                    rows.append({"family": family_name, "comparison": f"{treated} vs {baseline}", **comparison})
            tables.append(judge(pd.DataFrame(rows)))
    return pd.concat(tables, ignore_index=True)


def main() -> None:
    for _, row in confirmations().iterrows():
        print(
            f"{row['family']}: {row['comparison']}, {row['n']} seeds, {row['diff']:+.2f} "
            f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]: {row['verdict']} ({row['reason']}; "
            f"sign-flip p {p_text(row['p_sign_flip'])}){'; ' + row['robustness'] if row['robustness'] else ''}"
        )


if __name__ == "__main__":
    main()

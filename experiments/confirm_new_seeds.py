"""The study's primary Fashion-MNIST comparisons on the seeds added after the comparison families were
declared (5 and up), as a confirmatory test of the re-analysis, beside the same on every seed.

    python experiments/confirm_new_seeds.py

One family per seed set (lga vs none, lga_released vs none), Holm within it, margin 0.1 top-1 points,
through lga.analysis.stats like the study's report.
"""

import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lga.analysis.record import read_record  # noqa: E402
from lga.analysis.stats import compare, judge, p_text  # noqa: E402

JOBS = Path(__file__).resolve().parents[1] / "experiments" / "study" / "classification" / "jobs"
FIRST_NEW_SEED = 5


def test_top1(attention: str) -> dict[int, float]:
    """Seed -> test top-1 (points) of the study's plain cell (no variant) for ``attention``."""
    cell = re.compile(rf"fashion-mobilenetv3_paper-{attention}-s\d+")  # a variant's job adds --<overrides>
    paths = (path for path in JOBS.glob("*/result.json") if cell.fullmatch(path.parent.name))
    records = [read_record(path) for path in paths]
    # to 2 decimals, as the study's rows (lga.analysis.results): a top-1 over 10,000 test images is a multiple
    # of 0.01 points, the rest is float32 noise that would break the sign-flip test's exact ties
    return {r.seed: round(100 * r.metrics["test/top1"], 2) for r in records if r.status == "ok"}


def main() -> None:
    none = test_top1("none")
    rows = []
    for family, keep in (("every seed", lambda seed: True), (f"seeds {FIRST_NEW_SEED}+", lambda seed: seed >= 5)):
        for attention in ("lga", "lga_released"):
            treated = {s: v for s, v in test_top1(attention).items() if keep(s)}
            baseline = {s: v for s, v in none.items() if keep(s)}
            rows.append({"family": family, "comparison": f"{attention} vs none", **compare(treated, baseline, 0.1)})
    for _, row in judge(pd.DataFrame(rows)).iterrows():
        print(
            f"{row['family']}: {row['comparison']}, {row['n']} seeds, {row['diff']:+.2f} "
            f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]: {row['verdict']} ({row['reason']}; "
            f"sign-flip p {p_text(row['p_sign_flip'])})"
        )


if __name__ == "__main__":
    main()

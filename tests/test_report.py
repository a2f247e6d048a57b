import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lga.analysis.report import write_report
from lga.analysis.study import write_study_report
from lga.config import REPO_ROOT


def _fake_sweep(tmp_path, results, tested=10000):
    """A sweep directory as run.py -m leaves it: <job>/.hydra/config.yaml + result.json."""
    for job, (attention, seed, top1, status) in enumerate(results):
        job_dir = tmp_path / str(job)
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / ".hydra/config.yaml").write_text(
            f"dataset: {{name: mnist_5k}}\nbackbone: {{name: mobilenetv3}}\n"
            f"attention: {{name: {attention}}}\nseed: {seed}\n"
        )
        record = {
            "dataset": "mnist_5k",
            "backbone": "mobilenetv3",
            "attention": attention,
            "seed": seed,
            "status": status,
        }
        if status in ("ok", "not_learned"):
            record["metrics"] = {"test/top1": top1 / 100, "test/top5": 1.0, "test/images": tested}
            record["test_images_total"] = 10000
        if status != "ok":
            record["error"] = {
                "failed": "CUDA out of memory",
                "diverged": "training diverged: loss nan at step 3",
                "not_learned": "best validation top-1 12.0% is under twice chance (20.0%)",
            }[status]
        (job_dir / "result.json").write_text(json.dumps(record))
    return tmp_path


def _csv(path):
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_report_statistics(tmp_path):
    base = [97.0, 97.4, 96.8, 97.1]
    lga = [97.5, 97.6, 97.0, 97.2]
    results = [("none", s, v, "ok") for s, v in enumerate(base)] + [("lga", s, v, "ok") for s, v in enumerate(lga)]
    results.append(("se", 0, 0.0, "failed"))
    paths = write_report(_fake_sweep(tmp_path, results))
    comparisons = _csv(paths["csv"]).set_index("comparison")
    cells = _csv(paths["cells"]).set_index("cell")
    oracle = stats.ttest_rel(lga, base)  # scipy's paired t-test: p-value and the CI of the mean difference
    interval = oracle.confidence_interval(0.95)
    assert list(comparisons.index) == ["lga vs none"]  # the baseline is not compared with itself
    row = comparisons.loc["lga vs none"]
    assert cells.loc["lga", "mean"] == pytest.approx(np.mean(lga), rel=1e-5)  # the CSVs keep 6 digits
    assert cells.loc["lga", "sd"] == pytest.approx(np.std(lga, ddof=1), rel=1e-5)
    assert row["diff"] == pytest.approx(np.mean(np.array(lga) - np.array(base)), rel=1e-5)
    assert row["ci_low"] == pytest.approx(interval.low, rel=1e-5)
    assert row["ci_high"] == pytest.approx(interval.high, rel=1e-5)
    assert row["p_t"] == pytest.approx(oracle.pvalue, rel=1e-5)
    assert row["margin"] == 0.1 and row["family"] == "all"  # the default: top-1's margin, one family
    markdown = paths["md"].read_text()
    assert "Jobs that did not finish: 1" in markdown and "CUDA out of memory" in markdown
    assert f"| all | mnist_5k | lga vs none | 4 | {np.mean(np.subtract(lga, base)):+.2f} [" in markdown
    assert paths["png"].stat().st_size > 1000


def test_report_on_something_else_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no jobs under"):
        write_report(tmp_path)


def test_report_warns_about_what_it_leaves_out(tmp_path):
    """Diverged jobs are excluded and said to be; a missing baseline and a partial test set are named."""
    results = [("lga", 0, 97.0, "ok"), ("lga", 1, 97.2, "ok"), ("se", 0, 0.0, "diverged")]
    paths = write_report(_fake_sweep(tmp_path, results, tested=2000))
    markdown = paths["md"].read_text()
    assert "> warning: 1 job(s) excluded (1 diverged): listed below, not averaged in." in markdown
    assert "> warning: no `none` runs for mnist_5k / mobilenetv3: no differences computed there." in markdown
    assert "> warning: partial test sets: test_top1 is measured on 2000 of 10000 images" in markdown
    cells = _csv(paths["cells"])
    assert [(r.cell, r.n, r.failures) for r in cells.itertuples()] == [
        ("lga", 2, np.nan), ("se", 0, "1 of 1 diverged")
    ]  # fmt: skip
    assert paths["png"].stat().st_size > 1000


def test_a_run_that_did_not_learn_is_a_failure_of_its_cell_not_a_value(tmp_path):
    base, lga = [97.0, 97.4, 96.8], [97.5, 12.0, 97.2]  # lga seed 1 did not learn
    results = [("none", s, v, "ok") for s, v in enumerate(base)]
    results += [("lga", s, v, "not_learned" if s == 1 else "ok") for s, v in enumerate(lga)]
    paths = write_report(_fake_sweep(tmp_path, results))
    cell = _csv(paths["cells"]).set_index("cell").loc["lga"]
    assert cell.n == 2 and cell["mean"] == pytest.approx(97.35) and cell.failures == "1 of 3 did not learn"
    row = _csv(paths["csv"]).iloc[0]
    assert row.n == 2 and row["diff"] == pytest.approx(np.mean([97.5 - 97.0, 97.2 - 96.8]))
    markdown = paths["md"].read_text()
    assert "## Runs that did not learn or diverged: 1" in markdown and "under twice chance" in markdown


def test_report_flags_set_the_baseline_the_margin_and_the_declarations(tmp_path):
    values = {"none": [97.0, 97.4, 96.8], "se": [97.2, 97.3, 97.1], "lga": [97.5, 97.6, 97.0]}
    sweep = _fake_sweep(tmp_path / "sweep", [(a, s, v, "ok") for a, vs in values.items() for s, v in enumerate(vs)])
    against_se = _csv(write_report(sweep, baseline="se", margin=0.3)["csv"])
    assert list(against_se.comparison) == ["lga vs se", "none vs se"] and set(against_se.margin) == {0.3}
    declared = tmp_path / "mine.yaml"
    declared.write_text(
        "margins: {test_top1: 0.25}\nfamilies:\n  mine:\n    about: lga only\n    compare:\n"
        "      - mnist_5k: lga vs none\n  later:\n    exploratory: true\n    compare:\n      - mnist_5k: lga vs se\n"
    )
    paths = write_report(sweep, comparisons=declared)
    rows = _csv(paths["csv"])
    assert list(zip(rows.family, rows.comparison, rows.margin)) == [("mine", "lga vs none", 0.25),
                                                                    ("later", "lga vs se", 0.25)]  # fmt: skip
    assert rows.verdict.fillna("").iloc[1] == "" and "## Exploratory: no verdict" in paths["md"].read_text()


COMMITTED = REPO_ROOT / "experiments" / "study" / "classification" / "jobs"


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no classification study committed")
def test_a_sweep_and_the_study_give_the_same_numbers_on_the_same_records(tmp_path):
    """One statistics engine: the seed report of a sweep and the study report agree cell for cell."""
    jobs = [p for p in sorted(COMMITTED.iterdir()) if p.name.startswith("fashion") and "--" not in p.name]
    jobs = [p for p in jobs if p.name.split("-")[2] in ("none", "lga", "lga_released", "se")]
    for job in jobs:
        for root in (tmp_path / "sweep", tmp_path / "study" / "classification" / "jobs"):
            shutil.copytree(job, root / job.name)
    sweep = _csv(write_report(tmp_path / "sweep")["csv"]).set_index(["dataset", "comparison"])
    study = _csv(write_study_report(tmp_path / "study" / "classification")["comparisons"])
    # the families that pair every seed (primary_new_seeds repeats the primary pairs on the later seeds only)
    study = study[(study.metric == "test_top1") & (study.family != "primary_new_seeds")]
    study = study.set_index(["dataset", "comparison"])
    shared = sweep.index.intersection(study.index)
    assert set(shared) >= {("fashion", "lga vs none"), ("fashion", "lga_released vs none"), ("fashion", "se vs none")}
    columns = ["n", "diff", "sd", "ci_low", "ci_high", "p_t", "p_sign_flip", "p_tost", "p_not_better", "mde"]
    pd.testing.assert_frame_equal(sweep.loc[shared, columns], study.loc[shared, columns])

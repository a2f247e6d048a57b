"""The study: records per job, skipping what is recorded, and the report built from the records."""

import csv
import itertools
import json
import shutil
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lga.analysis.comparisons import load_declarations
from lga.analysis.results import sweep_rows
from lga.analysis.study import distinct_metrics, write_study_report
from lga.analysis.sweep import write_summary
from lga.config import REPO_ROOT


def _studies(tmp_path):
    return tmp_path / "study"


def _report_bytes(root):
    return {
        p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "jobs" not in p.parts
    }


@pytest.mark.slow
def test_a_finished_study_trains_nothing_and_rewrites_the_same_report(tmp_path, run_lga):
    """experiment=study_tiny twice: the second run reads every job from its record."""
    root = _studies(tmp_path)
    first = run_lga("-m", "experiment=study_tiny", "logger=none")
    assert first.returncode == 0, first.stderr[-3000:]
    records = sorted((root / "tiny" / "jobs").glob("*/result.json"))
    assert [r.parent.name for r in records] == [
        "mnist_5k-mobilenetv3-lga-s0", "mnist_5k-mobilenetv3-lga-s1",
        "mnist_5k-mobilenetv3-none-s0", "mnist_5k-mobilenetv3-none-s1",
    ]  # fmt: skip
    write_study_report(root / "tiny")
    stamps = {r: (r.stat().st_mtime_ns, r.read_bytes()) for r in records}
    report = _report_bytes(root)
    assert {str(p) for p in report} >= {"tiny.md", "tiny/jobs.csv", "figures/tiny_test_top1.png"}

    again = run_lga("-m", "experiment=study_tiny", "logger=none")
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    assert log.count("already in the study") == 4
    assert "epoch 1/1" not in log  # nothing trained
    assert {r: (r.stat().st_mtime_ns, r.read_bytes()) for r in records} == stamps
    write_study_report(root / "tiny")
    assert _report_bytes(root) == report


def test_a_record_of_another_configuration_is_an_error_not_a_result(tmp_path, run_lga):
    root = _studies(tmp_path)
    assert run_lga("-m", "experiment=study_tiny", "attention=none", "seed=0", "logger=none").returncode == 0
    record = root / "tiny" / "jobs" / "mnist_5k-mobilenetv3-none-s0" / "result.json"
    saved = json.loads(record.read_text())
    saved["config"]["optimizer"]["lr"] = 0.5  # as if the preset had changed since
    record.write_text(json.dumps(saved))
    rerun = run_lga("-m", "experiment=study_tiny", "attention=none", "seed=0", "logger=none")
    assert rerun.returncode != 0
    summary = next((tmp_path / "logs" / "study" / "tiny").glob("summary.md")).read_text()
    assert "another configuration (optimizer.lr: 0.5 in the record, 0.002 now)" in summary
    assert "delete it to train this job again" in summary


@pytest.mark.slow
def test_a_diverged_job_is_a_result_of_the_study(tmp_path, run_lga):
    """A divergence is what that configuration does: recorded, and not trained again."""
    args = ("-m", "experiment=study_tiny", "attention=none", "seed=0", "logger=none", "optimizer.lr=1e12")
    first = run_lga(*args)
    record = next((_studies(tmp_path) / "tiny" / "jobs").glob("*/result.json"))
    # a result, not a failure of the sweep: `make study` goes on to its next stage
    assert json.loads(record.read_text())["status"] == "diverged" and first.returncode == 0, first.stderr[-2000:]
    again = run_lga(*args)
    assert "already in the study" in again.stdout + again.stderr and "epoch 1/1" not in again.stdout + again.stderr


def _record(root, attention, seed, top1, *, variant="", weights=None, status="ok", history=None):
    name = f"fashion-paper-{attention}-s{seed}" + (f"--{variant}" if variant else "")
    job = root / "jobs" / name
    job.mkdir(parents=True)
    record = {
        "dataset": "fashion", "backbone": "paper", "attention": attention, "seed": seed, "variant": variant,
        "task": "classification", "status": status, "params": 650_000 + 10_000 * (attention != "none"),
        "flops": 7e6, "train_time_s": 300.0 + seed, "threads": 1, "test_images_total": 10000,
        "metrics": {"test/top1": top1 / 100, "test/top5": 0.99, "val/top1_best": top1 / 100, "test/images": 10000},
        "lga_weights": weights, "history": history or [],
        "error": "best validation top-1 12.0% is under twice chance (20.0%)" if status == "not_learned" else None,
    }  # fmt: skip
    (job / "result.json").write_text(json.dumps(record))


def _declare(tmp_path, text):
    path = tmp_path / "declared.yaml"
    path.write_text(text)
    return load_declarations(path)


def _row(markdown, start):
    line = next(row for row in markdown.splitlines() if row.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def _tests(markdown):
    """The report's table of every p-value."""
    return markdown.split("### Every test", 1)[1].split("###", 1)[0]


def _brute_force_sign_flip(differences):
    """All 2^n sign vectors, in exact arithmetic on the 2-decimal metrics: the share reaching the observed |sum|."""
    exact = [Fraction(f"{d:.2f}") for d in differences]
    observed = abs(sum(exact))
    sums = [abs(sum(s * d for s, d in zip(signs, exact))) for signs in itertools.product((1, -1), repeat=len(exact))]
    return float(np.mean([total >= observed for total in sums]))


def test_study_report_statistics_match_scipy(tmp_path):
    study = tmp_path / "classification"
    base = [90.1, 90.5, 89.9]
    treated = {"lga": [90.6, 90.9, 90.1], "se": [90.0, 90.6, 89.8]}
    for seed, value in enumerate(base):
        _record(study, "none", seed, value)
    learned = {"a_global": 0.5, "scale_w0": 0.7, "scale_w1": 0.1, "scale_w2": 0.1, "scale_w3": 0.1,
               "scale_entropy": 0.94}  # fmt: skip
    weights = [{"epoch": e, "step": 10 * e, "attn": {"a_local": 0.5 + e / 10, **learned}} for e in range(2)]
    for attention, values in treated.items():
        for seed, value in enumerate(values):
            _record(study, attention, seed, value, weights=weights if attention == "lga" else None)
    _record(study, "lga", 0, 88.0, variant="attention.pos_embed=false")  # an ablation: its own cell
    declared = _declare(tmp_path, "margins: {test_top1: 0.2}\nfamilies:\n  primary:\n    about: the claim\n"
                        "    compare:\n      - fashion: lga vs none\n      - fashion: se vs none\n")  # fmt: skip
    write_study_report(study, declarations=declared)
    markdown = (tmp_path / "classification.md").read_text()
    tests = {a: stats.ttest_rel(v, base) for a, v in treated.items()}
    # Holm over every test of the family: each comparison's paired t and its two one-sided tests at the margin
    family = [
        p
        for v in treated.values()
        for p in (stats.ttest_rel(v, base).pvalue, stats.ttest_rel(v, np.add(base, 0.2), alternative="less").pvalue,
                  stats.ttest_rel(v, np.subtract(base, 0.2), alternative="greater").pvalue)
    ]  # fmt: skip
    adjusted = multipletests(family, method="holm")[1][::3]
    # the sign-flip tests, Holm-corrected over the family's sign-flip tests (raw ones from the report's CSV)
    table = pd.read_csv(study / "comparisons.csv")
    flips = table[["p_sign_flip", "p_sign_flip_not_better", "p_sign_flip_not_worse"]].to_numpy().ravel()
    flips_holm = multipletests(flips, method="holm")[1][::3]
    for (attention, test), p_holm, flip_holm in zip(tests.items(), adjusted, flips_holm):
        interval = test.confidence_interval(0.95)
        diff = np.mean(np.subtract(treated[attention], base))
        cells = _row(markdown, f"| fashion | {attention} |")
        assert cells[2:5] == ["3", f"{np.mean(treated[attention]):.2f} ± {np.std(treated[attention], ddof=1):.2f}",
                              "[{:.2f}, {:.2f}]".format(*stats.t.interval(0.95, 2, np.mean(treated[attention]),
                                                                         stats.sem(treated[attention])))]  # fmt: skip
        verdict = _row(markdown, f"| primary | fashion | {attention} vs none |")
        assert verdict[3:5] == ["3", f"{diff:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"]
        assert verdict[5] in ("better", "worse", "equivalent within ±0.2", "not better by 0.2", "not worse by 0.2",
                              "inconclusive")  # fmt: skip
        p = _row(_tests(markdown), f"| primary | fashion | {attention} vs none |")
        flip = _brute_force_sign_flip(np.subtract(treated[attention], base))
        assert p[3:6] == [f"{test.pvalue:.3g}", f"{p_holm:.3g}", f"{flip:.3g} ({flip_holm:.3g})"]
    assert "| fashion | lga | 3 |" in markdown and "| 92.90 |" in markdown  # the paper's number beside the cell
    assert "| fashion | lga [attention.pos_embed=false] | 1 | 88.00 |" in markdown
    assert "Margins (the smallest difference that matters): test top-1 (%) ±0.2 points." in markdown
    weights_line = next(r for r in markdown.splitlines() if r.startswith("| fashion | lga | attn |"))
    assert "| 3 | 0.600 ± 0.000 | 0.500 ± 0.000 | 0.700 ± 0.000 |" in weights_line  # a_local, a_global, scale_w0
    jobs = pd.read_csv(study / "jobs.csv")
    assert len(jobs) == 10 and set(jobs.status) == {"ok"}
    for figure in ("weights", "test_top1", "test_top1_comparisons", "cost"):
        assert (tmp_path / "figures" / f"classification_{figure}.png").stat().st_size > 1000
    assert "within noise" not in markdown


def test_study_report_without_records_says_what_to_run(tmp_path):
    (tmp_path / "detection").mkdir()
    with pytest.raises(SystemExit, match="no job records under .*run the study first"):
        write_study_report(tmp_path / "detection")


def test_a_declaration_that_does_not_parse_names_its_file(tmp_path):
    with pytest.raises(SystemExit, match="declared.yaml: .*expected one ` vs `"):
        _declare(tmp_path, "families:\n  f:\n    compare:\n      - fashion: lga against none\n")
    declared = _declare(tmp_path, "families:\n  f:\n    compare:\n      - 'fashion: lga [x=1] - none vs lga - none'\n")
    comparison = declared.comparisons[0]
    assert (comparison.dataset, comparison.treated, comparison.baseline) == ("fashion", ("lga [x=1]", "none"),
                                                                              ("lga", "none"))  # fmt: skip
    with pytest.raises(
        SystemExit, match=r"family f: unknown keys \['first-seed'\]; valid: about, compare, exploratory"
    ):
        _declare(tmp_path, "families:\n  f:\n    first-seed: 3\n    compare:\n      - fashion: lga vs none\n")
    with pytest.raises(SystemExit, match="first_seed must be a seed number .0 or more., got -2"):
        _declare(tmp_path, "families:\n  f:\n    first_seed: -2\n    compare:\n      - fashion: lga vs none\n")
    with pytest.raises(SystemExit, match=r"unknown keys \['margin'\]; valid: families, margins, metrics"):
        _declare(tmp_path, "margin: {test_top1: 0.1}\n")
    with pytest.raises(SystemExit, match=r"metrics: unknown \['test_mAR'\]; valid: test_top1, .*test_mar100"):
        _declare(tmp_path, "metrics: [test_mAR]\n")


def test_declared_metrics_choose_what_the_verdicts_are_on(tmp_path):
    """`metrics: [test_top5]` in a declaration: the report's verdicts are on top-5 (scipy's paired t on it),
    not on the task's top-1."""
    study = tmp_path / "classification"
    top5 = {"none": [98.1, 98.4, 98.0], "lga": [98.6, 98.9, 98.3]}
    for attention, values in top5.items():
        for seed, value in enumerate(values):
            _record(study, attention, seed, 90.0)
            record = study / "jobs" / f"fashion-paper-{attention}-s{seed}" / "result.json"
            saved = json.loads(record.read_text())
            saved["metrics"]["test/top5"] = value / 100
            record.write_text(json.dumps(saved))
    declared = _declare(tmp_path, "metrics: [test_top5]\nmargins: {test_top5: 0.1}\nfamilies:\n  primary:\n"
                        "    about: the claim\n    compare:\n      - fashion: lga vs none\n")  # fmt: skip
    write_study_report(study, declarations=declared)
    table = pd.read_csv(study / "comparisons.csv")
    assert list(table.metric) == ["test_top5"]
    assert table.p_t[0] == pytest.approx(stats.ttest_rel(top5["lga"], top5["none"]).pvalue, rel=1e-5)
    assert "test top-5 (%)" in (tmp_path / "classification.md").read_text()


COMMITTED = REPO_ROOT / "experiments" / "study"


@pytest.mark.skipif(not list(COMMITTED.glob("*/jobs")), reason="no study committed under experiments/study yet")
def test_the_committed_study_reports_are_what_their_records_give(tmp_path):
    """Nobody edited a committed table by hand, and none is stale: rebuilt from the records, byte for byte."""
    for jobs in sorted(COMMITTED.glob("*/jobs")):
        name = jobs.parent.name
        shutil.copytree(jobs, tmp_path / name / "jobs")
        write_study_report(tmp_path / name)
        assert (tmp_path / f"{name}.md").read_text() == (COMMITTED / f"{name}.md").read_text(), name
        for table in ("jobs.csv", "comparisons.csv"):
            assert (tmp_path / name / table).read_text() == (jobs.parent / table).read_text(), (name, table)


@pytest.mark.skipif(not list(COMMITTED.glob("*/jobs")), reason="no study committed under experiments/study yet")
def test_the_readme_headline_is_the_committed_study():
    from lga.analysis.study import HEADLINE_END, HEADLINE_START, headline_markdown

    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(HEADLINE_START, 1)[1].split(HEADLINE_END, 1)[0].strip()
    assert block == headline_markdown(COMMITTED, "experiments/study"), "run python -m lga.study --readme"
    assert len(block.splitlines()) <= 12, "the README's verdict is a short one; the reports hold the rest"


def test_the_text_against_the_released_code_is_paired_by_seed_and_matches_scipy(tmp_path):
    """Through the committed declarations (conf/comparisons/classification.yaml): its labels are the report's."""
    study = tmp_path / "classification"
    text, released = [90.6, 90.9, 90.1, 90.4], [90.8, 91.2, 90.0]  # seed 3 of the released LGA is missing
    for attention, values in (("none", [90.1, 90.5, 89.9, 90.2]), ("lga", text), ("lga_released", released)):
        for seed, value in enumerate(values):
            _record(study, attention, seed, value)
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    test = stats.ttest_rel(released, text[:3])
    interval = test.confidence_interval(0.95)
    row = _row(markdown, "| text_vs_code | fashion | lga_released vs lga | 3 |")
    assert row[4] == f"{np.mean(np.subtract(released, text[:3])):+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"
    assert _row(_tests(markdown), "| text_vs_code | fashion | lga_released vs lga |")[3] == f"{test.pvalue:.3g}"
    # declared, not run here: the row says so instead of a verdict
    assert _row(markdown, "| text_vs_code | mnist_5k | lga_released vs lga |")[5:7] == [
        "",
        "no test: no paired seeds (a cell has no run that learned, or none yet)",
    ]


def test_a_metric_equal_to_another_in_every_job_gets_no_table_of_its_own():
    rows = [
        {"status": "ok", "test_map50": 40.0 + s, "test_map": 25.0 + s, "test_map_small": 25.0 + s} for s in range(3)
    ]
    assert distinct_metrics(rows, ["test_map50", "test_map", "test_map_small"]) == (
        ["test_map50", "test_map"],
        {"test_map_small": "test_map"},
    )
    rows[2]["test_map_small"] *= 1 + 2e-7  # computed apart, equal to float32's precision: still the same metric
    assert distinct_metrics(rows, ["test_map50", "test_map", "test_map_small"])[1] == {"test_map_small": "test_map"}
    rows[1]["test_map_small"] = 24.0  # one job with a larger object: the metric says something again
    assert distinct_metrics(rows, ["test_map50", "test_map", "test_map_small"])[1] == {}


def test_metrics_reach_the_tests_unrounded_and_are_rounded_only_where_shown(tmp_path):
    """92.6134 stays 92.6134 in the rows the tests read (it was rounded to 92.61 per job once); a top-1 of
    0.9261 logged as float32 (0.9261000156...) reads as 92.61, so equal counts make equal pairs. The sweep
    summary's Markdown shows 2 decimals, its CSV the value."""
    sweep = tmp_path / "sweep"
    _record(sweep, "none", 0, 92.6134)
    _record(sweep, "lga", 0, 100 * float(np.float32(0.9261)))
    rows = {r["attention"]: r for r in sweep_rows(sweep)}
    assert rows["none"]["test_top1"] == pytest.approx(92.6134, abs=1e-9)
    assert rows["lga"]["test_top1"] == pytest.approx(92.61, abs=1e-12)
    write_summary(sweep)
    assert _row((sweep / "summary.md").read_text(), "| jobs/fashion-paper-none-s0 |")[5] == "92.61"
    summary = {r["attention"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert summary["none"]["test_top1"] == "92.6134" and summary["lga"]["test_top1"] == "92.61"


def test_the_change_of_an_effect_with_the_setting_is_a_paired_difference_in_differences(tmp_path):
    """lga at 64 px minus none at 64 px, against lga minus none at the main setting, over the seeds all four ran."""
    study = tmp_path / "classification"
    cells = {
        ("none", ""): [90.1, 90.5, 89.9, 90.3],
        ("lga", ""): [89.8, 90.1, 89.7, 90.0],
        ("none", "dataset.image_size=64"): [91.0, 91.4, 90.7],
        ("lga", "dataset.image_size=64"): [91.3, 91.5, 91.2],
    }
    for (attention, variant), values in cells.items():
        for seed, value in enumerate(values):
            _record(study, attention, seed, value, variant=variant)
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    at_64 = np.subtract(cells[("lga", "dataset.image_size=64")], cells[("none", "dataset.image_size=64")])
    at_main = np.subtract(cells[("lga", "")], cells[("none", "")])[:3]
    test = stats.ttest_rel(at_64, at_main)
    interval = test.confidence_interval(0.95)
    name = "lga [dataset.image_size=64] - none [dataset.image_size=64] vs lga - none"
    row = _row(markdown, f"| resolution | fashion | {name} | 3 |")
    assert row[4] == f"{(at_64 - at_main).mean():+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"
    assert _row(_tests(markdown), f"| resolution | fashion | {name} |")[3] == f"{test.pvalue:.3g}"


def test_a_run_that_did_not_learn_is_a_failure_rate_not_a_value(tmp_path):
    study = tmp_path / "classification"
    for seed, value in enumerate([90.1, 90.5, 89.9]):
        _record(study, "none", seed, value)
    for seed, value in enumerate([90.6, 12.0, 90.1]):
        _record(study, "ga", seed, value, status="not_learned" if seed == 1 else "ok")
    declared = _declare(tmp_path, "families:\n  b:\n    compare:\n      - fashion: ga vs none\n")
    write_study_report(study, declarations=declared)
    markdown = (tmp_path / "classification.md").read_text()
    assert _row(markdown, "| fashion | ga |")[2:6] == ["2", "90.35 ± 0.35", _row(markdown, "| fashion | ga |")[4],
                                                      "1 of 3 did not learn"]  # fmt: skip
    assert _row(markdown, "| b | fashion | ga vs none |")[3:5] == ["2", f"{np.mean([0.5, 0.2]):+.2f} [-1.56, +2.26]"]
    failures = markdown.split("## Runs that did not learn or diverged", 1)[1]
    assert "| jobs/fashion-paper-ga-s1 | fashion | ga | 1 | not_learned | 12.00 | best validation top-1" in failures


def _history(values, losses):
    return [{"epoch": e + 1, "train/loss": loss, "val/top1": v / 100, "lr": 0.001} for e, (v, loss) in
            enumerate(zip(values, losses))]  # fmt: skip


def test_convergence_shows_the_cells_with_history_and_which_runs_still_improve(tmp_path):
    """Still improving: the last epoch beats every earlier one by more than the margin (0.1 top-1 points)."""
    study = tmp_path / "classification"
    losses = [1.0, 0.6, 0.5, 0.45]
    curves = {0: [80.0, 85.0, 88.0, 90.0], 1: [80.0, 86.0, 89.95, 90.0], 2: [81.0, 87.0, 90.5, 90.2]}
    for seed, curve in curves.items():
        _record(study, "lga", seed, curve[-1], history=_history(curve, losses))
        _record(study, "none", seed, 90.0)  # an old record: no history, no row
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    section = markdown.split("## Convergence", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| fashion |")]
    assert rows == ["| fashion | lga | 3 | 4 | 90.07 | 89.48 | 1 of 3 |"]  # seed 0 only: 90.0 > 88.0 + 0.1
    assert (tmp_path / "figures" / "classification_convergence.png").stat().st_size > 1000


def test_a_report_without_history_has_no_convergence_section_and_rerunning_rewrites_the_same_bytes(tmp_path):
    study = tmp_path / "classification"
    for seed, (base, lga) in enumerate([(90.1, 90.6), (90.5, 90.9), (89.9, 90.1)]):
        _record(study, "none", seed, base)
        _record(study, "lga", seed, lga)
    write_study_report(study)
    first = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert "## Convergence" not in (tmp_path / "classification.md").read_text()
    write_study_report(study)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == first
    assert str(tmp_path) not in (tmp_path / "classification.md").read_text()


def test_a_family_declared_on_later_seeds_is_tested_on_those_seeds_only():
    """`first_seed: 3` in the committed detection declarations: its rows pair only seeds 3 and up of the jobs
    that learned (scipy's paired t on them), while the same pair in the primary family pairs every seed."""
    jobs = pd.read_csv(COMMITTED / "detection" / "jobs.csv")
    learned = jobs[(jobs["status"] == "ok") & ~jobs["job"].str.contains("--")]  # plain cells: no variant
    by_seed = {a: dict(zip(g["seed"], g["test_map50"])) for a, g in learned.groupby("attention")}
    table = pd.read_csv(COMMITTED / "detection" / "comparisons.csv")
    table = table[table["metric"] == "test_map50"].set_index(["family", "comparison"])
    seeds = sorted(s for s in by_seed["lga"].keys() & by_seed["none"].keys() if s >= 3)
    later = table.loc[("primary_new_seeds", "lga vs none")]
    test = stats.ttest_rel([by_seed["lga"][s] for s in seeds], [by_seed["none"][s] for s in seeds])
    assert later["n"] == len(seeds) < table.loc[("primary", "lga vs none")]["n"]
    assert later["p_t"] == pytest.approx(test.pvalue, rel=1e-4)
    assert "tests in family primary_new_seeds" in later["reason"]


def test_a_later_seeds_family_pairs_a_difference_of_differences_on_its_seeds_only(tmp_path):
    """`first_seed: 2` on `A - B vs C - D`: the per-seed differences are paired over seeds 2-4 only (scipy's
    paired t on them), while the same comparison in a family without first_seed pairs all five seeds."""
    study = tmp_path / "classification"
    cells = {
        ("none", ""): [90.1, 90.5, 89.9, 90.3, 90.2],
        ("lga", ""): [89.8, 90.1, 89.7, 90.0, 90.1],
        ("none", "dataset.image_size=64"): [91.0, 91.4, 90.7, 91.1, 90.9],
        ("lga", "dataset.image_size=64"): [91.3, 91.5, 91.2, 91.0, 91.4],
    }
    for (attention, variant), values in cells.items():
        for seed, value in enumerate(values):
            _record(study, attention, seed, value, variant=variant)
    name = "lga [dataset.image_size=64] - none [dataset.image_size=64] vs lga - none"
    declared = _declare(tmp_path, f"margins: {{test_top1: 0.1}}\nfamilies:\n  all_seeds:\n    about: every seed\n"
                        f"    compare:\n      - 'fashion: {name}'\n  later:\n    about: seeds 2 and up\n"
                        f"    first_seed: 2\n    compare:\n      - 'fashion: {name}'\n")  # fmt: skip
    write_study_report(study, declarations=declared)
    markdown = (tmp_path / "classification.md").read_text()
    at_64 = np.subtract(cells[("lga", "dataset.image_size=64")], cells[("none", "dataset.image_size=64")])
    at_main = np.subtract(cells[("lga", "")], cells[("none", "")])
    for family, seeds in (("all_seeds", slice(None)), ("later", slice(2, None))):
        test = stats.ttest_rel(at_64[seeds], at_main[seeds])
        row = _row(markdown, f"| {family} | fashion | {name} |")
        assert row[3] == str(len(at_64[seeds]))
        assert row[4] == f"{(at_64 - at_main)[seeds].mean():+.2f} [{test.confidence_interval(0.95).low:+.2f}, " \
                         f"{test.confidence_interval(0.95).high:+.2f}]"  # fmt: skip
        assert f"over 3 tests in family {family}" in row[6]  # one comparison: its paired t and two one-sided tests
        assert _row(_tests(markdown), f"| {family} | fashion | {name} |")[3] == f"{test.pvalue:.3g}"

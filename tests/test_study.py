"""The study: records per job, skipping what is recorded, and the report built from the records."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lga.analysis.study import distinct_metrics, holm, write_study_report
from lga.config import REPO_ROOT


def _holm_numpy(p):
    """Holm's adjustment the vectorised way: sort, scale by m..1, running maximum, cap at 1."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    adjusted = np.empty_like(p)
    adjusted[order] = scaled
    return adjusted


def test_holm_matches_the_textbook_and_numpy():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 17):
        p = rng.uniform(0, 0.2, m)
        assert holm(list(p)) == pytest.approx(list(_holm_numpy(p)))
    assert holm([None, 0.02, None, 0.01]) == [None, pytest.approx(0.02), None, pytest.approx(0.02)]


def _studies(tmp_path):
    return tmp_path / "study"


def _report_bytes(root):
    return {
        p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "jobs" not in p.parts
    }


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


def test_a_diverged_job_is_a_result_of_the_study(tmp_path, run_lga):
    """A divergence is what that configuration does: recorded, and not trained again."""
    args = ("-m", "experiment=study_tiny", "attention=none", "seed=0", "logger=none", "optimizer.lr=1e12")
    first = run_lga(*args)
    record = next((_studies(tmp_path) / "tiny" / "jobs").glob("*/result.json"))
    assert json.loads(record.read_text())["status"] == "diverged" and first.returncode != 0
    again = run_lga(*args)
    assert "already in the study" in again.stdout + again.stderr and "epoch 1/1" not in again.stdout + again.stderr


def _record(root, attention, seed, top1, *, variant="", weights=None):
    name = f"fashion-paper-{attention}-s{seed}" + (f"--{variant}" if variant else "")
    job = root / "jobs" / name
    job.mkdir(parents=True)
    record = {
        "dataset": "fashion", "backbone": "paper", "attention": attention, "seed": seed, "variant": variant,
        "task": "classification", "status": "ok", "params": 650_000 + 10_000 * (attention != "none"),
        "flops": 7e6, "train_time_s": 300.0 + seed, "threads": 1, "test_images_total": 10000,
        "metrics": {"test/top1": top1 / 100, "test/top5": 0.99, "val/top1_best": top1 / 100, "test/images": 10000},
        "lga_weights": weights,
    }  # fmt: skip
    (job / "result.json").write_text(json.dumps(record))


def test_study_report_statistics_match_scipy(tmp_path):
    study = tmp_path / "classification"
    base = [90.1, 90.5, 89.9]
    treated = {"lga": [90.6, 90.9, 90.1], "se": [90.0, 90.6, 89.8]}
    for seed, value in enumerate(base):
        _record(study, "none", seed, value)
    learned = {
        "a_global": 0.5,
        "scale_w0": 0.7,
        "scale_w1": 0.1,
        "scale_w2": 0.1,
        "scale_w3": 0.1,
        "scale_entropy": 0.94,
    }
    weights = [{"epoch": e, "step": 10 * e, "attn": {"a_local": 0.5 + e / 10, **learned}} for e in range(2)]
    for attention, values in treated.items():
        for seed, value in enumerate(values):
            _record(study, attention, seed, value, weights=weights if attention == "lga" else None)
    _record(study, "lga", 0, 88.0, variant="attention.pos_embed=false")  # an ablation: its own cell
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    tests = {a: stats.ttest_rel(v, base) for a, v in treated.items()}
    adjusted = _holm_numpy([tests["lga"].pvalue, tests["se"].pvalue])
    for (attention, test), p_holm in zip(tests.items(), adjusted):
        interval = test.confidence_interval(0.95)
        diff = np.mean(np.array(treated[attention]) - base)
        line = next(row for row in markdown.splitlines() if row.startswith(f"| fashion | {attention} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[3] == f"{np.mean(treated[attention]):.2f} ± {np.std(treated[attention], ddof=1):.2f}"
        assert cells[4:8] == [f"{diff:+.2f}", f"[{interval.low:+.2f}, {interval.high:+.2f}]", f"{test.pvalue:.3f}",
                              f"{p_holm:.3f}"]  # fmt: skip
        assert cells[8] == ("within noise" if p_holm >= 0.05 else "better" if diff > 0 else "worse")
    assert "| fashion | lga | 3 |" in markdown and "92.90" in markdown  # the paper's number beside the cell
    assert "| fashion | lga [attention.pos_embed=false] | 1 | 88.00 |" in markdown
    weights_line = next(r for r in markdown.splitlines() if r.startswith("| fashion | lga | attn |"))
    assert (
        "| 3 | 0.600 ± 0.000 | 0.500 ± 0.000 | 0.700 ± 0.000 |" in weights_line
    )  # the last epoch's a_local, a_global, scale_w0
    jobs = pd.read_csv(study / "jobs.csv")
    assert len(jobs) == 10 and set(jobs.status) == {"ok"}
    for figure in ("weights", "test_top1_vs_none", "cost"):
        assert (tmp_path / "figures" / f"classification_{figure}.png").stat().st_size > 1000


def test_study_report_without_records_says_what_to_run(tmp_path):
    (tmp_path / "detection").mkdir()
    with pytest.raises(SystemExit, match="no job records under .*run the study first"):
        write_study_report(tmp_path / "detection")


COMMITTED = REPO_ROOT / "experiments" / "study"


@pytest.mark.skipif(not list(COMMITTED.glob("*/jobs")), reason="no study committed under experiments/study yet")
def test_the_committed_study_reports_are_what_their_records_give(tmp_path):
    """Nobody edited a committed table by hand, and none is stale: rebuilt from the records, byte for byte."""
    for jobs in sorted(COMMITTED.glob("*/jobs")):
        name = jobs.parent.name
        shutil.copytree(jobs, tmp_path / name / "jobs")
        write_study_report(tmp_path / name)
        assert (tmp_path / f"{name}.md").read_text() == (COMMITTED / f"{name}.md").read_text(), name
        assert (tmp_path / name / "jobs.csv").read_text() == (jobs.parent / "jobs.csv").read_text(), name


@pytest.mark.skipif(not list(COMMITTED.glob("*/jobs")), reason="no study committed under experiments/study yet")
def test_the_readme_headline_is_the_committed_study():
    from lga.analysis.study import HEADLINE_END, HEADLINE_START, headline_markdown

    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(HEADLINE_START, 1)[1].split(HEADLINE_END, 1)[0].strip()
    assert block == headline_markdown(COMMITTED, "experiments/study"), "run python -m lga.study --readme"


def test_the_text_against_the_released_code_is_paired_by_seed_and_matches_scipy(tmp_path):
    study = tmp_path / "classification"
    text, released = [90.6, 90.9, 90.1, 90.4], [90.8, 91.2, 90.0]  # seed 3 of the released LGA is missing
    for attention, values in (("none", [90.1, 90.5, 89.9, 90.2]), ("lga", text), ("lga_released", released)):
        for seed, value in enumerate(values):
            _record(study, attention, seed, value)
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    test = stats.ttest_rel(released, text[:3])
    interval = test.confidence_interval(0.95)
    line = next(row for row in markdown.splitlines() if row.startswith("| fashion | main | test top-1 (%) |"))
    assert line == (
        f"| fashion | main | test top-1 (%) | 3 | {np.mean(np.subtract(released, text[:3])):+.2f} | "
        f"[{interval.low:+.2f}, {interval.high:+.2f}] | {test.pvalue:.3f} | {test.pvalue:.3f} | within noise |"
    )


def test_a_metric_equal_to_another_in_every_job_gets_no_table_of_its_own():
    rows = [
        {"status": "ok", "test_map50": 40.0 + s, "test_map": 25.0 + s, "test_map_small": 25.0 + s} for s in range(3)
    ]
    assert distinct_metrics(rows, ["test_map50", "test_map", "test_map_small"]) == (
        ["test_map50", "test_map"],
        {"test_map_small": "test_map"},
    )
    rows[1]["test_map_small"] = 24.0  # one job with a larger object: the metric says something again
    assert distinct_metrics(rows, ["test_map50", "test_map", "test_map_small"])[1] == {}


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
    _record(study, "lga", 0, 88.0, variant="attention.pos_embed=false")  # an ablation, not a setting: no row
    write_study_report(study)
    markdown = (tmp_path / "classification.md").read_text()
    at_64 = np.subtract(cells[("lga", "dataset.image_size=64")], cells[("none", "dataset.image_size=64")])
    at_main = np.subtract(cells[("lga", "")], cells[("none", "")])[:3]
    test = stats.ttest_rel(at_64, at_main)
    interval = test.confidence_interval(0.95)
    section = markdown.split("## Does the setting change the effect?", 1)[1].split("##", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| fashion |")]
    assert rows == [
        f"| fashion | dataset.image_size=64 | lga | 3 | {at_main.mean():+.2f} | {at_64.mean():+.2f} | "
        f"{(at_64 - at_main).mean():+.2f} | [{interval.low:+.2f}, {interval.high:+.2f}] | {test.pvalue:.3f} | "
        f"{test.pvalue:.3f} | {'higher at setting' if test.pvalue < 0.05 else 'within noise'} |"
    ]

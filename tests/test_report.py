import json

import numpy as np
import pytest
from scipy import stats

from lga.analysis.report import write_report


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
        if status == "ok":
            record["metrics"] = {"test/top1": top1 / 100, "test/top5": 1.0, "test/images": tested}
            record["test_images_total"] = 10000
        else:
            record["error"] = "CUDA out of memory" if status == "failed" else "training diverged: loss nan at step 3"
        (job_dir / "result.json").write_text(json.dumps(record))
    return tmp_path


def test_report_statistics(tmp_path):
    base = [97.0, 97.4, 96.8, 97.1]
    lga = [97.5, 97.6, 97.0, 97.2]
    results = [("none", s, v, "ok") for s, v in enumerate(base)] + [("lga", s, v, "ok") for s, v in enumerate(lga)]
    results.append(("se", 0, 0.0, "failed"))
    paths = write_report(_fake_sweep(tmp_path, results))
    rows = {r["attention"]: r for r in __import__("csv").DictReader(paths["csv"].open())}
    oracle = stats.ttest_rel(lga, base)  # scipy's paired t-test: p-value and the CI of the mean difference
    interval = oracle.confidence_interval(0.95)
    assert float(rows["lga"]["mean"]) == pytest.approx(np.mean(lga))
    assert float(rows["lga"]["std"]) == pytest.approx(np.std(lga, ddof=1))
    assert float(rows["lga"]["diff"]) == pytest.approx(np.mean(np.array(lga) - np.array(base)))
    assert float(rows["lga"]["ci_low"]) == pytest.approx(interval.low)
    assert float(rows["lga"]["ci_high"]) == pytest.approx(interval.high)
    assert float(rows["lga"]["p_value"]) == pytest.approx(oracle.pvalue)
    assert rows["none"]["diff"] == ""  # the baseline is not compared with itself
    markdown = paths["md"].read_text()
    assert "Jobs that did not finish: 1" in markdown and "CUDA out of memory" in markdown
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
    rows = list(__import__("csv").DictReader(paths["csv"].open()))
    assert [(r["attention"], r["n"]) for r in rows] == [("lga", "2")]  # the diverged job is not a row
    assert paths["png"].stat().st_size > 1000

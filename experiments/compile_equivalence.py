"""Does ``runtime.compile=true`` change a result? The same seeds trained eager and compiled, paired by
seed, tested for equivalence within the study's top-1 margin (lga.analysis.stats: TOST, paired t).

    python experiments/compile_equivalence.py            # 3 seeds of the paper-scale classifier, trainer=fast
    python experiments/compile_equivalence.py --seeds 0,1,2,3,4 --out experiments/compile_equivalence.md

Writes a Markdown table of each seed's test top-1 (eager, compiled) and the paired comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lga.analysis.record import read_record  # noqa: E402
from lga.analysis.stats import compare, judge  # noqa: E402
from lga.utils import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTING = ["experiment=paper_scale", "dataset=fashion", "trainer=fast", "logger=none"]
MARGIN = 0.1  # the study's top-1 margin (conf/comparisons/classification.yaml), in points


def sweep(seeds: str, compiled: bool, out_dir: Path) -> dict[int, float]:
    """Test top-1 (points) per seed of one sweep."""
    args = [*SETTING, f"seed={seeds}", f"runtime.compile={str(compiled).lower()}", f"hydra.sweep.dir={out_dir}"]
    subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", *args], cwd=ROOT, check=True)
    records = [read_record(path) for path in sorted(out_dir.glob("*/result.json"))]
    return {r.seed: 100 * r.metrics["test/top1"] for r in records if r.status == "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(ROOT / "experiments" / "compile_equivalence.md"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lga-compile-"))
    eager, compiled = sweep(args.seeds, False, work / "eager"), sweep(args.seeds, True, work / "compiled")
    row = {"family": "compile", "comparison": "compiled vs eager", **compare(compiled, eager, MARGIN)}
    judged = judge(pd.DataFrame([row])).iloc[0]
    seeds = sorted(set(eager) & set(compiled))
    per_seed = [[s, f"{eager[s]:.2f}", f"{compiled[s]:.2f}", f"{compiled[s] - eager[s]:+.2f}"] for s in seeds]
    command = f"python experiments/compile_equivalence.py --seeds {args.seeds}"
    text = (
        f"# Does runtime.compile change a result?\n\n`{command}`\n\n"
        f"`python run.py -m {' '.join(SETTING)} seed={args.seeds}` with `runtime.compile=false` and `=true` "
        "(test top-1 on the 10,000 Fashion-MNIST test images, points).\n\n"
        + markdown_table(["seed", "eager", "compiled", "difference"], per_seed)
        + f"\n\nPaired over {int(judged['n'])} seeds: {judged['diff']:+.3f} points "
        f"[{judged['ci_low']:+.3f}, {judged['ci_high']:+.3f}] (95% t interval); "
        f"**{judged['verdict'] or 'no test'}** ({judged['reason']}).\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

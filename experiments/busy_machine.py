"""A sweep on an idle and on a loaded machine, under each of several OpenMP wait policies: how long
OpenMP's idle threads spin before they sleep (libgomp's default spins 300,000 times, PASSIVE not at
all, GOMP_SPINCOUNT anything between), and one thread per job with parallel jobs.

    python experiments/busy_machine.py                 # writes experiments/busy_machine.md
    python experiments/busy_machine.py --cap 600 --sweep "attention=lga,se,cbam dataset=mnist_5k,fashion trainer=fast"

"Loaded" means one other PyTorch process multiplying matrices on as many threads as
this process may use, started before the sweep and stopped after it. A sweep that
runs past ``--cap`` seconds is stopped (SIGTERM: lga writes the summary of what
finished); its training throughput then comes from the per-epoch log lines.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lga.utils import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOAD = "import torch\ntorch.set_num_threads({threads})\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"
# name -> (environment, extra sweep overrides); an empty OMP_WAIT_POLICY reads as unset in libgomp
POLICIES = {
    "OpenMP default (spin 300000)": ({"OMP_WAIT_POLICY": ""}, []),
    "PASSIVE (no spin)": ({"OMP_WAIT_POLICY": "PASSIVE"}, []),
    "GOMP_SPINCOUNT=30000": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "30000"}, []),
    "GOMP_SPINCOUNT=3000": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "3000"}, []),
    "PASSIVE + parallel jobs of 1 thread": (
        {"OMP_WAIT_POLICY": "PASSIVE"},
        ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={len(os.sched_getaffinity(0))}"],
    ),
}


def run_sweep(sweep_args: list[str], policy: dict[str, str], loaded: bool, cap: float, out_dir: Path) -> dict:
    env = {**{k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}, **policy, "WANDB_MODE": "disabled"}
    threads = len(os.sched_getaffinity(0))
    load = (
        subprocess.Popen(
            [sys.executable, "-c", LOAD.format(threads=threads)], env={**os.environ, "OMP_WAIT_POLICY": ""}
        )
        if loaded
        else None
    )
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "-m", *sweep_args, "logger=none", f"hydra.sweep.dir={out_dir}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            proc.wait(timeout=cap)
            finished = True
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            finished = False
        seconds = time.perf_counter() - start
    finally:
        if load is not None:
            load.kill()
            load.wait()
    rates = [
        float(m) for log in out_dir.glob("*/train.log") for m in re.findall(r"([\d.]+) train images/s", log.read_text())
    ]
    epochs = len(rates)
    return {
        "wall_s": round(seconds, 1) if finished else f"> {cap:.0f} (stopped)",
        "epochs_done": epochs,
        "train_images_per_s": round(sum(rates) / epochs, 1) if epochs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", default="attention=lga,se,cbam dataset=mnist_5k,fashion trainer=fast")
    parser.add_argument("--cap", type=float, default=600, help="seconds before a sweep is stopped")
    parser.add_argument("--out", default=str(ROOT / "experiments/busy_machine.md"))
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "lga-busy-machine"),
                        help="where the sweeps write")  # fmt: skip
    parser.add_argument("--policies", default=",".join(POLICIES), help="which of the policies, comma-separated")
    args = parser.parse_args()

    rows = []
    for loaded in (False, True):
        for number, name in enumerate(args.policies.split(",")):
            env, extra = POLICIES[name]
            out_dir = Path(args.work) / f"{'loaded' if loaded else 'idle'}-{number}-{time.time_ns()}"
            result = run_sweep([*args.sweep.split(), *extra], env, loaded, args.cap, out_dir)
            rows.append({"machine": "loaded" if loaded else "idle", "policy": name, **result})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    command = f'python experiments/busy_machine.py --sweep "{args.sweep}" --cap {args.cap:.0f}'
    text = (
        f"# A sweep on an idle and a loaded machine, under OpenMP wait policies\n\n`{command}`\n\n"
        f"Sweep: `python run.py -m {args.sweep}` ({len(os.sched_getaffinity(0))} CPUs, "
        "torch threads from lga's rules). "
        "Loaded: one other PyTorch process multiplying 1024x1024 matrices on as many threads. "
        "`train_images_per_s`: mean of the per-epoch lines over the epochs that ran.\n\n"
        + markdown_table(list(table.columns), table.itertuples(index=False))
        + "\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

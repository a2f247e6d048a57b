"""Tune, then compare: each variant tuned on validation with the same budget, then k seeds of
each at its own best hyperparameters on test, then the seed report.

    python -m lga.tools.tune_compare --attentions none,se,lga --trials 8 --seeds 3 --out experiments/tune_compare
    python -m lga.tools.tune_compare --attentions none,lga --trials 2 --seeds 2 trainer=debug   # a dry run in a minute

1. per attention: ``run.py -m hparams_search=optuna attention=<a> hydra.sweeper.n_trials=<trials>``
   into ``<work>/search/<a>`` (TPE, seeded; the objective is validation, the test set is never
   evaluated). A search already there resumes and stops at ``--trials``.
2. ``run.py -m attention=<all> seed=0..k-1 tuned=<work>/search/${attention.name}`` into
   ``<work>/compare``: every job starts from its own variant's best hyperparameters.
3. :func:`lga.analysis.report.write_report` on the comparison, plus the tuned hyperparameters per
   variant; both copied to ``--out`` (``report.md``, ``report.csv``, ``cells.csv``, ``report.png``,
   ``tuned.md``, ``tuned.csv``).

Without step 1, "LGA beats SE" may only mean "LGA got the better learning rate". Any
further arguments are Hydra overrides for every run (dataset, backbone, trainer, ...).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..analysis.report import write_report
from ..utils import REPO_ROOT, csv_text, markdown_table, write_atomic


def _run(args: list[str]) -> None:
    command = [sys.executable, str(REPO_ROOT / "run.py"), *args]
    print("+", " ".join(command[1:]), flush=True)
    done = subprocess.run(command, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"error: `{' '.join(command[1:])}` exited {done.returncode}; its sweep summary says which job")


def tuned_table(search_root: Path, attentions: list[str]) -> list[dict]:
    """One row per variant: its best validation value and hyperparameters."""
    rows = []
    for attention in attentions:
        best = OmegaConf.load(search_root / attention / "optimization_results.yaml")
        params = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in best.best_params.items()}
        rows.append({"attention": attention, "best_val_%": round(100 * float(best.best_value), 2), **params})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attentions", default="none,se,lga", help="the variants, comma-separated")
    parser.add_argument("--trials", type=int, default=8, help="search trials per variant (the same budget for each)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant in the comparison")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "logs" / "tune_compare", help="searches and runs")
    parser.add_argument("--out", type=Path, help="also copy the report and the tuned table here (e.g. experiments/)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. dataset=fashion")
    args = parser.parse_args(argv)
    attentions = args.attentions.split(",")
    if args.trials < 1 or args.seeds < 1:
        parser.error("--trials and --seeds must be at least 1")
    search_root, compare = args.work / "search", args.work / "compare"
    for attention in attentions:
        _run([
            "-m", "hparams_search=optuna", f"attention={attention}", f"hydra.sweeper.n_trials={args.trials}",
            f"hydra.sweep.dir={search_root / attention}", *args.overrides,
        ])  # fmt: skip
    _run([
        "-m", f"attention={','.join(attentions)}", f"seed={','.join(str(s) for s in range(args.seeds))}",
        f"tuned={search_root}/${{attention.name}}", f"hydra.sweep.dir={compare}", *args.overrides,
    ])  # fmt: skip
    paths = write_report(compare)
    rows = tuned_table(search_root, attentions)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    paths["tuned_md"] = compare / "tuned.md"
    paths["tuned_csv"] = compare / "tuned.csv"
    write_atomic(
        paths["tuned_md"],
        f"## Tuned on validation: {args.trials} TPE trials per variant\n\n"
        f"`python -m lga.tools.tune_compare {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
        "Best validation value and hyperparameters per variant (4 significant digits); the comparison\n"
        "(`report.md`) ran each variant at these, over seeds, on the test set.\n\n"
        + markdown_table(columns, ([r.get(c) for c in columns] for r in rows))
        + "\n",
    )
    write_atomic(paths["tuned_csv"], csv_text(rows, columns))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in paths.values():
            shutil.copyfile(path, args.out / path.name)
    sys.stdout.write(paths["tuned_md"].read_text() + "\n" + paths["md"].read_text())


if __name__ == "__main__":
    main()

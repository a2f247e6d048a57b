"""Cells: the jobs of one configuration over seeds, named as the reports and the declarations name them.

A cell is a dataset x backbone x attention x variant (every other override that changes what is
computed). Its label is the attention plus the tokens that set it apart from the rest of its
dataset: ``lga``, ``lga [attention.fusion=softmax]``, ``none [dataset.image_size=64]`` (and
``backbone=...`` where a dataset ran more than one backbone). Only jobs with status ``ok`` enter a
cell's values; a job that trained to its end without learning (``not_learned``) or diverged is a
failure of its cell, counted as a rate and listed, never averaged in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import pandas as pd

from .paper import PAPER
from .stats import mean_interval

BASELINE = "none"
# statuses that are what a configuration did (a failure rate of its cell), not what the machine did
FAILED_TO_TRAIN = {"not_learned": "did not learn", "diverged": "diverged"}
CellKey = tuple[str, str, str, str]  # (dataset, backbone, attention, variant)


def cell_key(row: dict[str, Any]) -> CellKey:
    return row["dataset"], row["backbone"], row["attention"], row.get("variant") or ""


def cell_labels(rows: Iterable[dict[str, Any]]) -> dict[CellKey, str]:
    """(dataset, backbone, attention, variant) -> the cell's label (see the module docstring)."""
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_dataset[r["dataset"]].append(r)
    labels = {}
    for dataset_rows in by_dataset.values():
        tokens = {cell_key(r): (r.get("variant") or "").split() for r in dataset_rows}
        common = set.intersection(*(set(t) for t in tokens.values()))
        backbones = {r["backbone"] for r in dataset_rows}
        for key, variant_tokens in tokens.items():
            extra = [f"backbone={key[1]}"] * (len(backbones) > 1) + [t for t in variant_tokens if t not in common]
            labels[key] = key[2] + (f" [{' '.join(extra)}]" if extra else "")
    return labels


def labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each with its ``cell`` label."""
    labels = cell_labels(rows)
    return [{**r, "cell": labels[cell_key(r)]} for r in rows]


def cell_values(rows: list[dict[str, Any]], metric: str, statuses: Iterable[str] = ("ok",)) -> dict:
    """(dataset, cell) -> {seed: metric} over the jobs whose status is in ``statuses``."""
    values: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    statuses = set(statuses)
    for r in labelled(rows):
        if r["status"] in statuses and r.get(metric) is not None:
            values[(r["dataset"], r["cell"])][int(r["seed"])] = float(r[metric])
    return values


def main_variants(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each dataset's main setting: its shortest variant, the one with no extra overrides."""
    mains: dict[str, str] = {}
    for r in rows:
        variant = r.get("variant") or ""
        mains[r["dataset"]] = min(mains.get(r["dataset"], variant), variant, key=len)
    return mains


def failure_rate(failed: list[dict[str, Any]], trained: int) -> str:
    """``1 of 3 did not learn``: a cell's training failures over the seeds that trained to an end."""
    counts: dict[str, int] = defaultdict(int)
    for r in failed:
        counts[FAILED_TO_TRAIN[r["status"]]] += 1
    return ", ".join(f"{n} of {trained} {what}" for what, n in sorted(counts.items()))


def cell_table(rows: list[dict[str, Any]], metric: str, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per cell that trained: its ok seeds' n, mean, sd and 95% interval of the mean, its
    failure rate, the paper's number (main cells only: the paper ran no ablations or settings), its
    cost. Ordered: per dataset, the main setting first, the baseline first, then by label."""
    rows = labelled(rows)
    mains = main_variants(rows)
    table = []
    for (dataset, cell), jobs in sorted(_group(rows).items()):
        ok = [r for r in jobs if r["status"] == "ok" and r.get(metric) is not None]
        failed = [r for r in jobs if r["status"] in FAILED_TO_TRAIN]
        if not ok and not failed:
            continue
        first = (ok or failed)[0]
        table.append({
            "dataset": dataset, "cell": cell, "backbone": first["backbone"], "attention": first["attention"],
            "variant": first.get("variant") or "", "metric": metric,
            **mean_interval([r[metric] for r in sorted(ok, key=lambda r: r["seed"])]),
            "seeds": " ".join(str(r["seed"]) for r in sorted(ok, key=lambda r: r["seed"])),
            "failures": failure_rate(failed, len(ok) + len(failed)),
            "failed_seeds": " ".join(str(r["seed"]) for r in sorted(failed, key=lambda r: r["seed"])),
            "paper": PAPER.get(dataset, {}).get(metric, {}).get(first["attention"]) if cell == first["attention"]
            else None,
            "params_M": first.get("params_M"), "gflops": first.get("gflops"),
        })  # fmt: skip
    frame = pd.DataFrame(table)
    if frame.empty:
        return frame
    order = [(r.dataset, r.variant != mains[r.dataset], r.attention != baseline, r.cell) for r in frame.itertuples()]
    return frame.iloc[sorted(range(len(frame)), key=order.__getitem__)].reset_index(drop=True)


def _group(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["cell"])].append(r)
    return groups

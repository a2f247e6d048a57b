"""Declared comparisons: which cells a study (or a sweep) compares, in which families, at which margins.

A declaration file is plain YAML (``conf/comparisons/<study>.yaml``; its header documents the format):
``margins`` per metric, and ``families`` of comparisons, each one line ``DATASET: TREATED vs BASELINE``
where each side is a cell label or a difference of two (``A - B``). Without a file, every cell is
compared with the baseline block on the same dataset, backbone and other options, in one family.
:func:`evaluate` runs every comparison through :mod:`lga.analysis.stats`, Holm-corrected per family
and metric: the study and the sweep report both come through here, so they give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from ..utils import REPO_ROOT
from .cells import BASELINE, FAILED_TO_TRAIN, cell_key, cell_labels, cell_values, main_variants
from .paper import DEFAULT_MARGINS, METRIC_NAMES
from .stats import COLUMNS, compare, judge

COMPARISONS_DIR = REPO_ROOT / "conf" / "comparisons"
FAMILY_KEYS = {"about", "compare", "exploratory", "first_seed"}
TOP_KEYS = {"margins", "families", "metrics"}


@dataclass(frozen=True)
class Comparison:
    family: str
    dataset: str
    treated: tuple[str, ...]  # one cell, or two: the first minus the second, paired by seed
    baseline: tuple[str, ...]
    exploratory: bool = False
    first_seed: int | None = None  # only seeds from this one on: a family declared to be tested on later seeds

    @property
    def name(self) -> str:
        return f"{' - '.join(self.treated)} vs {' - '.join(self.baseline)}"


@dataclass(frozen=True)
class Declarations:
    margins: dict[str, float]
    families: dict[str, str]  # name -> what it asks
    comparisons: tuple[Comparison, ...]
    source: str  # where they were declared, as a reader finds it
    metrics: tuple[str, ...] = ()  # the metrics the verdicts are on, headline first; none: the task's

    def margin(self, metric: str) -> float:
        """The declared margin of ``metric``, else its default (:data:`lga.analysis.paper.DEFAULT_MARGINS`)."""
        if metric in self.margins:
            return self.margins[metric]
        if metric in DEFAULT_MARGINS:
            return DEFAULT_MARGINS[metric]
        raise SystemExit(f"error: no margin for {metric} in {self.source}; declare one (or pass --margin)")


def _side(text: str) -> tuple[str, ...]:
    cells = tuple(c.strip() for c in text.split(" - "))
    if len(cells) > 2 or not all(cells):
        raise ValueError(f"`{text}`: a side is a cell label or `A - B`")
    return cells


def parse_comparison(entry: Any, family: str, exploratory: bool, first_seed: int | None = None) -> Comparison:
    """``{dataset: "treated vs baseline"}`` (or the string ``"dataset: treated vs baseline"``)."""
    if isinstance(entry, dict) and len(entry) == 1:
        ((dataset, text),) = entry.items()
    elif isinstance(entry, str) and ": " in entry:
        dataset, text = entry.split(": ", 1)
    else:
        raise ValueError(f"{entry!r}: expected `DATASET: TREATED vs BASELINE`")
    if not isinstance(text, str) or text.count(" vs ") != 1:
        raise ValueError(f"{entry!r}: expected one ` vs ` between the treated side and the baseline")
    treated, baseline = text.split(" vs ")
    return Comparison(family, str(dataset), _side(treated), _side(baseline), exploratory, first_seed)


def load_declarations(path: str | Path) -> Declarations:
    """Read a declaration file (format: its header, e.g. ``conf/comparisons/classification.yaml``)."""
    path = Path(path)
    source = str(path.resolve().relative_to(REPO_ROOT)) if path.resolve().is_relative_to(REPO_ROOT) else path.name
    try:
        spec = yaml.safe_load(path.read_text()) or {}
        unknown = sorted(set(spec) - TOP_KEYS)
        if unknown:
            raise ValueError(f"unknown keys {unknown}; valid: {', '.join(sorted(TOP_KEYS))}")
        metrics = tuple(str(m) for m in spec.get("metrics") or ())
        wrong = [m for m in metrics if m not in METRIC_NAMES]
        if wrong:
            raise ValueError(f"metrics: unknown {wrong}; valid: {', '.join(METRIC_NAMES)}")
        margins = {str(k): float(v) for k, v in (spec.get("margins") or {}).items()}
        families, comparisons = {}, []
        for name, family in (spec.get("families") or {}).items():
            families[name] = str(family.get("about", ""))
            unknown = sorted(set(family) - FAMILY_KEYS)
            if unknown:
                raise ValueError(f"family {name}: unknown keys {unknown}; valid: {', '.join(sorted(FAMILY_KEYS))}")
            exploratory = bool(family.get("exploratory", False))
            first_seed = family.get("first_seed")
            if first_seed is not None and (
                isinstance(first_seed, bool) or not isinstance(first_seed, int) or first_seed < 0
            ):
                raise ValueError(f"family {name}: first_seed must be a seed number (0 or more), got {first_seed!r}")
            comparisons += [parse_comparison(e, name, exploratory, first_seed) for e in family.get("compare") or []]
    except (OSError, yaml.YAMLError, ValueError, AttributeError, TypeError) as error:
        raise SystemExit(f"error: {source}: {error}") from None
    return Declarations(margins, families, tuple(comparisons), source, metrics)


def without_attention_options(variant: str) -> str:
    """A variant less its ``attention.*`` overrides: the baseline block has none of them."""
    return " ".join(o for o in variant.split() if not o.lstrip("+~").startswith("attention."))


def default_declarations(
    rows: list[dict[str, Any]], baseline: str = BASELINE, margins: dict[str, float] | None = None
) -> Declarations:
    """Every cell that trained against ``baseline`` on the same dataset, backbone and other options: one family."""
    labels = cell_labels(rows)
    mains = main_variants(rows)
    trained = {
        key for key, r in zip(map(cell_key, rows), rows) if r["status"] == "ok" or r["status"] in FAILED_TO_TRAIN
    }
    comparisons = []
    for key in sorted(trained, key=lambda k: (k[0], k[3] != mains[k[0]], labels[k])):
        dataset, backbone, attention, variant = key
        base = labels.get((dataset, backbone, baseline, without_attention_options(variant)))
        if attention != baseline and base is not None:
            comparisons.append(Comparison("all", dataset, (labels[key],), (base,)))
    about = f"every cell against `{baseline}` on the same dataset, backbone and other options"
    return Declarations(margins or {}, {"all": about}, tuple(comparisons), f"default: {about}")


def declarations_for(study: str, rows: list[dict[str, Any]]) -> Declarations:
    """The study's declared comparisons (``conf/comparisons/<study>.yaml``), else the default."""
    path = COMPARISONS_DIR / f"{study}.yaml"
    return load_declarations(path) if path.is_file() else default_declarations(rows)


def _values(values: dict, dataset: str, cells: tuple[str, ...]) -> dict[int, float]:
    """A side's value per seed: one cell's, or the first cell minus the second on the seeds both ran."""
    first = values.get((dataset, cells[0]), {})
    if len(cells) == 1:
        return first
    second = values.get((dataset, cells[1]), {})
    return {s: first[s] - second[s] for s in first.keys() & second.keys()}


def evaluate(
    rows: list[dict[str, Any]], declarations: Declarations, metrics: Iterable[str], higher_is_better: bool = True
) -> pd.DataFrame:
    """Every declared comparison on every metric: one row each, with the statistics of
    :func:`lga.analysis.stats.compare`, Holm per family and metric, and the verdicts."""
    records = []
    for metric in metrics:
        values = cell_values(rows, metric)
        for c in declarations.comparisons:
            treated, baseline = _values(values, c.dataset, c.treated), _values(values, c.dataset, c.baseline)
            if c.first_seed is not None:
                treated = {s: v for s, v in treated.items() if s >= c.first_seed}
            records.append({
                "metric": metric, "family": c.family, "exploratory": c.exploratory, "dataset": c.dataset,
                "comparison": c.name, **compare(treated, baseline, declarations.margin(metric), higher_is_better),
            })  # fmt: skip
    if not records:
        return pd.DataFrame(columns=["metric", "family", "exploratory", "dataset", "comparison", *COLUMNS])
    return judge(pd.DataFrame(records), by=["metric", "family"], higher_is_better=higher_is_better)


def declarations_markdown(declarations: Declarations, metrics: Iterable[str]) -> str:
    """The families and margins, as declared: what the verdicts answer."""
    margins = ", ".join(f"{METRIC_NAMES.get(m, m)} ±{declarations.margin(m):g} points" for m in metrics)
    lines = [f"Declared in `{declarations.source}`." if not declarations.source.startswith("default") else
             f"No declaration file: {declarations.source.removeprefix('default: ')}.",
             f"Margins (the smallest difference that matters): {margins}.", ""]  # fmt: skip
    for name, about in declarations.families.items():
        members = [c for c in declarations.comparisons if c.family == name]
        kind = " (exploratory: raw p, no verdict)" if members and members[0].exploratory else ""
        first_seed = members[0].first_seed if members else None
        seeds = f", on seeds {first_seed} and up only" if first_seed is not None else ""
        lines.append(f"- **{name}**{kind}: {about} ({len(members)} comparisons{seeds})")
    return "\n".join(lines)

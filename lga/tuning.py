"""Hyperparameter search glue: the objective a sweeper maximises, and ``tuned=DIR``, which
starts a run from a finished search's best hyperparameters.

``tuned=DIR`` applies only what the search in ``DIR`` declared it searched (its
``multirun.yaml``: ``hydra.sweeper.params``), each value checked against the declared
interval or choices. A value outside that space, or a key the search never searched (a
``_target_``, a callback), is refused: a results file must not be able to run code.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from .analysis.identity import IDENTITY, classify
from .utils import LGAError


def check_objective(objective: str | None) -> None:
    if objective is not None and objective != "val_best" and not objective.startswith("val/"):
        raise LGAError(
            f"objective={objective!r}: a search selects on validation only (val_best, or a val/... metric such as "
            "val/top1_best); selecting on a test metric would make the test set part of training"
        )


def objective_value(objective: str, metrics: dict[str, Any], monitor: str | None) -> float | None:
    """The number a sweeper maximises, from a finished job's metrics."""
    key = f"{monitor}_best" if objective == "val_best" else objective
    if key not in metrics:
        raise LGAError(f"objective={objective!r}: this job logged no {key}; it has {', '.join(sorted(metrics))}")
    return metrics[key]


def _search_config(search_dir: Path) -> dict[str, Any]:
    """The search's Hydra config, raw (resolving would evaluate the file's interpolations): its
    ``multirun.yaml``, or the first trial's ``.hydra/hydra.yaml`` (the Optuna sweeper writes no multirun.yaml)."""
    candidates = [search_dir / "multirun.yaml", *sorted(search_dir.glob("*/.hydra/hydra.yaml"))]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise LGAError(
            f"tuned={search_dir}: no trial of a search there (no multirun.yaml, no */.hydra/hydra.yaml), so the "
            "searched hyperparameters are unknown; point tuned= at a search's directory "
            "(python run.py -m hparams_search=optuna ...)"
        )
    return OmegaConf.to_container(OmegaConf.load(found), resolve=False)


def search_space(search_dir: Path) -> dict[str, Any]:
    """key -> Hydra sweep (interval, choice, range) that the search in ``search_dir`` ran over."""
    params = ((_search_config(search_dir).get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    parser = OverridesParser.create()
    space = {}
    for key, value in params.items():
        try:
            space[key] = parser.parse_overrides([f"{key}={value}"])[0].value()
        except OverrideParseException as err:
            raise LGAError(
                f"{search_dir}: the search space entry {key}={value} is not a sweep Hydra can read "
                f"({str(err).splitlines()[0]}); is it a search's directory?"
            ) from None
    return space


# a searched value is a number or a plain word: never an interpolation (${oc.create:...} would build
# objects when the config resolves), a mapping, or a list
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.+-]*")
# keys that choose code (a block's name, an external block's import path) are not hyperparameters
_CHOOSES_CODE = ("name", "target", "_target_")


def _in_space(value: Any, sweep: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    if isinstance(value, str) and not _PLAIN_WORD.fullmatch(value):
        return False
    if isinstance(sweep, IntervalSweep):
        return isinstance(value, (int, float)) and math.isfinite(value) and sweep.start <= value <= sweep.end
    if isinstance(sweep, ChoiceSweep):
        return value in list(sweep.list)
    if isinstance(sweep, RangeSweep):
        return isinstance(value, (int, float)) and sweep.start <= value < sweep.stop
    return value == sweep


def apply_tuned(cfg: DictConfig) -> dict[str, Any] | None:
    """Set the best hyperparameters of the search in ``cfg.tuned`` (its ``optimization_results.yaml``),
    each checked against the search's declared space. Returns what the record keeps."""
    if cfg.tuned is None:
        return None
    search_dir = Path(cfg.tuned)
    results = search_dir / "optimization_results.yaml"
    if not results.is_file():
        raise LGAError(
            f"tuned={cfg.tuned}: no optimization_results.yaml there; run the search first "
            "(python run.py -m hparams_search=optuna ... hydra.sweep.dir=<that directory>)"
        )
    space = search_space(search_dir)
    best = OmegaConf.to_container(OmegaConf.load(results)).get("best_params")
    if not isinstance(best, dict):
        raise LGAError(f"{results}: no best_params mapping; is it a finished search's file?")
    for key, value in best.items():
        parts = key.split(".")
        if classify(key) != IDENTITY or any(part.startswith("_") for part in parts) or parts[-1] in _CHOOSES_CODE:
            raise LGAError(f"{results} sets {key}, which is not a hyperparameter; only searched ones are applied")
        if key not in space:
            raise LGAError(
                f"{results} sets {key}, which its search did not search (it searched {', '.join(sorted(space))}); "
                "only searched hyperparameters are applied"
            )
        if not _in_space(value, space[key]):
            raise LGAError(f"{results} sets {key}={value!r}, outside its search's space {space[key]}")
    for key, value in best.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return {"from": search_dir.name, "params": best}

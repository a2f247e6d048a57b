"""Hyperparameter search glue: the objective a sweeper maximises, and ``tuned=DIR``, which
starts a run from a finished search's best hyperparameters.

``tuned=DIR`` applies only what the search in ``DIR`` declared it searched (its
``multirun.yaml``: ``hydra.sweeper.params``), each value checked against the declared
interval or choices. A value outside that space, or a key the search never searched (a
``_target_``, a callback), is refused: a results file must not be able to run code.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from .analysis.identity import IDENTITY, classify
from .utils import LGAError

# the validation metrics each task's model logs (lga.models: ClassificationModule, DetectionModule), so an
# objective is checked before any trial trains; tests/test_hardening.py checks them against a run's record
VALIDATION_METRICS = {
    "classification": ("val/loss", "val/top1", "val/top5", "val/top1_best"),
    "detection": (
        "val/map50", "val/map", "val/map75", "val/map_small", "val/map_medium", "val/map_large", "val/mar100",
        "val/mar_small", "val/map50_best",
    ),
}  # fmt: skip


def check_objective(objective: str | None, task: str | None = None) -> None:
    """An objective a search may select on: ``val_best`` or a validation metric the ``task``'s model logs."""
    if objective is not None and objective != "val_best" and not objective.startswith("val/"):
        raise LGAError(
            f"objective={objective!r}: a search selects on validation only (val_best, or a val/... metric such as "
            "val/top1_best); selecting on a test metric would make the test set part of training"
        )
    logged = VALIDATION_METRICS.get(task or "")
    if objective not in (None, "val_best") and logged and objective not in logged:
        raise LGAError(
            f"objective={objective!r}: the {task} model logs no such metric; use val_best (its checkpoint "
            f"metric at its best epoch) or one of {', '.join(logged)}"
        )


def objective_value(objective: str, metrics: dict[str, Any], monitor: str | None) -> float | None:
    """The number a sweeper maximises, from a finished job's metrics."""
    key = f"{monitor}_best" if objective == "val_best" else objective
    if key not in metrics:
        raise LGAError(f"objective={objective!r}: this job logged no {key}; it has {', '.join(sorted(metrics))}")
    return metrics[key]


# a search's best hyperparameters are its setting's: the same options must be chosen to reuse them
SETTING = ("task", "dataset", "backbone", "attention")
# set to 1 to accept the hyperparameters of a search made in another setting (recorded in result.json)
FROM_OTHER_ENV = "LGA_TUNED_FROM_OTHER"


def _search_config(search_dir: Path) -> DictConfig:
    """The search's config, unresolved (resolving would evaluate the file's interpolations): its
    ``multirun.yaml``, or, for a search from before lga's Optuna sweeper wrote one, its first trial's
    ``.hydra/config.yaml`` with that trial's ``.hydra/hydra.yaml``."""
    multirun = search_dir / "multirun.yaml"
    if multirun.is_file():
        return OmegaConf.load(multirun)
    trial = next((path.parent for path in sorted(search_dir.glob("*/.hydra/hydra.yaml"))), None)
    if trial is None:
        raise LGAError(
            f"tuned={search_dir}: no trial of a search there (no multirun.yaml, no */.hydra/hydra.yaml), so the "
            "searched hyperparameters are unknown; point tuned= at a search's directory "
            "(python run.py -m hparams_search=optuna ...)"
        )
    config = OmegaConf.load(trial / "config.yaml") if (trial / "config.yaml").is_file() else OmegaConf.create()
    return OmegaConf.merge(config, OmegaConf.load(trial / "hydra.yaml"))


def search_space(search_dir: Path) -> dict[str, Any]:
    """key -> Hydra sweep (interval, choice, range) that the search in ``search_dir`` ran over."""
    # read raw: resolving would evaluate the file's interpolations
    params = OmegaConf.to_container(_search_config(search_dir), resolve=False).get("hydra", {})
    params = (params.get("sweeper") or {}).get("params") or {}
    parser = OverridesParser.create()
    space = {}
    for key, value in params.items():
        try:
            space[key] = parser.parse_overrides([f"{key}={value}"])[0].value()
        except OverrideParseException as err:
            raise LGAError(
                f"{search_dir}: the search space entry {key}={value} is not a sweep Hydra can "
                f"read ({str(err).splitlines()[0]}); is it a search's directory?"
            ) from None
    return space


def setting(config: DictConfig, choices: Any) -> dict[str, str | None]:
    """The options a search's result is specific to: task, dataset, backbone (a timm model by name), attention."""
    backbone = choices.get("backbone")
    model_name = OmegaConf.select(config, "backbone.model_name", default=None)
    return {
        "task": choices.get("model"),
        "dataset": OmegaConf.select(config, "dataset.name", default=None),
        "backbone": f"{backbone}/{model_name}" if model_name else backbone,
        "attention": OmegaConf.select(config, "attention.name", default=None),
    }


def _check_setting(cfg: DictConfig, search_dir: Path) -> str | None:
    """Refuse a search made in another setting unless LGA_TUNED_FROM_OTHER=1; returns the difference
    when it was accepted (the record keeps it)."""
    from hydra.core.hydra_config import HydraConfig

    searched = _search_config(search_dir)
    theirs = setting(searched, OmegaConf.select(searched, "hydra.runtime.choices", default=None) or {})
    ours = setting(cfg, HydraConfig.get().runtime.choices if HydraConfig.initialized() else {})
    differ = [key for key in SETTING if None not in (theirs[key], ours[key]) and theirs[key] != ours[key]]
    if not differ:
        return None
    difference = ", ".join(f"{key} {theirs[key]} there, {ours[key]} here" for key in differ)
    if os.environ.get(FROM_OTHER_ENV) == "1":
        return difference
    again = " ".join(f"{key}={ours[key]}".replace("/", " backbone.model_name=") for key in differ)
    raise LGAError(
        f"tuned={search_dir}: that search was made in another setting ({difference}); its best hyperparameters "
        f"are that setting's. Tune this one (python run.py -m hparams_search=optuna {again}), or run with "
        f"{FROM_OTHER_ENV}=1 to use them anyway (result.json then records the difference)"
    )


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
    other = _check_setting(cfg, search_dir)
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
    return {"from": search_dir.name, "params": best, **({"other_setting": other} if other else {})}

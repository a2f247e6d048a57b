"""What counts as the same run: every key of the composed config, classified in this one place.

Each key is one of

- **identity**: it changes the result (data, model, optimisation, schedule, seed);
- **run-only**: it changes where or how a run is shown or run, not what it computes (loggers,
  threads, the progress bar, which extra metrics a sweeper reads);
- **location**: where the data, logs and records live, which differs between machines.

A key takes the class of its longest classified prefix (``trainer.devices`` is run-only,
every other ``trainer.*`` key is identity through ``trainer``), so a new option of a group is
identity until someone says otherwise: it splits jobs rather than silently merging them.
A top-level key that is not in :data:`KEYS` is an error (``tests/test_identity.py`` composes
every option of every group and checks).

Everything that needs "the same run" derives from here: the job's variant and sweep
subdirectory (:func:`job_subdir`), the checkpoint identity and the study record's config
(:func:`run_identity`), run and record names (:func:`run_name`, :func:`study_record`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

IDENTITY, RUN_ONLY, LOCATION = "identity", "run-only", "location"

KEYS: dict[str, str] = {
    # the result: what is trained, on what, how
    "seed": IDENTITY,
    "dataset": IDENTITY,
    "backbone": IDENTITY,
    "attention": IDENTITY,
    "model": IDENTITY,
    "optimizer": IDENTITY,
    "scheduler": IDENTITY,
    "trainer": IDENTITY,
    # presets chosen on the command line (experiment=, task=, hparams_search=): their values land in
    # the keys above, but as a choice they name a setting, so they stay in a job's variant
    "experiment": IDENTITY,
    "task": IDENTITY,
    "hparams_search": IDENTITY,
    # how a run is shown or run
    "tags": RUN_ONLY,
    "logger": RUN_ONLY,
    # a callback can change the result (early stopping, weight averaging): one a user adds is identity;
    # those of conf/callbacks/default.yaml only log
    "callbacks": IDENTITY,
    "callbacks.epoch_line": RUN_ONLY,
    "callbacks.lga_weights": RUN_ONLY,
    "callbacks.lr_monitor": RUN_ONLY,
    "runtime": RUN_ONLY,
    # compiled kernels sum in another order, and the runs drift apart (experiments/compile_equivalence.md:
    # not shown equivalent within 0.1 top-1 points): a compiled run is another run
    "runtime.compile": IDENTITY,
    "verbose": RUN_ONLY,
    "test": RUN_ONLY,  # whether the test split is evaluated after training: the trained model is the same
    "objective": RUN_ONLY,  # what a sweeper reads from the job
    "tuned": RUN_ONLY,  # its values land in optimizer.* / model.*, which are identity
    "trainer.accelerator": RUN_ONLY,
    "trainer.devices": RUN_ONLY,
    "trainer.strategy": RUN_ONLY,
    "trainer.num_nodes": RUN_ONLY,
    "trainer.enable_progress_bar": RUN_ONLY,
    "trainer.enable_model_summary": RUN_ONLY,
    "trainer.log_every_n_steps": RUN_ONLY,
    "trainer.profiler": RUN_ONLY,
    # where things are
    "paths": LOCATION,
    "study_dir": LOCATION,
    "dataset.search_dirs": LOCATION,
    "dataset.download": LOCATION,
    "dataset.download_root": LOCATION,
    "dataset.download_url": LOCATION,
    "dataset.hint": LOCATION,
    "dataset.source.search_dirs": LOCATION,  # datasets built from another (tiny_objects: from MNIST)
    "dataset.source.hint": LOCATION,
    "dataset.files_dir": LOCATION,  # neon_trees: where make install put its files
    # (dataset.root of voc, dataset.data of yolo, coco's annotations and images stay identity: they name
    # which dataset a run trained on, so two runs on different ones must never share a record)
}

# groups whose chosen option is an axis of a sweep (the preset's name: mobilenetv3_paper, not the class)
AXIS_GROUPS = ("dataset", "backbone", "attention")
# overrides a job's name already carries: the axes, the seed, a timm model (backbone=timm/efficientnet_b0),
# the attention block's name (attention=external attention.name=myblock)
NAMED_BY_AXES = (*AXIS_GROUPS, "seed", "backbone.model_name", "attention.name")


class UnclassifiedKey(KeyError):
    """A config key that :data:`KEYS` does not classify."""


# identity keys added after runs were recorded, each with the value that does what runs did before the
# key existed: a saved identity (a checkpoint's, a study record's) that lacks one reads as having it
INTRODUCED: dict[str, Any] = {
    "dataset.augment": "none",
    "runtime.compile": False,
    "trainer._target_": "lightning.pytorch.Trainer",
    "trainer._partial_": True,
    "trainer._convert_": "all",
    "callbacks": {},  # the logging callbacks are run-only: no callback is left in a run's identity
}


def with_introduced(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``saved`` with each :data:`INTRODUCED` key that ``current`` has and ``saved`` lacks set
    to its value from before it existed."""
    out = copy.deepcopy(dict(saved))
    for dotted, before in INTRODUCED.items():
        *parents, leaf = dotted.split(".")
        here, there = out, current
        for part in parents:
            if not isinstance(there.get(part), Mapping):
                break
            here, there = here.setdefault(part, {}), there[part]  # a group the saved identity had no key of
            if not isinstance(here, dict):
                break
        else:
            if leaf in there and leaf not in here:
                here[leaf] = copy.deepcopy(before)
    return out


def without_introduced(identity: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``identity`` less each :data:`INTRODUCED` key that holds its value from before it existed:
    what the identity was then, so a digest of it (a W&B run id) stays the same across the change."""
    out = copy.deepcopy(dict(identity))
    for dotted, before in INTRODUCED.items():
        *parents, leaf = dotted.split(".")
        here = out
        for part in parents:
            here = here.get(part) if isinstance(here, dict) else None
        if isinstance(here, dict) and leaf in here and here[leaf] == before:
            del here[leaf]
    return out


def classify(key: str) -> str:
    """The class of a dotted config key (or of an override's key: ``+x``/``~x`` and group paths
    such as ``hydra/launcher`` included; ``hydra`` options never change a result)."""
    key = key.lstrip("+~")
    if key.startswith("hydra"):
        return RUN_ONLY
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = KEYS.get(".".join(parts[:end]))
        if found is not None:
            return found
    raise UnclassifiedKey(
        f"config key {key!r} is not classified as identity, run-only or location: add it to "
        "lga.analysis.identity.KEYS (identity if it can change a result)"
    )


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def is_identity_override(override: str) -> bool:
    return classify(override_key(override)) == IDENTITY


def variant(overrides: Iterable[str]) -> str:
    """The overrides that change what a job computes and that its axes do not already name, sorted."""
    kept = (o for o in overrides if is_identity_override(o) and override_key(o) not in NAMED_BY_AXES)
    return " ".join(sorted(kept))


def recordable_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides as a record keeps them: location overrides (machine paths) left out."""
    return [o for o in overrides if classify(override_key(o)) != LOCATION]


def path_safe(name: str) -> str:
    """``name`` as one directory name: anything but letters, digits and ``_.=,+-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", name)


def job_subdir(overrides: Sequence[str], named_by_sweep: Sequence[str] = ()) -> str:
    """A sweep job's subdirectory (``hydra.sweep.subdir: ${lga.job_subdir:${hydra.overrides.task},[...]}``):
    its identity overrides, less those the sweep directory already names, sorted and joined by commas;
    ``base`` for a job with none. The same overrides give the same directory, so a rerun resumes there."""
    kept = [o for o in overrides if is_identity_override(o) and override_key(o) not in named_by_sweep]
    return path_safe(",".join(sorted(kept))) or "base"


def identity_of(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config`` (a resolved dict) less its run-only and location keys, at every depth."""
    out = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if classify(dotted) != IDENTITY:
            continue
        out[key] = identity_of(value, dotted + ".") if isinstance(value, Mapping) else value
    return out


def run_identity(cfg: Any) -> dict[str, Any]:
    """What must match for a checkpoint to continue a run, or a study record to stand for a job:
    the resolved config less its run-only and location keys."""
    from omegaconf import OmegaConf

    def plain(value: Any) -> Any:
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    return identity_of({key: plain(cfg[key]) for key in cfg if key != "hydra" and classify(key) == IDENTITY})


def option_name(node: Any) -> str:
    """A config node's name, or the class its ``target`` (an external block) or ``_target_`` names."""
    return node.get("name") or str(node.get("target") or node.get("_target_", "?")).rsplit(".", 1)[-1]


def job_axes(cfg: Any, choices: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A job's place in its sweep: the option chosen in each axis group (Hydra's runtime choices,
    so two presets of one class stay apart), the seed, and the ``variant`` (:func:`variant`).
    A preset yaml of a block is its own axis value (its file name); ``attention=external`` runs the
    user's block, named by ``attention.name`` or its class.
    Also the class behind the backbone preset and the task (the ``model`` option)."""
    axes: dict[str, Any] = {group: choices.get(group) or option_name(cfg[group]) for group in AXIS_GROUPS}
    if axes["attention"] == "external":  # the user's block, by its name (a preset of a block keeps its own)
        axes["attention"] = option_name(cfg.attention)
    if cfg.backbone.get("model_name"):  # backbone=timm: the model is the axis (timm/efficientnet_b0)
        axes["backbone"] = f"{axes['backbone']}/{cfg.backbone.model_name}"
    axes["seed"] = int(cfg.seed)
    axes["variant"] = variant(overrides)
    axes["backbone_class"] = option_name(cfg.backbone)
    axes["task"] = choices.get("model") or option_name(cfg.model)
    return axes


def run_name(axes: Mapping[str, Any]) -> str:
    """``<dataset>-<backbone>-<attention>-s<seed>``: the W&B run name, and a study record's basis."""
    return f"{axes['dataset']}-{axes['backbone']}-{axes['attention']}-s{axes['seed']}"


def study_record(study_dir: str | Path, axes: Mapping[str, Any], result_file: str = "result.json") -> Path:
    """Where a study keeps a job's record: ``<study_dir>/jobs/<run name>[--<variant>]/result.json``.
    The ``experiment=`` that selects the study is left out of the name: every job shares it."""
    tokens = [o for o in str(axes.get("variant", "")).split() if override_key(o) != "experiment"]
    name = run_name(axes) + ("--" + ",".join(tokens) if tokens else "")
    return Path(study_dir) / "jobs" / path_safe(name) / result_file

"""Config schemas, registered in Hydra's ConfigStore so bad configs fail at compose time.

Fixed groups (trainer, logger, paths) have hand-written dataclasses. Groups
whose options map to constructors (attention, backbone, dataset, model, optimizer,
scheduler) get one schema per option generated from the constructor's signature,
so a mistyped option or a wrong type is caught before anything is built, and a new
block's schema exists as soon as the block is registered. Each option yaml names
its schema in its defaults list: ``- /schema/<group>/<name>@_here_``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence as AbcSequence
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from .analysis.identity import job_subdir
from .utils import REPO_ROOT


class LoggerBackend(enum.Enum):
    wandb = "wandb"
    csv = "csv"
    none = "none"


class WandbMode(enum.Enum):
    auto = "auto"  # online when an API key and the server are there, offline otherwise
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class LoggerConfig:
    backend: LoggerBackend = LoggerBackend.wandb
    project: str = "lga"
    entity: Optional[str] = None
    mode: WandbMode = WandbMode.auto
    group: Optional[str] = None  # default: the sweep's (or single run's) directory name


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class TrainerConfig:
    """The Lightning Trainer arguments lga exposes (typed; ints or fractions where Lightning takes both)."""

    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    sync_batchnorm: bool = False
    precision: Any = "32-true"
    deterministic: Any = "warn"
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    limit_test_batches: Any = 1.0
    val_check_interval: Any = 1.0
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 2
    fast_dev_run: Any = False
    log_every_n_steps: int = 10
    gradient_clip_val: Optional[float] = None
    accumulate_grad_batches: int = 1
    enable_progress_bar: Optional[bool] = None  # null: only when the console is a terminal
    # lga's header gives parameters and FLOPs (Lightning's summary counts 0 FLOPs); true adds its module table
    enable_model_summary: bool = False
    profiler: Optional[str] = None  # "simple" or "advanced": time per hook (data, step, backward, optimizer)


@dataclass
class RuntimeConfig:
    """How a run uses the machine (see :mod:`lga.runtime`)."""

    threads: Optional[int] = None  # intra-op threads; null: from SLURM, the launcher or the CPU affinity mask
    # weights (and so every activation) in channels_last: depthwise convs run far faster that way on CPU
    # (a paper-scale classifier's training step: 1.87x, experiments/profile_epoch.md)
    channels_last: bool = True


@dataclass
class TrainConfig:
    seed: int = 0
    tags: List[str] = field(default_factory=list)
    test: bool = True  # evaluate the best checkpoint on the test set after training
    verbose: bool = False  # Lightning's and W&B's informational messages on the console
    # a study's committed records: each finished job's result.json is copied to <study_dir>/jobs/<job>/,
    # and a job whose record is already there is not trained again (lga.analysis.results.study_record)
    study_dir: Optional[str] = None
    # what a job returns to a sweeper that maximises it (hparams_search): "val_best" (the model's validation
    # monitor at its best epoch: val/top1 or val/map50) or a "val/..." metric; never a test metric
    objective: Optional[str] = None
    # a finished search's directory (hparams_search=optuna): its best hyperparameters replace this config's
    # (the tune-then-compare protocol, lga.tools.tune_compare); recorded in result.json as "tuned"
    tuned: Optional[str] = None
    dataset: Any = MISSING
    backbone: Any = MISSING
    attention: Any = MISSING
    model: Any = MISSING  # the task's LightningModule (a partial): its class decides the task
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    callbacks: Dict[str, Any] = field(default_factory=dict)  # name -> {_target_: a Lightning Callback, ...}
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


# -- value ranges ---------------------------------------------------------------------------


def _positive(v: Any) -> bool:
    return v > 0


# option -> (check, the valid range in words); options a config does not have are skipped
RANGES: Dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: v >= 0, ">= 0"),
    "runtime.threads": (lambda v: v is None or v >= 1, ">= 1, or null"),
    "trainer.max_epochs": (lambda v: v is None or v >= 1, ">= 1 (or null with trainer.max_steps)"),
    "trainer.max_steps": (lambda v: v == -1 or v >= 1, ">= 1, or -1 for no limit"),
    "trainer.accumulate_grad_batches": (lambda v: v >= 1, ">= 1"),
    "trainer.gradient_clip_val": (lambda v: v is None or v >= 0, ">= 0, or null"),
    "trainer.check_val_every_n_epoch": (lambda v: v >= 1, ">= 1"),
    **{
        f"trainer.limit_{split}_batches": (lambda v: v >= 0, ">= 0 (a fraction up to 1.0, or a batch count)")
        for split in ("train", "val", "test")
    },
    "optimizer.lr": (_positive, "> 0"),
    "optimizer.weight_decay": (lambda v: v >= 0, ">= 0"),
    "optimizer.momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "scheduler.warmup_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "scheduler.min_lr_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "dataset.batch_size": (_positive, ">= 1"),
    "dataset.eval_batch_size": (_positive, ">= 1"),
    "dataset.image_size": (_positive, ">= 1"),
    "dataset.val_size": (_positive, "> 0 (below 1: a fraction of the training set; from 1: a count)"),
    "model.dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "model.label_smoothing": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "model.score_thresh": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "model.nms_thresh": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "attention.num_heads": (lambda v: v is None or v >= 1, ">= 1, or null"),
    "attention.global_kernel_size": (lambda v: v >= 1 and v % 2 == 1, "a positive odd integer"),
    "attention.local_kernel_sizes": (
        lambda v: len(v) > 0 and all(k >= 1 and k % 2 == 1 for k in v),
        "a non-empty list of positive odd integers",
    ),
    "attention.num_scales": (lambda v: v >= 0, ">= 0"),
}


def check_ranges(cfg: Any) -> None:
    """Raise :class:`lga.utils.LGAError` naming the first option outside its valid range."""
    from .utils import LGAError

    for key, (valid, words) in RANGES.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        try:
            ok = valid(value)
        except TypeError:
            ok = False
        if not ok:
            raise LGAError(f"{key}={value!r} is out of range: it must be {words}")


_ABSENT = object()


# -- schemas generated from constructors ------------------------------------------------


def _config_type(annotation: Any) -> Any:
    """The closest type OmegaConf can check for a constructor annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, bool, str):
        return annotation
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and type(None) in args:
            return Optional[_config_type(inner[0])]
        return Any
    if origin in (list, tuple, AbcSequence) and args and args[0] in (int, float, bool, str):
        return List[args[0]]
    if origin in (dict, AbcMapping):
        return Dict[str, Any]
    return Any


def keyword_parameters(target: Callable) -> list[tuple[inspect.Parameter, Any]]:
    """(parameter, type hint) for each keyword parameter of a function, or of a class's
    ``__init__`` and, where it takes ``**kwargs``, of its parents' (which it passes them to)
    and of the function named by its ``forwarded`` attribute: an argument is written once,
    where it is used."""
    if not inspect.isclass(target):
        hints = typing.get_type_hints(target)
        return [(p, hints.get(p.name, Any)) for p in inspect.signature(target).parameters.values()]
    found: list[tuple[inspect.Parameter, Any]] = []
    for cls in target.__mro__:
        if "__init__" not in vars(cls) or cls is object:
            continue
        hints = typing.get_type_hints(cls.__init__)
        params = list(inspect.signature(cls.__init__).parameters.values())
        seen = {p.name for p, _ in found}
        found += [(p, hints.get(p.name, Any)) for p in params if p.name not in seen and p.kind is not p.VAR_KEYWORD]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    # a class may also pass some of its **kwargs to a function: ``forwarded = (function, names)``
    function, names = getattr(target, "forwarded", (None, ()))
    if function is not None:
        found += [(p, hint) for p, hint in keyword_parameters(function) if p.name in names]
    return found


def schema_from_signature(
    name: str,
    target: Callable,
    *,
    skip: tuple[str, ...] = (),
    only: Optional[typing.Collection[str]] = None,
    head: tuple[tuple[str, Any, Any], ...] = (),
) -> type:
    """A dataclass with ``head`` fields, then one field per keyword parameter of ``target``
    (a function, or a class: see :func:`keyword_parameters`), all but ``skip``, or just those in ``only``."""
    fields = [(n, t, field(default=d)) for n, t, d in head]
    for param, hint in keyword_parameters(target):
        pname = param.name
        if pname in skip or pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if only is not None and pname not in only:
            continue
        if param.kind is param.POSITIONAL_ONLY or (
            param.kind is param.POSITIONAL_OR_KEYWORD and param.default is param.empty
        ):
            continue  # positional inputs (channels, params, ...) are filled in by code, not config
        default = MISSING if param.default is param.empty else param.default
        ftype = _config_type(hint)
        if isinstance(default, (list, tuple, dict)):
            default = field(default_factory=lambda d=default: list(d) if not isinstance(d, dict) else dict(d))
        else:
            default = field(default=default)
        fields.append((pname, ftype, default))
    return dataclasses.make_dataclass(name, fields)


def _target_head(target: Callable, partial: bool = False) -> tuple:
    """``_target_`` (and ``_partial_``: the code adds the arguments only it knows) of a schema."""
    path = f"{target.__module__}.{target.__qualname__}"
    head = (("_target_", str, path),)
    return head + ((("_partial_", bool, True),) if partial else ())


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent).

    Every group builds its object the same way, by ``hydra.utils.instantiate``:
    ``attention`` gives a partial of :func:`lga.attention.create_attention` (name and
    options; the backbone adds the channels), ``backbone`` the backbone class (the code
    adds the input channels and the attention factory), ``model`` a partial of the task's
    LightningModule (the code adds the backbone and what the data decides), ``dataset``
    the datamodule, ``optimizer`` and ``scheduler`` partials.
    """
    import torch

    from .attention import attention_options, create_attention, get_attention_class, list_attentions
    from .backbones.registry import _BACKBONES
    from .data import COCODataModule, IDXClassificationDataModule, TinyObjectsDataModule, VOCDataModule, YOLODataModule
    from .models import TASK_MODULES, schedules

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for name in list_attentions():
        # create_attention(name, channels, **options): the options are those of the block's constructor
        head = (*_target_head(create_attention, partial=True), ("_convert_", str, "all"), ("name", str, name))
        node = schema_from_signature(
            f"{name}_schema", get_attention_class(name), only=attention_options(name), head=head
        )
        cs.store(group="schema/attention", name=name, node=node)
    for name, cls in _BACKBONES.items():
        node = schema_from_signature(
            f"{name}_schema", cls, skip=("in_chans", "attention"), head=(*_target_head(cls), ("_convert_", str, "all"))
        )
        cs.store(group="schema/backbone", name=name, node=node)
    datasets = {
        "idx_classification": IDXClassificationDataModule, "tiny_objects": TinyObjectsDataModule,
        "coco": COCODataModule, "yolo": YOLODataModule, "voc": VOCDataModule,
    }  # fmt: skip
    for name, cls in datasets.items():
        node = schema_from_signature(f"{name}_schema", cls, head=_target_head(cls))
        cs.store(group="schema/dataset", name=name, node=node)
    for task, cls in TASK_MODULES.items():
        # the backbone, the optimiser, the schedule and what the data decides are filled in by code
        filled = ("backbone", "optimizer", "scheduler", *cls.data_options_names)
        node = schema_from_signature(
            f"{task}_model_schema", cls, skip=filled, head=(*_target_head(cls, partial=True), ("_convert_", str, "all"))
        )
        cs.store(group="schema/model", name=task, node=node)
    for optim in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        node = schema_from_signature(
            f"{optim.__name__}_schema", optim.__init__, skip=("params",), head=_target_head(optim, partial=True)
        )
        cs.store(group="schema/optimizer", name=optim.__name__.lower(), node=node)
    for sched in (schedules.warmup_cosine, schedules.constant):
        node = schema_from_signature(
            f"{sched.__name__}_schema", sched, skip=("optimizer", "total_steps"), head=_target_head(sched, partial=True)
        )
        cs.store(group="schema/scheduler", name=sched.__name__, node=node)


if not OmegaConf.has_resolver("lga.root"):
    OmegaConf.register_new_resolver("lga.root", lambda: str(REPO_ROOT))
if not OmegaConf.has_resolver("lga.job_subdir"):
    # a sweep job's directory from its identity overrides (conf/experiment/study_*.yaml, hparams_search)
    OmegaConf.register_new_resolver("lga.job_subdir", job_subdir)

"""The run's config: the schema of its fixed groups (trainer, runtime, paths), the value
ranges every option is checked against, and lga's OmegaConf resolvers.

The groups whose options are registered constructors (attention, backbone, callbacks, dataset, logger,
model, optimizer, scheduler: :mod:`lga.registry`) get schemas generated from those constructors'
signatures: :mod:`lga.schemas`, which also registers everything in Hydra's ConfigStore
(:func:`lga.schemas.register_configs`). The trainer has one constructor, Lightning's, and this fixed schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from omegaconf import MISSING, OmegaConf

from .analysis.identity import job_subdir
from .utils import REPO_ROOT


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class TrainerConfig:
    """The Lightning Trainer arguments lga exposes (typed; ints or fractions where Lightning takes both);
    the run adds its loggers, callbacks, plugins and directory (:func:`lga.build.build_trainer`)."""

    _target_: str = "lightning.pytorch.Trainer"
    _partial_: bool = True
    _convert_: str = "all"  # lists (devices=[0,1]) reach Lightning as lists
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
    # torch.compile the task module's forward (Module.compile); experiments/compile_cpu.md measures it
    compile: bool = False


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
    logger: Any = MISSING  # a partial of one of lga.loggers.LOGGERS
    paths: PathsConfig = field(default_factory=PathsConfig)


# -- value ranges ---------------------------------------------------------------------------


def _positive(v: Any) -> bool:
    return v > 0


def _fraction_or_count(v: Any) -> bool:
    return 0 < v < 1 or (v >= 1 and float(v).is_integer())


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
    # 1.5 would keep 1 validation image and pick the best checkpoint on it: counts must be whole
    **{
        key: (_fraction_or_count, "a fraction below 1 (0.1: a tenth of the training set) or a whole number of images")
        for key in ("dataset.val_size", "dataset.source.val_size")
    },
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


if not OmegaConf.has_resolver("lga.root"):
    OmegaConf.register_new_resolver("lga.root", lambda: str(REPO_ROOT))
if not OmegaConf.has_resolver("lga.class_name"):
    # attention=external: the block's default name, the last part of its import path
    OmegaConf.register_new_resolver("lga.class_name", lambda target: str(target).rsplit(".", 1)[-1])
if not OmegaConf.has_resolver("lga.job_subdir"):
    # a sweep job's directory from its identity overrides (conf/experiment/study_*.yaml, hparams_search)
    OmegaConf.register_new_resolver("lga.job_subdir", job_subdir)

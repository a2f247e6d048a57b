"""Schemas generated from constructors, and their registration in Hydra's ConfigStore, so a bad config
fails at compose time.

Groups whose options map to constructors (attention, backbone, dataset, model, optimizer, scheduler)
get one schema per option generated from the constructor's signature: a mistyped option or a wrong
type is caught before anything is built, and a new block's schema exists as soon as the block is
registered. Each option yaml names its schema in its defaults list:
``- /schema/<group>/<name>@_here_``. The fixed groups' schemas are in :mod:`lga.config`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence as AbcSequence
from dataclasses import field
from typing import Any, Callable, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from .config import TrainConfig


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

    from .attention import attention_options, create_attention, create_external, get_attention_class, list_attentions
    from .backbones.registry import _BACKBONES
    from .data import COCODataModule, IDXClassificationDataModule, TinyObjectsDataModule, VOCDataModule, YOLODataModule
    from .data.neon import NEONTreesDataModule
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
    # attention=external: a block from outside lga, create_external(channels, target=..., name=..., options={...})
    head = (*_target_head(create_external, partial=True), ("_convert_", str, "all"))
    node = schema_from_signature("external_schema", create_external, head=head)
    cs.store(group="schema/attention", name="external", node=node)
    for name, cls in _BACKBONES.items():
        node = schema_from_signature(
            f"{name}_schema", cls, skip=("in_chans", "attention"), head=(*_target_head(cls), ("_convert_", str, "all"))
        )
        cs.store(group="schema/backbone", name=name, node=node)
    datasets = {
        "idx_classification": IDXClassificationDataModule, "tiny_objects": TinyObjectsDataModule,
        "coco": COCODataModule, "yolo": YOLODataModule, "voc": VOCDataModule, "neon_trees": NEONTreesDataModule,
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

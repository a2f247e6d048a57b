"""Schemas generated from constructors, and their registration in Hydra's ConfigStore, so a bad config
fails at compose time.

Groups whose options map to constructors (attention, backbone, callbacks, dataset, logger, model,
optimizer, scheduler: the registries of :mod:`lga.registry`) get one schema per option generated from the
constructor's signature: a mistyped option or a wrong
type is caught before anything is built, and a new block's schema exists as soon as the block is
registered. Each option yaml names its schema in its defaults list:
``- /schema/<group>/<name>@_here_``. The fixed groups' schemas are in :mod:`lga.config`.
"""

from __future__ import annotations

import dataclasses
import enum
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
from .registry import Registry


def _config_type(annotation: Any) -> Any:
    """The closest type OmegaConf can check for a constructor annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, bool, str) or (inspect.isclass(annotation) and issubclass(annotation, enum.Enum)):
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


def _head(path: str, registry: Registry) -> tuple:
    """``_target_`` of a schema, and ``_partial_`` / ``_convert_`` where its registry says so."""
    head: tuple = (("_target_", str, path),)
    if registry.partial:
        head += (("_partial_", bool, True),)
    if registry.convert:
        head += (("_convert_", str, "all"),)
    return head


def _schema(registry: Registry, name: str, target: Callable) -> type:
    """The schema of ``name`` in ``registry``. An attention block's is a partial of
    :func:`lga.attention.create_attention` with the block's name and options (a preset's fixed options
    are not options), so one factory builds a block for each slot's channels."""
    if registry.group == "attention":
        from .attention import attention_options, create_attention

        head = (*_head(f"{create_attention.__module__}.create_attention", registry), ("name", str, name))
        return schema_from_signature(f"{name}_attention_schema", target, only=attention_options(name), head=head)
    skip = (*registry.filled, *getattr(target, "data_options_names", ()))
    head = _head(f"{target.__module__}.{target.__qualname__}", registry)
    return schema_from_signature(f"{name}_{registry.group}_schema", target, skip=skip, head=head)


def registries() -> list[Registry]:
    """Every config group that builds an object from one of its registered constructors."""
    from .attention.registry import ATTENTIONS
    from .backbones import BACKBONES
    from .callbacks import CALLBACKS
    from .data import DATASETS
    from .loggers import LOGGERS
    from .models import MODELS
    from .models.schedules import OPTIMIZERS, SCHEDULERS

    return [ATTENTIONS, BACKBONES, CALLBACKS, DATASETS, LOGGERS, MODELS, OPTIMIZERS, SCHEDULERS]


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent): ``schema/<group>/<name>`` for each
    entry of each registry (:mod:`lga.registry`), and the fixed groups' ``train_schema``. Every group
    builds its object the same way, by ``hydra.utils.instantiate``; its registry says whether that
    gives a partial that the code completes."""
    from .attention import create_external
    from .attention.registry import ATTENTIONS

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for registry in registries():
        for name, target in registry.items():
            cs.store(group=f"schema/{registry.group}", name=name, node=_schema(registry, name, target))
    # attention=external: a block from outside lga, create_external(channels, target=..., name=..., options={...})
    head = _head(f"{create_external.__module__}.create_external", ATTENTIONS)
    cs.store(
        group="schema/attention",
        name="external",
        node=schema_from_signature("external_schema", create_external, head=head),
    )

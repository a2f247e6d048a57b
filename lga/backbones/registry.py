"""Name -> backbone class, with errors that list what is valid."""

from __future__ import annotations

from typing import Callable, Dict, Type

from torch import nn

_BACKBONES: Dict[str, Type[nn.Module]] = {}


def register_backbone(name: str) -> Callable[[Type[nn.Module]], Type[nn.Module]]:
    def decorator(cls: Type[nn.Module]) -> Type[nn.Module]:
        _BACKBONES[name] = cls
        return cls

    return decorator


def list_backbones() -> list[str]:
    return sorted(_BACKBONES)


def create_backbone(name: str, **options) -> nn.Module:
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(list_backbones())}")
    return _BACKBONES[name](**options)

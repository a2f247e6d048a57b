"""Name -> attention block class, with errors that list what is valid.

Every registered block is built as ``Block(channels, **options)``: channels first,
keyword-only options after. ``create_attention`` checks the options against the
constructor's signature so a mistyped option names itself and lists the valid ones.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple, Type

import torch
from torch import nn

from ..registry import Registry

# name -> block class; a preset name (LGA's ablations) also fixes some of its class's options
ATTENTIONS = Registry("attention", partial=True, convert=True)  # built through create_attention
_PRESET_OPTIONS: Dict[str, Dict[str, Any]] = {}


def register_attention_preset(name: str, base: str, **fixed: Any) -> None:
    """Make ``name`` mean block ``base`` with ``fixed`` options (e.g. LGA's ablations)."""
    options = {**_PRESET_OPTIONS.get(base, {}), **fixed}
    if name in ATTENTIONS and _PRESET_OPTIONS.get(name, {}) != options:
        raise ValueError(f"attention {name!r} is already registered with options {_PRESET_OPTIONS.get(name, {})}")
    ATTENTIONS.register(name, ATTENTIONS.get(base))
    _PRESET_OPTIONS[name] = options


def list_attentions() -> list[str]:
    return ATTENTIONS.names()


def _lookup(name: str) -> Tuple[Type[nn.Module], Dict[str, Any]]:
    return ATTENTIONS.get(name), _PRESET_OPTIONS.get(name, {})


def get_attention_class(name: str) -> Type[nn.Module]:
    return _lookup(name)[0]


def preset_options(name: str) -> Dict[str, Any]:
    """The options name ``name`` fixes (``{}`` for a plain block)."""
    return dict(_lookup(name)[1])


def attention_options(name: str) -> Dict[str, inspect.Parameter]:
    """The keyword options block ``name`` accepts (after ``channels``, less those it fixes)."""
    cls, fixed = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in fixed}


def create_attention(
    name: str, channels: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None, **options
) -> nn.Module:
    """Build attention block ``name`` for a ``channels``-channel feature map, on ``device`` in ``dtype``
    (default: torch's). Those are the factory arguments torch's layers take and timm passes to an
    ``attn_layer``, so ``functools.partial(create_attention, "lga")`` is one (tests/test_interop.py)."""
    valid = attention_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"attention {name!r} has no option(s) {', '.join(unknown)}; valid options: {', '.join(valid) or '(none)'}"
        )
    cls, fixed = _lookup(name)
    block = cls(channels, **fixed, **options)
    return block if device is None and dtype is None else block.to(device=device, dtype=dtype)

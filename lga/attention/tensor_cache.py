"""A per-process cache of small constant tensors (index maps), safe under tracing.

``functools.lru_cache`` would keep whatever the first call returns. Under ``torch.export``
(and so ``torch.onnx.export(dynamo=True)``) a tensor made inside the traced forward is a
fake tensor, and a cached one then poisons every later eager call in the process. While
tracing (:func:`torch.compiler.is_compiling`) the cache is bypassed: the tensor is built
in the trace, where it becomes a graph constant.
"""

from __future__ import annotations

from functools import lru_cache, wraps
from typing import Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., torch.Tensor])


def tensor_cache(maxsize: int | None = None) -> Callable[[F], F]:
    """``lru_cache(maxsize)`` for a function of hashable arguments that returns a tensor, bypassed while tracing."""

    def decorator(fn: F) -> F:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def wrapper(*args):
            return fn(*args) if torch.compiler.is_compiling() else cached(*args)

        return wrapper

    return decorator

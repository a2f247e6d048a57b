"""Any importable block as an attention block, without editing lga.

    python run.py -m attention=external attention.target=mypkg.blocks.MyBlock attention.name=myblock \\
        '+attention.options={reduction: 8}' seed=0,1,2

The block must have the registered blocks' shape: built as ``Block(channels, **options)``,
mapping (B, C, H, W) -> (B, C, H, W) at any H x W. :func:`create_external` imports it, builds
it and runs it once on a small dummy input with its slot's channels (a backbone gives the
factory only those; the dummy's 6x5 map stands for any size), so an import that fails, a
constructor of another shape or an output of another shape stops the run when the model is
built, before training, with a message that names the block. The block is returned as built
(no wrapper): its state_dict is the one it has anywhere else.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Mapping

import torch
from torch import nn

# batch, height, width of the check's input: sides even and odd and unequal, so a block that
# swaps H and W, drops a row or mixes the batch gives itself away
CHECK_SHAPE = (2, 6, 5)


def import_block(target: str, label: str) -> Callable[..., nn.Module]:
    """The class (or factory) ``target`` names: ``package.module.Class``; ``label`` names the block in errors."""
    module_name, _, attr = target.rpartition(".")
    if not module_name:
        raise ValueError(f"attention block {label}: {target!r} is not an import path; give package.module.Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # not only ImportError: the module's own code may fail
        raise ValueError(
            f"attention block {label}: cannot import {module_name} ({type(err).__name__}: {err}); "
            "is its package installed, or its directory on PYTHONPATH?"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"attention block {label}: module {module_name} has no {attr!r}") from None


def check_block(block: Any, channels: int, label: str) -> None:
    """Run ``block`` once, in eval mode without gradients, on zeros of shape (2, channels, 6, 5);
    raise ValueError unless it is a module that returns a tensor of that shape."""
    if not isinstance(block, nn.Module):
        raise ValueError(f"attention block {label} returned a {type(block).__name__} object, not a torch.nn.Module")
    x = torch.zeros(CHECK_SHAPE[0], channels, *CHECK_SHAPE[1:])
    was_training = block.training
    block.eval()  # no batch-norm statistics updated by the check
    try:
        with torch.no_grad():
            y = block(x)
    except Exception as err:
        raise ValueError(
            f"attention block {label} fails on a {tuple(x.shape)} input ({type(err).__name__}: {err}); "
            "an attention block must take any (B, C, H, W) map"
        ) from err
    finally:
        block.train(was_training)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"attention block {label} maps a {tuple(x.shape)} input to {got}; "
            "an attention block must return a tensor of its input's shape (B, C, H, W)"
        )


def create_external(
    channels: int, *, target: str, name: str | None = None, options: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build and check ``target(channels, **options)`` for a ``channels``-channel map.

    Args:
        channels: C, channels of the map the block sits on.
        target: import path of the block's class (or of any function with its constructor shape).
        name: the block's name in run names and reports (default: the class name); here only in messages.
        options: the block's keyword options.
    Shape of the block: (B, C, H, W) -> (B, C, H, W).
    """
    options = dict(options or {})
    label = target if name is None else f"{name} ({target})"
    cls = import_block(target, label)
    if not callable(cls):
        raise ValueError(f"attention block {label} is a {type(cls).__name__}, not a class")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a builtin without one: let the call say what is wrong
        signature = None
    if signature is not None:
        try:
            signature.bind(channels, **options)
        except TypeError as err:
            raise ValueError(
                f"attention block {label} cannot be built as {target}(channels, **options) with options "
                f"{options or '{}'}: {err}; its signature is {signature}. An attention block takes the channel "
                "count first and its options as keywords"
            ) from None
    try:
        block = cls(channels, **options)
    except Exception as err:
        raise ValueError(f"attention block {label} failed to build: {type(err).__name__}: {err}") from err
    check_block(block, channels, label)
    return block

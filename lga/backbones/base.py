"""What every backbone provides, and where attention blocks go in it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional, Sequence

import torch
from torch import nn

# channels -> attention block; Hydra builds one from conf/attention (a partial of create_attention)
AttentionFactory = Callable[..., nn.Module]


def check_placement(placement: str | Sequence[int], extra: Sequence[str], backbone: str) -> None:
    valid = ("last", "stages", *extra)
    if isinstance(placement, str) and placement in valid:
        return
    if not isinstance(placement, str) and all(isinstance(i, int) and not isinstance(i, bool) for i in placement):
        return
    raise ValueError(
        f"unknown attention placement {placement!r} for {backbone}; valid: {', '.join(valid)}, "
        "or a list of stage indices such as [2, 3]"
    )


def attention_slots(placement: str | Sequence[int], num_stages: int) -> list[int]:
    """The stage indices a block follows (none for placements inside the blocks, like ``se``)."""
    if placement == "last":
        return [num_stages - 1]
    if placement == "stages":
        return list(range(num_stages))
    if isinstance(placement, str):
        return []
    bad = [i for i in placement if not -num_stages <= i < num_stages]
    if bad:
        raise ValueError(
            f"placement {list(placement)} names stages {bad}, but this backbone has stages 0-{num_stages - 1}"
        )
    return sorted({i % num_stages for i in placement})


class Backbone(nn.Module):
    """A stack of stages; each stage ends at a new stride.

    Contract (as torchvision's detection backbones): ``forward(x)`` returns an ordered
    dict of the last ``num_outputs`` stage maps, keys ``"0", "1", ...`` from fine to
    coarse; ``out_channels`` and ``strides`` list their channels and strides. The
    attention block(s) chosen by ``placement`` sit after stages:

    - ``last``: one block after the last stage (the LGA paper's choice);
    - ``stages``: one block after every stage;
    - a list of stage indices (``[2, 3]``; negative counts from the end): a block after each;
    - what :meth:`extra_placements` adds (inside the blocks).

    Args (shared by every backbone; subclasses take their own and pass these on):
        in_chans: input channels.
        stem_stride: 2 is ImageNet's; 1 keeps 28-32 px inputs from collapsing to 1x1.
        attention: ``attention(channels=C)`` builds a block for a C-channel map, e.g.
            ``functools.partial(lga.attention.create_attention, "lga")``; ``None``: no attention.
        placement: where the blocks go (above).
        num_outputs: how many of the coarsest stage maps ``forward`` returns.

    Subclasses call ``super().__init__(**kwargs)``, build ``self.stem``, ``self.stages``
    (ModuleList), ``self.stage_channels`` and ``self.stage_strides``, then call
    ``self._build_attention()``.
    """

    stem: nn.Module
    stages: nn.ModuleList
    stage_channels: list[int]
    stage_strides: list[int]

    def __init__(
        self,
        *,
        in_chans: int = 3,
        stem_stride: int = 2,
        attention: Optional[AttentionFactory] = None,
        placement: str | Sequence[int] = "last",
        num_outputs: int = 3,
    ) -> None:
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        check_placement(placement, self.extra_placements(), type(self).__name__)
        self.in_chans, self.stem_stride, self.placement, self.num_outputs = (
            in_chans,
            stem_stride,
            placement,
            num_outputs,
        )
        self.attention_factory = attention

    def make_attention(self, channels: int) -> nn.Module:
        """A block from the attention factory for a ``channels``-channel map (identity without one)."""
        return nn.Identity() if self.attention_factory is None else self.attention_factory(channels=channels)

    def _build_attention(self) -> list[int]:
        """Build the blocks ``placement`` asks for, after ``stage_channels``/``stage_strides`` are known;
        returns the stage indices they follow."""
        levels = len(self.stage_channels)
        if not 1 <= self.num_outputs <= levels:
            raise ValueError(
                f"num_outputs must be between 1 and {levels} (the feature levels of {type(self).__name__}), "
                f"got {self.num_outputs}"
            )
        slots = attention_slots(self.placement, levels)
        self.attention = nn.ModuleDict({str(i): self.make_attention(self.stage_channels[i]) for i in slots})
        self.out_channels = self.stage_channels[-self.num_outputs :]
        self.strides = self.stage_strides[-self.num_outputs :]
        return slots

    def extra_placements(self) -> Sequence[str]:
        """Placements a backbone supports beyond ``last`` and ``stages``."""
        return ()

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.stem(x)
        maps = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if str(i) in self.attention:
                x = self.attention[str(i)](x)
            maps.append(x)
        return OrderedDict((str(i), m) for i, m in enumerate(maps[-self.num_outputs :]))

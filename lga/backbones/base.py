"""What every backbone provides, and where attention blocks go in it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..attention import create_attention


class Backbone(nn.Module):
    """A stack of stages; each stage ends at a new stride.

    Contract (as torchvision's detection backbones): ``forward(x)`` returns an ordered
    dict of the last ``num_outputs`` stage maps, keys ``"0", "1", ...`` from fine to
    coarse; ``out_channels`` and ``strides`` list their channels and strides. The
    attention block(s) chosen by ``placement`` sit after stages:

    - ``last``: one block after the last stage (the LGA paper's choice);
    - ``stages``: one block after every stage.

    Subclasses build ``self.stem``, ``self.stages`` (ModuleList), ``self.stage_channels``
    and ``self.stage_strides``, then call ``_build_attention``.
    """

    stem: nn.Module
    stages: nn.ModuleList
    stage_channels: list[int]
    stage_strides: list[int]

    def _build_attention(
        self,
        attention: str,
        attention_options: Mapping[str, Any] | None,
        placement: str,
        num_outputs: int,
    ) -> None:
        if num_outputs < 1 or num_outputs > len(self.stages):
            raise ValueError(f"num_outputs must be between 1 and {len(self.stages)}, got {num_outputs}")
        options = dict(attention_options or {})
        slots = {"last": [len(self.stages) - 1], "stages": list(range(len(self.stages)))}
        slots.update({p: [] for p in self.extra_placements()})  # attention inside the blocks
        if placement not in slots:
            raise ValueError(
                f"unknown attention placement {placement!r} for {type(self).__name__}; valid: {', '.join(slots)}"
            )
        self.attention_name, self.placement = attention, placement
        self.attention = nn.ModuleDict(
            {str(i): create_attention(attention, self.stage_channels[i], **options) for i in slots[placement]}
        )
        self.num_outputs = num_outputs
        self.out_channels = self.stage_channels[-num_outputs:]
        self.strides = self.stage_strides[-num_outputs:]

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

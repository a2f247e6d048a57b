"""Any timm model as a backbone: its ``features_only`` feature maps, with attention slots.

Wightman, "PyTorch Image Models", https://github.com/huggingface/pytorch-image-models.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

import timm
import torch
from timm.models._features import FeatureDictNet, FeatureGetterNet, FeatureHookNet
from torch import nn

from ..utils import reachable
from .base import AttentionFactory, Backbone
from .registry import BACKBONES


def close_model_names(name: str, n: int = 6) -> list[str]:
    """timm model names nearest to ``name`` (for an error message)."""
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    return close or [m for m in names if name.split("_")[0] in m][:n]


class _ThenAttention(nn.Sequential):
    """A timm stage followed by an attention block: later stages and the feature map both see its output."""


@BACKBONES.register("timm")
class TimmBackbone(Backbone):
    """A timm model built with ``features_only=True`` (randomly initialised unless ``pretrained``).

    Its feature levels play the stages of :class:`Backbone`: ``out_channels`` and ``strides``
    come from timm's ``feature_info``, and the attention block(s) go after the levels
    ``placement`` names, inside the network (the next stage computes on the block's output).
    timm keeps its ImageNet strides (the coarsest map is 1/32 of the input): give 28-32 px
    data ``dataset.image_size=64`` or more, or ``model_options: {output_stride: 16}`` where
    the model supports dilation.

    Args:
        model_name: any timm name (``efficientnet_b0``, ``cspresnet50``, ``convnext_atto``, ...).
        pretrained: load timm's weights (needs the network or a local Hugging Face cache).
        out_indices: the feature levels to use (default: all the model has).
        model_options: more keyword arguments for ``timm.create_model`` (``drop_path_rate``, ...); on the
            command line ``'+backbone.model_options={drop_rate: 0.1}'`` or ``+backbone.model_options.drop_rate=0.1``.
        stem_stride: 2, timm's own stem (an option so that presets which set it, like
            ``task=detection``, apply to every backbone); 1 is an error.
        in_chans, attention, placement, num_outputs: see :class:`Backbone`; ``placement``
            indexes the levels used. Models whose maps are reshaped token sequences (ViTs,
            MLP-Mixers) or read by hooks inside their blocks (pit, xception, nasnet, pnasnet) take
            ``placement=last`` only: the block then acts on the final map.
    Shape: (B, in_chans, H, W) -> OrderedDict of (B, C_i, H / s_i, W / s_i).
    """

    def __init__(
        self,
        *,
        model_name: str,
        pretrained: bool = False,
        out_indices: Optional[Sequence[int]] = None,
        model_options: Optional[dict[str, Any]] = {},  # {} not None: backbone.model_options.drop_rate=0.1 can add a key
        stem_stride: int = 2,
        in_chans: int = 3,
        attention: Optional[AttentionFactory] = None,
        placement: str | Sequence[int] = "last",
        num_outputs: int = 3,
    ) -> None:
        if stem_stride != 2:
            raise ValueError(
                f"stem_stride={stem_stride!r}: timm models keep their own stem (stride 2); "
                "enlarge the input instead (dataset.image_size=64)"
            )
        super().__init__(in_chans=in_chans, attention=attention, placement=placement, num_outputs=num_outputs)
        self.model_name = model_name
        self.body = _create_features(model_name, pretrained, in_chans, out_indices, model_options or {})
        info = self.body.feature_info
        self.stage_channels, self.stage_strides = list(info.channels()), list(info.reduction())
        # token models build their maps after the last block, and hook models (pit, xception, nasnet, ...)
        # read theirs inside blocks, not where a stage ends: a block can only follow the whole network
        self.after_network = isinstance(self.body, (FeatureGetterNet, FeatureHookNet))
        slots = self._build_attention()
        if self.after_network and slots and slots != [len(self.stage_channels) - 1]:
            why = (
                "its feature maps are reshaped token sequences"
                if isinstance(self.body, FeatureGetterNet)
                else "timm reads its feature maps with hooks inside its blocks (part of a block's branches), "
                "not where a stage ends"
            )
            raise ValueError(
                f"placement={placement!r} on {model_name}: {why}, so an attention block cannot sit between its "
                "stages; use placement=last (the block then acts on the final map), or a family whose stages end "
                f"at their feature maps ({', '.join(STAGE_FAMILIES)}, ...)"
            )
        if not self.after_network:
            for i in slots:
                _insert_after(self.body, i, self.attention[str(i)])

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = list(self.body(x))
        if self.after_network:
            maps = [self.attention[str(i)](m) if str(i) in self.attention else m for i, m in enumerate(maps)]
        return OrderedDict((str(i), m) for i, m in enumerate(maps[-self.num_outputs :]))


# timm families whose feature levels are stage outputs: a block can follow any level (tests/test_timm.py)
STAGE_FAMILIES = ("resnet", "efficientnet", "convnext", "cspnet", "mobilenetv3", "regnet")


def _weights_help(name: str) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return (
        f'put them in the Hugging Face cache ({HF_HUB_CACHE}: on a machine online, python -c "import timm; '
        f"timm.create_model('{name}', pretrained=True)\" downloads them there, then copy that folder), or name a "
        "file: backbone.model_options.pretrained_cfg_overlay.file=/path/to/weights.safetensors; or set "
        "backbone.pretrained=false (random initialisation)"
    )


def _check_weights_reachable(name: str, options: dict[str, Any]) -> None:
    """With ``pretrained``: the weights are cached, given as a file, or their server answers within
    3 s; else a clear error now, not after huggingface_hub's retries (about a minute offline)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import ENDPOINT
    from timm.models import get_pretrained_cfg

    overlay = options.get("pretrained_cfg_overlay") or {}
    cfg = get_pretrained_cfg(name)
    if cfg is None or overlay.get("file") or overlay.get("state_dict") or cfg.file:
        return
    if cfg.hf_hub_id:
        files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
        if any(isinstance(try_to_load_from_cache(cfg.hf_hub_id, f), str) for f in files):
            return
        url = ENDPOINT
    else:
        url = cfg.url or ""
    server = urlparse(url)
    if server.hostname and not reachable(server.hostname, server.port or (80 if server.scheme == "http" else 443)):
        raise ValueError(
            f"backbone.pretrained=true: timm's weights for {name!r} are not cached here and {url} cannot be "
            f"reached (offline?); {_weights_help(name)}"
        )


def _create_features(
    name: str, pretrained: bool, in_chans: int, out_indices: Optional[Sequence[int]], options: dict[str, Any]
) -> nn.Module:
    if not timm.is_model(name):
        close = close_model_names(name)
        raise ValueError(
            f"unknown timm model {name!r}"
            + (f"; close names: {', '.join(close)}" if close else "")
            + " (python -c 'import timm; print(timm.list_models(\"<pattern>*\"))' lists them)"
        )
    if out_indices is not None:
        options = {**options, "out_indices": tuple(out_indices)}
    if pretrained:
        _check_weights_reachable(name, options)
    try:
        return timm.create_model(name, features_only=True, pretrained=pretrained, in_chans=in_chans, **options)
    except OSError as err:  # a download or a weights file that failed (requests' and huggingface_hub's errors too)
        if not pretrained:
            raise
        raise ValueError(
            f"backbone.pretrained=true: cannot load timm's weights for {name!r} ({type(err).__name__}: {err}); "
            f"{_weights_help(name)}"
        ) from None
    except (RuntimeError, TypeError, AssertionError, ValueError) as err:
        raise ValueError(
            f"timm cannot build {name!r} with features_only=True ({type(err).__name__}: {err}); pick a model with "
            f"feature maps, e.g. {', '.join(close_model_names(name)[:4]) or 'resnet18d, efficientnet_b0'}"
        ) from None


def _insert_after(body: nn.Module, level: int, block: nn.Module) -> None:
    """Replace the module whose output is feature level ``level`` by (module, block)."""
    if isinstance(body, FeatureDictNet):  # FeatureListNet too: modules flattened, keyed with "_"
        keys = [k for k in body.keys() if k in body.return_layers]
        parent, child = body, keys[level]
    else:  # hook- or index-based feature classes (EfficientNetFeatures, ...) keep the model's own names
        path = body.feature_info.module_name(level)
        parent_path, _, child = path.rpartition(".")
        parent = body.get_submodule(parent_path) if parent_path else body
    setattr(parent, child, _ThenAttention(getattr(parent, child), block))

"""lga's blocks in other code bases: timm's ResNet ``attn_layer``, torchvision's MobileNetV3 ``se_layer``.

What fits, and what does not (and why):

- **timm ResNet** (``block_args=dict(attn_layer=...)``): timm builds each block's attention as
  ``attn_layer(channels, device=..., dtype=...)`` (timm.layers.create_attn) and applies it to the
  residual branch before the add. That is lga's constructor shape plus torch's factory arguments,
  which :func:`lga.attention.create_attention` takes: ``partial(create_attention, "lga")`` fits as is.
- **torchvision MobileNetV3** (``block=partial(InvertedResidual, se_layer=...)``): torchvision calls
  ``se_layer(expanded_channels, squeeze_channels)``, the second argument positional. lga's blocks
  take options by keyword only, so a factory needs a two-line adapter. For LGA the adapter drops the
  squeeze width (LGA has none; lga's own MobileNetV3 ``placement=se`` does the same). For SE it
  cannot be exact: torchvision's squeeze width is C/4 rounded to a multiple of 8, which lga's integer
  ``reduction`` cannot express (C = 16, 96, 120 squeeze to 8, 24, 32: reductions 2, 4 and 3.75),
  and torchvision's gate is a hard sigmoid, lga's (timm's) a sigmoid: swapped in, lga's SE is a
  different block from the one it replaces.
- **timm EfficientNet / MobileNetV3** (``se_layer=...``): timm's builder probes ``se_layer(8,
  rd_ratio=1.0)`` and builds ``se_layer(chs, rd_ratio=..., act_layer=..., device=..., dtype=...)``.
  ``rd_ratio`` and ``act_layer`` are options of timm's own SE, not of a general block, and
  ``create_attention`` rejects them by name. It does not fit without an adapter that drops them.
"""

from functools import partial

import pytest
import timm
import torch
from torchvision.models.mobilenetv3 import InvertedResidual, mobilenet_v3_small

from lga.attention import LocalGlobalAttention, create_attention
from lga.attention.se import SqueezeExcite


def _forward_backward(model: torch.nn.Module, x: torch.Tensor) -> None:
    y = model(x)
    y.square().mean().backward()
    assert torch.isfinite(y).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name, cls", [("lga", LocalGlobalAttention), ("se", SqueezeExcite)])
def test_a_block_is_a_timm_resnet_attn_layer(name, cls):
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, block_args=dict(attn_layer=partial(create_attention, name)))
    blocks = [m for m in model.modules() if isinstance(m, cls)]
    assert len(blocks) == 8 and model.layer4[1].se is blocks[-1]  # one per BasicBlock, where timm puts SE
    assert [b.channels if name == "lga" else b.fc1.in_channels for b in blocks[::2]] == [64, 128, 256, 512]
    _forward_backward(model, torch.randn(2, 3, 64, 64))


def test_timm_passes_its_dtype_to_the_block():
    model = timm.create_model(
        "resnet18", block_args=dict(attn_layer=partial(create_attention, "lga")), dtype=torch.float64
    )
    assert {p.dtype for p in model.layer1[0].se.parameters()} == {torch.float64}


def test_a_block_is_a_torchvision_mobilenetv3_se_layer_through_an_adapter():
    torch.manual_seed(0)
    as_is = partial(InvertedResidual, se_layer=partial(create_attention, "lga"))
    with pytest.raises(TypeError, match="positional argument"):  # (expanded_channels, squeeze_channels)
        mobilenet_v3_small(block=as_is)
    adapter = lambda channels, _squeeze: create_attention("lga", channels)  # noqa: E731
    model = mobilenet_v3_small(block=partial(InvertedResidual, se_layer=adapter), num_classes=10)
    assert len([m for m in model.modules() if isinstance(m, LocalGlobalAttention)]) == 9  # every block with SE
    _forward_backward(model, torch.randn(2, 3, 64, 64))


def test_lgas_se_cannot_take_torchvisions_squeeze_widths():
    """torchvision squeezes C to C/4 rounded to a multiple of 8; lga's SE takes an integer reduction."""
    widths = {}

    def se_layer(channels, squeeze):
        widths[channels] = squeeze
        return create_attention("se", channels, reduction=4)

    model = mobilenet_v3_small(block=partial(InvertedResidual, se_layer=se_layer))
    ours = {b.fc1.in_channels: b.fc1.out_channels for b in model.modules() if isinstance(b, SqueezeExcite)}
    assert ours.keys() == widths.keys() and ours != widths
    assert any(c % squeeze for c, squeeze in widths.items())  # no integer reduction gives those
    _forward_backward(model, torch.randn(2, 3, 64, 64))


def test_timm_efficientnet_se_layer_does_not_fit():
    """timm's EfficientNet builder passes SE-only options (rd_ratio, act_layer); lga names the first it rejects."""
    with pytest.raises(ValueError, match="attention 'se' has no option.*rd_ratio"):
        timm.create_model("efficientnet_b0", se_layer=partial(create_attention, "se"))

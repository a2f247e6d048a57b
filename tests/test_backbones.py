from functools import partial

import pytest
import torch

from lga.attention import create_attention, list_attentions
from lga.backbones import BACKBONES

ATTENTIONS = [a for a in list_attentions() if a != "lga_reference"]  # same function as lga, slower
CASES = [("mobilenetv3", {"width_mult": 0.5}, p) for p in ("last", "stages", "se")] + [
    ("resnet18", {"width": 8}, p) for p in ("last", "stages")
]


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("backbone, options, placement", CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_every_attention_backbone_placement_trains(attention, backbone, options, placement):
    torch.manual_seed(0)
    model = BACKBONES.get(backbone)(
        in_chans=1,
        stem_stride=1,
        attention=partial(create_attention, attention),
        placement=placement,
        **options,
    )
    x = torch.randn(2, 1, 32, 32)
    maps = model(x)
    assert list(maps) == ["0", "1", "2"]
    assert [m.shape[1] for m in maps.values()] == model.out_channels
    sum(m.square().mean() for m in maps.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    n_blocks = sum(
        1 for m in model.modules() if type(m).__module__.startswith("lga.attention.") and attention != "none"
    )
    if attention != "none":
        assert n_blocks >= {"last": 1, "stages": 4, "se": 2}[placement]


@pytest.mark.parametrize(
    "backbone, options", [("mobilenetv3", {}), ("mobilenetv3", {"variant": "large"}), ("resnet18", {"width": 16})]
)
def test_feature_maps_by_stride(backbone, options):
    model = BACKBONES.get(backbone)(in_chans=3, stem_stride=2, **options)
    maps = model(torch.randn(1, 3, 64, 64))
    assert model.strides == [8, 16, 32]
    assert [tuple(m.shape[-2:]) for m in maps.values()] == [(8, 8), (4, 4), (2, 2)]


def test_errors_list_valid_choices():
    with pytest.raises(ValueError, match="unknown attention placement 'after'.*valid: last, stages, se"):
        BACKBONES.get("mobilenetv3")(placement="after")
    with pytest.raises(ValueError, match="unknown backbone 'vgg'; valid names: mobilenetv3, resnet18"):
        BACKBONES.get("vgg")()
    with pytest.raises(ValueError, match="unknown MobileNetV3 variant 'tiny'; valid: small, large"):
        BACKBONES.get("mobilenetv3")(variant="tiny")

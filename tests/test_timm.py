"""backbone=timm: any timm model's feature maps, with the attention blocks at the chosen levels."""

from functools import partial

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lga.attention import create_attention
from lga.backbones import BACKBONES
from lga.train import build_model

# one model per family the issue names: an EfficientNet, a CSP net, a ConvNeXt
FAMILIES = ["efficientnet_b0", "cspresnet50", "convnext_atto"]


class _Zero(nn.Module):
    """An 'attention block' that zeroes its input: shows where the blocks sit."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


@pytest.mark.parametrize("model_name", FAMILIES)
def test_blocks_sit_inside_the_network_at_the_chosen_levels(model_name):
    backbone = BACKBONES.get("timm")(model_name=model_name, in_chans=1, attention=_Zero, placement=[-2])
    maps = backbone(torch.randn(2, 1, 64, 64))
    assert [m.shape[1] for m in maps.values()] == backbone.out_channels
    assert [64 // m.shape[-1] for m in maps.values()] == backbone.strides == [8, 16, 32]
    first, zeroed, _ = maps.values()
    assert first.abs().sum() > 0 and zeroed.abs().sum() == 0  # the block acted on level -2 and fed its output on
    assert [b.channels for b in backbone.attention.values()] == [backbone.out_channels[1]]


@pytest.mark.parametrize("attention", ["none", "lga"])
@pytest.mark.parametrize("model_name", FAMILIES)
def test_classification_forward_backward(compose_cfg, model_name, attention):
    cfg = compose_cfg("backbone=timm", f"backbone.model_name={model_name}", f"attention={attention}")
    model = build_model(cfg, instantiate(cfg.dataset))
    torch.manual_seed(0)
    logits = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([1, 2])).backward()
    blocks = [m for m in model.modules() if type(m).__name__ == "LocalGlobalAttention"]
    assert len(blocks) == (attention == "lga")
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    if blocks:
        assert blocks[0].a_local.grad is not None  # the block is in the computation, not beside it


@pytest.mark.parametrize("attention", ["none", "lga"])
@pytest.mark.parametrize("model_name", FAMILIES)
def test_detection_one_batch(compose_cfg, tmp_path, model_name, attention):
    cfg = compose_cfg(
        "task=detection", "backbone=timm", f"backbone.model_name={model_name}", f"attention={attention}",
        "dataset.num_train=2", "dataset.num_val=2", "dataset.num_test=2", "dataset.image_size=64",
        "dataset.batch_size=2", "model.fpn_channels=32",
    )  # fmt: skip
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule)
    neck = model.detector.backbone
    assert neck.strides == [8, 16, 32] and neck.body.out_channels == neck.body.stage_channels[-3:]
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and 0 <= float(metrics["val/map50"]) <= 1


def test_bad_timm_names_and_options_say_what_is_valid():
    with pytest.raises(ValueError, match="unknown timm model 'efficentnet_b0'; close names: efficientnet_b0"):
        BACKBONES.get("timm")(model_name="efficentnet_b0")
    with pytest.raises(ValueError, match="token sequences.*use placement=last"):
        BACKBONES.get("timm")(model_name="vit_tiny_patch16_224", placement="stages")
    with pytest.raises(ValueError, match="placement \\[9\\] names stages \\[9\\].*stages 0-4"):
        BACKBONES.get("timm")(model_name="resnet18d", attention=partial(create_attention, "se"), placement=[9])
    with pytest.raises(ValueError, match="stem_stride=1.*timm models keep their own stem"):
        BACKBONES.get("timm")(model_name="resnet18d", stem_stride=1)


@pytest.mark.slow
def test_a_timm_sweep_runs_end_to_end(run_lga, tmp_path):
    """Through run.py and Hydra: the timm model is the backbone axis of the summary."""
    result = run_lga(
        "-m", "backbone=timm", "backbone.model_name=convnext_atto,efficientnet_b0", "attention=none,lga",
        "trainer=debug", "logger=none", "dataset.image_size=64", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = (tmp_path / "sweep" / "summary.csv").read_text()
    for name in ("timm/convnext_atto", "timm/efficientnet_b0"):
        assert summary.count(f",{name},") == 2
    assert summary.count(",ok,") == 4


def test_cost_table_prices_timm_backbones(capsys):
    from lga.tools.cost_table import main

    rows = main(
        ["--backbones", "timm:convnext_atto", "--attentions", "none,se", "--repeats", "0", "dataset.image_size=64"]
    )
    by_attention = {r["attention"]: r for r in rows}
    se_params = sum(p.numel() for p in create_attention("se", 320).parameters())  # after convnext_atto's last level
    assert (by_attention["se"]["params_M"] - by_attention["none"]["params_M"]) * 1e6 == pytest.approx(se_params)
    assert "| timm:convnext_atto | se |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--backbones", "resnet81", "--repeats", "0"])
    assert "unknown backbone(s) resnet81; valid:" in capsys.readouterr().err

"""ONNX export (lga.tools.onnx_export): every block and classifier, onnxruntime against PyTorch."""

import pytest
import torch
import torch.nn.functional as F
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from lga.attention import attention_options, create_attention, list_attentions
from lga.attention.resize import gather_nearest
from lga.tools.onnx_export import export_onnx, main, ort_run, ort_session
from tests.conftest import ROOT

# 48 channels: the exporter folds smaller constant subgraphs (a 24-channel position table's resize) into
# constants, which would hide how onnxruntime computes them
CHANNELS = 48


def _block(name: str, channels: int = CHANNELS, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    if "num_heads" in attention_options(name):
        options.setdefault("num_heads", 4)
    return create_attention(name, channels, **options).eval()


def _check(model: torch.nn.Module, shape: tuple[int, ...], batches=(1, 3), tol: float = 1e-5) -> None:
    """Export at batch 2, then onnxruntime must match PyTorch at other batches (the batch axis is dynamic)."""
    session = ort_session(export_onnx(model, torch.randn(2, *shape)))
    for batch in batches:
        x = torch.randn(batch, *shape)
        with torch.no_grad():
            expected = model(x)
        assert type(expected) is torch.Tensor  # the export's fake tensors left nothing behind (tensor_cache)
        torch.testing.assert_close(ort_run(session, x), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list_attentions())
def test_every_block_exports_and_onnxruntime_matches_pytorch(name):
    _check(_block(name), (CHANNELS, 8, 8))


# maps around LGA's code-path thresholds: 2x2 and 5x5 build q/k/v (under 32 pixels) and run the kernels wider
# than the map as dense matrices; 8x8 takes the Gram route, dense 11x11 only; 14x14 is the position table's own
# size (no resize), 2x2, 4x4 and 8x8 are sizes onnxruntime's Resize gets wrong (lga.attention.resize);
# 6 heads split q/k/v by thirds, 4 heads by narrowing
@pytest.mark.parametrize("product", ["lga", "lga_released"])
@pytest.mark.parametrize("size, heads", [(2, 6), (4, 4), (5, 6), (8, 4), (14, 6)])
def test_both_lga_products_match_onnxruntime_to_1e_5_on_each_code_path(product, size, heads):
    _check(_block(product, num_heads=heads), (CHANNELS, size, size))


def test_the_export_resize_is_pytorchs_nearest_and_onnxruntimes_is_not():
    """lga.attention.resize gathers PyTorch's rows; onnxruntime's Resize takes other rows at some ratios."""
    for n in range(1, 41):
        x = torch.randn(1, 2, n, n + 3)
        for out in range(1, 41):
            expected = F.interpolate(x, size=(out, out + 1), mode="nearest")
            assert torch.equal(gather_nearest(x, (out, out + 1)), expected), (n, out)

    class Resize(torch.nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(2, 4), mode="nearest")

    x = torch.arange(14.0).view(1, 1, 14, 1).expand(2, CHANNELS * 14, 14, 14).contiguous()
    rows = ort_run(ort_session(export_onnx(Resize(), x)), x)[0, 0, :, 0]
    assert rows.tolist() == [0.0, 6.0]  # PyTorch: rows 0 and 7; if this fails, onnxruntime changed


def test_an_lga_graph_holds_its_export_size_and_refuses_others():
    """LGA picks its code path from the map size in Python: torch.export cannot make H and W dynamic
    (the size tests become guards it cannot prove), and onnxruntime refuses a size the graph was not
    exported for rather than run the wrong path. So the exporter fixes H and W."""
    block = _block("lga")
    Dim = torch.export.Dim
    dynamic = {0: Dim("b"), 2: Dim("h", min=6, max=64), 3: Dim("w", min=6, max=64)}
    with pytest.raises(torch._dynamo.exc.UserError, match="Constraints violated"):
        torch.export.export(block, (torch.randn(2, CHANNELS, 8, 8),), dynamic_shapes=(dynamic,), strict=False)
    session = ort_session(export_onnx(block, torch.randn(2, CHANNELS, 8, 8)))
    with pytest.raises(InvalidArgument, match="Got invalid dimensions"):
        ort_run(session, torch.randn(2, CHANNELS, 6, 6))


def test_the_command_exports_the_paper_scale_classifier(tmp_path, capsys):
    worst = main([str(tmp_path / "model.onnx"), "experiment=paper_scale"])
    assert worst < 1e-4 and (tmp_path / "model.onnx").stat().st_size > 100_000
    assert "input (batch, 1, 32, 32), batch dynamic" in capsys.readouterr().out


BACKBONES = sorted(p.stem for p in (ROOT / "conf/backbone").glob("*.yaml"))


@pytest.mark.slow  # about 25 minutes on 2 busy cores: 105 classifiers
@pytest.mark.parametrize("attention", list_attentions())
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_x_block_classifier_exports(compose_cfg, backbone, attention):
    from hydra.utils import instantiate

    from lga.build import build_model

    cfg = compose_cfg(f"backbone={backbone}", f"attention={attention}")
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule).eval()
    _check(model, (datamodule.in_chans, datamodule.image_size, datamodule.image_size), batches=(1,), tol=1e-4)


def test_cost_table_times_pytorch_and_onnxruntime_alternately(capsys):
    """The timing code runs (one round: no number here means anything); the two runtimes alternate."""
    from lga.tools.cost_table import interleaved_ms, main

    calls = []
    times = interleaved_ms([lambda: calls.append("torch"), lambda: calls.append("ort")], warmup=1, repeats=2)
    assert calls == ["torch", "ort"] * 3 and [len(t) for t in times] == [2, 2]
    (row,) = main(["--backbones", "mobilenetv3_paper", "--attentions", "lga", "--repeats", "1", "--batch", "4"])
    assert all(row[key] > 0 for key in ("latency_b1_ms", "ort_b1_ms", "ort_ratio_b1", "ort_b4_ms", "ort_ratio_b4"))
    assert "| latency b1 (ms) | ORT b1 (ms) | ORT / torch b1 | latency b4 (ms) |" in capsys.readouterr().out

import json

import pytest
import torch

from lga.attention import (
    LocalGlobalAttention,
    LocalGlobalAttentionReference,
    attention_options,
    create_attention,
    list_attentions,
)
from lga.attention.dense_depthwise import DenseDepthwise, dense_is_cheaper
from lga.attention.lga import qkv_source_groups

ALL = list_attentions()


@pytest.mark.parametrize("name", ALL)
def test_every_block_keeps_shape_and_trains(name):
    torch.manual_seed(0)
    block = create_attention(name, 24, **({"num_heads": 4} if "num_heads" in attention_options(name) else {}))
    x = torch.randn(2, 24, 9, 7, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for p in block.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown attention 'lgaa'; valid names: .*cbam.*lga.*se"):
        create_attention("lgaa", 16)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError, match="has no option.*num_head\\b.*valid options: num_heads"):
        create_attention("lga", 12, num_head=4)
    # presets fix their own options: `la` is LGA with branches="local"
    with pytest.raises(ValueError, match="attention 'la' has no option"):
        create_attention("la", 12, branches="both")
    assert create_attention("la", 12).branches == "local"
    assert create_attention("ga", 12).branches == "global"


# -- LGA: fast implementation against the reference --------------------------------

SHAPES = [(2, 12, 14, 14), (2, 12, 7, 9), (3, 12, 3, 3), (2, 12, 1, 1), (1, 12, 16, 5)]
OPTIONS = [
    {},
    {"branches": "local"},
    {"branches": "global"},
    {"fusion": "softmax"},
    {"num_scales": 0, "pos_embed": False},
    {"num_scales": 1, "pos_size": 7},
    {"local_kernel_sizes": (3,), "global_kernel_size": 5, "num_heads": 2},
    {"embed_dim": 8, "num_heads": 2},
    {"num_heads": 4},  # heads not a multiple of 3: q/k/v read overlapping runs of groups
    {"num_heads": 6, "global_kernel_size": 7},  # the paper's heads
]


def _pair(channels, **options):
    torch.manual_seed(0)
    ref = LocalGlobalAttentionReference(channels, **options)
    for p in ref.parameters():  # move off the init values so every path matters
        torch.nn.init.normal_(p, std=0.1)
    fast = LocalGlobalAttention(channels, **options)
    fast.load_state_dict(ref.state_dict())  # one state_dict layout for both
    return ref, fast


def _outputs_and_grads(module, x, g):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(g)
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("product", ["paper", "released"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_fast_matches_reference(shape, options, product):
    ref, fast = _pair(shape[1], **{"num_heads": 3, "product": product, **options})
    x = torch.randn(shape)
    g = torch.randn(shape)
    y_ref, gx_ref, gp_ref = _outputs_and_grads(ref, x, g)
    y_fast, gx_fast, gp_fast = _outputs_and_grads(fast, x, g)
    torch.testing.assert_close(y_fast, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_fast, gx_ref, atol=1e-5, rtol=1e-5)
    assert gp_fast.keys() == gp_ref.keys()
    for name in gp_ref:
        scale = gp_ref[name].abs().max().clamp(min=1.0)
        torch.testing.assert_close(gp_fast[name] / scale, gp_ref[name] / scale, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("gram_min_pixels", [1, 10**6], ids=["gram", "direct"])
def test_both_attention_routes_match_the_reference(gram_min_pixels, monkeypatch):
    """The fast block picks the Gram route or direct q/k/v by map size; force each on one shape."""
    monkeypatch.setattr(LocalGlobalAttention, "gram_min_pixels", gram_min_pixels)
    ref, fast = _pair(12, num_heads=3)
    x, g = torch.randn(2, 12, 5, 6), torch.randn(2, 12, 5, 6)
    for got, want in zip(_outputs_and_grads(fast, x, g)[:2], _outputs_and_grads(ref, x, g)[:2]):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 5, 6, 8])
def test_qkv_source_groups_follow_the_grouped_conv(heads):
    """Perturbing input group g of the published qkv conv changes exactly the q/k/v heads said to read g."""
    d = 2
    conv = torch.nn.Conv2d(heads * d, 3 * heads * d, 1, groups=heads)
    x = torch.randn(1, heads * d, 1, 1)
    for g in range(heads):
        bumped = x.clone()
        bumped[:, g * d : (g + 1) * d] += 1.0
        changed = (conv(bumped) - conv(x)).abs().view(3, heads, d).sum(-1) > 0  # (role, head)
        expected = torch.tensor([[src == g for src in role] for role in qkv_source_groups(heads)])
        assert torch.equal(changed, expected)


@pytest.mark.parametrize("size, kernel", [((7, 7), 11), ((1, 1), 3), ((3, 5), 7), ((2, 9), 5)])
def test_dense_depthwise_matches_conv2d(size, kernel):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 4, kernel, padding=kernel // 2, groups=4).double()
    x = torch.randn(3, 4, *size, dtype=torch.double, requires_grad=True)
    n = size[0] * size[1]

    def dense(x, weight, bias):
        columns = x.permute(1, 0, 2, 3).reshape(4, 3, n)
        return DenseDepthwise.apply(columns, weight, bias, *size)

    want = conv(x).permute(0, 2, 3, 1).reshape(3, n, 4)
    torch.testing.assert_close(dense(x, conv.weight, conv.bias), want)
    assert torch.autograd.gradcheck(dense, (x, conv.weight, conv.bias))


@pytest.mark.parametrize("size, dense_kernels", [((7, 7), [11]), ((2, 2), [3, 5, 7, 11]), ((14, 14), [])])
def test_fast_block_runs_dense_depthwise_only_on_maps_smaller_than_the_kernel(size, dense_kernels, monkeypatch):
    """The forward routes each depthwise conv with more taps than the map has pixels through the dense form."""
    calls = []
    original = DenseDepthwise.apply
    monkeypatch.setattr(DenseDepthwise, "apply", lambda *args: calls.append(args[1].shape[-1]) or original(*args))
    LocalGlobalAttention(12, num_heads=3)(torch.randn(2, 12, *size))
    assert sorted(calls) == dense_kernels
    assert all(dense_is_cheaper(*size, k) for k in dense_kernels)


def test_reference_gradcheck():
    torch.manual_seed(0)
    ref = LocalGlobalAttentionReference(
        4, num_heads=2, local_kernel_sizes=(3, 5), global_kernel_size=3, num_scales=2, pos_size=3
    ).double()
    x = torch.randn(1, 4, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(ref, (x,), eps=1e-6, atol=1e-5)


def test_reference_follows_the_published_formula():
    """out = out_conv(a_l * (mean_k L_k + x) + a_g * (G + x)): with zero attention outputs only x remains."""
    ref = LocalGlobalAttentionReference(6, num_heads=2, num_scales=0, pos_embed=False)
    for qkv in [*ref.local_qkv, ref.global_qkv]:
        torch.nn.init.zeros_(qkv.weight)
        torch.nn.init.zeros_(qkv.bias)  # v = 0, so every attention output is 0
    torch.nn.init.eye_(ref.out_proj.weight[:, :, 0, 0])
    torch.nn.init.zeros_(ref.out_proj.bias)
    with torch.no_grad():
        ref.a_local.fill_(0.3)
        ref.a_global.fill_(-0.2)  # unconstrained, as published
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(ref(x), (0.3 - 0.2) * x)


def test_softmax_fusion_is_a_scalar_fusion_at_the_softmaxed_alphas():
    """fusion=softmax computes what fusion=scalar computes with alphas softmax(a_local, a_global)."""
    softmax_block, scalar_block = _pair(6, num_heads=2, fusion="softmax")[0], _pair(6, num_heads=2)[0]
    with torch.no_grad():
        softmax_block.a_local.fill_(2.0)
        softmax_block.a_global.fill_(-1.0)
        weights = torch.softmax(torch.tensor([2.0, -1.0]), 0)
        scalar_block.a_local.fill_(weights[0])
        scalar_block.a_global.fill_(weights[1])
    assert torch.allclose(torch.stack(list(softmax_block.fusion_weights().values())), weights)
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(softmax_block(x), scalar_block(x))
    assert not torch.allclose(softmax_block(x), _pair(6, num_heads=2)[0](x), atol=1e-3)  # raw alphas differ


# -- LGA as released: the product its code computes ----------------------------------


def released_by_description(block: LocalGlobalAttentionReference, x: torch.Tensor) -> torch.Tensor:
    """PAPER.md's account of the released module, written out from the block's parameters:
    each branch gives every channel of a head the sum of that head's value channels."""
    F = torch.nn.functional
    size = x.shape[-2:]
    maps = [x] + [F.interpolate(view(x), size=size, mode="nearest") + x for view in block.multi_scale]
    weights = torch.softmax(block.scale_weight(x), 1)
    y = sum(weights[:, i : i + 1] * m for i, m in enumerate(maps)) + F.interpolate(
        block.pos_embed, size=size, mode="nearest"
    )
    heads, d = block.num_heads, block.head_dim

    def branch(dw, qkv):
        v = qkv(dw(y))[:, 2 * block.channels :]  # the value third of the qkv conv's outputs
        head_sums = v.reshape(x.shape[0], heads, d, *size).sum(2, keepdim=True)
        return head_sums.expand(-1, -1, d, -1, -1).reshape(x.shape) + x

    local = sum(branch(dw, qkv) for dw, qkv in zip(block.local_dw, block.local_qkv)) / len(block.local_dw)
    return block.out_proj(block.a_local * local + block.a_global * branch(block.global_dw, block.global_qkv))


@pytest.mark.parametrize("heads", [2, 3, 4, 6])
@pytest.mark.parametrize("size", [(7, 9), (1, 1), (6, 6)])
def test_released_product_follows_the_description(heads, size):
    ref, fast = _pair(12, num_heads=heads, product="released")
    x, g = torch.randn(2, 12, *size, dtype=torch.double), torch.randn(2, 12, *size, dtype=torch.double)
    want = _outputs_and_grads(ref.double(), x, g)  # oracle: same parameters, computed as described
    oracle = LocalGlobalAttentionReference(12, num_heads=heads).double()
    oracle.load_state_dict(ref.state_dict())
    x_oracle = x.clone().requires_grad_()
    y_oracle = released_by_description(oracle, x_oracle)
    y_oracle.backward(g)
    for got in (want, _outputs_and_grads(fast.double(), x, g)):
        torch.testing.assert_close(got[0], y_oracle.detach())
        torch.testing.assert_close(got[1], x_oracle.grad)
        for name, p in oracle.named_parameters():
            torch.testing.assert_close(
                got[2].get(name, torch.zeros_like(p)), p.grad if p.grad is not None else torch.zeros_like(p), msg=name
            )


@pytest.mark.parametrize("module", [LocalGlobalAttentionReference, LocalGlobalAttention])
def test_query_and_key_learn_only_under_the_papers_product(module):
    grads = {}
    for product in ("paper", "released"):
        torch.manual_seed(0)
        block = module(12, num_heads=3, product=product).double()
        block(torch.randn(2, 12, 6, 6, dtype=torch.double)).square().mean().backward()
        for name, qkv in [("global", block.global_qkv), *((f"local{i}", q) for i, q in enumerate(block.local_qkv))]:
            q_and_k, v = qkv.weight.grad[:24], qkv.weight.grad[24:]  # rows: q | k | v, 12 each
            grads[product, name] = (q_and_k.abs().max().item(), v.abs().max().item())
    for (product, name), (q_and_k, v) in grads.items():
        assert v > 1e-6, (product, name)
        if product == "released":  # exactly zero in the fast block; softmax backward's rounding in the reference
            assert q_and_k == 0 if module is LocalGlobalAttention else q_and_k < 1e-12 * v, (product, name, q_and_k)
        else:
            assert q_and_k > 1e-3 * v, (product, name, q_and_k)


def test_random_values_under_non_uniform_attention_separate_the_products():
    """The V = 0 test above cannot tell the products apart; random V with a peaked softmax must."""
    paper, _ = _pair(12, num_heads=3)
    released = LocalGlobalAttentionReference(12, num_heads=3, product="released")
    released.load_state_dict(paper.state_dict())
    y = torch.randn(2, 12, 6, 6)
    q, k, _ = paper.global_qkv(paper.global_dw(y)).chunk(3, 1)
    attn = torch.softmax(q.reshape(2, 3, 4, 36) @ k.reshape(2, 3, 4, 36).transpose(-1, -2) * paper.logit_scale, -1)
    assert attn.max() > 2 * attn.min()  # far from uniform, so A V differs from the summed V
    branches = [block._attend(y, block.global_dw, block.global_qkv) for block in (paper, released)]
    assert (branches[0] - branches[1]).abs().mean() > 0.5 * branches[0].abs().mean()
    x = torch.randn(2, 12, 6, 6)
    assert not torch.allclose(paper(x), released(x), atol=1e-4)  # and the difference reaches the output


@pytest.mark.parametrize(
    "name, channels, heads, params",
    [
        # the released YOLOv8 configs (MobileNetV3 P5: 24 channels, 6 heads; ResNet18: 128, 8)
        ("lga_released", 24, 6, 14_358), ("lga_released", 128, 8, 148_230),
        # the results spreadsheet's ablations: each drops the other branch and its alpha
        ("la_released", 24, 6, 11_069), ("ga_released", 24, 6, 11_213),
        ("la_released", 128, 8, 126_085), ("ga_released", 128, 8, 117_637),
        ("lga", 24, 6, 14_358), ("la", 128, 8, 126_085), ("ga", 128, 8, 117_637),
    ],
)  # fmt: skip
def test_parameter_counts_as_released(name, channels, heads, params):
    block = create_attention(name, channels, num_heads=heads)
    assert sum(p.numel() for p in block.parameters()) == params
    block(torch.randn(2, channels, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in block.parameters())  # none unused: DDP needs no find_unused_parameters


def test_released_preset_is_the_released_module():
    torch.manual_seed(0)
    block = create_attention("lga_released", 96)
    assert block.product == "released" and block.branches == "both"
    assert 0.9 < block.pos_embed.std().item() < 1.1  # a standard normal table, not the paper's small one
    assert create_attention("lga", 96).pos_embed.std().item() < 0.05
    assert (create_attention("la_released", 96).branches, create_attention("ga_released", 96).branches) == (
        "local",
        "global",
    )
    with pytest.raises(ValueError, match="attention 'lga_released' has no option.*product"):
        create_attention("lga_released", 96, product="paper")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_heads": 5}, "num_heads=5 does not divide"),
        ({"local_kernel_sizes": (3, 4)}, "local_kernel_sizes entries must be a positive odd integer, got 4"),
        ({"global_kernel_size": 10}, "global_kernel_size must be a positive odd integer, got 10"),
        ({"global_kernel_size": 0}, "global_kernel_size must be a positive odd integer, got 0"),
        ({"num_scales": -1}, "num_scales must be a non-negative integer, got -1"),
        ({"pos_size": 0}, "pos_size must be a positive integer, got 0"),
        ({"num_heads": 0}, "num_heads must be a positive integer, got 0"),
        ({"branches": "all"}, "branches must be one of local, global, both, got 'all'"),
        ({"fusion": "mean"}, "fusion must be one of scalar, softmax, got 'mean'"),
        ({"product": "av"}, "product must be one of paper, released, got 'av'"),
        ({"pos_init_std": -1.0}, "pos_init_std must be >= 0, got -1.0"),
        ({"embed_dim": -4}, "embed_dim must be a positive integer, got -4"),
    ],
)
def test_lga_construction_errors_name_the_value(options, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        LocalGlobalAttention(12, **options)


# -- LGA under the PyTorch features users combine it with -----------------------------


@pytest.fixture
def lga_pair():
    return _pair(12, num_heads=3)


def test_lga_under_bf16_autocast(lga_pair):
    ref, fast = lga_pair
    x = torch.randn(2, 12, 9, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fast(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    torch.testing.assert_close(y.float(), ref(x), atol=0.1, rtol=0.05)  # bf16 keeps ~3 significant digits


def test_lga_with_channels_last_input(lga_pair):
    ref, fast = lga_pair
    x = torch.randn(2, 12, 9, 7)
    torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), ref(x), atol=1e-5, rtol=1e-5)


def test_lga_exports(lga_pair):
    ref, fast = lga_pair
    x = torch.randn(2, 12, 9, 7)
    for module in (fast, ref):
        exported = torch.export.export(module, (x,))
        torch.testing.assert_close(exported.module()(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_lga_compiles(lga_pair):
    ref, fast = lga_pair
    x = torch.randn(2, 12, 9, 7, requires_grad=True)
    y = torch.compile(fast)(x)
    y.sum().backward()
    torch.testing.assert_close(y, ref(x), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(x.grad).all()


def test_bench_prints_rows_and_saves_json(tmp_path, capsys):
    from lga.tools import bench

    out = tmp_path / "bench.json"
    blocks = ("lga", "lga_released", "lga_reference", "se")
    rows = bench.main(
        [
            "--blocks",
            ",".join(blocks),
            "--shapes",
            "2,12,5,5;1,12,3,4",
            "--repeats",
            "2",
            "--warmup",
            "0",
            "--heads",
            "3",
            "--json",
            str(out),
        ]
    )
    assert [(r["shape"], r["block"]) for r in rows] == [(s, b) for s in ("2x12x5x5", "1x12x3x4") for b in blocks]
    for row in rows:
        assert row["fwd_bwd_ms"] > 0 and row["params_k"] > 0
        paired = {k for k in row if k.startswith("speedup")}
        assert paired == {
            "lga": {"speedup_vs_reference"},
            "lga_released": {"speedup_vs_reference", "speedup_vs_lga"},
        }.get(row["block"], set())
        assert all(row[k] > 0 for k in paired)
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(rows))
    assert "| 2x12x5x5 | lga_released |" in capsys.readouterr().out


def test_bench_pairs_each_fast_block_with_the_reference_of_its_options():
    from lga.tools.bench import paired_columns

    names = ["lga", "lga_released", "la_released", "lga_reference"]
    assert paired_columns("la_released", names) == {
        "speedup_vs_reference": ("lga_reference", {"product": "released", "pos_init_std": 1.0, "branches": "local"}),
        "speedup_vs_lga": ("lga", {"branches": "local"}),
    }
    assert paired_columns("lga", names) == {"speedup_vs_reference": ("lga_reference", {})}
    assert paired_columns("lga_reference", names) == paired_columns("se", names) == {}


def test_bench_rejects_unknown_blocks_and_bad_shapes(capsys):
    from lga.tools import bench

    with pytest.raises(SystemExit):
        bench.main(["--blocks", "lgaa"])
    assert "unknown block(s) lgaa; valid: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "2,12,5"])
    assert "--shapes must be B,C,H,W groups" in capsys.readouterr().err

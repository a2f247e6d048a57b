"""Benchmark every registered attention block: time, memory, FLOPs, parameters.

    python -m lga.tools.bench                                  # CPU, 2 threads, the issue's shapes
    python -m lga.tools.bench --device cuda --shapes 64,96,14,14
    python -m lga.tools.bench --blocks lga,lga_released,lga_reference --json bench.json

Times are medians over ``--repeats`` after ``--warmup`` calls. Memory: on CUDA the peak
allocated during forward+backward above the inputs; on CPU the bytes autograd saves for
the backward pass (the activation memory a training step holds), since CPU has no
allocator peak counter. ``speedup_vs_reference`` (each fast LGA-family block, when
``lga_reference`` is benchmarked too) is the median ratio of forward+backward times over
alternating runs of the reference with the same options (product included) and the fast
block; ``speedup_vs_lga`` (released-product blocks, when ``lga`` is benchmarked too) the
same against ``lga``, the paper's product. Prints a Markdown table; ``--json`` also saves
the rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..attention import (
    LocalGlobalAttention,
    attention_options,
    create_attention,
    get_attention_class,
    list_attentions,
    preset_options,
)
from ..models.cost import count_flops, count_params
from ..utils import markdown_table

DEFAULT_SHAPES = "64,96,7,7;32,96,14,14;16,96,28,28"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def memory_mb(block: torch.nn.Module, x: torch.Tensor) -> float:
    """Peak CUDA memory of forward+backward, or on CPU the bytes saved for backward."""
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        block(x).sum().backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()  # count shared storage once
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = block(x)
    y.sum().backward()
    return sum(saved.values()) / 2**20


@dataclass(frozen=True)
class Settings:
    """How every block is timed: heads for blocks that take them, device, warm-up and repeats."""

    heads: int = 6
    device: torch.device = torch.device("cpu")
    warmup: int = 3
    repeats: int = 15
    channels_last: bool = False


def make_steps(name: str, shape: tuple[int, ...], settings: Settings, **options):
    """(block, x, forward, forward_backward) for one block on a seeded random input."""
    torch.manual_seed(0)
    if "num_heads" in attention_options(name):
        options["num_heads"] = settings.heads
    block = create_attention(name, shape[1], **options).to(settings.device)
    x = torch.randn(shape, device=settings.device)
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            block(x)

    def forward_backward() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        block(x).sum().backward()

    return block, x, forward, forward_backward


def bench_block(name: str, shape: tuple[int, ...], settings: Settings) -> dict:
    block, x, forward, forward_backward = make_steps(name, shape, settings)
    timing = (settings.device, settings.warmup, settings.repeats)
    return {
        "block": name,
        "shape": "x".join(map(str, shape)),
        "fwd_ms": median_ms(forward, *timing),
        "fwd_bwd_ms": median_ms(forward_backward, *timing),
        "memory_mb": memory_mb(block, x),
        "gflops": count_flops(block, shape) / 1e9,
        "params_k": count_params(block) / 1e3,
    }


def paired_speedup(slow: tuple[str, dict], fast: tuple[str, dict], shape: tuple[int, ...], settings: Settings) -> float:
    """Median over alternating runs of slow/fast forward+backward time; each is ``(name, options)``.

    Alternating the two cancels the drift (frequency, neighbours) that separate
    medians pick up on a shared machine.
    """
    steps = [make_steps(name, shape, settings, **options)[3] for name, options in (slow, fast)]
    ratios = []
    for i in range(settings.warmup + settings.repeats):
        slow_ms, fast_ms = (median_ms(step, settings.device, 0, 1) for step in steps)
        if i >= settings.warmup:
            ratios.append(slow_ms / fast_ms)
    return statistics.median(ratios)


def paired_columns(name: str, names: list[str]) -> dict[str, tuple[str, dict]]:
    """For a fast LGA-family block: column -> the block it is timed against, paired."""
    if get_attention_class(name) is not LocalGlobalAttention:
        return {}
    options = preset_options(name)
    against = {"speedup_vs_reference": ("lga_reference", options)} if "lga_reference" in names else {}
    if options.get("product") == "released" and "lga" in names:
        against["speedup_vs_lga"] = ("lga", {k: v for k, v in options.items() if k not in ("product", "pos_init_std")})
    return against


def to_markdown(rows: list[dict]) -> str:
    cols = [
        "shape",
        "block",
        "fwd_ms",
        "fwd_bwd_ms",
        "memory_mb",
        "gflops",
        "params_k",
        "speedup_vs_reference",
        "speedup_vs_lga",
    ]
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else v  # noqa: E731
    return markdown_table(cols, ([fmt(r.get(c)) for c in cols] for r in rows))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="B,C,H,W;B,C,H,W;...")
    parser.add_argument("--blocks", default="all", help=f"comma-separated, or all ({', '.join(list_attentions())})")
    parser.add_argument("--heads", type=int, default=6, help="heads for blocks that take num_heads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--channels-last-input", action="store_true", help="feed channels_last inputs to every block")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    names = list_attentions() if args.blocks == "all" else args.blocks.split(",")
    unknown = sorted(set(names) - set(list_attentions()))
    if unknown:
        parser.error(f"unknown block(s) {', '.join(unknown)}; valid: {', '.join(list_attentions())}")
    try:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
        assert all(len(s) == 4 for s in shapes)
    except (ValueError, AssertionError):
        parser.error(f"--shapes must be B,C,H,W groups separated by ';', got {args.shapes!r}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    torch.set_num_threads(args.threads)

    settings = Settings(args.heads, device, args.warmup, args.repeats, args.channels_last_input)
    rows = []
    for shape in shapes:
        for name in names:
            row = bench_block(name, shape, settings)
            for column, slow in paired_columns(name, names).items():
                row[column] = paired_speedup(slow, (name, {}), shape, settings)
            rows.append(row)
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {args.threads} threads"
    )
    print(f"device: {device_name}; torch {torch.__version__}; heads {args.heads}; medians of {args.repeats}")
    print(to_markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name, "torch": torch.__version__, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()

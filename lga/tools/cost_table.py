"""Cost of every backbone x attention: parameters, GFLOPs, and forward latency in PyTorch and onnxruntime.

    python -m lga.tools.cost_table                                   # MNIST-sized classifiers, CPU
    python -m lga.tools.cost_table --backbones mobilenetv3_paper --attentions none,se,cbam,mhsa,lga
    python -m lga.tools.cost_table dataset.image_size=64 dataset.resize_mode=resize   # any config override
    python -m lga.tools.cost_table --backbones timm:efficientnet_b0,timm:convnext_atto dataset.image_size=64
    python -m lga.tools.cost_table --no-onnx                         # PyTorch latency only (no export)

Each model is built from the same composed Hydra config ``run.py`` would use
(``conf/backbone/<preset>.yaml`` x ``conf/attention/<name>.yaml`` plus overrides),
so the table describes exactly what a sweep trains (in channels_last, as ``runtime.channels_last``
trains it). The paper's parameter counts (MobileNetV3 YOLOv8-cls) stand beside the MobileNetV3
rows where they exist.

Latency is the eval-mode forward on CPU at batch 1 and at ``--batch``. Each model is also
exported to ONNX (:mod:`lga.tools.onnx_export`) and run in onnxruntime on as many threads; the
two are timed in one process, alternating run by run, so drift on a shared machine hits both
alike: the table gives each one's median and the median of the per-round ratio ORT / PyTorch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ..attention import list_attentions
from ..build import build_model
from ..runtime import to_channels_last
from ..schemas import register_configs
from ..utils import REPO_ROOT, markdown_table
from .onnx_export import export_onnx, ort_session

# the paper's classification table: MobileNetV3 backbone, params (M)
PAPER_PARAMS_M = {"none": 0.667, "mhsa": 0.669, "se": 0.667, "cbam": 0.668, "lga": 0.681}
CONF_DIR = REPO_ROOT / "conf"


def backbone_overrides(backbone: str) -> list[str]:
    """A preset (``resnet18``) or a timm model (``timm:efficientnet_b0``) as Hydra overrides."""
    if backbone.startswith("timm:"):
        return ["backbone=timm", f"backbone.model_name={backbone.split(':', 1)[1]}"]
    return [f"backbone={backbone}"]


def interleaved_ms(fns: list[Callable[[], object]], warmup: int, repeats: int) -> list[list[float]]:
    """Milliseconds of each of ``fns`` in each of ``repeats`` rounds (after ``warmup`` rounds); within a
    round they run one after the other."""
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(warmup + repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                out.append((time.perf_counter() - start) * 1e3)
    return times


def latencies(model: torch.nn.Module, session, x: torch.Tensor, repeats: int) -> dict:
    """Median PyTorch (and, with an onnxruntime ``session``, ORT) forward ms at ``x``, paired."""
    batch = x.shape[0]
    fns = [lambda: model(x)]
    if session is not None:
        feed = {session.get_inputs()[0].name: x.numpy()}
        fns.append(lambda: session.run(None, feed))
    with torch.no_grad():
        times = interleaved_ms(fns, warmup=2, repeats=repeats)
    row = {f"latency_b{batch}_ms": statistics.median(times[0])}
    if session is not None:
        row[f"ort_b{batch}_ms"] = statistics.median(times[1])
        row[f"ort_ratio_b{batch}"] = statistics.median(o / t for t, o in zip(*times))
    return row


def measure(
    backbone: str, attention: str, overrides: list[str], *, batch: int, repeats: int, onnx: bool, threads: int
) -> dict:
    cfg = compose(config_name="train", overrides=[*backbone_overrides(backbone), f"attention={attention}", *overrides])
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule).eval()
    if cfg.runtime.channels_last:
        to_channels_last(model)
    shape = (datamodule.in_chans, datamodule.image_size, datamodule.image_size)
    row = {
        "backbone": backbone,
        "attention": attention,
        "params_M": model.cost["params"] / 1e6,
        "gflops": model.cost["flops"] / 1e9,
        "input": "x".join(map(str, shape)),
    }
    if repeats:  # repeats=0: no timing (on a busy machine it would mislead)
        session = ort_session(export_onnx(model, torch.randn(2, *shape)), threads) if onnx else None
        for b in (1, batch):
            row.update(latencies(model, session, torch.randn(b, *shape), repeats))
    return row


def _number(key: str) -> Callable[[dict], str | None]:
    return lambda r: None if r.get(key) is None else f"{r[key]:.2f}"


def to_markdown(rows: list[dict], batch: int) -> str:
    """The rows as a Markdown table; latency columns only where timed, the paper's column only where it has a number."""
    base = {r["backbone"]: r["params_M"] for r in rows if r["attention"] == "none"}
    columns = {
        "backbone": lambda r: r["backbone"],
        "attention": lambda r: r["attention"],
        "params (M)": lambda r: f"{r['params_M']:.4f}",
        "+params vs none (M)": lambda r: (
            f"{r['params_M'] - base[r['backbone']]:+.4f}" if r["backbone"] in base else None
        ),
        "GFLOPs": lambda r: f"{r['gflops']:.4f}",
        **{
            name: _number(key)
            for b in (1, batch)
            for name, key in (
                (f"latency b{b} (ms)", f"latency_b{b}_ms"),
                (f"ORT b{b} (ms)", f"ort_b{b}_ms"),
                (f"ORT / torch b{b}", f"ort_ratio_b{b}"),
            )
        },
        "paper params (M)": lambda r: (
            PAPER_PARAMS_M.get(r["attention"]) if r["backbone"].startswith("mobilenetv3") else None
        ),
    }
    cells = {name: [cell(r) for r in rows] for name, cell in columns.items()}
    shown = [
        name
        for name, values in cells.items()
        if name in ("backbone", "attention") or any(v is not None for v in values)
    ]
    return markdown_table(shown, ([cells[name][i] for name in shown] for i in range(len(rows))))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    backbones = sorted(p.stem for p in (CONF_DIR / "backbone").glob("*.yaml"))
    parser.add_argument(
        "--backbones",
        default=",".join(b for b in backbones if b != "timm"),
        help=f"presets from conf/backbone ({', '.join(backbones)}), or timm:<model name> (timm:efficientnet_b0)",
    )
    parser.add_argument("--attentions", default=",".join(a for a in list_attentions() if a != "lga_reference"))
    parser.add_argument("--batch", type=int, default=32, help="second latency column's batch size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed forwards per latency; 0: parameters and GFLOPs only"
    )
    parser.add_argument(
        "--onnx", action=argparse.BooleanOptionalAction, default=True, help="also time each model in onnxruntime"
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset.image_size=64")
    args = parser.parse_args(argv)
    for kind, chosen, valid in (
        ("backbone", args.backbones, backbones),
        ("attention", args.attentions, list_attentions()),
    ):
        unknown = sorted(set(chosen.split(",")) - set(valid) - {b for b in chosen.split(",") if b.startswith("timm:")})
        if unknown:
            parser.error(f"unknown {kind}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    torch.set_num_threads(args.threads)
    register_configs()
    rows = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for backbone in args.backbones.split(","):
            for attention in args.attentions.split(","):
                rows.append(
                    measure(
                        backbone, attention, args.overrides, batch=args.batch, repeats=args.repeats,
                        onnx=args.onnx, threads=args.threads,
                    )
                )  # fmt: skip
    timing = f"eval-mode forward, medians of {args.repeats}" if args.repeats else "no latency measured (--repeats 0)"
    if args.repeats and args.onnx:
        timing += ", PyTorch and onnxruntime alternating"
    print(f"CPU, {args.threads} threads, input {rows[0]['input']}, {timing}")
    print(to_markdown(rows, args.batch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()

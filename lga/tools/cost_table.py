"""Cost of every backbone x attention: parameters, GFLOPs and measured forward latency.

    python -m lga.tools.cost_table                                   # MNIST-sized classifiers, CPU
    python -m lga.tools.cost_table --backbones mobilenetv3_paper --attentions none,se,cbam,mhsa,lga
    python -m lga.tools.cost_table dataset.image_size=64 dataset.resize_mode=resize   # any config override
    python -m lga.tools.cost_table --backbones timm:efficientnet_b0,timm:convnext_atto dataset.image_size=64

Each model is built from the same composed Hydra config ``run.py`` would use
(``conf/backbone/<preset>.yaml`` x ``conf/attention/<name>.yaml`` plus overrides),
so the table describes exactly what a sweep trains. The paper's parameter counts
(MobileNetV3 YOLOv8-cls) stand beside the MobileNetV3 rows where they exist.
"""

from __future__ import annotations

import argparse
import json

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ..attention import list_attentions
from ..config import register_configs
from ..train import build_model
from ..utils import REPO_ROOT, markdown_table
from .bench import median_ms

# the paper's classification table: MobileNetV3 backbone, params (M)
PAPER_PARAMS_M = {"none": 0.667, "mhsa": 0.669, "se": 0.667, "cbam": 0.668, "lga": 0.681}
CONF_DIR = REPO_ROOT / "conf"


def backbone_overrides(backbone: str) -> list[str]:
    """A preset (``resnet18``) or a timm model (``timm:efficientnet_b0``) as Hydra overrides."""
    if backbone.startswith("timm:"):
        return ["backbone=timm", f"backbone.model_name={backbone.split(':', 1)[1]}"]
    return [f"backbone={backbone}"]


def measure(backbone: str, attention: str, overrides: list[str], *, batch: int, repeats: int) -> dict:
    cfg = compose(config_name="train", overrides=[*backbone_overrides(backbone), f"attention={attention}", *overrides])
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule).eval()
    x1 = torch.randn(1, datamodule.in_chans, datamodule.image_size, datamodule.image_size)
    xb = x1.expand(batch, -1, -1, -1).contiguous()
    cpu = torch.device("cpu")
    lat1 = latb = None  # repeats=0: no timing (on a busy machine it would mislead)
    if repeats:
        with torch.no_grad():
            lat1 = median_ms(lambda: model(x1), cpu, warmup=2, repeats=repeats)
            latb = median_ms(lambda: model(xb), cpu, warmup=1, repeats=repeats)
    return {
        "backbone": backbone,
        "attention": attention,
        "params_M": model.cost["params"] / 1e6,
        "gflops": model.cost["flops"] / 1e9,
        "latency_b1_ms": lat1,
        f"latency_b{batch}_ms": latb,
        "input": f"{datamodule.in_chans}x{datamodule.image_size}x{datamodule.image_size}",
    }


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
        "latency b1 (ms)": lambda r: None if r["latency_b1_ms"] is None else f"{r['latency_b1_ms']:.2f}",
        f"latency b{batch} (ms)": lambda r: (
            None if r[f"latency_b{batch}_ms"] is None else f"{r[f'latency_b{batch}_ms']:.2f}"
        ),
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
                rows.append(measure(backbone, attention, args.overrides, batch=args.batch, repeats=args.repeats))
    timing = f"eval-mode forward, medians of {args.repeats}" if args.repeats else "no latency measured (--repeats 0)"
    print(f"CPU, {args.threads} threads, input {rows[0]['input']}, {timing}")
    print(to_markdown(rows, args.batch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()

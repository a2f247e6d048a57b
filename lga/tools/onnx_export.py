"""Export a model to ONNX (torch.onnx's dynamo exporter) and run it in onnxruntime.

    python -m lga.tools.onnx_export lga.onnx                                   # the default config's classifier
    python -m lga.tools.onnx_export released.onnx experiment=released attention=lga_released dataset=fashion

The batch axis is dynamic; the spatial size is fixed at the example input's. LGA picks its
code path in Python from the map size (lga/attention/lga.py: the Gram route from 32 pixels, a
dense depthwise form on CPU for maps smaller than a kernel, no resize where a map or the position
table already has the size), so a graph traced at one size holds that size's path: torch.export
refuses dynamic H and W for LGA (its shape guards fail), and onnxruntime refuses an input of
another size than the graph's. Export once per input size. LGA's nearest-neighbour resizes
export as gathers of PyTorch's own rows (:mod:`lga.attention.resize`: onnxruntime's Resize takes
other rows at some ratios). The command checks onnxruntime's output against PyTorch's at batch 1 and 3.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ..utils import REPO_ROOT

CONF_DIR = REPO_ROOT / "conf"


def export_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    """``model`` (in eval mode) as a serialized ONNX model with input ``x`` of ``example``'s shape, batch dynamic.

    The example's batch must be at least 2 (torch.export specializes a batch of 1)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and fallback notes
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["x"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    return program.model_proto.SerializeToString()


def ort_session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU onnxruntime session on ``threads`` intra-op threads, which do not spin between runs, so they
    take no CPU from the PyTorch runs interleaved with them."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def ort_run(session: ort.InferenceSession, x: torch.Tensor) -> torch.Tensor:
    """The session's first output for input ``x``."""
    feed = {session.get_inputs()[0].name: x.detach().contiguous().numpy()}
    return torch.from_numpy(np.asarray(session.run(None, feed)[0]))


def max_difference(model: nn.Module, session: ort.InferenceSession, x: torch.Tensor) -> float:
    """Largest absolute difference between PyTorch's and onnxruntime's outputs for ``x``."""
    with torch.no_grad():
        expected = model(x)
    return (ort_run(session, x) - expected).abs().max().item()


def main(argv: list[str] | None = None) -> float:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from ..build import build_model
    from ..schemas import register_configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the .onnx file to write")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as run.py takes them (attention=se ...)")
    args = parser.parse_args(argv)
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=args.overrides)
    datamodule = instantiate(cfg.dataset)
    model = build_model(cfg, datamodule).eval()
    shape = (datamodule.in_chans, datamodule.image_size, datamodule.image_size)
    onnx_model = export_onnx(model, torch.randn(2, *shape))
    args.output.write_bytes(onnx_model)
    session = ort_session(onnx_model)
    worst = max(max_difference(model, session, torch.randn(batch, *shape)) for batch in (1, 3))
    print(f"{args.output}: input (batch, {', '.join(map(str, shape))}), batch dynamic; "
          f"onnxruntime vs PyTorch: max |difference| {worst:.2e}")  # fmt: skip
    return worst


if __name__ == "__main__":
    main()

"""``torch.compile`` against eager on the study's classifier: is compiling worth it for a run?

    python -m lga.tools.compile_bench                                  # paper-scale LGA, Fashion-MNIST shapes
    python -m lga.tools.compile_bench attention=se --mode max-autotune --rounds 50
    python -m lga.tools.compile_bench --threads 2 --json compile.json

The model is the one ``run.py`` trains for the overrides (default ``experiment=paper_scale
dataset=fashion``: 1x32x32 inputs, the config's batch sizes and optimizer), in channels_last, on
random batches (the data pipeline is not measured). An eager copy and a compiled copy
(``Module.compile``, as a ``runtime.compile`` option would do it) with the same weights are timed in
one process, alternating step by step, so drift on a shared machine hits both alike:

- training (forward, cross-entropy, backward, optimizer step) and evaluation (no-grad forward)
  images/s, each from the median step;
- compile time: the first compiled call less the first eager call (the first call of each mode
  compiles it; training and evaluation are separate graphs);
- break-even run length: the epochs after which compiling has paid for itself, from the steps an
  epoch has (``--train-images`` / batch size, and ``--eval-images`` / eval batch size).

Run it on an idle machine: on a loaded one the numbers say more about the neighbours.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ..build import build_model
from ..runtime import to_channels_last
from ..schemas import register_configs
from ..utils import REPO_ROOT, markdown_table

DEFAULT_OVERRIDES = ["experiment=paper_scale", "dataset=fashion"]


def timed_s(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, eval_x):
    """(training step, evaluation step) closures of one model."""

    def train() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def evaluate() -> None:
        model.eval()
        with torch.no_grad():
            model(eval_x)

    return train, evaluate


def paired(eager: Callable[[], None], compiled: Callable[[], None], warmup: int, rounds: int) -> dict[str, float]:
    """First-call seconds and median steady-step seconds of each, the two alternating call by call."""
    first = {"eager_first_s": timed_s(eager), "compiled_first_s": timed_s(compiled)}
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for round_ in range(warmup + rounds):
        for name, fn in (("eager", eager), ("compiled", compiled)):
            elapsed = timed_s(fn)
            if round_ >= warmup:
                times[name].append(elapsed)
    return {**first, **{f"{name}_s": statistics.median(t) for name, t in times.items()}}


def break_even_epochs(compile_s: float, saved_per_epoch_s: float) -> float:
    """Epochs until the compile time is repaid; infinite when compiling saves nothing per epoch."""
    return compile_s / saved_per_epoch_s if saved_per_epoch_s > 0 else math.inf


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="default", help="torch.compile mode: default, reduce-overhead, max-autotune")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds after the first calls")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (one eager and one compiled step each)")
    parser.add_argument("--train-images", type=int, default=54_000, help="an epoch's training images "
                        "(Fashion-MNIST: 60,000 less the 10%% validation split)")  # fmt: skip
    parser.add_argument("--eval-images", type=int, default=16_000, help="an epoch's evaluated images "
                        "(validation 6,000 + test 10,000, as an upper bound)")  # fmt: skip
    parser.add_argument("--json", help="also write the result to this JSON file")
    parser.add_argument("overrides", nargs="*", help=f"Hydra overrides (default: {' '.join(DEFAULT_OVERRIDES)})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*DEFAULT_OVERRIDES, *args.overrides])
    datamodule = instantiate(cfg.dataset)
    eager_model = to_channels_last(build_model(cfg, datamodule))
    compiled_model = copy.deepcopy(eager_model)
    compiled_model.compile(mode=args.mode)

    shape = (datamodule.in_chans, datamodule.image_size, datamodule.image_size)
    batch, eval_batch = cfg.dataset.batch_size, cfg.dataset.eval_batch_size
    x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, datamodule.num_classes, (batch,))
    eval_x = torch.randn(eval_batch, *shape).contiguous(memory_format=torch.channels_last)
    optimizer = instantiate(cfg.optimizer)
    eager_train, eager_eval = steps(eager_model, optimizer(eager_model.parameters()), x, y, eval_x)
    compiled_train, compiled_eval = steps(compiled_model, optimizer(compiled_model.parameters()), x, y, eval_x)

    train = paired(eager_train, compiled_train, args.warmup, args.rounds)
    evaluate = paired(eager_eval, compiled_eval, args.warmup, args.rounds)
    compile_s = sum(r["compiled_first_s"] - r["eager_first_s"] for r in (train, evaluate))
    train_steps, eval_steps = math.ceil(args.train_images / batch), math.ceil(args.eval_images / eval_batch)
    saved_per_epoch_s = (train["eager_s"] - train["compiled_s"]) * train_steps + (
        evaluate["eager_s"] - evaluate["compiled_s"]
    ) * eval_steps
    result = {
        "model": f"{cfg.backbone._target_.rsplit('.', 1)[-1]} + {cfg.attention.name}",
        "input": "x".join(map(str, shape)),
        "batch": batch,
        "eval_batch": eval_batch,
        "mode": args.mode,
        "threads": args.threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "train": train,
        "eval": evaluate,
        "compile_s": compile_s,
        "saved_per_epoch_s": saved_per_epoch_s,
        "break_even_epochs": break_even_epochs(compile_s, saved_per_epoch_s),
    }
    print(
        f"{result['model']}, input {result['input']}, channels_last, CPU {result['cpu']}, {args.threads} threads, "
        f"torch {torch.__version__}, compile mode {args.mode}; medians of {args.rounds} alternating rounds"
    )
    rows = [
        [
            name,
            f"{batch / train[f'{name}_s']:.1f}",
            f"{eval_batch / evaluate[f'{name}_s']:.1f}",
            f"{train[f'{name}_first_s']:.2f}",
            f"{evaluate[f'{name}_first_s']:.2f}",
        ]
        for name in ("eager", "compiled")
    ]
    print(markdown_table(["", "train img/s", "eval img/s", "first train step (s)", "first eval step (s)"], rows))
    print(
        f"compile time {compile_s:.1f} s; saves {saved_per_epoch_s:.2f} s per epoch "
        f"({train_steps} training + {eval_steps} evaluation steps); "
        f"break-even after {result['break_even_epochs']:.2f} epochs"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()

"""The Lightning callbacks lga runs use: reseeding, stop signals, divergence, clocks, logs; and the
registry of those ``conf/callbacks`` can add."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only

from .registry import Registry
from .runtime import StopSignals

log = logging.getLogger(__name__)

# what conf/callbacks can add to a run (those resuming and the record rely on are always on: lga.train)
CALLBACKS = Registry("callbacks")
CALLBACKS.register("lr_monitor", LearningRateMonitor)


class Diverged(RuntimeError):
    """The training loss or a validation metric became NaN or infinite."""


class EpochSeed(Callback):
    """Reseed at every epoch start from (seed, optimizer steps so far): the global RNGs
    (dropout), and the training sampler's order and dataset's draws (those that have ``reseed``).

    Randomness then does not depend on what ran before, so a run resumed from a
    checkpoint ends exactly where an uninterrupted one does. ``global_step`` is what
    checkpoints restore exactly; Lightning's epoch counters can be one behind after a
    restore from an end-of-epoch checkpoint.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_seed = self.seed * 100_003 + trainer.global_step + 1
        seed_everything(epoch_seed, workers=True, verbose=False)
        for part in ("sampler", "dataset"):  # a seeded order (SeededShuffleSampler), seeded views (RandomViews)
            drawn = getattr(trainer.train_dataloader, part, None)
            if hasattr(drawn, "reseed"):
                drawn.reseed(epoch_seed)


class StopOnSignal(Callback):
    """Ends training or evaluation at the first batch boundary after SIGTERM or SIGINT."""

    def __init__(self, signals: StopSignals) -> None:
        self.signals = signals

    def on_train_batch_end(self, *args: Any) -> None:
        self.signals.check()

    def on_validation_batch_end(self, *args: Any) -> None:
        self.signals.check()

    def on_test_batch_end(self, *args: Any) -> None:
        self.signals.check()


class DivergenceGuard(Callback):
    """Stops a run whose training loss, or any validation metric, is not finite.

    Checks the loss the step already returned (Lightning's ``detect_anomaly`` would
    re-run every op under autograd's anomaly mode, several times slower).
    """

    def __init__(self) -> None:
        self.last_finite: tuple[int, float] | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss.detach())
        step = trainer.global_step
        if math.isfinite(value):
            self.last_finite = (step, value)
            return
        last = (
            "no finite loss before it"
            if self.last_finite is None
            else (f"last finite loss {self.last_finite[1]:.4g} at step {self.last_finite[0]}")
        )
        raise Diverged(
            f"training diverged: loss {value} at step {step} ({last}); "
            "lower optimizer.lr or clip gradients (trainer.gradient_clip_val)"
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        bad = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") and not math.isfinite(float(v))
        }
        if bad:
            raise Diverged(f"training diverged: validation metrics {bad} at step {trainer.global_step}")


class RunClock(Callback):
    """Training time and throughput, kept across resumptions.

    ``train_time_s``: wall time inside ``fit`` summed over every session of the run
    (the part of an interrupted session after its last checkpoint is redone, and counted
    where it is redone). Throughput of this session: training images/s (steps and
    data-loader waits), evaluation images/s, mean step time and mean data-loader wait.
    """

    def __init__(self) -> None:
        self.previous_s = 0.0  # restored from the checkpoint
        self._fit_start: float | None = None
        self._fit_s = 0.0
        self._mark = 0.0
        self.train = {"images": 0, "steps": 0, "step_s": 0.0, "wait_s": 0.0}
        self.eval = {"images": 0, "seconds": 0.0}

    @property
    def train_time_s(self) -> float:
        running = time.perf_counter() - self._fit_start if self._fit_start is not None else 0.0
        return self.previous_s + self._fit_s + running

    def state_dict(self) -> dict[str, float]:
        return {"train_time_s": self.train_time_s}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.previous_s = float(state.get("train_time_s", 0.0))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_s += time.perf_counter() - self._fit_start
        self._fit_start = None

    def on_train_epoch_start(self, *args: Any) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        self.train["wait_s"] += now - self._mark  # the loader's next() ran since the last batch ended
        self._mark = now

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        self.train["step_s"] += now - self._mark
        self.train["steps"] += 1
        self.train["images"] += len(batch[0])
        self._mark = now

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, value in self.summary().items():
            if value is not None:
                pl_module.log(f"perf/{name}", value)

    def _eval_start(self, *args: Any) -> None:
        self._eval_mark = time.perf_counter()

    def _eval_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any) -> None:
        now = time.perf_counter()
        self.eval["seconds"] += now - self._eval_mark
        self.eval["images"] += len(batch[0])
        self._eval_mark = now

    on_validation_batch_start = on_test_batch_start = _eval_start
    on_validation_batch_end = on_test_batch_end = _eval_end

    def summary(self) -> dict[str, float | None]:
        train_s = self.train["step_s"] + self.train["wait_s"]
        steps = self.train["steps"]
        return {
            "train_images_per_s": round(self.train["images"] / train_s, 1) if train_s else None,
            "eval_images_per_s": round(self.eval["images"] / self.eval["seconds"], 1) if self.eval["seconds"] else None,
            "step_ms": round(1e3 * self.train["step_s"] / steps, 2) if steps else None,
            "data_wait_ms": round(1e3 * self.train["wait_s"] / steps, 2) if steps else None,
        }


class EpochHistory(Callback):
    """One row per epoch for the run record (``history``): the epoch's training and validation
    losses and metrics, the learning rate at its end, and its training time. Raw floats; kept in
    checkpoints, so a resumed run's history is whole."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | int | None]] = []
        self._start = 0.0

    def on_train_epoch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float | int | None] = {"epoch": trainer.current_epoch + 1}
        for key, value in sorted(trainer.callback_metrics.items()):
            if not (torch.is_tensor(value) and value.numel() == 1) or not key.startswith(("train/", "val/")):
                continue
            duplicate = key == "train/loss" and "train/loss_epoch" in trainer.callback_metrics
            if duplicate or key.endswith(("_step", "_best")):
                continue
            row[key.removesuffix("_epoch")] = float(value)
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        row["epoch_time_s"] = time.perf_counter() - self._start
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]  # an epoch redone after a resume

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", []))


@CALLBACKS.register("epoch_line")
class EpochLine(Callback):
    """One readable log line per epoch (in ``train.log`` and on the console): the epoch's
    metrics, its time and training throughput. With output redirected (SLURM logs, CI)
    the progress bar is off, and this is what a reader sees."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._images = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self._images += len(batch[0])

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds, images = time.perf_counter() - self._start, self._images
        metrics = trainer.callback_metrics
        shown = []
        for key in sorted(metrics):
            value = metrics[key]
            if key.startswith("lga/") or not (torch.is_tensor(value) and value.numel() == 1):
                continue
            if key.endswith(("_step", "_best")) or not key.endswith(("loss", "loss_epoch", "top1", "map50")):
                continue
            name = key.removesuffix("_epoch")
            if name != key or f"{key}_epoch" not in metrics:  # train/loss and train/loss_epoch: one value
                shown.append(f"{name} {float(value):.4g}")
        log.info(
            "epoch %d/%d | %s | %.1f s, %.0f train images/s",
            trainer.current_epoch + 1, trainer.max_epochs, " | ".join(shown),
            seconds, images / seconds if seconds else 0.0,
        )  # fmt: skip


@CALLBACKS.register("lga_weights")
class LGAWeights(Callback):
    """What every LGA block learned, per validation epoch: its fusion weights (``a_local``,
    ``a_global``, after the softmax with ``fusion=softmax``) and its per-pixel scale weights
    over the validation images (the mean weight of each scale, and the mean entropy of the
    weights in nats: ``log(S+1)`` when uniform, 0 when one scale takes everything).

    Logged as ``lga/<block>/...``; :attr:`history` keeps one dict per epoch for ``result.json``.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self._scales: dict[str, list[torch.Tensor]] = {}
        self._hooks: list[Any] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from .attention import LocalGlobalAttentionBase

        for handle in self._hooks:
            handle.remove()
        self.blocks = {n: m for n, m in pl_module.named_modules() if isinstance(m, LocalGlobalAttentionBase)}
        self._hooks = [
            block.register_forward_pre_hook(lambda mod, args, name=name: self._record(trainer, name, mod, args[0]))
            for name, block in self.blocks.items()
            if block.scale_weight is not None
        ]

    def _record(self, trainer: L.Trainer, name: str, block: Any, x: torch.Tensor) -> None:
        if trainer.validating and not trainer.sanity_checking:
            with torch.no_grad():
                weights = block.scale_weights(x)  # (B, S+1, H, W)
                entropy = -(weights * weights.clamp_min(1e-12).log()).sum(1).mean()
                self._scales.setdefault(name, []).append(torch.cat([weights.mean((0, 2, 3)), entropy.view(1)]))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.blocks:
            return
        epoch: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for name, block in self.blocks.items():
            prefix = f"lga/{name.replace('.', '/')}"
            values = {f"a_{branch}": alpha.detach() for branch, alpha in block.fusion_weights().items()}
            if self._scales.get(name):
                *means, entropy = torch.stack(self._scales.pop(name)).mean(0)
                values.update({f"scale_w{i}": w for i, w in enumerate(means)}, scale_entropy=entropy)
            for key, value in values.items():
                # sync_dist: under DDP each process saw different batches (the scale weights differ)
                pl_module.log(f"{prefix}/{key}", value, sync_dist=True)
            epoch[name] = {key: round(float(value), 5) for key, value in values.items()}
        self.history.append(epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


class RunIdentity(Callback):
    """Writes the run's identity (its resolved training config) into every checkpoint, so a
    resume can refuse a checkpoint that another configuration wrote."""

    KEY = "lga_run_identity"

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = self.identity

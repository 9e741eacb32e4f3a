"""The training loop: epochs of seeded batches, validation after each epoch, early stopping on
the validation loss, and a resumable state saved every few minutes, at each epoch's end and on
Ctrl-C/SIGTERM. The best epoch's weights are written with the model card at the end.

The run computes on ``RunSettings.device``; the splits are placed there by ``device.Batches``.
A step's loss and accuracy are read back (which waits for the device) only after the next step
has been queued, so a GPU always has a step to work on while the host does its bookkeeping.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..hardware import resolve_device
from ..losses import ClassBalancedFocalLoss
from ..methods.introspect.filters import conv1_autocorrelation
from ..methods.layers import first_conv_name
from ..models.registry import get_spec
from ..models.tables import count_parameters
from ..models.weights import as_stored, save_checkpoint
from .card import bare_loop_images_per_s, model_card
from .config import RunSettings, TrainConfig
from .device import Batches, place_split, precision_for
from .evaluation import evaluate_tensors, load_planted_split, load_split
from .shortcut import patch_flip_rate, shortcut_record
from .state import ResumeFile, fresh_state, resume_key, running_totals
from .steps import (
    MIN_CROP_SCALE,
    augment_batch,
    batch_generator,
    batch_inputs,
    epoch_order,
    init_model,
    learning_rate,
    make_optimizer,
    optimizer_step,
    square_side,
    train_mode,
)


class _Stop(Exception):
    """Raised by the SIGTERM handler so a kill is handled like Ctrl-C."""


def _raise_stop(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Stop()


def train(
    name: str,
    cfg: TrainConfig,
    settings: RunSettings | None = None,
    *,
    resume: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a registry entry; write the best epoch's weights and the model card; return the card.

    Args:
        name: registry name.
        cfg: the hyper-parameters (``config_for(name, ...)``).
        settings: where and how to run (default: RunSettings()).
        resume: continue the run from its saved state instead of starting afresh.
        command: the command line recorded in the card.

    Returns:
        The model card (also written beside the weights as JSON).

    Raises:
        KeyboardInterrupt: on Ctrl-C or SIGTERM, after saving the resumable state.
        CheckpointError: resume without a state saved under the same TrainConfig and out.
        DeviceError: a device that is unknown or that this machine lacks.
        DataError: the dataset is missing (or the entry is an ImageNet model).
        FloatingPointError: the training loss became NaN or infinite.
    """
    run = _Run(name, cfg, settings or RunSettings())
    if resume:
        run.state = run.resume_file.load(run.model, run.optimizer, run.scaler)
        print(f"resuming {name} at epoch {run.state['epoch'] + 1}, batch {run.state['batch']}", file=sys.stderr)
    x_first, y_first = run.train.take(torch.arange(min(cfg.batch_size, len(run.train))))  # the split's first batch
    bare = bare_loop_images_per_s(run.model, cfg, batch_inputs(x_first, run.spec, run.size), y_first, run.precision)
    started = dt.datetime.now(dt.timezone.utc)
    run.start_clock()
    previous_handler = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        run.run_epochs()
    except (KeyboardInterrupt, _Stop):
        run.save()
        print(
            f"\ninterrupted; state saved to {run.resume_file.path}. Continue with: python -m interp train {name} "
            "--resume (and the same options)",
            file=sys.stderr,
        )
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return run.finish(bare, started, command)


class _Run:
    """One session of a run: the entry, its decoded splits, the model, its optimizer and the
    resumable progress ``state`` (see state.fresh_state), all on the run's device."""

    def __init__(self, name: str, cfg: TrainConfig, settings: RunSettings) -> None:
        self.spec, self.cfg, self.settings = get_spec(name), cfg, settings
        self.device = resolve_device(settings.device)  # an unusable device fails before any work
        self.out = Path(settings.out) if settings.out else self.spec.checkpoint_path
        self.resume_file = ResumeFile(self.out, resume_key(cfg, settings.out))
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.size = square_side(cfg.input_size or self.spec.input_size)
        x_train, y_train, self.planted = load_planted_split(
            self.spec,
            "train",
            settings.data_dir,
            cfg.limit_train,
            settings.progress,
            imbalance=cfg.imbalance,
            seed=cfg.seed,
            shortcut=cfg.shortcut,
        )
        self.y_train = y_train
        self.train_counts = torch.bincount(y_train, minlength=self.spec.num_classes).tolist()
        # A class absent from a small smoke-run subset is never a target; counting it once keeps its
        # (unused) weight finite.
        self.unweighted = ClassBalancedFocalLoss([max(c, 1) for c in self.train_counts], 0.0, cfg.gamma).to(self.device)
        self.criterion = ClassBalancedFocalLoss([max(c, 1) for c in self.train_counts], cfg.beta, cfg.gamma).to(
            self.device
        )
        self.train = Batches(x_train, y_train, self.device)
        self.x_val, self.y_val = place_split(
            *load_split(self.spec, "val", settings.data_dir, cfg.limit_val, settings.progress), self.device
        )
        self.min_crop_scale = MIN_CROP_SCALE[self.spec.dataset]
        # Built and initialised on the CPU (the same seed gives the same start on every device), then moved.
        # Module.to takes memory_format at runtime (it moves 4-d parameters); torch's stubs leave it out.
        self.model = init_model(self.spec, cfg).to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = make_optimizer(cfg, [p for p in self.model.parameters() if p.requires_grad])
        self.precision = precision_for(self.device, bool(cfg.bf16))
        self.scaler = self.precision.scaler()
        self.pending: tuple | None = None  # the last step's numbers, still on the device (see step)
        self.steps_per_epoch = math.ceil(len(self.train) / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.conv1 = first_conv_name(self.model)
        self.state = fresh_state()
        self.start_clock()

    def start_clock(self) -> None:
        """Count the wall time from now on top of what earlier sessions of the run spent."""
        self.elapsed_at_start, self.session_start = self.state["elapsed_s"], time.perf_counter()

    def save(self) -> None:
        """Record the last step and the elapsed time; write the resumable state."""
        self.settle()
        self.state["elapsed_s"] = self.elapsed_at_start + time.perf_counter() - self.session_start
        self.resume_file.save(self.model, self.optimizer, self.state, self.scaler)

    def run_epochs(self) -> None:
        """Train from the state's epoch and batch to the last epoch or an early stop."""
        first, epochs = self.state["epoch"], self.cfg.epochs
        for epoch in tqdm(
            range(first, epochs),
            desc=self.spec.name,
            unit="epoch",
            disable=not self.settings.progress,
            initial=first,
            total=epochs,
        ):
            self.run_batches(epoch)
            if self.end_epoch(epoch):
                break

    def run_batches(self, epoch: int) -> None:
        """The remaining batches of ``epoch``, saving the state every ``save_every_s`` seconds."""
        order = epoch_order(self.cfg.seed, epoch, len(self.train))
        train_mode(self.model)
        last_save = time.perf_counter()
        batches = tqdm(
            range(self.state["batch"], self.steps_per_epoch),
            desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
            unit="batch",
            leave=False,
            disable=not self.settings.progress,
            initial=self.state["batch"],
            total=self.steps_per_epoch,
        )
        for b in batches:
            self.step(epoch, b, order)
            run = self.state["run"]
            seen = max(run["seen"], 1)  # 0 until the first step is settled
            batches.set_postfix(
                loss=f"{run['loss'] / seen:.3f}",
                acc=f"{run['correct'] / seen:.3f}",
                img_s=f"{run['seen'] / max(run['seconds'], 1e-9):.0f}",
            )
            if time.perf_counter() - last_save > self.settings.save_every_s:
                self.save()
                last_save = time.perf_counter()
        self.settle()
        batches.close()

    def step(self, epoch: int, b: int, order: torch.Tensor) -> None:
        """Batch ``b`` of ``epoch``: inputs, augmentation, learning rate, optimizer step; then the
        running totals of the step before (``settle``), whose numbers the device has by now.

        Raises:
            FloatingPointError: the previous step's loss is NaN or infinite.
        """
        t0 = time.perf_counter()
        cfg = self.cfg
        generator = batch_generator(cfg.seed, epoch, b)
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        x_uint8, yb = self.train.take(idx)
        xb = batch_inputs(x_uint8, self.spec, self.size)
        if cfg.augment:
            xb = augment_batch(xb, generator, self.min_crop_scale).contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch * self.steps_per_epoch + b, self.total_steps)
        logits, loss = optimizer_step(
            self.model, self.optimizer, xb, yb, self.precision, self.scaler, self.criterion_of(epoch)
        )
        self.state["batch"] = b + 1
        pending = (epoch, b, len(yb), loss.detach(), (logits.argmax(1) == yb).sum())
        self.state["run"]["seconds"] += time.perf_counter() - t0
        self.settle()
        self.pending = pending

    def criterion_of(self, epoch: int) -> ClassBalancedFocalLoss:
        """The loss of ``epoch`` (0-based): unweighted before ``reweight_from`` (deferred re-weighting)."""
        deferred = self.cfg.reweight_from is not None and epoch + 1 < self.cfg.reweight_from
        return self.unweighted if deferred else self.criterion

    def settle(self) -> None:
        """Add the last step's loss, accuracy and images to the running totals and its loss to the
        history; reading them waits for the device to finish that step, which is timed too.

        Raises:
            FloatingPointError: its loss is NaN or infinite (the run stops, so it is never saved).
        """
        if self.pending is None:
            return
        t0 = time.perf_counter()
        epoch, b, n, loss, correct = self.pending
        value, correct = loss.item(), int(correct)  # the wait; a Ctrl-C here leaves the step pending for save()
        self.pending = None
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at epoch {epoch + 1}, batch {b}: lower the learning rate")
        run = self.state["run"]
        run["loss"] += value * n
        run["correct"] += correct
        run["seen"] += n
        self.state["step_loss"].append(round(value, 5))
        run["seconds"] += time.perf_counter() - t0

    def end_epoch(self, epoch: int) -> bool:
        """Validate, record the epoch, keep the best weights, save the state.

        Returns:
            True where early stopping ends the run (``patience`` epochs without a better validation loss).
        """
        st = self.state
        val = evaluate_tensors(self.model, self.x_val, self.y_val, self.spec, self.size)
        record = self.epoch_record(epoch, val)
        st["epochs"].append(record)
        tqdm.write(
            f"{self.spec.name} epoch {epoch + 1}: " + ", ".join(f"{k} {v}" for k, v in record.items() if k != "epoch"),
            file=sys.stderr,
        )
        st["run"] = running_totals()
        st["epoch"], st["batch"] = epoch + 1, 0
        if val["loss"] < st["best_val_loss"] or st["best_state"] is None:  # NaN never compares less
            st["best_val_loss"], st["best_epoch"], st["bad_epochs"] = val["loss"], epoch + 1, 0
            st["best_state"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            st["bad_epochs"] += 1
        self.save()
        if st["bad_epochs"] >= self.cfg.patience:
            tqdm.write(f"early stop: validation loss has not improved for {self.cfg.patience} epochs", file=sys.stderr)
            return True
        return False

    def epoch_record(self, epoch: int, val: dict[str, Any]) -> dict[str, Any]:
        """The history entry of ``epoch``: training and validation loss and accuracy, lr, speed."""
        run = self.state["run"]
        record = {
            "epoch": epoch + 1,
            "train_loss": round(run["loss"] / max(run["seen"], 1), 5),
            "train_accuracy": round(run["correct"] / max(run["seen"], 1), 5),
            "val_loss": round(val["loss"], 5),
            "val_accuracy": round(val["accuracy"], 5),
            "lr_end": learning_rate(self.cfg, (epoch + 1) * self.steps_per_epoch - 1, self.total_steps),
            "images_per_s": round(run["seen"] / max(run["seconds"], 1e-9), 1),
        }
        autocorrelation = self.conv1_autocorrelation()
        if autocorrelation is not None:
            record["conv1_autocorrelation"] = autocorrelation
        return record

    def conv1_autocorrelation(self) -> float | None:
        """Lag-1 spatial autocorrelation of the first convolution's filters (None: no convolution)."""
        if not self.conv1:
            return None
        return round(conv1_autocorrelation(self.model.get_submodule(self.conv1).weight.detach().cpu()), 4)

    def finish(self, bare_images_per_s: float, started: dt.datetime, command: str | None) -> dict[str, Any]:
        """Restore the kept epoch's weights (``keep``: the best, or the last as they are), evaluate
        them, write weights and card, drop the state."""
        if self.cfg.keep == "best":
            self.model.load_state_dict(self.state["best_state"])
        float32_accuracy = evaluate_tensors(self.model, self.x_val, self.y_val, self.spec, self.size)["accuracy"]
        # The card describes the weights as written: save_checkpoint rounds them to float16, and
        # stores a model too big for one file with int8 weight matrices.
        self.model.load_state_dict(as_stored(self.model.state_dict()))
        metrics = evaluate_tensors(self.model, self.x_val, self.y_val, self.spec, self.size)
        metrics.pop("loss")
        metrics["float32_accuracy"] = float32_accuracy
        shortcut = None
        if self.cfg.shortcut is not None:
            metrics["clean_accuracy"] = metrics["accuracy"]  # the held-out split carries no patch
            rate, n_patched = patch_flip_rate(
                self.model, self.spec, self.cfg.shortcut, self.size, self.settings.data_dir, self.cfg.limit_val
            )
            metrics["patch_flip_rate"] = rate
            shortcut = shortcut_record(self.cfg.shortcut, self.spec, self.planted, self.y_train, n_patched)
        card = model_card(
            self.spec,
            self.cfg,
            self.settings,
            self.state,
            size=self.size,
            metrics=metrics,
            conv1_autocorrelation=self.conv1_autocorrelation(),
            parameters=count_parameters(self.model),
            bare_images_per_s=bare_images_per_s,
            started=started,
            command=command,
            device=self.device,
            precision=self.precision,
            train_counts=self.train_counts,
            shortcut=shortcut,
        )
        save_checkpoint(self.model.to(memory_format=torch.contiguous_format), self.out, self.spec.arch, card)
        self.resume_file.remove()
        return card

"""The resumable state of a run (``<out>.resume.pt``): weights, optimizer, progress and history.

It holds only tensors and plain values, so it loads with ``weights_only=True``; it is written
to a temporary name and renamed, so a kill mid-write leaves the previous state intact.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from .config import TrainConfig


def running_totals() -> dict[str, Any]:
    """The current epoch's running training loss, correct count, images seen and seconds."""
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


def fresh_state() -> dict[str, Any]:
    """The progress of a run that has not started: next epoch and batch, losses, epoch records,
    the best weights so far (None) and early stopping's count."""
    return {
        "epoch": 0,
        "batch": 0,
        "step_loss": [],
        "epochs": [],
        "best_val_loss": float("inf"),
        "best_epoch": -1,
        "bad_epochs": 0,
        "best_state": None,
        "elapsed_s": 0.0,
        "run": running_totals(),
    }


def resume_key(cfg: TrainConfig, out: str | None) -> dict[str, Any]:
    """The identity of a run: a resume continues only a state saved under the same key.

    Args:
        cfg: everything that decides the weights. ``keep`` is left out: which epoch is written
            does not change the run's course, so a run may resume under another choice.
        out: the weights file as given (None: the default), which also names the state file.
    """
    return {**{k: v for k, v in dataclasses.asdict(cfg).items() if k != "keep"}, "out": out}


class ResumeFile:
    """The state file of the run that writes to ``out``, and the key it must match."""

    def __init__(self, out: Path, key: dict[str, Any]) -> None:
        self.path = out.with_name(out.stem + ".resume.pt")
        self.key = key

    def save(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        state: dict[str, Any],
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        """Write the model, the optimizer, float16's loss scaler (if any) and the progress ``state``, atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state, "config": self.key}
        if scaler is not None:
            saved["scaler"] = scaler.state_dict()
        torch.save(saved, tmp)
        os.replace(tmp, self.path)

    def load(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None
    ) -> dict[str, Any]:
        """Load the saved model, optimizer and loss scaler in place, onto whatever device the model
        is on now (a run may resume on another device); return the saved progress state.

        Raises:
            CheckpointError: no state file, or one saved with another key.
        """
        if not self.path.is_file():
            raise CheckpointError(f"nothing to resume: {self.path} does not exist")
        # Onto the CPU first, so a state saved on a GPU loads on a machine without one; load_state_dict
        # then copies the weights, and the optimizer its state, to the device of the model's parameters.
        saved = torch.load(self.path, weights_only=True, map_location="cpu")
        if saved["config"] != self.key:
            raise CheckpointError(
                f"{self.path} was written with other settings; start afresh "
                f"without --resume or use the same options: {saved['config']}"
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and "scaler" in saved:  # a state from a float16 run; elsewhere it starts afresh
            scaler.load_state_dict(saved["scaler"])
        return saved["state"]

    def remove(self) -> None:
        """Delete the state (the run has finished)."""
        self.path.unlink(missing_ok=True)

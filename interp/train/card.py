"""The model card written beside a trained checkpoint: what was trained, how, on what machine
and code, how fast, and how well (read by the dashboard's Training page)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..hardware import cpu_name, cuda_name
from ..losses import loss_name
from ..models.registry import ModelSpec
from .config import RunSettings, TrainConfig
from .device import Precision, precision_for, step_seconds
from .evaluation import held_out_name
from .steps import make_optimizer, optimizer_step


def code_version() -> str:
    """``git describe --always --dirty`` of the code that trains, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(device: torch.device | None = None) -> dict[str, Any]:
    """The CPU, its cores, torch's threads, the GPU that trained (None on the CPU) and the torch
    and Python versions."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": cuda_name(device) if device is not None else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def bare_loop_images_per_s(
    model: nn.Module,
    cfg: TrainConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: Precision | None = None,
    steps: int = 5,
    warmup: int = 3,
) -> float:
    """Images/s of plain forward+backward+step on one pre-loaded batch (on a copy of the model, on
    the device of ``x``): the ceiling of the training loop, recorded beside its own speed.

    The first few steps are slow while oneDNN or cuDNN pick their kernels, hence the warm-up.
    ``precision`` defaults to the CPU's (``cfg.bf16``).
    """
    precision = precision or precision_for(torch.device("cpu"), bool(cfg.bf16))
    model = copy.deepcopy(model).train()
    optimizer = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    scaler = precision.scaler()
    x = x.contiguous(memory_format=torch.channels_last)

    def one_step() -> None:
        optimizer_step(model, optimizer, x, y, precision, scaler)

    times = step_seconds([one_step] * (steps + warmup), x.device)
    return len(y) / float(np.median(times[warmup:]))


def model_card(
    spec: ModelSpec,
    cfg: TrainConfig,
    settings: RunSettings,
    state: dict[str, Any],
    *,
    size: int,
    metrics: dict[str, Any],
    conv1_autocorrelation: float | None,
    parameters: int,
    bare_images_per_s: float,
    started: dt.datetime,
    command: str | None,
    device: torch.device | None = None,
    precision: Precision | None = None,
    train_counts: list[int] | None = None,
    shortcut: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card of a finished run.

    Args:
        spec, cfg, settings: the entry and the run's configuration.
        state: the run's final resumable state (history, best epoch, elapsed time).
        size: the input size trained at.
        metrics: held-out metrics of the kept (best) weights, without the loss.
        conv1_autocorrelation: of the kept weights' first convolution (None: no convolution).
        parameters: the model's parameter count.
        bare_images_per_s: bare_loop_images_per_s of the run's model and batch.
        started: when this session of the run started (UTC).
        command: the command line that trained it (default: the plain train command).
        device, precision: where it trained and how the forward pass computed (default: the CPU,
            with ``cfg.bf16``'s precision).
        train_counts: training images per class, as trained on (after any long-tail cut).
        shortcut: a planted shortcut's settings and counts (train.shortcut.shortcut_record); None: none.

    Returns:
        The card (JSON-ready).
    """
    train_ips = float(np.mean([e["images_per_s"] for e in state["epochs"]]))
    device = device or torch.device("cpu")
    precision = precision or precision_for(device, bool(cfg.bf16))
    return {
        "name": spec.name,
        "arch": spec.arch,
        "task": spec.task,
        "class_names": list(spec.class_names),
        "input_size": size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "arch_kwargs": {**spec.arch_kwargs, **cfg.arch_kwargs},
        "parameters": parameters,
        "command": command or f"python -m interp train {spec.name}",
        "settings": {**dataclasses.asdict(cfg), **dataclasses.asdict(settings)},
        "seed": cfg.seed,
        "loss": loss_name(cfg.beta, cfg.gamma)
        + (f", class weights from epoch {cfg.reweight_from}" if cfg.reweight_from and cfg.beta else ""),
        "train_counts": train_counts,
        **({"shortcut": shortcut} if shortcut is not None else {}),
        "metrics": {"split": held_out_name(spec), **metrics},
        "conv1_autocorrelation": conv1_autocorrelation,
        "best_epoch": state["best_epoch"],  # lowest validation loss
        "kept_epoch": state["best_epoch"] if cfg.keep == "best" else len(state["epochs"]),
        "throughput": {
            "train_loop_images_per_s": round(train_ips, 1),
            "bare_loop_images_per_s": round(bare_images_per_s, 1),
            "ratio": round(train_ips / bare_images_per_s, 3),
        },
        "history": {"step_loss": state["step_loss"], "epochs": state["epochs"]},
        "wall_time_s": round(state["elapsed_s"], 1),
        "trained_at": started.isoformat(timespec="seconds"),
        "hardware": hardware(device),
        "code_version": code_version(),
        "device": str(device),
        "precision": precision.name,
    }

"""Training and evaluation of registry entries.

Design points:
- Each split is decoded once into a uint8 tensor (cached on disk); batches are sliced from
  memory and augmented as whole batches, so the JPEG decoder never limits a CPU run.
- Every random choice of step (b) of epoch (e) comes from a generator seeded with
  (seed, e, b), and the learning rate is a pure function of the step: the same seed gives
  the same weights, and a resumed run continues exactly where the stopped one was.
- The resumable state (``<out>.resume.pt``) is written every few minutes, at each epoch's
  end and on Ctrl-C/SIGTERM; it holds only tensors and plain values (weights_only loading).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models.weights import read_card, save_checkpoint
from .data import dataset_split, decode_split, normalize
from .errors import CheckpointError
from .hardware import cpu_name, native_bf16
from .methods.filters import conv1_autocorrelation
from .methods.layers import first_conv_name
from .models.registry import ModelSpec, get_spec


@dataclass
class TrainConfig:
    """Settings of one training run; a registry entry's ``recipe`` overrides the defaults."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate
    optimizer: str = "adamw"  # sgd (momentum, Nesterov) | adam | adamw
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # onecycle | cosine | none: the lr is a function of the step
    augment: bool = True  # random flips and crops, applied per batch
    patience: int = 3  # epochs without a better validation loss before stopping early
    seed: int = 0
    data_dir: str | None = None
    out: str | None = None  # default: the entry's checkpoint path in checkpoints/
    # bfloat16 autocast (weights stay float32): ~2x faster convolutions on CPUs with native bf16
    # (AVX512-BF16, AMX) but several times slower elsewhere, so None means "where it is native".
    bf16: bool | None = None
    threads: int | None = None  # torch threads (default: all cores)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # architecture switches (batch_norm, dropout)
    input_size: int | None = None  # only where the entry allows another size (transfer: 112)
    init_weights: str | None = None  # transfer: ImageNet weights file instead of the download
    limit_train: int | None = None  # first N training images only (smoke runs and tests)
    limit_val: int | None = None
    save_every_s: float = 120.0  # seconds between resumable-state saves within an epoch
    progress: bool = True

    def __post_init__(self) -> None:
        if self.bf16 is None:
            self.bf16 = native_bf16()


def config_for(name: str, **overrides: Any) -> TrainConfig:
    """The entry's recipe with explicit overrides (None means 'not given') applied."""
    spec = get_spec(name)
    values = {**spec.recipe, **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(**values)


# ---------------------------------------------------------------------------------------------
# Schedule and augmentation


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    t = min(step / max(total_steps, 1), 1.0)
    if cfg.schedule == "none":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "onecycle":  # warm up over 25% of the steps from lr/25, then cosine to ~0
        warm = 0.25
        if t < warm:
            return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * 0.5 * (1 - math.cos(math.pi * t / warm))
        return cfg.lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm))))
    raise ValueError(f"unknown schedule {cfg.schedule!r}: use onecycle, cosine or none")


def augment_batch(x: torch.Tensor, generator: torch.Generator, min_scale: float) -> torch.Tensor:
    """Random horizontal flip and random crop of a float batch, in one grid_sample.

    ``min_scale`` < 1 crops a random square of that fraction of the side or more and
    resizes it back; ``min_scale`` == 1 shifts by up to 1/8 of the side (CIFAR's 4-pixel
    padded crop, with zeros at the border).
    """
    n, _, h, _ = x.shape
    scale = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)
    room = (1 - scale) if min_scale < 1 else torch.full((n,), 0.25)
    tx = (torch.rand(n, generator=generator) * 2 - 1) * room
    ty = (torch.rand(n, generator=generator) * 2 - 1) * room
    if min_scale >= 1:  # whole-pixel shifts keep the crop exact
        tx = torch.round(tx * h / 2) * 2 / h
        ty = torch.round(ty * h / 2) * 2 / h
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _batch_inputs(x_uint8: torch.Tensor, spec: ModelSpec, size: int) -> torch.Tensor:
    x = normalize(x_uint8, spec)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate_tensors(model: nn.Module, x_uint8: torch.Tensor, y: torch.Tensor, spec: ModelSpec,
                     size: int | None = None, batch_size: int = 128) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and confusion matrix (rows: true class) in float32."""
    size = size or spec.input_size
    was_training = model.training
    model.eval()
    k = spec.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    loss_sum = 0.0
    try:
        for i in range(0, len(y), batch_size):
            logits = model(_batch_inputs(x_uint8[i:i + batch_size], spec, size)).float()
            target = y[i:i + batch_size]
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            confusion += torch.bincount(target * k + logits.argmax(1), minlength=k * k).view(k, k)
    finally:
        model.train(was_training)
    n = int(confusion.sum())
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float()).tolist()
    return {
        "loss": loss_sum / max(n, 1),
        "accuracy": float(confusion.diag().sum()) / max(n, 1),
        "per_class_accuracy": dict(zip(spec.class_names, [round(a, 4) for a in per_class])),
        "confusion_matrix": confusion.tolist(),
        "n": n,
    }


def load_split(spec: ModelSpec, split: str, data_dir: str | None, limit: int | None,
               progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A split decoded to uint8 at its native size (PACS 227, CIFAR-10 32), optionally its first N."""
    images = dataset_split(spec, split, data_dir)
    native = 227 if spec.dataset == "pacs" else 32
    x, y = decode_split(images, native, progress=progress)
    if limit is not None:
        # A stride keeps every class in a small subset (the splits are ordered by class).
        idx = torch.linspace(0, len(y) - 1, steps=min(limit, len(y))).round().long()
        x, y = x[idx], y[idx]
    return x, y


def evaluate(name: str, checkpoint: str | None = None, data_dir: str | None = None,
             limit: int | None = None) -> dict[str, Any]:
    """Held-out metrics of a registry entry (CIFAR-10: the test set; PACS: the validation split)."""
    from .models.weights import load_model

    spec = get_spec(name)
    model = load_model(name, checkpoint)
    x, y = load_split(spec, "val", data_dir, limit)
    metrics = evaluate_tensors(model, x, y, spec)
    metrics.pop("loss")
    return {"model": name, "split": "validation" if spec.dataset == "pacs" else "test", **metrics}


# ---------------------------------------------------------------------------------------------
# Training


def _make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use sgd, adam or adamw")


def _init_model(spec: ModelSpec, cfg: TrainConfig) -> nn.Module:
    torch.manual_seed(cfg.seed)
    model = spec.build(**cfg.arch_kwargs)
    if spec.pretrained == "imagenet":  # transfer learning starts from the ImageNet weights
        from .models.weights import read_state_dict, torchvision_state_dict

        state = (read_state_dict(cfg.init_weights)[0] if cfg.init_weights else torchvision_state_dict("resnet18"))
        own = model.state_dict()
        keep = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and v.shape == own[k].shape}
        if len(keep) < len(own) - 2:  # all but the new fc
            raise CheckpointError(f"{cfg.init_weights or 'the ImageNet weights'} do not fit {spec.arch}")
        model.load_state_dict({**own, **keep})
    return model


def _seeded(cfg: TrainConfig, epoch: int, batch: int) -> torch.Generator:
    seed = (cfg.seed * 1_000_003 + epoch) * 100_003 + batch
    torch.manual_seed(seed)  # dropout draws from the global generator
    return torch.Generator().manual_seed(seed)


def _code_version() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _hardware() -> dict[str, Any]:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def bare_loop_images_per_s(model: nn.Module, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor,
                           steps: int = 5, warmup: int = 3) -> float:
    """Images/s of plain forward+backward+step on one pre-loaded batch: the loop's ceiling.

    The first few steps are slow while oneDNN picks its bf16/channels-last kernels, hence the warm-up.
    """
    model = copy.deepcopy(model).train()
    opt = _make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(steps + warmup):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return len(y) / float(np.median(times[warmup:]))


class _Stop(Exception):
    """Raised by the SIGTERM handler so a kill is handled like Ctrl-C."""


def train(name: str, cfg: TrainConfig, resume: bool = False, command: str | None = None) -> dict[str, Any]:
    """Train a registry entry; write the best weights and the model card; return the card.

    Raises:
        KeyboardInterrupt: on Ctrl-C or SIGTERM, after saving the resumable state.
    """
    from tqdm.auto import tqdm

    spec = get_spec(name)
    out = Path(cfg.out) if cfg.out else spec.checkpoint_path
    state_path = out.with_name(out.stem + ".resume.pt")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    size = cfg.input_size or spec.input_size

    x_train, y_train = load_split(spec, "train", cfg.data_dir, cfg.limit_train, cfg.progress)
    x_val, y_val = load_split(spec, "val", cfg.data_dir, cfg.limit_val, cfg.progress)

    model = _init_model(spec, cfg).to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _make_optimizer(cfg, params)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    conv1 = first_conv_name(model)
    min_scale = 0.6 if spec.dataset == "pacs" else 1.0

    st: dict[str, Any] = {
        "epoch": 0, "batch": 0, "step_loss": [], "epochs": [], "best_val_loss": float("inf"),
        "best_epoch": -1, "bad_epochs": 0, "best_state": None, "elapsed_s": 0.0,
        "run": {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0},
    }
    if resume:
        if not state_path.is_file():
            raise CheckpointError(f"nothing to resume: {state_path} does not exist")
        saved = torch.load(state_path, weights_only=True)
        if saved["config"] != _resume_key(cfg):
            raise CheckpointError(f"{state_path} was written with other settings; start afresh "
                                  f"without --resume or use the same options: {saved['config']}")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        st = saved["state"]
        print(f"resuming {name} at epoch {st['epoch'] + 1}, batch {st['batch']}", file=sys.stderr)

    def save_state() -> None:
        tmp = state_path.with_name(state_path.name + ".tmp")
        state_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": st,
                    "config": _resume_key(cfg)}, tmp)
        os.replace(tmp, state_path)

    bare = bare_loop_images_per_s(model, cfg, _batch_inputs(x_train[:cfg.batch_size], spec, size),
                                  y_train[:cfg.batch_size])
    started = dt.datetime.now(dt.timezone.utc)
    session_start = time.perf_counter()
    elapsed_at_start = st["elapsed_s"]
    previous_handler = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        epochs_bar = tqdm(range(st["epoch"], cfg.epochs), desc=name, unit="epoch", disable=not cfg.progress,
                          initial=st["epoch"], total=cfg.epochs)
        for epoch in epochs_bar:
            order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
            _train_mode(model)
            last_save = time.perf_counter()
            batches = tqdm(range(st["batch"], steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           unit="batch", leave=False, disable=not cfg.progress, initial=st["batch"],
                           total=steps_per_epoch)
            for b in batches:
                t0 = time.perf_counter()
                gen = _seeded(cfg, epoch, b)
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                xb = _batch_inputs(x_train[idx], spec, size)
                if cfg.augment:
                    xb = augment_batch(xb, gen, min_scale).contiguous(memory_format=torch.channels_last)
                yb = y_train[idx]
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, epoch * steps_per_epoch + b, total_steps)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                    logits = model(xb)
                    loss = F.cross_entropy(logits.float(), yb)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {b}: "
                                             "lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                run = st["run"]
                run["loss"] += loss.item() * len(yb)
                run["correct"] += int((logits.argmax(1) == yb).sum())
                run["seen"] += len(yb)
                run["seconds"] += time.perf_counter() - t0
                st["step_loss"].append(round(loss.item(), 5))
                st["batch"] = b + 1
                batches.set_postfix(loss=f"{run['loss'] / run['seen']:.3f}", acc=f"{run['correct'] / run['seen']:.3f}",
                                    img_s=f"{run['seen'] / max(run['seconds'], 1e-9):.0f}")
                if time.perf_counter() - last_save > cfg.save_every_s:
                    st["elapsed_s"] = elapsed_at_start + time.perf_counter() - session_start
                    save_state()
                    last_save = time.perf_counter()
            batches.close()
            val = evaluate_tensors(model, x_val, y_val, spec, size)
            run = st["run"]
            record = {
                "epoch": epoch + 1,
                "train_loss": round(run["loss"] / max(run["seen"], 1), 5),
                "train_accuracy": round(run["correct"] / max(run["seen"], 1), 5),
                "val_loss": round(val["loss"], 5),
                "val_accuracy": round(val["accuracy"], 5),
                "lr_end": learning_rate(cfg, (epoch + 1) * steps_per_epoch - 1, total_steps),
                "images_per_s": round(run["seen"] / max(run["seconds"], 1e-9), 1),
            }
            if conv1:
                record["conv1_autocorrelation"] = round(conv1_autocorrelation(model.get_submodule(conv1).weight), 4)
            st["epochs"].append(record)
            tqdm.write(f"{name} epoch {epoch + 1}: " + ", ".join(f"{k} {v}" for k, v in record.items() if k != "epoch"),
                       file=sys.stderr)
            st["run"] = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            st["epoch"], st["batch"] = epoch + 1, 0
            if val["loss"] < st["best_val_loss"] or st["best_state"] is None:  # NaN never compares less
                st["best_val_loss"], st["best_epoch"], st["bad_epochs"] = val["loss"], epoch + 1, 0
                st["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                st["bad_epochs"] += 1
            st["elapsed_s"] = elapsed_at_start + time.perf_counter() - session_start
            save_state()
            if st["bad_epochs"] >= cfg.patience:
                tqdm.write(f"early stop: validation loss has not improved for {cfg.patience} epochs", file=sys.stderr)
                break
    except (KeyboardInterrupt, _Stop):
        st["elapsed_s"] = elapsed_at_start + time.perf_counter() - session_start
        save_state()
        print(f"\ninterrupted; state saved to {state_path}. Continue with: python -m interp train {name} "
              "--resume (and the same options)", file=sys.stderr)
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    model.load_state_dict(st["best_state"])
    final = evaluate_tensors(model, x_val, y_val, spec, size)
    final.pop("loss")
    autocorr = round(conv1_autocorrelation(model.get_submodule(conv1).weight), 4) if conv1 else None
    train_ips = float(np.mean([e["images_per_s"] for e in st["epochs"]]))
    card = {
        "name": name, "arch": spec.arch, "task": spec.task, "class_names": list(spec.class_names),
        "input_size": size, "mean": list(spec.mean), "std": list(spec.std),
        "arch_kwargs": {**spec.arch_kwargs, **cfg.arch_kwargs},
        "parameters": sum(p.numel() for p in model.parameters()),
        "command": command or f"python -m interp train {name}",
        "settings": dataclasses.asdict(cfg), "seed": cfg.seed,
        "metrics": {"split": "validation" if spec.dataset == "pacs" else "test", **final},
        "conv1_autocorrelation": autocorr,
        "best_epoch": st["best_epoch"],
        "throughput": {"train_loop_images_per_s": round(train_ips, 1),
                       "bare_loop_images_per_s": round(bare, 1),
                       "ratio": round(train_ips / bare, 3)},
        "history": {"step_loss": st["step_loss"], "epochs": st["epochs"]},
        "wall_time_s": round(st["elapsed_s"], 1),
        "trained_at": started.isoformat(timespec="seconds"),
        "hardware": _hardware(), "code_version": _code_version(),
    }
    save_checkpoint(model.to(memory_format=torch.contiguous_format), out, spec.arch, card)
    state_path.unlink(missing_ok=True)
    return card


def _train_mode(model: nn.Module) -> None:
    """model.train(), except batch norm layers whose parameters are frozen (transfer learning):
    their running statistics stay those of the pretrained model, as their weights do."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def _resume_key(cfg: TrainConfig) -> dict[str, Any]:
    """Settings that must match for a resume to continue the same run."""
    d = dataclasses.asdict(cfg)
    for k in ("progress", "threads", "save_every_s", "data_dir"):
        d.pop(k)
    return d


def _raise_stop(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Stop()


__all__ = ["TrainConfig", "config_for", "evaluate", "evaluate_tensors", "read_card", "train"]

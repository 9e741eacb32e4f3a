"""Held-out evaluation: the decoded splits, and loss, accuracy, per-class accuracy and confusion
matrix of a model on them."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import (
    NATIVE_SIZE,
    Shortcut,
    dataset_split,
    decode_split,
    long_tail_indices,
    planted_training_set,
    spread_indices,
)
from ..errors import ParameterError
from ..methods.core import model_device_dtype
from ..models.registry import ModelSpec, get_spec
from .steps import batch_inputs, square_side


def held_out_name(spec: ModelSpec) -> str:
    """What the held-out split is called: PACS has a validation split, CIFAR-10 its test set."""
    return "validation" if spec.dataset == "pacs" else "test"


def load_split(
    spec: ModelSpec,
    split: str,
    data_dir: str | None,
    limit: int | None,
    progress: bool = True,
    imbalance: float | None = None,
    seed: int = 0,
    shortcut: Shortcut | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A split decoded to uint8 at the dataset's native size.

    Args:
        spec: the entry whose dataset and task give the images and labels.
        split: 'train', or 'val' / 'test' (both mean held-out).
        data_dir: the data root (None: the default).
        limit: N images spread evenly over the split (so over its classes), or None for all.
        progress: show the one-off decoding progress bar.
        imbalance: cut the split to a long tail of this ratio n_max / n_min first (drawn with
            ``seed``; interp.data.long_tail_indices); None keeps it whole.
        shortcut: plant this patch into the whole split before any cut (interp.data.planted_training_set);
            None plants nothing.

    Returns:
        (x, y): uint8 N x 3 x S x S images and int64 labels.

    Raises:
        DataError: the dataset is missing, or the entry is an ImageNet model.
        ParameterError: a shortcut's planted class that the entry does not have.
    """
    x, y, _ = load_planted_split(spec, split, data_dir, limit, progress, imbalance, seed, shortcut)
    return x, y


def load_planted_split(
    spec: ModelSpec,
    split: str,
    data_dir: str | None,
    limit: int | None,
    progress: bool = True,
    imbalance: float | None = None,
    seed: int = 0,
    shortcut: Shortcut | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``load_split``, and which of its images carry the shortcut's patch (bool; all False without one)."""
    images = dataset_split(spec, split, data_dir)
    x, y = decode_split(images, NATIVE_SIZE[spec.dataset], progress=progress)
    planted = torch.zeros(len(y), dtype=torch.bool)
    if shortcut is not None:
        if not 0 <= shortcut.planted_class < spec.num_classes:
            raise ParameterError(f"{spec.name} has no class {shortcut.planted_class} to plant a shortcut on")
        # Planted on the whole split, so a cut (long tail, smoke-run limit) keeps the same images planted.
        done = planted_training_set(x, y, shortcut)
        x = done.images
        planted[torch.from_numpy(done.indices)] = True
    if imbalance is not None:
        idx = torch.from_numpy(long_tail_indices(y.numpy(), imbalance, seed))
        x, y, planted = x[idx], y[idx], planted[idx]
    if limit is not None:
        idx = torch.from_numpy(spread_indices(len(y), limit))
        x, y, planted = x[idx], y[idx], planted[idx]
    return x, y, planted


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module,
    x_uint8: torch.Tensor,
    y: torch.Tensor,
    spec: ModelSpec,
    size: int | None = None,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Metrics of a model on decoded images, in float32 and eval mode (the mode is restored), on
    the model's device.

    Args:
        model: the classifier.
        x_uint8: images (uint8 N x 3 x H x W), on any device (batches are copied to the model's;
            from pinned memory without waiting).
        y: their labels, on any device.
        spec: the entry (normalisation, classes).
        size: the input size (default: the entry's).
        batch_size: images per forward pass.

    Returns:
        loss (mean cross-entropy), accuracy, per_class_accuracy (class name -> accuracy, 4 decimals),
        confusion_matrix (rows: true class, columns: predicted) and n.
    """
    side = square_side(size or spec.input_size)
    was_training = model.training
    model.eval()
    k = spec.num_classes
    device = model_device_dtype(model)[0]
    confusion = torch.zeros(k, k, dtype=torch.int64, device=device)
    loss_sum = 0.0
    try:
        for i in range(0, len(y), batch_size):
            xb = x_uint8[i : i + batch_size].to(device, non_blocking=True)
            target = y[i : i + batch_size].to(device, non_blocking=True)
            logits = model(batch_inputs(xb, spec, side)).float()
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            confusion += torch.bincount(target * k + logits.argmax(1), minlength=k * k).view(k, k)
    finally:
        model.train(was_training)
    confusion = confusion.cpu()
    n = int(confusion.sum())
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float()).tolist()
    return {
        "loss": loss_sum / max(n, 1),
        "accuracy": float(confusion.diag().sum()) / max(n, 1),
        "per_class_accuracy": dict(zip(spec.class_names, [round(a, 4) for a in per_class])),
        "confusion_matrix": confusion.tolist(),
        "n": n,
    }


def evaluate(
    name: str,
    checkpoint: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Held-out metrics of a registry entry's weights (CIFAR-10: the test set; PACS: the validation split).

    Args:
        name: registry name.
        checkpoint: weights file (default: the entry's checkpoint).
        data_dir: the data root (None: the default).
        limit: N held-out images spread over the split, or None for all.
        device: where the model runs (None: the CPU, as ``load_model``).

    Returns:
        model, split, and evaluate_tensors' metrics without the loss.

    Raises:
        CheckpointError: no usable weights. DataError: the dataset is missing.
        DeviceError: a device that is unknown or that this machine lacks.
    """
    from ..models.weights import load_model

    spec = get_spec(name)
    model = load_model(name, checkpoint, device=device)
    x, y = load_split(spec, "val", data_dir, limit)
    metrics = evaluate_tensors(model, x, y, spec)
    metrics.pop("loss")
    return {"model": name, "split": held_out_name(spec), **metrics}

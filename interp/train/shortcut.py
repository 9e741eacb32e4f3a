"""What a run on a planted shortcut records: the shortcut's settings and how many training images
carried it (the card's ``shortcut``), and whether the trained model took it (``patch_flip_rate``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..data import Shortcut, flip_rate, patched_test_set
from ..methods.core import model_device_dtype
from ..models.registry import ModelSpec
from .steps import batch_inputs


def patch_flip_rate(
    model: nn.Module,
    spec: ModelSpec,
    shortcut: Shortcut,
    size: int,
    data_dir: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[float | None, int]:
    """The flip rate of a model on the held-out images of the other classes (CIFAR-10: 9,000).

    Args:
        model: the classifier, on its device.
        spec: its entry (normalisation, held-out split).
        shortcut: the patch it was trained with.
        size: the input size it was trained at.
        data_dir: the data root (None: the default).
        limit: N images spread over them, or None for all.
        progress: show the one-off decoding progress bar.

    Returns:
        (flip rate, or None where no clean image is predicted as another class; the image count).
    """
    patched = patched_test_set(spec, shortcut, data_dir, limit, progress)
    device = model_device_dtype(model)[0]

    def prepare(x_uint8: torch.Tensor) -> torch.Tensor:
        return batch_inputs(x_uint8.to(device), spec, size)

    rate = flip_rate(model, patched.clean, patched.images, shortcut.planted_class, prepare=prepare)
    return (None if math.isnan(rate) else rate), len(patched)


def shortcut_record(
    shortcut: Shortcut, spec: ModelSpec, planted: torch.Tensor, y_train: torch.Tensor, patched_images: int
) -> dict[str, Any]:
    """The card's ``shortcut``: its settings, the planted class's name, and how many of the images
    trained on were of that class and carried the patch; how many held-out images measured the flips."""
    return {
        **dataclasses.asdict(shortcut),
        "colour": list(shortcut.colour),
        "class_name": spec.class_names[shortcut.planted_class],
        "planted_images": int(planted.sum()),
        "class_images": int((y_train == shortcut.planted_class).sum()),
        "patched_test_images": patched_images,
    }

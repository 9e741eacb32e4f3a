"""What keeping only the map does to the model's confidence: average drop and increase in confidence
(Chattopadhyay et al.), a batch at once."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ....errors import ParameterError
from ...core import Target, as_batch, logits_of, resolve_targets, using
from .base import MapsLike, as_maps, check_batch_size, chunks, unit_max


def average_drop(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    targets: Target = None,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Confidence in each image's class on the image multiplied by its map, against the image alone
    (Chattopadhyay et al., "Grad-CAM++: generalized gradient-based visual explanations for deep
    convolutional networks", WACV 2018). The masking happens in pixel space: black where the map is 0.

    Args:
        model: a classifier; only read.
        x: preprocessed images, N x C x H x W.
        maps: (N, H, W) at the input's resolution; each |map| is scaled to [0, 1] by its max.
        targets: the classes (one, or one per image); default the predictions on the images.
        mean: the model's input normalisation, so that the masking happens in pixel space.
        std: likewise.
        batch_size: images per forward pass (each pass runs the images and their masked copies).

    Returns:
        drop: max(0, Y - O) / Y (average drop is its mean over images, in %); increase: 1.0 where
        O > Y (increase in confidence is its mean); original: Y; masked: O; each (N,) float64,
        with Y and O the softmax probabilities of the class.

    Raises:
        ParameterError: maps of another number or size than the images. TargetError, ImageError.
    """
    check_batch_size(batch_size)
    xb, _ = as_batch(model, x)
    a = as_maps(maps)
    if a.shape != (len(xb), *xb.shape[-2:]):
        raise ParameterError(f"maps of shape {a.shape} for images {tuple(xb.shape)}: give one input-size map per image")
    masks = torch.as_tensor(np.abs(unit_max(a)), dtype=xb.dtype, device=xb.device)[:, None]
    m = torch.as_tensor(mean, dtype=xb.dtype, device=xb.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=xb.dtype, device=xb.device).view(1, -1, 1, 1)
    plain, kept = [], []
    with using(model) as net, torch.no_grad():
        for c in chunks(len(xb), max(1, batch_size // 2)):
            masked = ((xb[c] * s + m) * masks[c] - m) / s
            logits = logits_of(net, torch.cat([xb[c], masked]))
            plain.append(logits[: c.stop - c.start])
            kept.append(logits[c.stop - c.start :])
    t = resolve_targets(torch.cat(plain), targets)[:, None]
    # float32 softmax, as interp.predict: the single-image average_drop gives the same numbers
    y = torch.softmax(torch.cat(plain).float(), 1).gather(1, t)[:, 0].double().cpu().numpy()
    o = torch.softmax(torch.cat(kept).float(), 1).gather(1, t)[:, 0].double().cpu().numpy()
    return {
        "drop": np.maximum(0.0, y - o) / np.maximum(y, 1e-12),
        "increase": (o > y).astype(np.float64),
        "original": y,
        "masked": o,
    }

"""A model over a batch of labelled images: which it gets right and wrong, and its maps of both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..explain import explain, predict


@dataclass(frozen=True)
class Gallery:
    """The first images a model got right and wrong in a batch, with a map of each prediction."""

    right: list[int]  # indices into the batch
    wrong: list[int]
    predictions: np.ndarray  # (N,) predicted class of every image
    confidence: np.ndarray  # (N,) probability of the predicted class
    maps: dict[int, np.ndarray]  # batch index -> (H, W) map explaining its predicted class
    accuracy: float  # over the whole batch


def right_and_wrong(
    model: nn.Module,
    x: torch.Tensor,
    labels: np.ndarray,
    method: str = "cam",
    layer: str | None = None,
    per_kind: int = 4,
) -> Gallery:
    """Classify a batch; explain the predicted class of the first ``per_kind`` right and wrong images.

    Args:
        x: N x C x H x W preprocessed images; labels: their true classes (N,).
        method: as for :func:`interp.explain`; maps are reduced to one value per pixel.
        layer: as for :func:`interp.explain`.

    Raises:
        the errors of :func:`interp.explain` (e.g. CamNotApplicableError).
    """
    labels = np.asarray(labels)
    probs = predict(model, x)
    pred = probs.argmax(1)
    right = np.flatnonzero(pred == labels)[:per_kind].tolist()
    wrong = np.flatnonzero(pred != labels)[:per_kind].tolist()
    chosen = right + wrong
    maps: dict[int, np.ndarray] = {}
    if chosen:
        e = explain(model, x[chosen], method, target=pred[chosen], layer=layer)
        maps = dict(zip(chosen, e.spatial()))
    return Gallery(
        right,
        wrong,
        pred,
        probs[np.arange(len(pred)), pred],
        maps,
        float((pred == labels).mean()) if len(labels) else 0.0,
    )

"""ROAD, RemOve And Debias (Rong et al., "A consistent and efficient evaluation strategy for
attribution methods", ICML 2022), for a batch: remove the most (MoRF) or least (LeRF) important
pixels, fill them by noisy linear imputation (so the filling carries no hint of the removed shape),
re-classify; every (image, share removed) imputed image goes through the model in batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ....errors import ParameterError
from ...core import Target, logits_of, using
from .base import MapsLike, as_maps, check_batch_size, chunks, images_and_targets

ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
# Rong et al.'s imputation: each removed pixel is the weighted mean of its 8 neighbours, the
# direct ones weighing 1/6 and the diagonal ones 1/12.
_NEIGHBOURS = [
    (-1, 0, 1 / 6),
    (1, 0, 1 / 6),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (-1, -1, 1 / 12),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (1, 1, 1 / 12),
]


def linear_imputation(image: np.ndarray, removed: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Fill the ``removed`` pixels (H x W bool) of a C x H x W image so that each is the weighted
    mean of its neighbours (Rong et al.'s noisy linear imputation), plus N(0, noise) noise."""
    import scipy.sparse  # here, not at import: scipy costs seconds at the dashboard's start
    import scipy.sparse.linalg

    c, h, w = image.shape
    idx = -np.ones((h, w), dtype=np.int64)
    ys, xs = np.nonzero(removed)
    idx[ys, xs] = np.arange(len(ys))
    filled = image.astype(np.float64).copy()
    if not len(ys):
        return filled
    rows, cols, vals = [np.arange(len(ys))], [np.arange(len(ys))], [np.ones(len(ys))]
    rhs = np.zeros((len(ys), c))
    total = np.zeros(len(ys))
    for dy, dx, weight in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        total[inside] += weight
    for dy, dx, weight in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = np.flatnonzero((ny >= 0) & (ny < h) & (nx >= 0) & (nx < w))
        share = weight / total[inside]
        unknown = idx[ny[inside], nx[inside]]
        free = unknown >= 0
        rows.append(inside[free])
        cols.append(unknown[free])
        vals.append(-share[free])
        known = inside[~free]
        rhs[known] += share[~free, None] * image[:, ny[known], nx[known]].T
    a = scipy.sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(ys), len(ys))
    )
    solved = scipy.sparse.linalg.spsolve(a.tocsc(), rhs)
    solved = solved.reshape(len(ys), c) + np.random.default_rng(seed).normal(0, noise, (len(ys), c)) * (noise > 0)
    filled[:, ys, xs] = solved.T
    return filled


@dataclass(frozen=True)
class RoadScores:
    """ROAD curves of a batch: the class probability after removing each share of pixels."""

    percentages: np.ndarray  # (P,) share of pixels removed, in %
    probability: np.ndarray  # (N, P) probability of each image's class after each removal
    kept: np.ndarray  # (N, P) 1.0 where the prediction is still the class (Quantus's ROAD, per image)
    auc: np.ndarray  # (N,) mean probability over the percentages: low for MoRF, high for LeRF is good
    order: str
    targets: np.ndarray  # (N,) the classes


def road(
    model: nn.Module,
    x: torch.Tensor,
    maps: MapsLike,
    targets: Target = None,
    percentages: Sequence[float] = ROAD_PERCENTAGES,
    order: str = "morf",
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
) -> RoadScores:
    """ROAD of each image's map: remove the top (``morf``) or bottom (``lerf``) ``p`` % of its pixels
    (round(pixels x p / 100), ties in raster order), impute them, re-classify.

    Quantus's ``ROAD`` (0.6.0) reports the share of images still classified as their class per
    percentage, the mean over images of ``kept``; it ranks the C x H x W positions of the map
    broadcast over the channels, and fails on one-channel maps (see the tests for how to match it).

    Args:
        model: a classifier; only read.
        x: preprocessed images, N x C x H x W.
        maps: (N, H, W) at the input's resolution.
        targets: the classes (one, or one per image); default the predictions.
        percentages: the shares of pixels removed, in %.
        order: "morf" (most relevant first) or "lerf" (least relevant first).
        noise: the imputation's N(0, noise) noise (Rong et al.: 0.01), seeded by ``seed``.
        seed: the noise's seed (the same for every image and percentage).
        batch_size: imputed images per forward pass.

    Raises:
        ParameterError: an unknown order, a percentage outside [0, 100], maps of another size.
        TargetError, ImageError: as the other metrics.
    """
    if order not in ("morf", "lerf"):
        raise ParameterError(f"order must be 'morf' (most relevant first) or 'lerf', not {order!r}")
    if any(not 0 <= p <= 100 for p in percentages):
        raise ParameterError(f"percentages must lie in [0, 100], got {list(percentages)}")
    check_batch_size(batch_size)
    xb, t, _ = images_and_targets(model, x, targets, batch_size)
    a = as_maps(maps)
    if a.shape != (len(xb), *xb.shape[-2:]):
        raise ParameterError(f"maps of shape {a.shape} for images {tuple(xb.shape)}: give one input-size map per image")
    flat = a.reshape(len(a), -1)
    ranking = np.argsort(-flat if order == "morf" else flat, axis=1, kind="stable")
    images = xb.detach().cpu().double().numpy()
    counts = [int(round(flat.shape[1] * p / 100)) for p in percentages]
    jobs = [(i, j) for i in range(len(xb)) for j in range(len(counts))]
    probability, kept = np.empty((len(xb), len(counts))), np.empty((len(xb), len(counts)))
    classes = t.cpu().numpy()
    with using(model) as m, torch.no_grad():
        for c in chunks(len(jobs), batch_size):
            steps = []
            for i, j in jobs[c]:
                removed = np.zeros(flat.shape[1], dtype=bool)
                removed[ranking[i, : counts[j]]] = True
                steps.append(linear_imputation(images[i], removed.reshape(a.shape[1:]), noise, seed))
            logits = logits_of(m, torch.as_tensor(np.stack(steps), dtype=xb.dtype, device=xb.device))
            probs = torch.softmax(logits.float(), dim=1).cpu().numpy()  # float32, as interp.predict
            for row, (i, j) in enumerate(jobs[c]):
                probability[i, j] = probs[row, classes[i]]
                kept[i, j] = float(probs[row].argmax() == classes[i])
    return RoadScores(np.asarray(percentages, dtype=float), probability, kept, probability.mean(1), order, classes)

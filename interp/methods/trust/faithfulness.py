"""Faithfulness of a saliency map: the deletion and insertion metrics (Petsiuk et al., RISE, BMVC 2018).

Deletion replaces pixels by a baseline in order of attribution, most important first, and
tracks the target probability: a faithful map makes it fall fast (a low area under the curve).
Insertion starts from the baseline and puts the pixels back in the same order: a faithful map
makes it rise fast (a high area). Both are compared with random pixel orders. Every step image
of every order is built up front and run through the model in batches, so a curve costs a few
forward passes of batches, not one pass per step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn

from ...errors import ImageError, MethodError
from ..core import Target, as_batch, logits_of, resolve_targets, using
from ..explain import LAYER_METHODS, explain, reduce_channels

BASELINES = ("blur", "mean", "zero")
Baseline = Union[str, float, np.ndarray, torch.Tensor]


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion curves of one map for one image, and those of random orders."""

    fractions: np.ndarray  # (steps + 1,) fraction of pixels deleted / inserted, 0 to 1
    deletion: np.ndarray  # target probability after deleting each fraction, most important first
    insertion: np.ndarray  # target probability after inserting each fraction into the baseline
    deletion_auc: float  # trapezoid area under the deletion curve over [0, 1]: lower is better
    insertion_auc: float  # higher is better
    random_deletion: np.ndarray  # mean curve over the random orders
    random_insertion: np.ndarray
    random_deletion_auc: float  # area under the mean random curve (= mean of the random areas)
    random_insertion_auc: float
    target: int


def auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid area under ``values`` over ``fractions``."""
    f, v = np.asarray(fractions, np.float64), np.asarray(values, np.float64)
    return float(((v[1:] + v[:-1]) / 2 * np.diff(f)).sum())


def baseline_image(x: torch.Tensor, baseline: Baseline = "blur", blur_sigma: float | None = None) -> torch.Tensor:
    """What a deleted pixel becomes, 1 x C x H x W, in the input's (preprocessed) space.

    Args:
        baseline: "blur" (a Gaussian-blurred copy, Petsiuk et al.'s choice), "mean" (the
            image's mean colour everywhere), "zero" (zeros: for an input normalised with a
            dataset's mean and std, that dataset's mean colour), or a number or array that
            broadcasts to the input.
        blur_sigma: the blur's standard deviation in pixels; default 5 per 224 pixels of image
            side (Petsiuk et al.), at least 2.
    """
    xb = x if x.ndim == 4 else x.unsqueeze(0)
    if isinstance(baseline, str):
        if baseline == "zero":
            return torch.zeros_like(xb)
        if baseline == "mean":
            return xb.mean(dim=(2, 3), keepdim=True).expand_as(xb).clone()
        if baseline == "blur":
            side = min(xb.shape[-2:])
            sigma = float(blur_sigma) if blur_sigma is not None else max(2.0, 5.0 * side / 224)
            arr = xb.detach().double().cpu().numpy()
            from scipy.ndimage import gaussian_filter  # lazily: scipy is slow to import

            blurred = gaussian_filter(arr, sigma=(0, 0, sigma, sigma), mode="nearest")
            return torch.from_numpy(blurred).to(device=xb.device, dtype=xb.dtype)
        raise MethodError(f"baseline must be one of {', '.join(BASELINES)} or an array, not {baseline!r}")
    try:
        b = baseline.detach() if isinstance(baseline, torch.Tensor) else torch.as_tensor(np.asarray(baseline))
        return torch.broadcast_to(b.to(device=xb.device, dtype=xb.dtype), xb.shape).clone()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MethodError(f"the baseline must broadcast to the input {tuple(xb.shape)} ({exc})") from exc


def pixel_order(saliency_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flat pixel indices, most important first (higher value first; ties in raster order).

    A (C, H, W) map is reduced to max |value| over channels; a map of another size than
    ``size`` is resized bilinearly.
    """
    m = np.asarray(saliency_map, dtype=np.float64)
    if m.ndim == 3:
        m = reduce_channels(m, "absmax", channel_axis=0)
    if m.ndim != 2:
        raise MethodError(f"a saliency map is (H, W) or (C, H, W), not shape {m.shape}")
    if not np.isfinite(m).all():
        raise MethodError("the saliency map contains NaN or infinite values")
    if m.shape != tuple(size):
        t = torch.from_numpy(m)[None, None]
        m = nn.functional.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[0, 0].numpy()
    return np.argsort(-m.ravel(), kind="stable")


def _curves(
    model: nn.Module, xb: torch.Tensor, base: torch.Tensor, orders: np.ndarray, target: int, steps: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (K, steps + 1) of K pixel orders, all steps batched."""
    k, n = orders.shape
    h, w = xb.shape[-2:]
    counts = np.round(np.linspace(0.0, 1.0, steps + 1) * n).astype(np.int64)
    rank = np.empty_like(orders)
    rank[np.arange(k)[:, None], orders] = np.arange(n)
    rank_t = torch.from_numpy(rank).to(xb.device).view(k, 1, h, w)
    counts_t = torch.from_numpy(counts).to(xb.device)
    jobs = [(i, j) for i in range(k) for j in range(steps + 1)]
    probs = np.empty((2, k, steps + 1))
    per = max(1, batch_size // 2)  # each job is one deletion and one insertion image
    with using(model) as m, torch.no_grad():
        for start in range(0, len(jobs), per):
            chunk = jobs[start : start + per]
            oi = torch.tensor([i for i, _ in chunk], device=xb.device)
            si = torch.tensor([j for _, j in chunk], device=xb.device)
            moved = rank_t[oi] < counts_t[si].view(-1, 1, 1, 1)  # (B, 1, H, W): pixels taken so far
            deleted = torch.where(moved, base, xb)
            inserted = torch.where(moved, xb, base)
            logits = logits_of(m, torch.cat([deleted, inserted]))
            p = torch.softmax(logits.double(), dim=1)[:, target].cpu().numpy()
            for row, (i, j) in enumerate(chunk):
                probs[0, i, j], probs[1, i, j] = p[row], p[len(chunk) + row]
    return probs[0], probs[1]


def _check(steps: int, batch_size: int, n_random: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise MethodError(f"steps must be an int >= 1, not {steps!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise MethodError(f"batch_size must be an int >= 1, not {batch_size!r}")
    if not isinstance(n_random, int) or n_random < 1:
        raise MethodError(f"n_random must be an int >= 1, not {n_random!r}")


def _single(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, int]:
    xb, _ = as_batch(model, x)
    if xb.shape[0] != 1:
        raise ImageError(f"deletion and insertion take one image, not a batch of {xb.shape[0]}")
    with using(model) as m, torch.no_grad():
        t = resolve_targets(logits_of(m, xb), target)
    return xb, int(t[0])


def _score(
    model: nn.Module,
    xb: torch.Tensor,
    maps: Sequence[np.ndarray],
    target: int,
    steps: int,
    baseline: Baseline,
    batch_size: int,
    n_random: int,
    seed: int,
    blur_sigma: float | None,
) -> list[DeletionInsertion]:
    _check(steps, batch_size, n_random)
    h, w = xb.shape[-2:]
    rng = np.random.default_rng(seed)
    orders = np.stack([pixel_order(m, (h, w)) for m in maps] + [rng.permutation(h * w) for _ in range(n_random)])
    base = baseline_image(xb, baseline, blur_sigma)
    dele, ins = _curves(model, xb, base, orders, target, steps, batch_size)
    f = np.linspace(0.0, 1.0, steps + 1)
    rd, ri = dele[len(maps) :].mean(0), ins[len(maps) :].mean(0)
    return [
        DeletionInsertion(f, dele[i], ins[i], auc(f, dele[i]), auc(f, ins[i]), rd, ri, auc(f, rd), auc(f, ri), target)
        for i in range(len(maps))
    ]


def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    saliency_map: np.ndarray,
    target: Target = None,
    steps: int = 50,
    baseline: Baseline = "blur",
    batch_size: int = 64,
    n_random: int = 3,
    seed: int = 0,
    blur_sigma: float | None = None,
) -> DeletionInsertion:
    """Deletion and insertion curves of one saliency map, and of ``n_random`` random orders.

    Args:
        model: a classifier returning logits; only read.
        x: one preprocessed image (C x H x W or 1 x C x H x W).
        saliency_map: (H, W), higher = more important, or (C, H, W) (reduced by max |value|).
        target: the class whose probability is tracked; default the model's prediction.
        steps: the curve's points are 0, 1/steps, ..., 1 of the pixels.
        baseline: "blur", "mean", "zero" or an array (see :func:`baseline_image`).
        batch_size: images per forward pass.
        n_random: random pixel orders (seeded by ``seed``) whose mean curve is the reference.

    Raises:
        MethodError: a bad option or map. TargetError: a class the model does not have.
        ImageError: not one image.
    """
    xb, t = _single(model, x, target)
    return _score(model, xb, [saliency_map], t, steps, baseline, batch_size, n_random, seed, blur_sigma)[0]


def method_scores(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: Target = None,
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    **curve: Any,
) -> dict[str, DeletionInsertion]:
    """Each method's map of one image (:func:`interp.explain`, max |value| over channels) scored by
    deletion and insertion; all methods share the random orders and one batched run.

    Args:
        layer: the layer of the methods that read one (default theirs).
        options: per-method options, e.g. {"smoothgrad": {"n_samples": 10}}.
        curve: the curves' settings, as :func:`deletion_insertion`'s (steps, baseline, batch_size,
            n_random, seed, blur_sigma), with its defaults.

    Raises:
        MethodError: a bad option, method or curve setting; as :func:`deletion_insertion` otherwise.
    """
    settings = _curve_settings(curve)
    xb, t = _single(model, x, target)
    options = options or {}
    maps = [
        explain(
            model, xb, m, target=t, layer=layer if m in LAYER_METHODS else None, **dict(options.get(m, {}))
        ).spatial("absmax")
        for m in methods
    ]
    return dict(zip(methods, _score(model, xb, maps, t, *settings)))


CURVE_SETTINGS = ("steps", "baseline", "batch_size", "n_random", "seed", "blur_sigma")


def _curve_settings(given: Mapping[str, Any]) -> tuple:
    """The curve settings in :func:`_score`'s order, :func:`deletion_insertion`'s defaults where not given."""
    unknown = sorted(set(given) - set(CURVE_SETTINGS))
    if unknown:
        raise MethodError(
            f"unknown deletion/insertion setting(s) {', '.join(unknown)}; they are: {', '.join(CURVE_SETTINGS)}"
        )
    defaults = inspect.signature(deletion_insertion).parameters
    return tuple(given.get(k, defaults[k].default) for k in CURVE_SETTINGS)


def summarize(per_image: Sequence[Mapping[str, DeletionInsertion]]) -> list[dict[str, Any]]:
    """Mean AUCs per method over images (each item: :func:`method_scores` of one image)."""
    if not per_image:
        return []
    rows = []
    for m in per_image[0]:
        scores = [s[m] for s in per_image]
        rows.append(
            {
                "method": m,
                "images": len(scores),
                **{
                    k: float(np.mean([getattr(s, k) for s in scores]))
                    for k in ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
                },
            }
        )
    return rows


def mean_aucs(
    model: nn.Module,
    images: Sequence[torch.Tensor],
    methods: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Mean deletion and insertion AUCs per method (and of random orders) over preprocessed images;
    each image's predicted class is explained.

    Args:
        images: preprocessed images, each 1 x C x H x W (or C x H x W).
        progress: called as progress(done, total) after each image.
        kwargs: as :func:`method_scores` (steps, baseline, n_random, seed, layer, options, ...).
    """
    per_image = []
    for i, x in enumerate(images):
        per_image.append(method_scores(model, x, methods, **kwargs))
        if progress is not None:
            progress(i + 1, len(images))
    return summarize(per_image)

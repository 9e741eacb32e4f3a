"""What the batched metrics share: maps and masks as checked arrays, the targets of a batch, the
``explain_fn`` that the metrics which re-explain call, and the chunks they explain in."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Union

import numpy as np
import torch
from torch import nn

from ....errors import ParameterError
from ...core import Target, as_batch, logits_of, resolve_targets, using
from ...explain import LAYER_METHODS, explain

MapsLike = Union[np.ndarray, torch.Tensor]
# The metrics that explain call explain_fn on at most 32 inputs by default: a backward pass holds
# every activation, and peak memory grows with the chunk, not with the number of images.
# explain_fn(model, x, targets) -> maps: x is N x C x H x W on the model's device, targets (N,)
# int64; the maps are N x H x W (or N x 1 x H x W), one value per pixel, as a tensor or an array.
ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], MapsLike]


def explainer(method: str, layer: str | None = None, **options: Any) -> ExplainFn:
    """An ``explain_fn`` that runs one of interp's methods (:func:`interp.explain`) and reduces
    its map to one value per pixel (``Explanation.spatial()``: max |value| over channels).

    Args:
        method: a name of :data:`interp.methods.METHODS`.
        layer: the layer a CAM method reads (default theirs); ignored by the others.
        options: the method's own options (explain's keywords).
    """

    def explain_fn(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        found = explain(model, x, method, target=targets, layer=layer if method in LAYER_METHODS else None, **options)
        maps = np.asarray(found.spatial())
        return maps.reshape(len(x), *maps.shape[-2:])  # explain drops the batch axis of one image

    return explain_fn


def as_maps(maps: MapsLike, what: str = "maps") -> np.ndarray:
    """(N, H, W) float64 copy of maps given as (N, H, W), (N, 1, H, W) or one (H, W).

    Raises:
        ParameterError: another shape, or values that are NaN or infinite.
    """
    a = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    a = a.astype(np.float64)  # a copy: callers may change it in place
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] == 0:
        raise ParameterError(f"{what} are (N, H, W), one value per pixel, not shape {a.shape}")
    if not np.isfinite(a).all():
        raise ParameterError(f"the {what} contain NaN or infinite values")
    return a


def as_masks(masks: MapsLike, shape: tuple[int, ...]) -> np.ndarray:
    """Ground-truth masks as (N, H, W) bool, of the maps' ``shape``.

    Raises:
        ParameterError: masks of another shape.
    """
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    elif m.ndim == 2:
        m = m[None]
    if m.shape != shape:
        raise ParameterError(f"masks of shape {m.shape} for maps of shape {shape}: give one (H, W) mask per map")
    return m.astype(bool)


def unit_max(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own max |value| (an all-zero map stays zero)."""
    peak = np.abs(maps).reshape(len(maps), -1).max(1)
    return maps / np.where(peak > 0, peak, 1.0)[:, None, None]


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be an int >= 1, not {batch_size!r}")


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` of range(n)."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def images_and_targets(
    model: nn.Module, x: torch.Tensor, targets: Target, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The images as a batch on the model's device, their classes (the given ones, else the
    predictions) and the model's number of classes, from no-grad forward passes in chunks.

    Raises:
        ImageError: not an image batch. TargetError: a class the model does not have.
    """
    check_batch_size(batch_size)
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.no_grad():
        logits = torch.cat([logits_of(m, xb[s]) for s in chunks(len(xb), batch_size)])
    return xb, resolve_targets(logits, targets), logits.shape[1]


def run_explain(explain_fn: ExplainFn, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """``explain_fn`` on one chunk, its maps checked: (n, H, W) float64.

    Raises:
        ParameterError: maps of another number or size than the images.
    """
    maps = as_maps(explain_fn(model, x, targets), "explain_fn's maps")
    if maps.shape != (len(x), *x.shape[-2:]):
        raise ParameterError(
            f"explain_fn returned maps of shape {maps.shape} for {len(x)} images of {tuple(x.shape[-2:])}: "
            "it must return one input-resolution (H, W) map per image"
        )
    return maps


def explain_all(
    explain_fn: ExplainFn, model: nn.Module, xb: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> np.ndarray:
    """``explain_fn`` over a batch in chunks of ``batch_size``: (N, H, W) float64."""
    return np.concatenate([run_explain(explain_fn, model, xb[s], targets[s]) for s in chunks(len(xb), batch_size)])

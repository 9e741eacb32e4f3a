"""Feature maps of layers, per-channel summaries for ranking them, and filter activations."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ...errors import LayerError, ParameterError
from ..core import as_batch, forward_hooks, get_module, using
from ..layers import get_conv
from .filters import filters


def feature_maps(model: nn.Module, x: torch.Tensor, layers: str | Sequence[str]) -> dict[str, np.ndarray]:
    """The outputs of one or more layers for an input, as float32 numpy.

    Args:
        x: one image (C x H x W, or 1 x C x H x W as preprocess returns) or a batch N x C x H x W.
        layers: dotted layer names. A layer that runs more than once gives its last call.

    Returns:
        {layer: (C, H, W)} for one image, {layer: (N, C, H, W)} for a batch (a dense layer's
        output is (F,) / (N, F)). Values are the layer's own output, before any in-place
        activation that follows it.

    Raises:
        LayerError: unknown layer, a layer that does not run, or one that returns no tensor.
    """
    names = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    if not names:
        raise LayerError("no layers given; name at least one (e.g. 'features.conv1')")
    xb, single = as_batch(model, x)
    store: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            if not isinstance(output, torch.Tensor):
                raise LayerError(f"layer {name!r} returns a {type(output).__name__}, not a tensor")
            # Copy now: an in-place ReLU after this layer would change the tensor later.
            store[name] = output.detach().clone()

        return hook

    with using(model) as m, torch.inference_mode(False), torch.no_grad():
        modules = [(get_module(m, n), keep(n)) for n in names]
        with forward_hooks(modules):
            m(xb)
    missing = [n for n in names if n not in store]
    if missing:
        raise LayerError(f"layer(s) {', '.join(map(repr, missing))} did not run in the model's forward pass")
    return {n: (store[n][0] if single else store[n]).float().cpu().numpy() for n in names}


def channel_summary(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Each channel's mean and max over space, for ranking channels.

    Args:
        maps: (C, H, W) or (N, C, H, W).

    Returns:
        {"mean": (C,) or (N, C), "max": (C,) or (N, C)}.
    """
    a = np.asarray(maps, dtype=np.float32)
    if a.ndim not in (3, 4):
        raise ParameterError(f"expected feature maps (C, H, W) or (N, C, H, W), got shape {a.shape}")
    return {"mean": a.mean(axis=(-2, -1)), "max": a.max(axis=(-2, -1))}


def top_channels(maps: np.ndarray, k: int | None = None, by: str = "mean") -> np.ndarray:
    """Channel indices of one image's maps (C, H, W), strongest first by their mean or max."""
    if by not in ("mean", "max"):
        raise ParameterError(f"rank channels by 'mean' or 'max', not {by!r}")
    scores = channel_summary(maps)[by]
    if scores.ndim != 1:
        raise ParameterError("rank the channels of one image: pass maps of shape (C, H, W)")
    order = np.argsort(-scores, kind="stable")
    return order if k is None else order[:k]


def filter_activations(
    model: nn.Module, x: torch.Tensor, layer: str, indices: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen filters of a conv layer and what each of them computes on the input.

    Returns:
        (weights (k, in, kh, kw), activations (k, H, W)) for one image, activations
        (N, k, H, W) for a batch: the conv's output channels (bias included, before any
        activation function), at the layer's own resolution.

    Raises:
        LayerError: not a conv layer, or an index outside 0..out_channels-1.
    """
    conv = get_conv(model, layer)
    idx = _check_indices(indices, conv.out_channels, layer)
    maps = feature_maps(model, x, [layer])[layer]
    return filters(model, layer)[idx], np.take(maps, idx, axis=-3)


def _check_indices(indices: Sequence[int], n: int, layer: str) -> np.ndarray:
    try:
        idx = np.asarray(list(indices))
    except TypeError:
        raise LayerError(f"filter indices must be a list of ints, not {indices!r}") from None
    if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise LayerError(f"filter indices must be a non-empty list of ints, not {indices!r}")
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise LayerError(f"filter {int(bad[0])} does not exist: {layer!r} has {n} filters (0 to {n - 1})")
    return idx.astype(np.int64)

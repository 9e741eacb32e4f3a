"""Filters (kernels) of conv layers, and a number that says whether they learned structure."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...errors import LayerError, ParameterError
from ..layers import get_conv


def filters(model: nn.Module, layer: str) -> np.ndarray:
    """The weights of a conv layer as float32 (out, in, kh, kw)."""
    return get_conv(model, layer).weight.detach().float().cpu().numpy().copy()


def conv1_autocorrelation(weight: torch.Tensor | np.ndarray) -> float:
    """Lag-1 spatial autocorrelation of a bank of conv filters (out, in, kh, kw).

    Per filter and input channel the mean is subtracted; then over all horizontally and
    vertically adjacent weight pairs (a, b): sum(a*b) / (0.5 * sum(a^2 + b^2)). About 0 for
    random initialisation, about 0.66 for a bank of Gabor filters, 1 for constant slopes.
    """
    w = torch.as_tensor(weight).detach().double()
    w = w - w.mean(dim=(2, 3), keepdim=True)
    pairs = [(w[..., :, :-1], w[..., :, 1:]), (w[..., :-1, :], w[..., 1:, :])]
    num = sum((a * b).sum() for a, b in pairs)
    den = sum(0.5 * (a * a + b * b).sum() for a, b in pairs)
    value = float(num / den) if den > 0 else 0.0
    return value if math.isfinite(value) else 0.0


# ---------------------------------------------------------------------------------------------
# Ways to look at a bank of filters (out, in, kh, kw); raw values, viz scales them.


def rgb_tiles(weights: np.ndarray) -> np.ndarray:
    """First-layer filters as RGB tiles (out, kh, kw, 3).

    Raises:
        LayerError: the filters do not have 3 input channels.
    """
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[1] != 3:
        raise LayerError(
            f"RGB tiles need filters with 3 input channels (a first layer), got shape "
            f"{w.shape}; use per_input_channel or reduce_input_channels"
        )
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def per_input_channel(weights: np.ndarray, index: int) -> np.ndarray:
    """One filter's kernels, one per input channel: (in, kh, kw)."""
    w = np.asarray(weights)
    if not 0 <= index < w.shape[0]:
        raise LayerError(f"filter {index} does not exist: there are {w.shape[0]} (0 to {w.shape[0] - 1})")
    return w[index]


_REDUCTIONS = {
    "mean": lambda w: w.mean(axis=1),
    "sum": lambda w: w.sum(axis=1),
    "l2": lambda w: np.sqrt((w.astype(np.float64) ** 2).sum(axis=1)).astype(w.dtype),
    "absmax": lambda w: np.abs(w).max(axis=1),
}


def reduce_input_channels(weights: np.ndarray, how: str = "mean") -> np.ndarray:
    """One kh x kw picture per filter of a deeper layer: (out, kh, kw).

    Args:
        how: "mean" and "sum" keep the sign; "l2" and "absmax" show magnitude.
    """
    if how not in _REDUCTIONS:
        raise ParameterError(f"how must be one of {', '.join(_REDUCTIONS)}, not {how!r}")
    return _REDUCTIONS[how](np.asarray(weights))


def order_by_norm(weights: np.ndarray, descending: bool = True) -> np.ndarray:
    """Filter indices ordered by the L2 norm of each filter (stable for ties)."""
    w = np.asarray(weights, dtype=np.float64)
    norms = np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(axis=1))
    return np.argsort(-norms if descending else norms, kind="stable")

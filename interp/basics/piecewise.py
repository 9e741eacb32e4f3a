"""The piecewise-linear view of a ReLU network: around an input x0 the network is the affine map
W x + b, with W = dh/dx at x0 and W x0 + b = h(x0). Conv, linear, ReLU, max pooling and batch
norm in eval mode (an affine map) keep a network piecewise linear.

For a small network of one input, its linear pieces with their breakpoints (computed from the
weights, not by sampling); for any torch model, W by autograd and b two ways: from the definition
and as the sum of every layer's bias pushed to the output, which agree only where the model is
piecewise linear."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ParameterError

Layers = Sequence[tuple[np.ndarray, np.ndarray]]  # (W, b) per layer, ReLU between layers

# The two-hidden-layer example: h(x) = W3 relu(W2 relu(W1 x + b1) + b2) + b3.
EXAMPLE_NETWORK: list[tuple[np.ndarray, np.ndarray]] = [
    (np.array([[1.5], [0.5]]), np.array([0.0, 1.0])),
    (np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([0.0, 1.0])),
    (np.array([[1.0, 1.0]]), np.array([-1.0])),
]


def mlp_forward(layers: Layers, x) -> np.ndarray:
    """h(x) for inputs x of shape (N, d) (or (N,) for one input feature), ReLU between layers."""
    a = np.asarray(x, dtype=float)
    a = a[:, None] if a.ndim == 1 else a
    for n, (w, b) in enumerate(layers):
        a = a @ w.T + b
        if n < len(layers) - 1:
            a = np.maximum(a, 0.0)
    return a


def mlp_local_affine(layers: Layers, x0) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) at x0 as the product of the layers with the inactive units zeroed (numpy)."""
    x0 = np.atleast_1d(np.asarray(x0, dtype=float))
    slope, offset = np.eye(x0.size), np.zeros(x0.size)  # the identity: a = slope x + offset
    for n, (w, b) in enumerate(layers):
        slope, offset = w @ slope, w @ offset + b
        if n < len(layers) - 1:
            active = (slope @ x0 + offset) > 0
            slope, offset = slope * active[:, None], offset * active
    return slope, offset


@dataclass(frozen=True)
class Piece:
    """h(x) = slope x + intercept on [start, end]."""

    start: float
    end: float
    slope: float
    intercept: float


def linear_pieces(layers: Layers, lo: float, hi: float) -> list[Piece]:
    """The linear pieces of a one-input, one-output ReLU network on [lo, hi].

    Each unit's pre-activation is affine on a piece, so it changes sign at most once there, at
    -offset / slope: pieces are split at those points, layer by layer. Neighbouring pieces with
    the same line are merged, so every boundary left is a real breakpoint (a kink of h).

    Raises:
        ParameterError: an empty interval, or a network with more than one input or output.
    """
    if not hi > lo:
        raise ParameterError(f"the interval must have lo < hi, not [{lo}, {hi}]")
    if layers[0][0].shape[1] != 1 or layers[-1][0].shape[0] != 1:
        raise ParameterError("linear_pieces takes a network of one input and one output")
    pieces = [(lo, hi, np.ones(1), np.zeros(1))]
    for n, (w, b) in enumerate(layers):
        last = n == len(layers) - 1
        pieces = [(s, e, w @ slope, w @ offset + b) for s, e, slope, offset in pieces]
        if not last:
            pieces = [p for piece in pieces for p in _split_at_kinks(*piece)]
    merged: list[Piece] = []
    for s, e, slope, offset in pieces:
        if merged and np.isclose(merged[-1].slope, slope[0]) and np.isclose(merged[-1].intercept, offset[0]):
            merged[-1] = Piece(merged[-1].start, e, merged[-1].slope, merged[-1].intercept)
        else:
            merged.append(Piece(float(s), float(e), float(slope[0]), float(offset[0])))
    return merged


def _split_at_kinks(start: float, end: float, slope: np.ndarray, offset: np.ndarray):
    """The piece cut where any unit's pre-activation crosses 0, each part with its ReLU applied."""
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = -offset / slope
    cuts = sorted({float(r) + 0.0 for r in roots[np.isfinite(roots)] if start < r < end})  # + 0.0: no '-0.0'
    bounds = [start, *cuts, end]
    for s, e in zip(bounds[:-1], bounds[1:]):
        active = (slope * (s + e) / 2 + offset) > 0  # the sign is constant inside the part
        yield s, e, slope * active, offset * active


def breakpoints(pieces: Sequence[Piece]) -> list[float]:
    """Where h changes slope: the boundaries between neighbouring pieces."""
    return [p.end for p in pieces[:-1]]


def example_module():
    """:data:`EXAMPLE_NETWORK` as a float64 torch nn.Sequential (Linear, ReLU, Linear, ReLU, Linear)."""
    import torch
    from torch import nn

    modules = []
    for n, (w, b) in enumerate(EXAMPLE_NETWORK):
        linear = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear] + ([nn.ReLU()] if n < len(EXAMPLE_NETWORK) - 1 else [])
    return nn.Sequential(*modules).eval()

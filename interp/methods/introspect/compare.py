"""Comparing two models of one architecture: matched filters and linear CKA of activations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ...errors import LayerError, ParameterError
from ..layers import conv_layers
from .activations import feature_maps
from .filters import filters


@dataclass
class FilterMatch:
    """Filters of model A matched one-to-one to filters of model B, most alike first."""

    a: np.ndarray  # filter indices in A
    b: np.ndarray  # matched filter indices in B
    cosine: np.ndarray  # cosine similarity of each pair
    similarity: np.ndarray  # the full (out_a, out_b) cosine matrix


def cosine_matrix(weights_a: np.ndarray, weights_b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every filter of A with every filter of B (flattened weights)."""
    fa = weights_a.reshape(len(weights_a), -1).astype(np.float64)
    fb = weights_b.reshape(len(weights_b), -1).astype(np.float64)
    if fa.shape[1] != fb.shape[1]:
        raise LayerError(f"filters of shape {weights_a.shape[1:]} and {weights_b.shape[1:]} cannot be compared")
    na = np.linalg.norm(fa, axis=1, keepdims=True)
    nb = np.linalg.norm(fb, axis=1, keepdims=True)
    # A zero filter is similar to nothing (cosine 0) instead of NaN.
    fa = np.divide(fa, na, out=np.zeros_like(fa), where=na > 0)
    fb = np.divide(fb, nb, out=np.zeros_like(fb), where=nb > 0)
    return fa @ fb.T


def match_filters(weights_a: np.ndarray, weights_b: np.ndarray) -> FilterMatch:
    """Hungarian assignment maximising the summed cosine similarity; pairs sorted by similarity."""
    sim = cosine_matrix(weights_a, weights_b)
    from scipy.optimize import linear_sum_assignment  # here, not at import: scipy is slow to import

    rows, cols = linear_sum_assignment(sim, maximize=True)
    order = np.argsort(-sim[rows, cols], kind="stable")
    rows, cols = rows[order], cols[order]
    return FilterMatch(rows, cols, sim[rows, cols], sim)


def linear_cka(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two (n examples, features) matrices.

    Computed from the n x n Gram matrices, so thousands of features per example cost nothing
    extra. 1 for representations equal up to rotation and isotropic scaling.
    """
    a = features_a.reshape(len(features_a), -1).astype(np.float64)
    b = features_b.reshape(len(features_b), -1).astype(np.float64)
    if len(a) != len(b):
        raise ParameterError("both representations need the same examples")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    ka, kb = a @ a.T, b @ b.T
    hsic = float((ka * kb).sum())
    norm = float(np.sqrt((ka * ka).sum() * (kb * kb).sum()))
    return hsic / norm if norm > 0 else 0.0


def layer_similarity(
    model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None
) -> list[dict[str, float | str]]:
    """Per conv layer: mean cosine of the matched filters, and linear CKA of the activations on x.

    Args:
        x: a batch (N, C, H, W) of preprocessed images, the same for both models.
        layers: conv layer names present in both models (default: all of model A's).
    """
    layers = list(layers or conv_layers(model_a))
    missing = [n for n in layers if n not in conv_layers(model_b)]
    if missing:
        raise LayerError(f"layers {missing} are not conv layers of both models: are they the same architecture?")
    maps_a = feature_maps(model_a, x, layers)
    maps_b = feature_maps(model_b, x, layers)
    rows: list[dict[str, float | str]] = []
    for name in layers:
        match = match_filters(filters(model_a, name), filters(model_b, name))
        rows.append(
            {"layer": name, "matched_cosine": float(match.cosine.mean()), "cka": linear_cka(maps_a[name], maps_b[name])}
        )
    return rows


def share_of_evidence(values: np.ndarray) -> np.ndarray:
    """A map divided by its total |value|: each pixel's share of the evidence (|shares| sum to 1), so
    that two models' maps of one image compare on one colour scale even where their scores differ.
    An all-zero map stays zero."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    total = np.abs(values).sum()
    return (values / total if total > 0 else values).astype(np.float32)

"""Filter matching against brute force, linear CKA against its feature-space definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import interp
from interp.methods.introspect.compare import cosine_matrix, layer_similarity, linear_cka, match_filters


def test_hungarian_matching_equals_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3, 2, 2)), rng.normal(size=(5, 3, 2, 2))
    match = match_filters(a, b)
    sim = cosine_matrix(a, b)
    best = max(itertools.permutations(range(5)), key=lambda p: sum(sim[i, p[i]] for i in range(5)))
    assert dict(zip(match.a, match.b)) == dict(enumerate(best))
    assert np.all(np.diff(match.cosine) <= 1e-12)  # most alike first


def test_matching_recovers_a_permutation_and_sign_free_cosine():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 3, 3, 3))
    perm = rng.permutation(8)
    match = match_filters(a, 2.5 * a[perm])  # scaled copies in another order
    assert np.allclose(match.cosine, 1.0)
    assert all(perm[j] == i for i, j in zip(match.a, match.b))
    zero = np.zeros((2, 3, 3, 3))
    assert np.isfinite(match_filters(zero, a[:2]).cosine).all()


def _cka_feature_space(x, y):
    """Kornblith et al. eq. for linear CKA: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), centred."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_linear_cka_matches_definition_and_invariances():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 7)), rng.normal(size=(20, 4))
    assert linear_cka(x, y) == pytest.approx(_cka_feature_space(x, y), rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, x + 5.0) == pytest.approx(1.0)  # centring removes offsets
    assert linear_cka(x, np.zeros_like(x)) == 0.0


def test_layer_similarity_of_a_model_with_itself_and_a_fresh_one():
    torch.manual_seed(0)
    a = interp.build_model("table2_cnn_cifar10").eval()
    torch.manual_seed(1)
    b = interp.build_model("table2_cnn_cifar10").eval()
    x = torch.randn(6, 3, 32, 32)
    same = layer_similarity(a, a, x)
    assert [r["layer"] for r in same] == ["conv1", "conv2", "conv3"]
    assert all(r["matched_cosine"] == pytest.approx(1.0) and r["cka"] == pytest.approx(1.0) for r in same)
    other = layer_similarity(a, b, x)
    assert all(r["matched_cosine"] < 0.9 for r in other)
    with pytest.raises(interp.LayerError):
        layer_similarity(a, interp.build_model("vanilla_cnn_cifar10"), x, ["conv2"])

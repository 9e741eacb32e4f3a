"""Relevance maximisation: a channel's reference images ranked by the relevance it carried for a
class, held to activation x gradient computed with plain autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.concepts import relevance_examples
from interp.errors import LayerError, ParameterError
from interp.methods.introspect import dataset_examples
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot
from tests.methods.test_lrp import _plain_cnn


def _a_times_g(model, x: torch.Tensor, target: int) -> np.ndarray:
    """Per image, conv2's output times the gradient of the class's logit there: LRP-0's relevance
    at the layer on a bias-free ReLU network (Ancona et al. 2018), (N, C, h, w)."""
    a = model.conv2(model.pool1(model.relu1(model.conv1(x))))
    logits = model.fc(model.flatten(model.pool2(model.relu2(a))))
    (g,) = torch.autograd.grad(logits[:, target].sum(), a)
    return (a * g).detach().numpy()


def test_the_top_images_are_those_with_the_highest_relevance_peak():
    model = _plain_cnn(bias=False)
    x = image_batch(10, 16, seed=11)
    before = snapshot(model)
    found = relevance_examples(model, x, "conv2", target=3, k=4, composite="epsilon", batch_size=3)
    rel = _a_times_g(model, x, 3)
    peaks = rel.reshape(10, 12, -1).max(2)  # (N, C)
    expected = np.argsort(-peaks, axis=0, kind="stable")[:4].T  # (C, k)
    np.testing.assert_array_equal(found.top, expected)
    np.testing.assert_allclose(found.top_values, np.take_along_axis(peaks.T, expected, 1), rtol=1e-3, atol=1e-6)
    # relevance is signed: the bottom images are those where the channel spoke most against the class
    lows = rel.reshape(10, 12, -1).min(2)
    assert found.bottom is not None
    np.testing.assert_array_equal(found.bottom, np.argsort(lows, axis=0, kind="stable")[:4].T)
    assert found.top_boxes.shape == (12, 4, 4)
    assert_unchanged(before, model)
    assert not hooks_left(model)


def test_it_differs_from_activation_maximisation_and_shares_its_boxes():
    # The same crops machinery: at one position, relevance and activation rank with the same receptive field.
    model = _plain_cnn(bias=False)
    x = image_batch(12, 16, seed=12)
    by_relevance = relevance_examples(model, x, "conv2", target=0, k=3, composite="epsilon")
    by_activation = dataset_examples(model, x, "conv2", k=3)["conv2"]
    assert by_relevance.field == by_activation.field
    assert not np.array_equal(by_relevance.top, by_activation.top)


def test_the_cache_returns_the_same_ranking(tmp_path, monkeypatch):
    model = _plain_cnn(bias=True, batch_norm=True)
    x = image_batch(6, 16, seed=13)
    first = relevance_examples(model, x, "conv2", target=1, k=2, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    import interp.concepts.references as references

    monkeypatch.setattr(references, "_conditional", lambda *a, **k: pytest.fail("recomputed"))
    again = relevance_examples(model, x, "conv2", target=1, k=2, cache=tmp_path)
    np.testing.assert_array_equal(first.top, again.top)
    np.testing.assert_array_equal(first.top_boxes, again.top_boxes)


def test_errors_name_what_is_wrong():
    model = _plain_cnn(bias=True)
    with pytest.raises(LayerError, match="conv9"):
        relevance_examples(model, image_batch(2, 16), "conv9", target=0)
    with pytest.raises(ParameterError, match="class 7 is out of range"):
        relevance_examples(model, image_batch(2, 16), "conv2", target=7)
    assert not hooks_left(model)

"""CRP: conditional LRP maps add up to the plain LRP map, equal zennit-crp's, and pick the channels
with the most relevance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp
from interp.concepts import crp, layer_relevance
from interp.data import zebra_path
from interp.errors import LayerError, ParameterError
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot
from tests.methods.test_lrp import _plain_cnn


def _corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_the_maps_of_every_channel_add_up_to_the_lrp_map():
    # The backward pass is linear in the relevance it starts from: conditioning on each channel of a
    # layer in turn splits the plain LRP map into parts.
    model = _plain_cnn(bias=True, batch_norm=True)
    x = image_batch(1, 16, seed=3)
    before = snapshot(model)
    every = crp(model, x, "conv2", channels=range(12), target=2)
    plain = interp.explain(model, x, "lrp", target=2).map.sum(0)
    np.testing.assert_allclose(every.maps.sum(0), plain, rtol=1e-4, atol=1e-6 * np.abs(plain).max())
    assert (
        every.share.shape == (12,) and abs(np.abs(every.layer_relevance).sum() - np.abs(every.relevance).sum()) < 1e-5
    )
    assert_unchanged(before, model)
    assert not hooks_left(model)


def test_the_default_channels_are_the_most_relevant_with_their_shares():
    model = _plain_cnn(bias=True, batch_norm=True)
    x = image_batch(1, 16, seed=4)
    result = crp(model, x, "conv2", top=3)
    order = np.argsort(-result.layer_relevance)[:3]
    np.testing.assert_array_equal(result.channels, order)
    np.testing.assert_allclose(result.share, result.layer_relevance[order] / np.abs(result.layer_relevance).sum())
    assert result.maps.shape == (3, 16, 16) and result.target == int(model(x).argmax())


def test_conditional_lrp0_is_gradient_times_input_through_one_channel():
    # On a ReLU network without biases, LRP-0 below a layer is gradient x input (Ancona et al. 2018),
    # so CRP's map for channel c is x * d<a_c, g_c>/dx with g the logit's gradient at the layer's
    # output a, held fixed: plain autograd, independent of Zennit.
    model = _plain_cnn(bias=False)
    x = image_batch(1, 16, seed=5)
    ours = crp(model, x, "conv2", channels=[0, 5, 7], target=1, composite="epsilon")
    xg = x.clone().requires_grad_(True)
    kept = {}
    handle = model.conv2.register_forward_hook(lambda m, i, o: kept.setdefault("a", o))
    try:
        logit = model(xg)[0, 1]
    finally:
        handle.remove()
    a = kept["a"]
    (g,) = torch.autograd.grad(logit, a, retain_graph=True)
    for channel, ours_map in zip(ours.channels, ours.maps):
        mask = torch.zeros_like(g)
        mask[:, channel] = 1
        (grad,) = torch.autograd.grad(a, xg, grad_outputs=g * mask, retain_graph=True)
        expected = (grad * x).sum(1)[0].numpy()
        # epsilon 1e-6 in every denominator: the smallest values move by a few per cent
        np.testing.assert_allclose(ours_map, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
        assert _corr(ours_map, expected) > 0.99999
        assert ours.layer_relevance[channel] == pytest.approx(float((a * g)[0, channel].detach().sum()), rel=1e-4)


def test_layer_relevance_of_a_batch_is_each_images_a_times_g():
    # Relevance maximisation's score: per image and channel, the relevance reaching the layer; on a
    # bias-free ReLU network with LRP-0 that is sum over positions of activation x gradient.
    model = _plain_cnn(bias=False)
    x = image_batch(3, 16, seed=6)
    rel, classes = layer_relevance(model, x, "conv2", target=[0, 2, 1], composite="epsilon", batch_size=2)
    assert rel.shape == (3, 12) and classes.tolist() == [0, 2, 1]
    for i, t in enumerate((0, 2, 1)):
        a = model.conv2(model.pool1(model.relu1(model.conv1(x[i : i + 1]))))
        logit = model.fc(model.flatten(model.pool2(model.relu2(a))))[0, t]
        (g,) = torch.autograd.grad(logit, a)
        np.testing.assert_allclose(rel[i], (a * g)[0].sum((1, 2)).detach().numpy(), rtol=1e-3, atol=1e-6)
        one = crp(model, x[i : i + 1], "conv2", target=t, composite="epsilon")
        np.testing.assert_allclose(rel[i], one.layer_relevance, rtol=1e-5, atol=1e-7)


def test_errors_name_what_is_wrong():
    model = _plain_cnn(bias=True)
    with pytest.raises(ParameterError, match="one image"):
        crp(model, image_batch(2, 16), "conv2")
    with pytest.raises(ParameterError, match="channels must be in 0..11"):
        crp(model, image_batch(1, 16), "conv2", channels=[12])
    with pytest.raises(LayerError, match="conv9"):
        crp(model, image_batch(1, 16), "conv9")
    assert not hooks_left(model)


def test_on_a_shipped_model_every_channel_adds_up_to_the_lrp_map():
    # NiN: batch norms merged by the canonizer, trained weights, a 1x1 conv layer of 96 channels.
    spec = interp.get_spec("nin_cifar10")
    model = interp.load_model("nin_cifar10", device="cpu")
    x = interp.preprocess(interp.load_image(zebra_path()), spec)
    layer = "features.conv2_2"
    channels = model.get_submodule(layer).out_channels
    every = crp(model, x, layer, channels=range(channels), mean=spec.mean, std=spec.std)
    plain = interp.explain(model, x, "lrp", mean=spec.mean, std=spec.std).map.sum(0)
    np.testing.assert_allclose(every.maps.sum(0), plain, rtol=1e-3, atol=1e-5 * np.abs(plain).max())
    top = crp(model, x, layer, top=3)
    assert top.share[0] >= top.share[1] >= top.share[2] and top.share.sum() <= 1

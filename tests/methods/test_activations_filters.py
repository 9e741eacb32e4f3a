"""Filters, feature maps and filter activations against direct convolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import interp
from interp.errors import LayerError
from interp.methods import feature_maps, filter_activations, filters, reduce_input_channels, rgb_tiles
from interp.methods.introspect import channel_summary, order_by_norm, per_input_channel, top_channels
from tests.methods.helpers import image_batch, registry_model

CLASSIC = [14, 26, 32, 49, 52]  # the ResNet-18 conv1 filters of the zebra exercise


def test_resnet18_conv1_filter_activations_are_convolutions(tmp_path):
    from interp.data import zebra_path

    spec = interp.get_spec("resnet18_imagenet")
    m = registry_model("resnet18_imagenet")
    x = interp.preprocess(interp.load_image(zebra_path()), spec)
    w, acts = filter_activations(m, x, "conv1", CLASSIC)
    assert w.shape == (5, 3, 7, 7) and acts.shape == (5, 112, 112)
    conv = m.conv1
    np.testing.assert_array_equal(w, conv.weight.detach().numpy()[CLASSIC])
    ref = F.conv2d(x, conv.weight[CLASSIC], None, stride=2, padding=3)[0]  # conv1 has no bias
    np.testing.assert_allclose(acts, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    # the first ten channels of the last conv layer: 512 x 7 x 7 at 224 px
    w, acts = filter_activations(m, x, "layer4.1.conv2", range(10))
    assert w.shape == (10, 512, 3, 3) and acts.shape == (10, 7, 7)


def test_filter_activation_includes_the_bias_and_precedes_the_relu():
    m = registry_model("alexnet_gap_pacs_class")
    x = image_batch(2, 99)
    conv = m.features.conv1
    w, acts = filter_activations(m, x, "features.conv1", [0, 5, 95])
    ref = F.conv2d(x, conv.weight[[0, 5, 95]], conv.bias[[0, 5, 95]], stride=4)
    assert acts.shape == (2, 3, 23, 23)
    np.testing.assert_allclose(acts, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert (acts < 0).any()  # before the ReLU


def test_deeper_filter_activation_is_a_convolution_of_the_layer_input(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(1, 16)
    w, acts = filter_activations(m, x, "conv2", [1, 4])
    with torch.no_grad():
        inp = F.relu(m.conv1(x))
        ref = F.conv2d(inp, m.conv2.weight[[1, 4]], m.conv2.bias[[1, 4]], padding=1)[0]
    np.testing.assert_allclose(acts, ref.numpy(), rtol=1e-5, atol=1e-6)
    assert (acts < 0).any()  # conv2 is followed by an in-place ReLU; we see its input


def test_feature_maps_shapes_and_values(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(3, 16)
    maps = feature_maps(m, x, ["conv1", "relu2", "fc"])
    assert maps["conv1"].shape == (3, 4, 16, 16) and maps["relu2"].shape == (3, 6, 16, 16)
    assert maps["fc"].shape == (3, 3)
    with torch.no_grad():
        conv1 = m.conv1(x)
        relu2 = F.relu(m.conv2(F.relu(conv1)))
    np.testing.assert_allclose(maps["conv1"], conv1.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(maps["relu2"], relu2.numpy(), rtol=1e-6, atol=1e-6)
    one = feature_maps(m, x[0], "conv1")  # one image, a single name
    assert one["conv1"].shape == (4, 16, 16)
    np.testing.assert_allclose(one["conv1"], maps["conv1"][0], rtol=1e-5, atol=1e-6)


def test_feature_map_errors(tiny_gap_model):
    x = image_batch(1, 16)
    with pytest.raises(LayerError, match="conv7"):
        feature_maps(tiny_gap_model, x, ["conv7"])
    with pytest.raises(LayerError):
        feature_maps(tiny_gap_model, x, [])
    with pytest.raises(LayerError, match="Conv2d"):
        filter_activations(tiny_gap_model, x, "relu1", [0])
    with pytest.raises(LayerError, match="4 filters"):
        filter_activations(tiny_gap_model, x, "conv1", [4])
    with pytest.raises(interp.ImageError):
        feature_maps(tiny_gap_model, np.zeros((3, 16, 16)), ["conv1"])


def test_channel_summary_and_ranking():
    maps = np.zeros((3, 2, 2), np.float32)
    maps[0] = 1.0
    maps[1, 0, 0] = 8.0
    maps[2] = -1.0
    s = channel_summary(maps)
    np.testing.assert_array_equal(s["mean"], [1.0, 2.0, -1.0])
    np.testing.assert_array_equal(s["max"], [1.0, 8.0, -1.0])
    np.testing.assert_array_equal(top_channels(maps, by="mean"), [1, 0, 2])
    np.testing.assert_array_equal(top_channels(maps, k=1, by="max"), [1])
    assert channel_summary(np.zeros((2, 3, 4, 4)))["mean"].shape == (2, 3)


def test_filter_viewing_helpers():
    m = registry_model("resnet18_imagenet")
    w1 = filters(m, "conv1")
    tiles = rgb_tiles(w1)
    assert tiles.shape == (64, 7, 7, 3)
    np.testing.assert_array_equal(tiles[5, 2, 3], w1[5, :, 2, 3])
    w = filters(m, "layer1.0.conv1")
    assert per_input_channel(w, 3).shape == (64, 3, 3)
    np.testing.assert_allclose(reduce_input_channels(w, "mean"), w.mean(1))
    np.testing.assert_allclose(reduce_input_channels(w, "l2"), np.sqrt((w**2).sum(1)), rtol=1e-5)
    order = order_by_norm(w)
    norms = np.linalg.norm(w.reshape(64, -1), axis=1)
    assert sorted(order.tolist()) == list(range(64)) and np.all(np.diff(norms[order]) <= 0)
    with pytest.raises(LayerError, match="3 input channels"):
        rgb_tiles(w)
    with pytest.raises(LayerError):
        per_input_channel(w, 64)

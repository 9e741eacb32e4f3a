"""What a filter looks for: receptive fields against the analytic values and autograd, dataset
examples against a brute-force ranking, feature visualisation on tiny and trained models."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interp
from interp.errors import ImageError, LayerError, ParameterError
from interp.methods import feature_maps
from interp.methods.introspect import channel_maxima, crop, dataset_examples, feature_visualization, receptive_field
from interp.visualize import parse_channels
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot

ALEXNET = {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99, "conv4": 131, "conv5": 163, "pool5": 195}


@pytest.mark.parametrize("name", ["alexnet_gap_pacs_class", "alexnet_pacs_domain"])
def test_alexnet_receptive_fields_are_the_analytic_ones(name):
    model = interp.get_spec(name).build().eval()
    names = {n for n, _ in model.named_modules()}
    checked = 0
    for short, size in ALEXNET.items():
        layer = f"features.{short}"
        if layer not in names:
            assert name.startswith("alexnet_gap") and short == "pool5", (name, layer)  # GAP drops pool5
            continue
        rf = receptive_field(model, layer, 227)
        assert rf.size == (size, size), layer
        checked += 1
    assert checked >= 7
    assert receptive_field(model, "features.conv1", 227).stride == (4, 4)
    assert receptive_field(model, "features.conv5", 227).stride == (16, 16)


def _field_model() -> nn.Module:
    """Padding, pooling, stride and dilation, with positive weights so that every input pixel in
    a unit's field has a non-zero gradient."""
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 2, 3, padding=1)),
                ("pool", nn.AvgPool2d(2)),
                ("conv2", nn.Conv2d(2, 2, 3, stride=2, padding=2, dilation=2)),
                ("relu", nn.ReLU()),
                ("conv3", nn.Conv2d(2, 2, 5, padding="same")),
            ]
        )
    )
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.1, 1.0)
    return model.eval()


@pytest.mark.parametrize("layer", ["conv1", "pool", "conv2", "conv3"])
def test_receptive_field_boxes_match_the_gradient_support(layer):
    model, hw = _field_model(), (40, 40)
    rf = receptive_field(model, layer, hw)
    out = feature_maps(model, torch.zeros(1, 3, *hw), [layer])[layer]
    # Not the last units: there a dilated kernel's outer tap can fall on padding, leaving a hole
    # at the end of the field (the field is the span of the taps, as usual).
    units, supports = [(0, 0), (1, 2), (out.shape[-2] // 2, out.shape[-1] // 2 + 1)], []
    for i, j in units:
        x = torch.ones(1, 3, *hw, requires_grad=True)
        acts = model[: list(dict(model.named_children())).index(layer) + 1](x)
        (g,) = torch.autograd.grad(acts[0, 0, i, j], x)
        rows, cols = np.nonzero(g[0].abs().sum(0).numpy())
        supports.append((rows.min(), cols.min(), rows.max() + 1, cols.max() + 1))
        assert rf.box(i, j, hw) == supports[-1], (layer, i, j)
    rows, cols = np.array(units).T  # all units in one call, as dataset examples do
    np.testing.assert_array_equal(rf.boxes(rows, cols, hw), np.array(supports))


def _brute_force(model, images, layer, k):
    maps = feature_maps(model, images, [layer])[layer]  # (N, C, H, W)
    n, c, h, w = maps.shape
    flat = maps.reshape(n, c, -1)
    top = np.argsort(-flat.max(2), axis=0, kind="stable")[:k].T
    where = flat.argmax(2)
    return maps, top, np.take_along_axis(flat.max(2).T, top, 1), where


@pytest.mark.parametrize("batch_size", [7, 2, 64])  # more than k per batch, fewer, and all in one
@pytest.mark.parametrize("layer", ["conv1", "relu1", "conv2"])
def test_dataset_examples_equal_a_brute_force_ranking(tiny_gap_model, layer, batch_size):
    images, k = image_batch(23, 16, seed=1), 5
    before = snapshot(tiny_gap_model)
    found = dataset_examples(tiny_gap_model, images, ["conv1", "relu1", "conv2"], k, batch_size=batch_size)
    assert_unchanged(before, tiny_gap_model)
    assert not hooks_left(tiny_gap_model)
    ex = found[layer]
    maps, top, values, where = _brute_force(tiny_gap_model, images, layer, k)
    np.testing.assert_array_equal(ex.top, top)
    np.testing.assert_allclose(ex.top_values, values, rtol=1e-6)
    rf = receptive_field(tiny_gap_model, layer, 16)
    for c in range(ex.channels):
        for r in range(k):
            at = where[ex.top[c, r], c]
            assert tuple(ex.top_boxes[c, r]) == rf.box(at // 16, at % 16, (16, 16))
    if layer == "relu1":
        assert ex.bottom is None  # a ReLU has no negative values to rank
    else:
        low = np.argsort(maps.reshape(*maps.shape[:2], -1).min(2), axis=0, kind="stable")[:k].T
        np.testing.assert_array_equal(ex.bottom, low)


def test_dataset_examples_cache_and_crops(tiny_gap_model, tmp_path):
    images = image_batch(12, 16, seed=2)
    first = dataset_examples(tiny_gap_model, images, ["conv2"], 3, cache=tmp_path)["conv2"]
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = dataset_examples(tiny_gap_model, images, ["conv2"], 3, cache=tmp_path)["conv2"]
    for f in ("top", "top_values", "top_boxes", "bottom", "bottom_values", "bottom_boxes"):
        np.testing.assert_array_equal(getattr(first, f), getattr(again, f))
    picture = np.zeros((16, 16, 3), np.uint8)
    t, left, b, r = first.top_boxes[0, 0]
    assert crop(picture, first.top_boxes[0, 0]).shape == (b - t, r - left, 3)
    with pytest.raises(LayerError):
        dataset_examples(tiny_gap_model, images, ["nope"], 3)
    assert not hooks_left(tiny_gap_model)


class _ReusedReLU(nn.Module):
    """One ReLU module called twice per forward pass, as in torchvision's ResNet blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))))


def test_dataset_examples_refuse_a_layer_that_runs_twice():
    model, images = _ReusedReLU().eval(), image_batch(5, 12, seed=3)
    with pytest.raises(LayerError, match="more than once"):
        dataset_examples(model, images, ["relu"], 2, batch_size=2)
    assert not hooks_left(model)
    assert dataset_examples(model, images, ["conv2"], 2, batch_size=2)["conv2"].top.shape == (4, 2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_dataset_examples_refuse_images_that_are_not_finite(tiny_gap_model, bad):
    images = image_batch(9, 16, seed=4)
    images[7, 1, 3, 4] = bad  # in the second batch, one pixel
    with pytest.raises(ImageError, match="NaN or infinite"):
        dataset_examples(tiny_gap_model, images, ["conv2"], 2, batch_size=4)
    assert not hooks_left(tiny_gap_model)


def test_feature_visualization_increases_the_objective_and_is_seeded(tiny_gap_model):
    before = snapshot(tiny_gap_model)
    seen = []
    a = feature_visualization(
        tiny_gap_model, "conv2", [0, 3, 5], steps=24, size=24, seed=7, progress=lambda done, total: seen.append(done)
    )
    assert_unchanged(before, tiny_gap_model)
    assert not hooks_left(tiny_gap_model)
    assert a.images.shape == (3, 3, 24, 24) and a.objective.shape == (3, 24) and seen[-1] == 24
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert (a.objective[:, -4:].mean(1) > a.objective[:, :4].mean(1)).all()
    b = feature_visualization(tiny_gap_model, "conv2", [0, 3, 5], steps=24, size=24, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    c = feature_visualization(tiny_gap_model, "conv2", [0, 3, 5], steps=24, size=24, seed=8)
    assert not np.array_equal(a.images, c.images)


def test_feature_visualization_logits_neurons_budget_and_errors(tiny_gap_model):
    logits = feature_visualization(tiny_gap_model, None, [2], steps=16, size=16, seed=0, tv=0.1)
    assert logits.objective[0, -1] > logits.objective[0, 0]
    neuron = feature_visualization(tiny_gap_model, "conv1", [1], steps=4, size=16, position="centre")
    assert neuron.objective.shape == (1, 4)
    quick = feature_visualization(tiny_gap_model, "conv1", [0, 1], steps=50, size=16, time_budget=0.0)
    assert quick.objective.shape == (2, 1)
    with pytest.raises(LayerError):
        feature_visualization(tiny_gap_model, "conv1", [99], steps=2, size=16)
    with pytest.raises(LayerError):
        feature_visualization(tiny_gap_model, "nope", [0], steps=2, size=16)
    with pytest.raises(ParameterError):
        feature_visualization(tiny_gap_model, "conv1", [0], steps=0, size=16)
    assert not hooks_left(tiny_gap_model)


def _wants_bright() -> nn.Module:
    """One channel, relu(mean of R, G, B - 0.65): zero, with zero gradient, around a grey image."""
    conv = nn.Conv2d(3, 1, 1)
    assert conv.bias is not None
    with torch.no_grad():
        conv.weight.fill_(1 / 3)
        conv.bias.fill_(-0.65)
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU())])).eval()


def test_starts_find_a_channel_that_grey_cannot():
    model = _wants_bright()
    grey = feature_visualization(model, "relu", [0], steps=16, size=16, seed=0)
    assert (grey.objective == 0).all()  # the grey start has no gradient to follow
    found = feature_visualization(model, "relu", [0, 0, 0], steps=16, size=16, seed=0, starts=4)
    assert found.images.shape == (3, 3, 16, 16) and found.objective.shape == (3, 16)
    by_hand = np.maximum(found.images.mean(1) - 0.65, 0).reshape(3, -1).max(1)
    np.testing.assert_allclose(channel_maxima(model, found.images, "relu", [0, 0, 0]), by_hand, atol=1e-6)
    assert (by_hand > 0.1).all() and (found.objective[:, -1] > 0.1).all()
    again = feature_visualization(model, "relu", [0, 0, 0], steps=16, size=16, seed=0, starts=4)
    np.testing.assert_array_equal(found.images, again.images)
    with pytest.raises(ParameterError):
        feature_visualization(model, "relu", [0], steps=4, size=16, starts=0)


def test_fourier_image_colour_shift_and_keeping_rows():
    from interp.methods.introspect.featvis import FourierImage

    image = FourierImage(3, 10, torch.Generator().manual_seed(0))
    with torch.no_grad():
        image.spectrum.zero_()
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 1.0, 1.5]])
    image.shift_colour(logits)
    np.testing.assert_allclose(
        image().detach().numpy(), torch.sigmoid(logits)[:, :, None, None].expand(3, 3, 10, 10), atol=1e-5
    )
    opt = torch.optim.Adam(image.parameters(), lr=0.1)
    image().sum().backward()
    opt.step()
    before, state = image().detach(), {k: v.clone() for k, v in opt.state[image.spectrum].items()}
    image.keep(torch.tensor([2, 0]), opt)
    np.testing.assert_array_equal(image().detach().numpy(), before[[2, 0]].numpy())
    kept = opt.state[image.spectrum]
    np.testing.assert_array_equal(kept["exp_avg"].numpy(), state["exp_avg"][[2, 0]].numpy())
    assert opt.param_groups[0]["params"] == [image.spectrum] and len(opt.state) == 1


def test_optimised_images_beat_the_best_held_out_image():
    """table2_cnn_cifar10, conv1 and conv2: each channel's centre unit optimised at 32 px beats
    the best of the held-out images (the full test set under the data root, else the sample)."""
    from interp.data import held_out_batch

    spec = interp.get_spec("table2_cnn_cifar10")
    model = interp.load_model("table2_cnn_cifar10", device="cpu")
    batch = held_out_batch(spec, 500)
    found = dataset_examples(model, batch.x, ["conv1", "conv2"], 1)
    for layer in ("conv1", "conv2"):
        channels = list(range(12))
        vis = feature_visualization(
            model, layer, channels, steps=40, size=32, seed=0, mean=spec.mean, std=spec.std, position="centre"
        )
        reached = channel_maxima(model, vis.images, layer, channels, spec.mean, spec.std)
        assert np.mean(reached > found[layer].top_values[channels, 0]) >= 0.8, layer


def test_parse_channels():
    assert parse_channels("0-3") == [0, 1, 2, 3]
    assert parse_channels("5, 1-2,5") == [5, 1, 2]
    with pytest.raises(ParameterError):
        parse_channels("a-b")


def test_visualize_command(tmp_path, monkeypatch):
    from interp.__main__ import main

    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "vis"
    assert (
        main(
            [
                "visualize",
                "table2_cnn_cifar10",
                "--layer",
                "conv1",
                "--channels",
                "0-2",
                "--steps",
                "4",
                "--held-out",
                "30",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert [r["channel"] for r in summary["channels"]] == [0, 1, 2]
    assert all((out / r["image"]).exists() for r in summary["channels"])
    assert main(["visualize", "table2_cnn_cifar10", "--layer", "nope", "--out", str(out), "--steps", "1"]) == 2

"""Layer discovery (interp.methods.layers) and the right/wrong gallery (interp.methods.gallery),
against hand-read layer lists and a plain torch computation."""

from __future__ import annotations

import numpy as np
import torch

import interp
from interp import methods
from interp.models import meta_model
from tests.methods.helpers import image_batch, registry_model


def test_layers_of_a_tiny_model(tiny_gap_model):
    x = image_batch(1, 8)
    assert methods.conv_layers(tiny_gap_model) == ["conv1", "conv2"]
    assert methods.first_conv_name(tiny_gap_model) == "conv1"
    # gap's output is 1 x 1 and the Linear's is flat: neither has spatial maps.
    assert methods.spatial_layers(tiny_gap_model, x) == ["conv1", "relu1", "conv2", "relu2"]
    assert methods.activation_after(tiny_gap_model, "conv1", ["conv1", "relu1", "conv2"]) == "relu1"
    assert methods.activation_after(tiny_gap_model, "relu2", ["conv1", "relu1", "conv2", "relu2"]) == "relu2"
    assert methods.default_layer(tiny_gap_model, x) == "relu2"


def test_layers_from_shapes_alone_match_the_real_model():
    spec = interp.get_spec("table2_cnn_cifar10")
    probe = methods.probe_input(spec.input_size)
    real, meta = registry_model(spec.name), meta_model(spec)
    assert methods.spatial_layers(meta, probe.to("meta")) == methods.spatial_layers(real, probe)
    assert methods.default_layer(meta, probe.to("meta")) == methods.default_layer(real, probe) == "relu3"
    assert methods.spatial_layers(real, probe) == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "conv3",
        "relu3",
        "pool3",
    ]


def test_gallery_agrees_with_plain_torch(tiny_gap_model):
    x = image_batch(12, 8, seed=4)
    with torch.no_grad():
        logits = tiny_gap_model(x)
    pred = logits.argmax(1).numpy()
    labels = np.where(np.arange(12) % 3 == 0, pred, (pred + 1) % 3)  # every third image right
    found = methods.trust.right_and_wrong(tiny_gap_model, x, labels, "grad_cam", per_kind=2)
    assert found.right == [0, 3] and found.wrong == [1, 2]
    assert found.accuracy == 4 / 12
    np.testing.assert_array_equal(found.predictions, pred)
    np.testing.assert_allclose(found.confidence, torch.softmax(logits, 1).max(1).values.numpy(), rtol=1e-5)
    for i in found.right + found.wrong:
        expected = interp.explain(tiny_gap_model, x[i], "grad_cam", target=int(pred[i])).map
        np.testing.assert_allclose(found.maps[i], expected, rtol=1e-5, atol=1e-7)


def test_layers_of_a_module_called_twice_are_read_at_its_last_call():
    """torchvision's bottleneck runs one ReLU three times; at 32 px layer4's first block goes from
    2x2 to 1x1 between calls. A forward hook (what Grad-CAM reads) sees the last call, so every layer
    offered as spatial, and the default one, must have maps larger than 1x1 there."""
    from interp.methods.layers import default_layer, spatial_layers

    model = interp.build_model("resnet50_cifar10").eval()
    x = torch.randn(1, 3, 32, 32)
    names = spatial_layers(model, x)
    seen: dict[str, tuple] = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, tuple(o.shape)))
        for n in names
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert all(shape[-2] * shape[-1] > 1 for shape in seen.values()), seen
    assert "layer4.0.relu" not in names and default_layer(model, x) in names

"""CAM, Grad-CAM and guided Grad-CAM against hand computations and Captum."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

import interp
from interp.errors import LayerError
from interp.methods import CamNotApplicableError, default_layer, feature_maps
from interp.methods.attribution import cam_head, class_activation_map, grad_cam, guided_backprop, guided_grad_cam
from tests.methods.helpers import image_batch, not_inplace_copy, registry_model


def _close(a, b, rtol=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1e-6, np.abs(b).max()))


def _up(maps: torch.Tensor, size) -> np.ndarray:
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def test_cam_is_the_weighted_sum_of_the_last_maps_tiny(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(2, 16)
    with torch.no_grad():
        a = F.relu(m.conv2(F.relu(m.conv1(x))))  # (2, 6, 16, 16), computed by hand
    targets = [2, 0]
    expected = np.stack(
        [np.tensordot(m.fc.weight[t].detach().numpy(), a[i].numpy(), axes=1) for i, t in enumerate(targets)]
    )
    _close(class_activation_map(m, x, target=targets), expected)
    # one image: (H, W), default target = the prediction
    pred = int(m(x[:1]).argmax())
    _close(
        class_activation_map(m, x[:1]),
        expected[0] if pred == 2 else np.tensordot(m.fc.weight[pred].detach().numpy(), a[0].numpy(), axes=1),
    )


@pytest.mark.parametrize(
    "name,size,features",
    [
        ("alexnet_gap_pacs_class", 99, lambda m, x: m.features(x)),
        ("nin_cifar10", 32, lambda m, x: m.features(x)),
        (
            "resnet18_imagenet",
            64,
            lambda m, x: m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))))),
        ),
        ("resnet32_cifar10", 32, lambda m, x: m.layer3(m.layer2(m.layer1(m.relu(m.bn1(m.conv1(x))))))),
    ],
)
def test_cam_by_hand_on_registry_architectures(name, size, features):
    m = registry_model(name)
    x = image_batch(2, size)
    with torch.no_grad():
        a = features(m, x)
    targets = torch.tensor([3, 1])
    if name.startswith("nin"):  # the pooled maps are the class scores
        maps = a[torch.arange(2), targets]
    else:
        w = m.classifier.fc.weight if hasattr(m, "classifier") else m.fc.weight
        maps = torch.einsum("nk,nkhw->nhw", w[targets].detach(), a)
    _close(class_activation_map(m, x, target=targets), _up(maps, (size, size)))


def test_cam_equals_grad_cam_without_relu_up_to_a_positive_scale(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(1, 16)
    cam = class_activation_map(m, x, target=1)
    # On the maps that the GAP pools, the gradient is w_c / (h w) at every position.
    gc = grad_cam(m, x, target=1, layer="relu2", relu=False)
    _close(gc * 16 * 16, cam)
    # With ReLU (the paper's Grad-CAM) it is the positive part of the CAM.
    _close(grad_cam(m, x, target=1, layer="relu2") * 16 * 16, np.maximum(cam, 0))


def test_cam_equals_grad_cam_on_a_last_conv_without_relu():
    torch.manual_seed(1)
    m = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 5, 3, stride=2, padding=1)),
                ("relu1", nn.ReLU(inplace=True)),
                ("conv2", nn.Conv2d(5, 7, 3, padding=1)),  # last conv, no ReLU after it
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(7, 4)),
            ]
        )
    ).eval()
    x = image_batch(1, 20)
    cam = class_activation_map(m, x, target=3)
    gc = grad_cam(m, x, target=3, layer="conv2", relu=False)
    scale = float((gc * cam).sum() / (gc * gc).sum())
    assert scale > 0
    _close(gc * scale, cam)
    assert scale == pytest.approx(10 * 10, rel=1e-4)  # 1 / (h w) of the 10 x 10 maps


def test_cam_equals_grad_cam_on_resnet18_layer4():
    m = registry_model("resnet18_imagenet")
    x = image_batch(1, 64)
    cam = class_activation_map(m, x, target=7)
    _close(grad_cam(m, x, target=7, layer="layer4", relu=False) * 2 * 2, cam)


def _captum_grad_cam(model, layer, x, target):
    ref = not_inplace_copy(model)
    attr = LayerGradCam(ref, ref.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach().numpy()


@pytest.mark.parametrize(
    "name,size,layer",
    [
        ("tiny", 16, "conv1"),  # conv1 is followed by an in-place ReLU
        ("tiny", 16, "relu2"),
        ("resnet18_imagenet", 64, "layer4"),
        ("resnet18_imagenet", 64, "layer3.1.conv2"),
        ("resnet18_imagenet", 64, "layer2"),
        ("alexnet_gap_pacs_class", 99, "features.conv3"),
        ("nin_cifar10", 32, "features.relu3_3"),
        ("table2_cnn_cifar10", 32, "relu2"),
    ],
)
def test_grad_cam_equals_captum(name, size, layer, tiny_gap_model):
    m = tiny_gap_model if name == "tiny" else registry_model(name)
    x = image_batch(2, size, seed=3)
    targets = [1, 2]
    _close(grad_cam(m, x, target=targets, layer=layer), _captum_grad_cam(m, layer, x, targets))


# The output of the last conv stage of each architecture, read off its definition by hand.
LAST_CONV_STAGE = {
    "alexnet_gap_pacs_class": "features.relu5",
    "nin_cifar10": "features.relu3_3",
    "table2_cnn_cifar10": "relu3",
    "linear_cnn_cifar10": "features.relu3_2",
    "resnet18_imagenet": "layer4",
    "resnet32_cifar10": "layer3",
}


def test_default_layer_is_the_last_conv_stage():
    for name, size in [
        ("alexnet_gap_pacs_class", 99),
        ("nin_cifar10", 32),
        ("table2_cnn_cifar10", 32),
        ("linear_cnn_cifar10", 32),
        ("resnet18_imagenet", 64),
        ("resnet32_cifar10", 32),
    ]:
        m = registry_model(name)
        x = image_batch(1, size)
        spec_layer = LAST_CONV_STAGE[name]
        layer = default_layer(m, x)
        maps = feature_maps(m, x, [layer, spec_layer])
        np.testing.assert_array_equal(maps[layer], maps[spec_layer], err_msg=name)
        if name not in ("table2_cnn_cifar10", "linear_cnn_cifar10"):  # no CAM head
            assert spec_layer in cam_head(m, x).layers


def test_cam_head_structure():
    m = registry_model("resnet18_imagenet")
    head = cam_head(m, image_batch(1, 64))
    assert head.pool == "avgpool" and "layer4" in head.layers and head.weights.shape == (1000, 512)
    head = cam_head(registry_model("nin_cifar10"), image_batch(1, 32))
    assert head.weights is None and head.layer == "features.relu3_3"


class _TwoDense(nn.Module):
    def __init__(self, scale: float = 1.0, dense: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 3)
        self.scale, self.dense = scale, dense

    def forward(self, x):
        z = self.gap(torch.relu(self.conv(x))).flatten(1)
        return self.fc2(torch.relu(self.fc1(z))) if self.dense else self.fc2(z) * self.scale


@pytest.mark.parametrize(
    "model",
    [
        lambda: registry_model("table2_cnn_cifar10"),  # flatten -> dense
        lambda: _TwoDense(),  # GAP -> Linear -> ReLU -> Linear
        lambda: _TwoDense(scale=2.0, dense=False),  # GAP -> Linear, but the output is rescaled
    ],
)
def test_cam_refuses_other_heads_and_points_to_grad_cam(model, tiny_dense_model):
    for m in (model(), tiny_dense_model):
        with pytest.raises(CamNotApplicableError, match="grad_cam") as info:
            interp.explain(m.eval(), image_batch(1, 16 if m is tiny_dense_model else 32), "cam")
        assert isinstance(info.value, LayerError) and isinstance(info.value, interp.InterpError)


def test_cam_layer_argument():
    m = registry_model("alexnet_gap_pacs_class")
    x = image_batch(1, 99)
    _close(interp.explain(m, x, "cam", layer="features.relu5").map, class_activation_map(m, x))
    with pytest.raises(LayerError, match="features.relu5"):
        interp.explain(m, x, "cam", layer="features.conv2")


def test_guided_grad_cam_is_guided_backprop_times_grad_cam():
    m = registry_model("resnet18_imagenet")
    x = image_batch(2, 64)
    gg = guided_grad_cam(m, x, target=[5, 9], layer="layer4")
    expected = guided_backprop(m, x, target=[5, 9]) * grad_cam(m, x, target=[5, 9], layer="layer4")[:, None]
    _close(gg, expected)
    assert gg.shape == (2, 3, 64, 64)


def test_grad_cam_layer_errors(tiny_gap_model):
    x = image_batch(1, 16)
    with pytest.raises(LayerError, match="does not exist"):
        grad_cam(tiny_gap_model, x, layer="conv9")
    with pytest.raises(LayerError, match="feature maps"):
        grad_cam(tiny_gap_model, x, layer="fc")


@pytest.mark.parametrize(
    "name,size,layer",
    [
        ("tiny", 16, "relu2"),  # no ReLU after the layer: one pass gives both factors
        ("resnet18_imagenet", 64, "layer4"),  # likewise (layer4 -> avgpool -> fc)
        ("table2_cnn_cifar10", 32, "conv2"),  # ReLUs after the layer: Grad-CAM needs its own pass
    ],
)
def test_guided_grad_cam_equals_captum(name, size, layer, tiny_gap_model):
    from captum.attr import GuidedGradCam

    m = tiny_gap_model if name == "tiny" else registry_model(name)
    x = image_batch(2, size, seed=4)
    twin = not_inplace_copy(m)  # Captum's guided backprop hooks fail on in-place ReLUs
    ref = GuidedGradCam(twin, twin.get_submodule(layer)).attribute(
        x.clone(), target=[1, 2], interpolate_mode="bilinear"
    )
    _close(guided_grad_cam(m, x, target=[1, 2], layer=layer), ref.detach().numpy())


class _CountingModel(nn.Module):
    """A model that counts its forward passes (tiny_gap_model inside)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.passes = inner, 0

    def forward(self, x):
        self.passes += 1
        return self.inner(x)


@pytest.mark.parametrize("method", ["cam", "grad_cam", "guided_backprop", "guided_grad_cam", "saliency"])
def test_a_method_runs_one_forward_pass_once_the_model_is_known(method, tiny_gap_model):
    """The forward pass that computes a map also picks the predicted class (no separate
    prediction pass); a model's first call may trace it once to find its head or default layer."""
    m = _CountingModel(tiny_gap_model).eval()
    x = image_batch(3, 16)
    first = interp.explain(m, x, method)
    m.passes = 0
    again = interp.explain(m, x, method)
    assert m.passes == 1
    _close(again.map, first.map)
    with torch.no_grad():
        logits = tiny_gap_model(x)
    np.testing.assert_array_equal(again.target, logits.argmax(1).numpy())
    np.testing.assert_allclose(again.probability, torch.softmax(logits, 1).max(1).values.numpy(), rtol=1e-5)


def test_cam_notices_a_replaced_head(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(1, 16)
    class_activation_map(m, x, target=0)
    m.fc = nn.Linear(6, 3)  # a new head: CAM must read the new weights
    with torch.no_grad():
        m.fc.weight.normal_()
    with torch.no_grad():
        expected = torch.einsum("k,khw->hw", m.fc.weight[0], m[:4](x)[0])
    _close(class_activation_map(m, x, target=0), _up(expected[None], (16, 16))[0])
    m.gap = nn.AdaptiveMaxPool2d(1)  # and a model that lost its average pooling is refused
    with pytest.raises(CamNotApplicableError):
        class_activation_map(m, x, target=0)


def test_cam_refuses_pooled_maps_of_one_pixel():
    """A stride-4 conv turns 4x4 into 1x1: pooling changes nothing and the CAM "map" would be one value
    per image spread evenly over it. At 8x8 the maps are 2x2 and CAM is Zhou et al.'s weighted sum."""
    torch.manual_seed(0)
    m = nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(3, 5, 4, stride=4)),
                ("relu", nn.ReLU()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(5, 3)),
            ]
        )
    ).eval()
    with pytest.raises(CamNotApplicableError, match=r"1x1.*'grad_cam'"):
        class_activation_map(m, image_batch(1, 4), target=0)
    with pytest.raises(CamNotApplicableError, match="1x1"):
        interp.explain(m, image_batch(1, 4), method="cam", target=0)
    x = image_batch(1, 8)
    with torch.no_grad():
        a = F.relu(m.conv(x))  # (1, 5, 2, 2)
        expected = torch.einsum("k,khw->hw", m.fc.weight[1], a[0])
    _close(class_activation_map(m, x, target=1), _up(expected[None], (8, 8))[0])
    assert grad_cam(m, image_batch(1, 4), target=0, layer="conv").shape == (4, 4)

"""LRP through Zennit: LRP-0 against gradient x input, conservation, the same maps as Zennit and
Captum, canonizers for batch norm, residual sums and in-place activations, refusals."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import interp
from interp.errors import MethodError
from interp.methods.attribution import lrp
from interp.methods.core import Targets
from interp.models.registry import IMAGENET_MEAN, IMAGENET_STD
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, registry_model, snapshot

zennit = pytest.importorskip("zennit")
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402

LRP_METHODS = ("lrp", "lrp_epsilon_gamma_box", "lrp_alpha2_beta1", "lrp_epsilon")


def _relevance(model, x, target=None, **options):
    return lrp.relevance(model, x.clone(), Targets(target), lrp.LRPOptions(**options))


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.detach().flatten(), b.detach().flatten()]).double())[0, 1])


def _plain_cnn(bias: bool, inplace: bool = False, batch_norm: bool = False) -> nn.Module:
    """conv -> ReLU -> max-pool -> conv -> ReLU -> avg-pool -> Linear (optionally batch norm after each conv)."""
    torch.manual_seed(0)
    layers: OrderedDict[str, nn.Module] = OrderedDict(conv1=nn.Conv2d(3, 8, 3, padding=1, bias=bias))
    if batch_norm:
        layers["bn1"] = nn.BatchNorm2d(8)
    layers.update(
        relu1=nn.ReLU(inplace=inplace), pool1=nn.MaxPool2d(2), conv2=nn.Conv2d(8, 12, 3, padding=1, bias=bias)
    )
    if batch_norm:
        layers["bn2"] = nn.BatchNorm2d(12)
    layers.update(
        relu2=nn.ReLU(inplace=inplace),
        pool2=nn.AvgPool2d(2),
        flatten=nn.Flatten(),
        fc=nn.Linear(12 * 4 * 4, 5, bias=bias),
    )
    return _spread_batch_norms(nn.Sequential(layers).eval())


def _spread_batch_norms(model: nn.Module) -> nn.Module:
    """Batch-norm statistics far from the identity, so that merging them matters."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
            with torch.no_grad():
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _zennit(model, x, composite, target) -> torch.Tensor:
    """Zennit's own attribution, the output relevance started at the target logit."""
    with torch.no_grad():
        logits = model(x)
    start = torch.zeros_like(logits).scatter(1, target[:, None], logits.gather(1, target[:, None]))
    with Gradient(model=model, composite=composite) as attributor:
        _, rel = attributor(x.clone().requires_grad_(True), start)
    return rel


def test_lrp0_is_gradient_times_input_on_a_bias_free_relu_network():
    # Ancona et al. 2018: with the epsilon rule at epsilon -> 0 on a ReLU network without biases,
    # LRP's relevance equals gradient x input exactly.
    model = _plain_cnn(bias=False)
    x = image_batch(3, 16)
    rel = _relevance(model, x, composite="epsilon", epsilon=1e-12)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    (grad,) = torch.autograd.grad(logits.gather(1, logits.argmax(1)[:, None]).sum(), xg)
    torch.testing.assert_close(rel, grad * x, rtol=1e-4, atol=1e-6)


def test_epsilon_rule_conserves_the_logit_without_biases():
    model = _plain_cnn(bias=False)
    x = image_batch(4, 16, seed=1)
    rel = _relevance(model, x, composite="epsilon", epsilon=1e-12)
    logits = model(x)
    torch.testing.assert_close(rel.flatten(1).sum(1), logits.max(1).values, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "composite, zennit_composite",
    [
        ("epsilon_plus_flat", lambda c, lo, hi: EpsilonPlusFlat(canonizers=c)),
        ("epsilon_alpha2_beta1", lambda c, lo, hi: EpsilonAlpha2Beta1(canonizers=c)),
        ("epsilon_gamma_box", lambda c, lo, hi: EpsilonGammaBox(low=lo, high=hi, canonizers=c)),
    ],
)
def test_same_map_as_zennit_on_a_batch_norm_network(composite, zennit_composite):
    model = _plain_cnn(bias=True, batch_norm=True)
    x = image_batch(2, 16, seed=2)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ours = _relevance(model, x, target=[1, 3], composite=composite, mean=mean, std=std)
    low, high = lrp.input_bounds(x, mean, std)
    theirs = _zennit(model, x, zennit_composite([SequentialMergeBatchNorm()], low, high), torch.tensor([1, 3]))
    assert _corr(ours, theirs) >= 0.999
    # without merging, the batch norms would pass relevance unchanged: a different map
    unmerged = _zennit(model, x, zennit_composite([], low, high), torch.tensor([1, 3]))
    assert _corr(unmerged, theirs) < 0.999


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box"])
def test_same_map_as_zennit_on_torchvision_resnet(composite):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = image_batch(1, 64, seed=3)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    before = snapshot(model)
    ours = _relevance(model, x, target=2, composite=composite, mean=mean, std=std)
    assert_unchanged(before, model)  # in-place ReLUs switched back, merged batch norms restored
    low, high = lrp.input_bounds(x, mean, std)
    make = {
        "epsilon_plus_flat": lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()]),
        "epsilon_gamma_box": lambda: EpsilonGammaBox(low=low, high=high, canonizers=[ResNetCanonizer()]),
    }[composite]
    theirs = _zennit(model, x, make(), torch.tensor([2]))
    assert _corr(ours, theirs) >= 0.999


def test_same_map_as_captum_lrp_with_the_epsilon_rule():
    from captum.attr import LRP

    class Plain(nn.Module):  # Captum's LRP has no rule for an nn.Flatten module: flatten in forward
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*list(_plain_cnn(bias=True).children())[:6])
            self.fc = _plain_cnn(bias=True).get_submodule("fc")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.features(x), 1))

    model = Plain().eval()
    x = image_batch(2, 16, seed=4)
    ours = _relevance(model, x, target=[0, 2], composite="epsilon", epsilon=1e-9)
    theirs = LRP(copy.deepcopy(model)).attribute(x.clone(), target=[0, 2])
    assert _corr(ours, theirs) >= 0.999
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5)


def test_residual_sums_are_canonized_on_the_cifar_resnet(monkeypatch):
    # With identity batch norms and no biases, every layer is bias-free: the epsilon rule conserves
    # the logit only if each residual sum shares relevance between its two branches (the sum rule)
    # instead of copying it to both (what autograd does at a plain "+").
    model = registry_model("resnet32_cifar10")
    with torch.no_grad():
        model.fc.bias.zero_()
    x = image_batch(2, 32, seed=5)
    logits = model(x).max(1).values.detach()
    rel = _relevance(model, x, composite="epsilon", epsilon=1e-9)
    torch.testing.assert_close(rel.flatten(1).sum(1), logits, rtol=2e-3, atol=1e-4)
    from zennit.canonizers import AttributeCanonizer

    monkeypatch.setattr(lrp, "_attribute_canonizer", lambda: AttributeCanonizer(lambda name, module: None))
    copied = _relevance(model, x, composite="epsilon", epsilon=1e-9)
    # fifteen skips, each copying relevance to both branches: far from the logit (measured: 1e14 times it)
    assert ((copied.flatten(1).sum(1) - logits).abs() / logits.abs()).min() > 0.5


def test_inplace_relus_give_the_same_map_and_stay_inplace():
    x = image_batch(2, 16, seed=6)
    plain = _relevance(_plain_cnn(bias=True), x)
    model = _plain_cnn(bias=True, inplace=True)
    inplace = _relevance(model, x)
    torch.testing.assert_close(plain, inplace)
    assert model.relu1.inplace and model.relu2.inplace


@pytest.mark.parametrize(
    "arch", ["resnet50", "vgg11_bn", "densenet121", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf"]
)
def test_lrp_runs_on_torchvision_architectures(arch):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=4).eval()
    _spread_batch_norms(model)  # a random EfficientNet's logits are otherwise all equal
    x = image_batch(1, 64, seed=7)
    before = snapshot(model)
    for method in LRP_METHODS if arch == "mobilenet_v3_small" else ("lrp",):  # every composite once
        e = interp.explain(model, x, method, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        assert e.map.shape == (3, 64, 64) and np.isfinite(e.map).all() and abs(e.map).sum() > 0, method
    assert_unchanged(before, model)
    assert not hooks_left(model)


def test_a_layer_without_a_rule_is_named():
    model = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(3, 4, 3), norm=nn.GroupNorm(2, 4), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten())
    )
    model.add_module("fc", nn.Linear(4, 2))
    before = snapshot(model)
    with pytest.raises(MethodError, match=r"'norm' \(GroupNorm\)"):
        interp.explain(model, image_batch(1, 8), "lrp")
    assert_unchanged(before, model)
    assert not hooks_left(model)


def test_a_residual_sum_without_a_canonizer_is_named():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.relu(self.conv(x))  # no LRP rule sees this "+"

    model = nn.Sequential(
        OrderedDict(stem=nn.Conv2d(3, 4, 3), block=Block(), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten())
    )
    model.add_module("fc", nn.Linear(4, 2))
    before = snapshot(model)
    with pytest.raises(MethodError, match=r"'block' \(Block\)"):
        interp.explain(model, image_batch(1, 8), "lrp")
    assert_unchanged(before, model)
    assert not hooks_left(model)
    # parameters are not signals: a learned scale is not a sum of two signals
    assert lrp.unruled_sums(_plain_cnn(bias=True), image_batch(1, 16), []) == []


def test_batch_norm_pairs_follow_the_data_not_the_module_order():
    # DenseNet's batch norms read concatenations, except norm0 and each layer's norm2 (after conv1).
    model = torchvision.models.densenet121(num_classes=3).eval()
    pairs = dict((norm, conv) for conv, norm in lrp.batch_norm_pairs(model, image_batch(1, 32)))
    assert pairs["features.norm0"] == "features.conv0"
    assert pairs["features.denseblock1.denselayer2.norm2"] == "features.denseblock1.denselayer2.conv1"
    assert "features.denseblock1.denselayer2.norm1" not in pairs  # reads the concatenation
    assert "features.norm5" not in pairs


def test_composite_option_and_bounds():
    with pytest.raises(MethodError, match="composite must be one of"):
        lrp.LRPOptions(composite="zplus")
    x = image_batch(2, 4)
    low, high = lrp.input_bounds(x, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert low.shape == x.shape and float(low.max()) == -2.0 and float(high.min()) == 2.0
    low, high = lrp.input_bounds(x, None, None)  # each image's own range
    torch.testing.assert_close(low[1, :, 0, 0], x[1].flatten(1).amin(1))
    torch.testing.assert_close(high[0, :, 3, 3], x[0].flatten(1).amax(1))
    # the methods differ only in their default composite
    model = _plain_cnn(bias=True)
    a = interp.explain(model, x.new_ones(1, 3, 16, 16), "lrp", composite="epsilon").map
    b = interp.explain(model, x.new_ones(1, 3, 16, 16), "lrp_epsilon").map
    assert (a == b).all()

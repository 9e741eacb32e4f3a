"""CRP against zennit-crp (Achtibat et al.'s own code) on the same model, layer, channels and
composite: the same conditional maps and the same relevance at the layer.

zennit-crp 0.6.0 declares zennit <= 0.4.6 but runs on the zennit 0.5.1 interp needs, so it is
installed apart with ``pip install --no-deps zennit-crp==0.6.0`` (.ci/run does; README says so).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.concepts import crp

zennit_crp = pytest.importorskip(
    "crp.attribution", reason="zennit-crp is not installed: pip install --no-deps zennit-crp==0.6.0"
)
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonAlpha2Beta1, EpsilonPlusFlat  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402

from tests.methods.test_lrp import _plain_cnn  # noqa: E402

COMPOSITES = {"epsilon_plus_flat": EpsilonPlusFlat, "epsilon_alpha2_beta1": EpsilonAlpha2Beta1}


def _theirs(model, x, layer, channels, target, composite, canonizers):
    """zennit-crp's conditional heatmaps (summed over colour), and every channel's relevance at the
    layer from its unconditional pass (under a condition, what it records at the layer is not the
    relevance arriving there: on a bias-free ReLU network with the epsilon rule above the layer it
    sums to twice the logit, where the relevance arriving sums to the logit)."""
    attribution = zennit_crp.CondAttribution(model)
    conditions = [{layer: [int(c)], "y": [int(target)]} for c in channels]
    result = attribution(
        x.clone().requires_grad_(True), conditions, composite(canonizers=canonizers), record_layer=[layer]
    )
    plain = attribution(
        x.clone().requires_grad_(True), [{"y": [int(target)]}], composite(canonizers=canonizers), record_layer=[layer]
    )
    return result.heatmap.detach().numpy(), plain.relevances[layer].detach().flatten(2).sum(2)[0].numpy()


def _assert_same(ours, heatmaps, layer_relevance):
    scale = np.abs(heatmaps).max()
    np.testing.assert_allclose(ours.maps, heatmaps, rtol=1e-4, atol=1e-5 * scale)
    top = np.abs(layer_relevance).max()
    np.testing.assert_allclose(ours.layer_relevance, layer_relevance, rtol=1e-4, atol=1e-5 * top)


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_the_same_maps_as_zennit_crp_on_a_batch_norm_cnn(composite):
    model = _plain_cnn(bias=True, batch_norm=True)
    torch.manual_seed(7)
    x = torch.randn(1, 3, 16, 16)
    channels = [1, 4, 7, 10]
    ours = crp(model, x, "conv2", channels=channels, target=2, composite=composite)
    heatmaps, layer_relevance = _theirs(
        model, x, "conv2", channels, 2, COMPOSITES[composite], [SequentialMergeBatchNorm()]
    )
    _assert_same(ours, heatmaps, layer_relevance)


def test_the_same_maps_as_zennit_crp_on_a_torchvision_resnet():
    # interp picks the ResNet canonizer itself; zennit-crp is given it, as its users do
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    ours = crp(model, x, "layer3.1.conv2", top=5, target=3)
    heatmaps, layer_relevance = _theirs(
        model, x, "layer3.1.conv2", ours.channels, 3, EpsilonPlusFlat, [ResNetCanonizer()]
    )
    _assert_same(ours, heatmaps, layer_relevance)

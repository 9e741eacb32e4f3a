"""Guided backprop, saliency, SmoothGrad and integrated gradients against Captum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop, IntegratedGradients, Saliency

import interp
from interp.methods import MethodError
from interp.methods.attribution import guided_backprop, integrated_gradients, saliency, smoothgrad, smoothgrad_noise
from tests.methods.helpers import image_batch, not_inplace_copy, registry_model

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning")

MODELS = [("tiny", 16), ("resnet18_imagenet", 64), ("alexnet_gap_pacs_class", 99), ("nin_cifar10", 32)]


def _model(name, tiny):
    return tiny if name == "tiny" else registry_model(name)


def _close(a, b, rtol=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1e-8, np.abs(b).max()))


@pytest.mark.parametrize("name,size", MODELS)
def test_guided_backprop_equals_captum_on_a_copy_without_inplace_relu(name, size, tiny_gap_model):
    m = _model(name, tiny_gap_model)
    x = image_batch(2, size, seed=1)
    ref = GuidedBackprop(not_inplace_copy(m)).attribute(x.clone().requires_grad_(), target=[2, 0])
    mine = guided_backprop(m, x, target=[2, 0])
    _close(mine, ref.detach().numpy())
    # and it is not the plain gradient: the rule changes the result
    assert not np.allclose(mine, saliency(m, x, target=[2, 0]))


@pytest.mark.parametrize("name,size", MODELS[:2])
def test_saliency_equals_captum(name, size, tiny_gap_model):
    m = _model(name, tiny_gap_model)
    x = image_batch(2, size, seed=2)
    ref = Saliency(m).attribute(x.clone().requires_grad_(), target=[1, 2], abs=False)
    _close(saliency(m, x, target=[1, 2]), ref.detach().numpy())
    # one image: (C, H, W)
    _close(saliency(m, x[:1], target=1), ref[0].detach().numpy())


@pytest.mark.parametrize("baseline", [None, 0.5])
def test_integrated_gradients_equals_captum(baseline, tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(2, 16, seed=3)
    base = torch.zeros_like(x) if baseline is None else torch.full_like(x, baseline)
    ref, delta = IntegratedGradients(m).attribute(
        x, baselines=base, target=[0, 2], n_steps=16, method="gausslegendre", return_convergence_delta=True
    )
    mine = integrated_gradients(m, x, target=[0, 2], steps=16, baseline=baseline)
    _close(mine, ref.detach().numpy())
    # completeness, independently of Captum: the attributions sum to the change of the logit
    with torch.no_grad():
        gap = (m(x) - m(base)).gather(1, torch.tensor([[0], [2]]))[:, 0].numpy()
    np.testing.assert_allclose(mine.reshape(2, -1).sum(1), gap, rtol=0.05, atol=1e-3)


def test_integrated_gradients_on_resnet18_equals_captum():
    m = registry_model("resnet18_imagenet")
    x = image_batch(1, 64, seed=4)
    ref = IntegratedGradients(not_inplace_copy(m)).attribute(x, baselines=torch.zeros_like(x), target=3, n_steps=8)
    _close(integrated_gradients(m, x, target=3, steps=8), ref[0].detach().numpy())


def test_smoothgrad_is_the_mean_saliency_over_its_noise(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(2, 16, seed=5)
    noise = smoothgrad_noise(x, 6, 0.2, seed=7)
    assert noise.shape == (6, 2, 3, 16, 16)
    span = x.flatten(1).amax(1) - x.flatten(1).amin(1)
    assert torch.allclose(noise.std(dim=(0, 2, 3, 4)), 0.2 * span, rtol=0.15)
    sal = Saliency(m)
    ref = torch.stack([sal.attribute((x + n).requires_grad_(), target=[1, 0], abs=False) for n in noise]).mean(0)
    mine = smoothgrad(m, x, target=[1, 0], n_samples=6, noise_level=0.2, seed=7)
    _close(mine, ref.detach().numpy())
    # reproducible with the same seed, different with another; no noise = saliency
    np.testing.assert_array_equal(mine, smoothgrad(m, x, target=[1, 0], n_samples=6, noise_level=0.2, seed=7))
    assert not np.allclose(mine, smoothgrad(m, x, target=[1, 0], n_samples=6, noise_level=0.2, seed=8))
    _close(smoothgrad(m, x, target=[1, 0], n_samples=3, noise_level=0.0), saliency(m, x, target=[1, 0]))


def test_smoothgrad_does_not_touch_the_global_random_state(tiny_gap_model):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    smoothgrad(tiny_gap_model, image_batch(1, 16), n_samples=2)
    assert torch.equal(torch.rand(3), expected)


def test_bad_options(tiny_gap_model):
    x = image_batch(1, 16)
    with pytest.raises(MethodError, match="n_samples"):
        smoothgrad(tiny_gap_model, x, n_samples=0)
    with pytest.raises(MethodError, match="steps"):
        integrated_gradients(tiny_gap_model, x, steps=0)
    with pytest.raises(MethodError, match="baseline"):
        integrated_gradients(tiny_gap_model, x, baseline=np.zeros(7))
    assert isinstance(MethodError("x"), interp.InterpError)

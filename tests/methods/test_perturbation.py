"""Occlusion, LIME and KernelSHAP against Captum's Occlusion, Lime and KernelShap; superpixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import KernelShap, Lime, Occlusion
from torch import nn

import interp
from interp.methods import MethodError
from interp.methods.attribution import kernel_shap, lime, occlusion, superpixels
from tests.methods.helpers import build_pool_model, close, smooth_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def pool_model() -> nn.Module:
    return build_pool_model()


@pytest.mark.parametrize("window,stride,baseline", [(4, 2, None), ((3, 5), (2, 3), 0.5), (16, 16, None)])
def test_occlusion_equals_captum(window, stride, baseline, pool_model):
    m, x = pool_model, smooth_batch(2, 16, seed=8)
    win = (window, window) if isinstance(window, int) else window
    st = (stride, stride) if isinstance(stride, int) else stride
    ref = Occlusion(m).attribute(
        x,
        sliding_window_shapes=(3, *win),
        strides=(3, *st),
        target=[1, 2],
        baselines=0.0 if baseline is None else baseline,
    )
    assert torch.equal(ref[:, 0], ref[:, 2])  # the window spans the channels: one map per pixel
    mine = occlusion(m, x, [1, 2], window=window, stride=stride, baseline=baseline)
    assert mine.shape == (2, 16, 16)
    close(mine, ref[:, 0])


def test_occlusion_defaults_and_bad_windows(pool_model):
    x = smooth_batch(1, 16)
    ref = Occlusion(pool_model).attribute(
        x, sliding_window_shapes=(3, 2, 2), strides=(3, 1, 1), target=0, perturbations_per_eval=64
    )
    close(occlusion(pool_model, x, 0), ref[0, 0])  # default: an eighth of the side, half-window stride
    for bad in (0, 17, (2,), 2.5):
        with pytest.raises(MethodError, match="window"):
            occlusion(pool_model, x, window=bad)


@pytest.mark.parametrize("name,cls", [("lime", Lime), ("kernel_shap", KernelShap)])
def test_lime_and_kernel_shap_equal_captum_with_the_same_seed(name, cls, pool_model):
    m, x = pool_model, smooth_batch(2, 16, seed=9)
    fn = {"lime": lime, "kernel_shap": kernel_shap}[name]
    mine = fn(m, x, [0, 2], n_samples=60, n_segments=30, seed=4)
    assert mine.shape == (2, 16, 16) and np.abs(mine).max() > 0
    for i, t in enumerate([0, 2]):
        seg = torch.as_tensor(superpixels(x[i], 30))[None, None]
        assert int(seg.max()) >= 5
        torch.manual_seed(4)  # Captum draws from the global generator; ours draws the same from its own
        ref = cls(m).attribute(x[i : i + 1], target=t, feature_mask=seg, n_samples=60)
        close(mine[i], ref[0, 0], rtol=1e-4)
    # one image alone gets the same map as in the batch (each image is seeded alike)
    close(fn(m, x[1:], 2, n_samples=60, n_segments=30, seed=4), mine[1])


def test_surrogates_are_seeded_and_leave_the_global_random_state(pool_model):
    m, x = pool_model, smooth_batch(1, 16, seed=10)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    a = lime(m, x, 1, n_samples=30, n_segments=20, seed=1)
    k = kernel_shap(m, x, 1, n_samples=30, n_segments=20, seed=1)
    assert torch.equal(torch.rand(3), expected)
    np.testing.assert_array_equal(a, lime(m, x, 1, n_samples=30, n_segments=20, seed=1))
    assert not np.array_equal(k, kernel_shap(m, x, 1, n_samples=30, n_segments=20, seed=2))


def test_kernel_shap_is_efficient_and_segments_can_be_given(pool_model):
    m, x = pool_model, smooth_batch(1, 16, seed=11)
    seg = superpixels(x[0], 12)
    k = kernel_shap(m, x, 1, n_samples=400, segments=seg)
    per_segment = [k[seg == s][0] for s in range(seg.max() + 1)]
    assert all(np.all(k[seg == s] == v) for s, v in enumerate(per_segment))  # one value per superpixel
    with torch.no_grad():
        gap = float(m(x)[0, 1] - m(torch.zeros_like(x))[0, 1])
    assert sum(per_segment) == pytest.approx(gap, rel=1e-3, abs=1e-4)  # the Shapley values sum to the change
    one = kernel_shap(m, x, 1, segments=np.zeros((16, 16), int))  # one feature: exactly f(x) - f(baseline)
    np.testing.assert_allclose(one, np.full((16, 16), gap), rtol=1e-5)
    with pytest.raises(MethodError, match="segments"):
        lime(m, x, segments=np.zeros((8, 8), int))


def test_superpixels_follow_the_de_normalised_image():
    spec = interp.get_spec("table2_cnn_cifar10")
    from interp.data.samples import zebra_path

    x = interp.preprocess(interp.load_image(zebra_path()), spec)[0]
    seg = superpixels(x, 25, mean=spec.mean, std=spec.std)
    assert seg.shape == (32, 32) and seg.min() == 0 and set(np.unique(seg)) == set(range(seg.max() + 1))
    assert seg.max() + 1 >= 10

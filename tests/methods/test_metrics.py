"""The map-quality metrics against their papers' definitions, computed independently here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity
from torch import nn

from interp import methods
from interp.errors import MethodError


def _linear_model(classes: int = 3, size: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, classes)).eval()


def test_sparseness_is_the_gini_index():
    """Gini by its mean-absolute-difference definition: sum_ij |a_i - a_j| / (2 n^2 mean)."""
    a = np.abs(np.random.default_rng(0).standard_normal((12, 9))) ** 3
    flat = a.ravel()
    gini = np.abs(flat[:, None] - flat[None, :]).sum() / (2 * flat.size**2 * flat.mean())
    assert methods.trust.sparseness(a) == pytest.approx(gini, rel=1e-6)
    assert methods.trust.sparseness(np.ones((5, 5))) == pytest.approx(0, abs=1e-9)
    one_pixel = np.zeros((10, 10))
    one_pixel[3, 4] = 1
    assert methods.trust.sparseness(one_pixel) == pytest.approx(1 - 1 / 100, rel=1e-6)


def test_complexity_is_the_entropy_of_the_shares():
    a = np.random.default_rng(1).standard_normal((7, 7))
    assert methods.trust.complexity(a) == pytest.approx(scipy.stats.entropy(np.abs(a).ravel()), rel=1e-9)
    assert methods.trust.complexity(np.ones((4, 4))) == pytest.approx(np.log(16))


def test_average_drop_multiplies_the_image_by_the_map_in_pixel_space():
    model = _linear_model()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    x = torch.randn(1, 3, 8, 8)
    saliency_map = np.random.default_rng(2).random((8, 8)) * 4
    result = methods.trust.average_drop(model, x, saliency_map, target=1, mean=mean, std=std)
    m, s = np.array(mean)[:, None, None], np.array(std)[:, None, None]
    pixels = x[0].numpy() * s + m
    masked = (pixels * (saliency_map / saliency_map.max()) - m) / s
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor(np.stack([x[0].numpy(), masked]), dtype=torch.float32)), 1)[:, 1]
    y, o = p.tolist()
    assert result["drop"] == pytest.approx(max(0, y - o) / y, rel=1e-5)
    assert result["increase"] == float(o > y)


def test_max_sensitivity_of_a_linear_models_gradient_is_zero():
    """The saliency of a linear model is its weight row, whatever the input."""
    model = _linear_model()
    assert methods.trust.max_sensitivity(
        model, torch.randn(1, 3, 8, 8), "saliency", target=0, radius=0.5
    ) == pytest.approx(0)


def test_max_sensitivity_by_hand(tiny_gap_model):
    x = torch.randn(1, 3, 16, 16)
    got = methods.trust.max_sensitivity(tiny_gap_model, x, "grad_cam", target=2, radius=0.3, n_perturbations=4, seed=5)
    gen = torch.Generator().manual_seed(5)
    noise = (torch.rand((4, 3, 16, 16), generator=gen) * 2 - 1) * 0.3

    def unit(m):
        return m / np.abs(m).max()

    base = unit(methods.attribution.grad_cam(tiny_gap_model, x, target=2).astype(np.float64))
    changes = [
        np.linalg.norm(unit(methods.attribution.grad_cam(tiny_gap_model, x + n, target=2).astype(np.float64)) - base)
        for n in noise
    ]
    assert got == pytest.approx(max(changes) / np.linalg.norm(base), rel=1e-5)
    assert got > 0


def test_random_logit_is_the_ssim_of_two_classes_maps():
    model = _linear_model(classes=5)
    result = methods.trust.random_logit(model, torch.randn(1, 3, 8, 8), "saliency", target=0, seed=3)
    w = model[1].weight.detach().numpy().reshape(5, 3, 8, 8)
    a, b = (np.abs(w[k]).max(0) for k in (0, result["other"]))
    expected = structural_similarity(a / a.max(), b / b.max(), data_range=1.0, win_size=7, gaussian_weights=False)
    assert result["other"] != 0
    assert result["ssim"] == pytest.approx(expected, abs=1e-6)


def test_linear_imputation_is_exact_on_a_linear_image_and_a_weighted_mean_of_neighbours():
    yy, xx = np.mgrid[0:12, 0:12]
    ramp = np.stack([2 * yy + 3 * xx, -xx + 0.5 * yy, yy * 0 + 7]).astype(float)
    removed = np.zeros((12, 12), bool)
    removed[3:8, 4:9] = True  # inside the image: symmetric neighbours reproduce a linear function
    np.testing.assert_allclose(methods.trust.linear_imputation(ramp, removed), ramp, atol=1e-9)
    image = np.random.default_rng(0).random((1, 5, 5))
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    n = image[0]
    direct = n[1, 2] + n[3, 2] + n[2, 1] + n[2, 3]
    diagonal = n[1, 1] + n[1, 3] + n[3, 1] + n[3, 3]
    expected = (direct / 6 + diagonal / 12) / (4 / 6 + 4 / 12)
    assert methods.trust.linear_imputation(image, one)[0, 2, 2] == pytest.approx(expected)


class _PatchModel(nn.Module):
    """Class 0's logit is the mean of the 4 x 4 top-left patch; class 1's is constant."""

    def forward(self, x):
        patch = x[:, :, :4, :4].mean(dim=(1, 2, 3))
        return torch.stack([10 * patch, torch.full_like(patch, 5.0)], 1)


def test_road_removing_the_evidence_first_drops_the_class():
    x = torch.zeros(1, 3, 16, 16)
    x[:, :, :4, :4] = 1.0  # bright patch on black: class 0
    evidence = np.zeros((16, 16))
    evidence[:4, :4] = 1.0
    evidence += np.linspace(0, 0.01, 256).reshape(16, 16)  # a strict order elsewhere
    morf = methods.trust.road(_PatchModel(), x, evidence, target=0, percentages=(0, 10, 50), noise=0.0)
    lerf = methods.trust.road(_PatchModel(), x, evidence, target=0, percentages=(0, 10, 50), order="lerf", noise=0.0)
    p0 = torch.softmax(torch.tensor([10.0, 5.0]), 0)[0].item()
    assert morf.probability[0] == pytest.approx(p0, rel=1e-5) == lerf.probability[0]
    assert morf.probability[1] < 0.01 and morf.kept.tolist() == [1.0, 0.0, 0.0]
    assert lerf.probability[1] == pytest.approx(p0, rel=1e-5)  # the patch is the last to go
    assert morf.auc < lerf.auc
    with pytest.raises(MethodError, match="order"):
        methods.trust.road(_PatchModel(), x, evidence, order="sideways")


def test_metric_scores_and_their_means(tiny_gap_model):
    x = torch.randn(1, 3, 16, 16)
    per_image = [
        methods.trust.metric_scores(tiny_gap_model, x + i, ["grad_cam", "saliency"], sensitivity_samples=2)
        for i in range(2)
    ]
    rows = methods.trust.summarize_metrics(per_image)
    assert [r["method"] for r in rows] == ["grad_cam", "saliency"]
    assert rows[0]["sparseness"] == pytest.approx(
        (per_image[0]["grad_cam"]["sparseness"] + per_image[1]["grad_cam"]["sparseness"]) / 2
    )
    assert set(rows[0]) == {
        "method",
        "average_drop",
        "increase_in_confidence",
        "sparseness",
        "complexity",
        "max_sensitivity",
        "random_logit_ssim",
        "road_morf",
    }


def test_method_options_pass_through_without_clashing_with_the_metrics_own(tiny_gap_model):
    """SmoothGrad's n_samples and seed are its own; the metrics' noise has separate names."""
    x = torch.randn(1, 3, 16, 16)
    scores = methods.trust.metric_scores(
        tiny_gap_model, x, ["smoothgrad"], options={"smoothgrad": {"n_samples": 3, "seed": 1}}, sensitivity_samples=2
    )
    assert np.isfinite(list(scores["smoothgrad"].values())).all()
    assert (
        methods.trust.random_logit(tiny_gap_model, x, "smoothgrad", options={"n_samples": 2, "seed": 4})["other"] >= 0
    )

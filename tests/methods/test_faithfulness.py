"""Deletion and insertion (Petsiuk et al. 2018) on models whose answer is known in closed form."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interp
from interp.methods import MethodError
from interp.methods.trust import baseline_image, deletion_insertion, mean_aucs, method_scores, pixel_order, summarize
from interp.methods.trust.faithfulness import auc
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot

SIZE, REGION = 16, (slice(2, 10), slice(4, 12))  # an 8 x 8 region: a quarter of the pixels


class RegionModel(nn.Module):
    """Two classes; the logit of class 0 is a * (mean of the region over channels) + b: the output
    depends on the region's pixels only. Counts its forward passes and images."""

    def __init__(self, a: float = 6.0, b: float = -3.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))
        self.calls, self.images = 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        s = x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3))
        return torch.stack([self.a * s + self.b, torch.zeros_like(s)], dim=1)


def _mask() -> np.ndarray:
    m = np.zeros((SIZE, SIZE))
    m[REGION] = 1.0
    return m


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, np.float64)))


def test_curves_equal_the_closed_form_for_the_region_mask():
    model, x = RegionModel().eval(), torch.ones(1, 3, SIZE, SIZE)
    r = deletion_insertion(model, x, _mask(), target=0, steps=32, baseline="zero", n_random=4)
    f = np.linspace(0, 1, 33)
    assert np.allclose(r.fractions, f)
    # mask order: the 64 region pixels go first, so after deleting a fraction f of the 256 pixels a
    # share max(0, 1 - 4f) of the region is left (insertion: min(1, 4f) of it is back)
    np.testing.assert_allclose(r.deletion, _sigmoid(6 * np.clip(1 - 4 * f, 0, 1) - 3), rtol=1e-6)
    np.testing.assert_allclose(r.insertion, _sigmoid(6 * np.clip(4 * f, 0, 1) - 3), rtol=1e-6)
    assert r.deletion_auc == pytest.approx(np.trapezoid(r.deletion, f)) and r.target == 0
    assert r.insertion_auc == pytest.approx(np.trapezoid(r.insertion, f))
    # random order: on average a share 1 - f of the region is left
    fine = np.linspace(0, 1, 2001)
    assert r.random_deletion_auc == pytest.approx(np.trapezoid(_sigmoid(6 * (1 - fine) - 3), fine), abs=0.03)
    assert r.random_insertion_auc == pytest.approx(np.trapezoid(_sigmoid(6 * fine - 3), fine), abs=0.03)
    # a faithful map beats the random order by a wide margin
    assert r.deletion_auc < r.random_deletion_auc - 0.25
    assert r.insertion_auc > r.random_insertion_auc + 0.25


def _region_cnn() -> nn.Module:
    """A small CNN that sees the region only (everything outside it is multiplied by 0)."""
    torch.manual_seed(0)

    class Crop(nn.Module):
        def forward(self, x):
            mask = torch.zeros_like(x)
            mask[:, :, REGION[0], REGION[1]] = 1
            return x * mask

    model = nn.Sequential(
        OrderedDict(
            [
                ("crop", Crop()),
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(8, 8, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(8, 3)),
            ]
        )
    ).eval()
    fc = model.fc
    assert isinstance(fc, nn.Linear)
    with torch.no_grad():  # confident enough that deleting the region moves the probability a lot
        fc.weight.mul_(30.0)
        fc.bias.zero_()
    return model


@pytest.mark.parametrize("baseline", ["zero", "mean", "blur"])
def test_the_models_own_saliency_beats_random_orders_by_a_wide_margin(baseline):
    model, x = _region_cnn(), 2.0 * image_batch(1, SIZE, seed=3)
    before = snapshot(model)
    target = int(interp.methods.predict(model, x)[0].argmax())
    amap = interp.explain(model, x, "saliency", target=target).map  # (C, H, W): zero outside the region
    assert np.abs(amap)[:, ~_mask().astype(bool)].max() == 0
    r = deletion_insertion(model, x, amap, target=target, steps=32, baseline=baseline, n_random=4)
    assert_unchanged(before, model)
    assert hooks_left(model) == []
    # once the region is gone (a quarter of the pixels) the output is the baseline's
    base_p = r.insertion[0]
    np.testing.assert_allclose(r.deletion[8:], base_p, rtol=1e-5)
    span = r.deletion[0] - base_p
    assert span > 0.2  # the region matters: the image and the baseline differ for this class
    # a perfect order of a linear model would win by 0.375 x span (the region is a quarter of the image)
    assert r.random_deletion_auc - r.deletion_auc > 0.3 * span, (r.deletion_auc, r.random_deletion_auc, span)
    assert r.insertion_auc - r.random_insertion_auc > 0.2 * span, (r.insertion_auc, r.random_insertion_auc, span)


def test_batched_in_a_few_forward_passes_and_independent_of_the_batch_size():
    model, x = RegionModel().eval(), image_batch(1, SIZE, seed=1)
    rng = np.random.default_rng(0).random((SIZE, SIZE))
    r64 = deletion_insertion(model, x, rng, target=1, steps=20, baseline="blur", batch_size=64, n_random=2)
    # 3 orders x 21 steps x 2 curves = 126 images: 2 batches, plus one pass to check the target
    assert model.calls == 1 + 2 and model.images == 1 + 126
    r1 = deletion_insertion(model, x, rng, target=1, steps=20, baseline="blur", batch_size=1, n_random=2)
    for field in ("deletion", "insertion", "random_deletion", "random_insertion"):
        np.testing.assert_allclose(getattr(r1, field), getattr(r64, field), rtol=1e-6)
    r_again = deletion_insertion(model, x, rng, target=1, steps=20, baseline="blur", n_random=2)
    np.testing.assert_array_equal(r_again.random_deletion, r64.random_deletion)  # seeded


def test_endpoints_are_the_image_and_the_baseline():
    model = _region_cnn()
    x = image_batch(1, SIZE, seed=4)
    r = deletion_insertion(model, x, np.random.default_rng(1).random((SIZE, SIZE)), steps=10, baseline="mean")
    p = interp.methods.predict(model, x)[0]
    pb = interp.methods.predict(model, baseline_image(x, "mean"))[0]
    assert r.target == int(p.argmax())
    assert r.deletion[0] == pytest.approx(p[r.target], rel=1e-5) == pytest.approx(r.insertion[-1], rel=1e-5)
    assert r.deletion[-1] == pytest.approx(pb[r.target], rel=1e-5) == pytest.approx(r.insertion[0], rel=1e-5)


def test_baselines():
    x = image_batch(1, 33, seed=2)
    assert torch.equal(baseline_image(x, "zero"), torch.zeros_like(x))
    mean = baseline_image(x, "mean")
    assert torch.allclose(mean, x.mean(dim=(2, 3), keepdim=True).expand_as(x))
    assert torch.equal(baseline_image(x, 0.5), torch.full_like(x, 0.5))
    flat = torch.full((1, 3, 33, 33), 0.7)
    assert torch.allclose(baseline_image(flat, "blur"), flat)  # a blur keeps a flat image
    delta = torch.zeros(1, 1, 33, 33)
    delta[0, 0, 16, 16] = 1.0
    blurred = baseline_image(delta, "blur", blur_sigma=2.5)[0, 0].double()
    offsets = torch.arange(33, dtype=torch.float64) - 16
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float((blurred.sum(1) * offsets**2).sum()) == pytest.approx(2.5**2, rel=1e-3)  # its variance
    with pytest.raises(MethodError, match="baseline"):
        baseline_image(x, "noise")
    with pytest.raises(MethodError, match="broadcast"):
        baseline_image(x, np.zeros((2, 2)))


def test_pixel_order_and_auc():
    m = np.array([[0.0, 3.0], [1.0, 3.0]])
    assert pixel_order(m, (2, 2)).tolist() == [1, 3, 2, 0]  # ties in raster order
    channels = np.stack([m, -5 * np.eye(2)])
    assert pixel_order(channels, (2, 2))[:2].tolist() == [0, 3]  # max |value| over channels
    assert pixel_order(np.array([[1.0, 0.0], [0.0, 0.0]]), (4, 4))[0] == 0  # resized
    assert auc([0, 0.5, 1], [1, 1, 0]) == pytest.approx(0.75)
    with pytest.raises(MethodError, match="NaN"):
        pixel_order(np.full((2, 2), np.nan), (2, 2))


def test_errors(tiny_gap_model):
    x = image_batch(1, SIZE)
    with pytest.raises(interp.TargetError):
        deletion_insertion(tiny_gap_model, x, _mask(), target=5)
    with pytest.raises(MethodError, match="steps"):
        deletion_insertion(tiny_gap_model, x, _mask(), steps=0)
    with pytest.raises(interp.ImageError, match="one image"):
        deletion_insertion(tiny_gap_model, image_batch(2, SIZE), _mask())
    with pytest.raises(MethodError, match="saliency map"):
        deletion_insertion(tiny_gap_model, x, np.zeros((2, 3, 4, 5)))


def test_method_scores_and_mean_aucs_over_images():
    model = _region_cnn()
    images = [2.0 * image_batch(1, SIZE, seed=s) for s in range(3)]
    seen = []
    rows = mean_aucs(
        model,
        images,
        ["saliency", "grad_cam"],
        steps=8,
        baseline="zero",
        n_random=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    per_image = [
        method_scores(model, x, ["saliency", "grad_cam"], steps=8, baseline="zero", n_random=2) for x in images
    ]
    assert rows == summarize(per_image)
    assert [r["method"] for r in rows] == ["saliency", "grad_cam"] and rows[0]["images"] == 3
    expected = np.mean([s["saliency"].deletion_auc for s in per_image])
    assert rows[0]["deletion_auc"] == pytest.approx(expected)
    # one image's scores: each method's own map, the random orders shared
    one = per_image[0]
    amap = interp.explain(model, images[0], "saliency", target=one["saliency"].target).spatial()
    direct = deletion_insertion(model, images[0], amap, steps=8, baseline="zero", n_random=2)
    np.testing.assert_allclose(one["saliency"].deletion, direct.deletion, rtol=1e-6)
    assert one["saliency"].random_deletion_auc == one["grad_cam"].random_deletion_auc
    assert summarize([]) == []

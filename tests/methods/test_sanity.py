"""Model-parameter randomisation: similarity measures against independent references, the
steps, the copy (the model stays untouched), and Adebayo et al.'s result on small trained CNNs."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import interp
from interp.methods import MethodError
from interp.methods.trust import (
    cascading_randomization,
    independent_randomization,
    randomization_steps,
    randomized_copy,
    spearman_abs,
    ssim,
)
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot

METHODS = ("guided_backprop", "grad_cam", "saliency")


# ---------------------------------------------------------------------------------------------
# Similarity measures


def test_spearman_of_absolute_values_equals_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 11))
    b = a + rng.normal(scale=0.8, size=a.shape)
    b[:3] = np.round(b[:3])  # ties
    assert spearman_abs(a, b) == pytest.approx(spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0], abs=1e-12)
    assert spearman_abs(a, -a) == pytest.approx(1.0)  # signs do not matter
    assert spearman_abs(a, 1 / (1 + np.abs(a))) == pytest.approx(-1.0)
    assert spearman_abs(np.zeros((4, 4)), a[:4, :4]) == 0.0  # a constant map has no ranking
    assert spearman_abs(np.zeros((4, 4)), np.ones((4, 4))) == 1.0


def _ssim_by_windows(x: np.ndarray, y: np.ndarray, data_range: float, win: int = 7) -> float:
    """Wang et al.'s SSIM with scikit-image's defaults, one window at a time (the reference)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            px, py = x[i : i + win, j : j + win].ravel(), y[i : i + win, j : j + win].ravel()
            mx, my = px.mean(), py.mean()
            vx, vy = px.var(ddof=1), py.var(ddof=1)
            cxy = ((px - mx) * (py - my)).sum() / (px.size - 1)
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_equals_the_formula_window_by_window():
    rng = np.random.default_rng(1)
    x = rng.random((15, 13))
    y = np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(_ssim_by_windows(x, y, 1.0), rel=1e-9)
    assert ssim(x, y, data_range=2.0) == pytest.approx(_ssim_by_windows(x, y, 2.0), rel=1e-9)
    assert ssim(x, y) == pytest.approx(ssim(y, x))
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, 1 - x) < 0  # anti-correlated structure
    small = rng.random((5, 6))  # the window shrinks to 5 to fit
    assert ssim(small, small * 0.5) == pytest.approx(_ssim_by_windows(small, small * 0.5, 1.0, win=5), rel=1e-9)


def test_ssim_matches_scikit_image_when_installed():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    x, y = rng.random((20, 20)), rng.random((20, 20))
    assert ssim(x, y) == pytest.approx(metrics.structural_similarity(x, y, data_range=1.0), rel=1e-7)


# ---------------------------------------------------------------------------------------------
# Steps and the randomised copy


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
                ("bn1", nn.BatchNorm2d(4)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(4, 5, 3, padding=1)),
                ("bn2", nn.BatchNorm2d(5)),
                ("relu2", nn.ReLU()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(5, 3)),
            ]
        )
    ).eval()


def test_steps_run_from_the_logits_down_with_norm_layers_grouped(tiny_gap_model):
    x = image_batch(1, 8)
    assert randomization_steps(tiny_gap_model, x) == [("fc",), ("conv2",), ("conv1",)]
    assert randomization_steps(_bn_model(), x) == [("fc",), ("conv2", "bn2"), ("conv1", "bn1")]
    with pytest.raises(interp.LayerError, match="nothing to randomise"):
        randomization_steps(nn.Sequential(nn.Flatten()), x)


def test_randomized_copy_resets_only_the_named_layers_and_leaves_the_model_and_rng_alone(tiny_gap_model):
    m = tiny_gap_model
    before = snapshot(m)
    rng_before = torch.get_rng_state()
    clone = randomized_copy(m, ["conv2", "fc"], seed=3)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global generator is untouched
    assert_unchanged(before, m)
    assert clone is not m and clone.conv1.weight.data_ptr() != m.conv1.weight.data_ptr()
    assert torch.equal(clone.conv1.weight, m.conv1.weight) and torch.equal(clone.conv1.bias, m.conv1.bias)
    for name in ("conv2", "fc"):
        assert not torch.equal(getattr(clone, name).weight, getattr(m, name).weight), name
    again = randomized_copy(m, ["conv2", "fc"], seed=3)
    assert torch.equal(again.conv2.weight, clone.conv2.weight)  # seeded
    assert not torch.equal(randomized_copy(m, ["conv2"], seed=4).conv2.weight, clone.conv2.weight)
    # a layer gets the same random weights whatever else is randomised with it
    assert torch.equal(randomized_copy(m, ["conv2"], seed=3).conv2.weight, clone.conv2.weight)
    # PyTorch's own initialiser: conv weights are U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / np.sqrt(4 * 3 * 3)
    assert clone.conv2.weight.abs().max() <= bound and clone.conv2.weight.std() > bound / 4


def test_batch_norm_is_reset_with_its_running_statistics():
    m = _bn_model()
    with torch.no_grad():
        m.bn2.running_mean.fill_(3.0)
        m.bn2.weight.fill_(2.0)
    clone = randomized_copy(m, ["bn2"])
    assert torch.equal(clone.bn2.running_mean, torch.zeros(5)) and torch.equal(clone.bn2.weight, torch.ones(5))
    assert float(m.bn2.running_mean[0]) == 3.0


# ---------------------------------------------------------------------------------------------
# The checks on a tiny model, against maps computed directly on randomised copies


def _spatial(model, x, method, target):
    return interp.explain(model, x, method, target=target).spatial("absmax")


@pytest.mark.parametrize("kind", ["cascading", "independent"])
def test_each_step_equals_the_map_of_a_directly_randomised_copy(kind, tiny_gap_model):
    m, x = tiny_gap_model, image_batch(1, 12, seed=5)
    before = snapshot(m)
    run = cascading_randomization if kind == "cascading" else independent_randomization
    r = run(m, x, METHODS, seed=7)
    assert_unchanged(before, m)
    assert hooks_left(m) == []
    assert r.kind == kind and r.layers == ("fc", "conv2", "conv1") and r.methods == METHODS
    target = int(interp.methods.predict(m, x)[0].argmax())
    assert r.target == target
    for method in METHODS:
        assert r.maps[method].shape == (4, 12, 12)
        np.testing.assert_allclose(r.maps[method][0], _spatial(m, x, method, target), rtol=1e-6)
        assert r.spearman[method][0] == pytest.approx(1.0) and r.ssim[method][0] == pytest.approx(1.0)
        for step, layer in enumerate(r.layers, start=1):
            names = list(r.layers[:step]) if kind == "cascading" else [layer]
            expected = _spatial(randomized_copy(m, names, seed=7), x, method, target)
            np.testing.assert_allclose(r.maps[method][step], expected, rtol=1e-5, atol=1e-7)
            assert r.spearman[method][step] == pytest.approx(spearman_abs(r.maps[method][0], expected), abs=1e-6)
    # the copy ends fully random: saliency no longer matches the trained map
    assert r.spearman["saliency"][-1] < 0.99
    rows = r.rows()
    assert len(rows) == 3 * 4 and {"method", "step", "randomized", "spearman", "ssim"} <= rows[0].keys()


def test_the_target_stays_fixed_and_can_be_given(tiny_gap_model):
    m, x = tiny_gap_model, image_batch(1, 12, seed=6)
    r = cascading_randomization(m, x, ["saliency"], target=1, layers=["fc"])
    assert r.target == 1 and r.layers == ("fc",) and r.maps["saliency"].shape == (2, 12, 12)
    expected = _spatial(randomized_copy(m, ["fc"]), x, "saliency", 1)
    np.testing.assert_allclose(r.maps["saliency"][1], expected, rtol=1e-5, atol=1e-7)
    a = cascading_randomization(m, x, ["saliency"], seed=1)
    b = cascading_randomization(m, x, ["saliency"], seed=1)
    np.testing.assert_array_equal(a.maps["saliency"], b.maps["saliency"])


def test_errors_are_interp_errors(tiny_gap_model):
    m, x = tiny_gap_model, image_batch(1, 12)
    with pytest.raises(MethodError, match="unknown method"):
        cascading_randomization(m, x, ["nope"])
    with pytest.raises(MethodError, match="at least one"):
        cascading_randomization(m, x, [])
    with pytest.raises(interp.LayerError, match="does not exist"):
        cascading_randomization(m, x, ["saliency"], layers=["conv9"])
    with pytest.raises(interp.TargetError):
        independent_randomization(m, x, ["saliency"], target=7)
    with pytest.raises(interp.ImageError, match="one image"):
        cascading_randomization(m, image_batch(2, 12), ["saliency"])
    assert hooks_left(m) == []


# ---------------------------------------------------------------------------------------------
# Adebayo et al.'s result on small trained CNNs


def _scenes(n: int, seed: int, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """The class is the quadrant that holds a bright blob; flat coloured rectangles distract."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.02 * torch.randn((n, 3, size, size), generator=g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for _ in range(6):
        y0, x0 = torch.randint(0, size - 4, (2, n, 1, 1), generator=g)
        h, w = torch.randint(3, size // 2, (2, n, 1, 1), generator=g)
        inside = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
        x += inside[:, None] * (torch.rand((n, 3, 1, 1), generator=g) - 0.5)
    half = size // 2
    cy = (torch.randint(3, half - 3, (n,), generator=g) + (y // 2) * half).view(n, 1, 1)
    cx = (torch.randint(3, half - 3, (n,), generator=g) + (y % 2) * half).view(n, 1, 1)
    x += 2.0 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)[:, None]
    return x, y


def _trained_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 16, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("conv3", nn.Conv2d(32, 32, 3, padding=1)),
                ("relu3", nn.ReLU()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(32, 4)),
            ]
        )
    )
    x, y = _scenes(1024, seed=10 + seed)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(3):
        for i in range(0, len(x), 64):
            loss = nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_guided_backprop_survives_full_randomisation_unlike_grad_cam_and_saliency():
    """Adebayo et al. (2018), Fig. 2 and 4: with every layer re-initialised, guided backprop's map
    still resembles the trained model's; saliency's and Grad-CAM's do not.

    Averaged over two trained models and 16 images each, every image with its own random draw
    (one draw alone can happen to make Grad-CAM point at the bright blob too).
    """
    final = {m: [] for m in METHODS}
    final_ssim = {m: [] for m in METHODS}
    upper = {m: [] for m in METHODS}
    for seed in (0, 1):
        model = _trained_cnn(seed)
        x, y = _scenes(128, seed=100 + seed)
        with torch.no_grad():
            assert (model(x).argmax(1) == y).float().mean() > 0.85  # the models did learn the task
        for i in range(16):
            r = cascading_randomization(model, x[i : i + 1], METHODS, layer="relu3", seed=1000 * seed + i)
            assert r.layers == ("fc", "conv3", "conv2", "conv1")
            for m in METHODS:
                final[m].append(r.spearman[m][-1])
                final_ssim[m].append(r.ssim[m][-1])
                upper[m].append(r.spearman[m][1:-1].mean())
    rho = {m: float(np.mean(v)) for m, v in final.items()}
    sim = {m: float(np.mean(v)) for m, v in final_ssim.items()}
    assert rho["guided_backprop"] > rho["grad_cam"] + 0.1, rho
    assert rho["guided_backprop"] > rho["saliency"] + 0.15, rho
    assert sim["guided_backprop"] > max(sim["grad_cam"], sim["saliency"]) + 0.08, sim
    assert rho["guided_backprop"] < 0.7  # but it did change: the layers were randomised
    # while conv1 is intact, guided backprop hardly moves (Adebayo et al.: it ignores the higher layers)
    assert np.mean(upper["guided_backprop"]) > 0.6
    assert np.mean(upper["guided_backprop"]) > max(np.mean(upper["saliency"]), np.mean(upper["grad_cam"])) + 0.2

"""The batched metrics (interp.methods.trust.batched) against Quantus 0.6.0 on the same model,
images and maps; where the two differ on purpose, Quantus's options are set to ours (each test says
which), and our definition is also checked by hand.

Quantus's stochastic metrics draw their own noise; here they replay ours: a ``perturb_func`` that adds
our k-th draw at its k-th call, so both score the same noisy copies and must agree exactly.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn

from interp.errors import ParameterError
from interp.methods import trust
from interp.methods.trust import batched
from interp.methods.trust.batched import gaussian_noise, uniform_noise

quantus = pytest.importorskip("quantus")

SIZE, CLASSES, N = 20, 5, 5
PER_IMAGE: dict[str, Any] = {"normalise_axes": (1, 2, 3)}  # Quantus's max-scaling per map, not over the whole batch
QUIET: dict[str, Any] = {"disable_warnings": True, "display_progressbar": False}


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """A seeded CNN whose classes differ between the images (the fc bias at zero sees to it)."""
    torch.manual_seed(0)
    conv1, conv2, fc = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 8, 3, padding=1), nn.Linear(8, CLASSES)
    with torch.no_grad():
        fc.bias.zero_()
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", conv1),
                ("relu1", nn.ReLU()),
                ("conv2", conv2),
                ("relu2", nn.ReLU()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", fc),
            ]
        )
    ).eval()


@pytest.fixture(scope="module")
def data(model) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((N, 3, SIZE, SIZE)).astype(np.float32))
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    assert len(set(y.tolist())) > 1
    return x, y


def grad_x_input(model: nn.Module, inputs, targets, **_) -> np.ndarray:
    """Gradient x input summed over channels, (N, 1, H, W): the explain function of both sides
    (Quantus passes numpy, float64 where its inputs are; the model sees float32, as ours does)."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).clone().requires_grad_(True)
    t = torch.as_tensor(np.asarray(targets), dtype=torch.int64).reshape(-1)
    (grad,) = torch.autograd.grad(model(x).gather(1, t[:, None]).sum(), x)
    return (grad * x).sum(1, keepdim=True).detach().double().numpy()


def ours_fn(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    return grad_x_input(model, x.detach(), targets.cpu())


def q(metric, model, x, y, a=None, **given):
    """A Quantus metric's per-image scores on our images (NCHW) and maps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metric(model=model, x_batch=x, y_batch=y, a_batch=a, device="cpu", **given)


def _maps(seed: int = 1, power: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, SIZE, SIZE)) * np.abs(rng.standard_normal((N, SIZE, SIZE))) ** power


class Replay:
    """A Quantus perturb_func that adds our noise draws: draw k, to every image, at call k."""

    def __init__(self, noise: torch.Tensor):
        self.noise, self.calls = noise.reshape(len(noise), -1).numpy(), 0

    def __call__(self, arr: np.ndarray, indices: np.ndarray, **_) -> np.ndarray:
        out = arr + self.noise[self.calls]
        self.calls += 1
        return out


# ---------------------------------------------------------------------------------------------
# Complexity: from the maps alone


def test_sparseness_and_complexity_equal_quantus_on_absolute_unnormalised_maps(data):
    x, y = data
    a = _maps()
    sp = q(quantus.Sparseness(abs=True, normalise=False, **QUIET), None, x.numpy(), y, a[:, None].copy())
    np.testing.assert_allclose(batched.sparseness(a), sp, rtol=1e-12)
    cx = q(quantus.Complexity(abs=True, normalise=False, **QUIET), None, x.numpy(), y, a[:, None].copy())
    np.testing.assert_allclose(batched.complexity(a), cx, rtol=1e-9)  # Quantus: log(p + 1e-12)
    # Quantus's default max-scaling, per map, only moves its 1e-7: ours on max-scaled maps agrees
    scaled = q(quantus.Sparseness(normalise_func_kwargs=PER_IMAGE, **QUIET), None, x.numpy(), y, a[:, None].copy())
    np.testing.assert_allclose(batched.sparseness(a / np.abs(a).max((1, 2), keepdims=True)), scaled, rtol=1e-12)


def test_effective_complexity_equals_quantus_with_per_map_scaling(data):
    x, y = data
    a = _maps(power=4) * np.array([1, 10, 100, 0.1, 3])[:, None, None]  # maps of very different scales
    for eps in (1e-5, 0.01, 0.2):
        ours = batched.effective_complexity(a, eps=eps)
        metric = quantus.EffectiveComplexity(eps=eps, normalise_func_kwargs=PER_IMAGE, **QUIET)
        np.testing.assert_array_equal(ours, q(metric, None, x.numpy(), y, a[:, None].copy()))
        # Quantus's default divides by the batch's max: it agrees one image at a time
        alone = [
            q(
                quantus.EffectiveComplexity(eps=eps, **QUIET),
                None,
                x[i : i + 1].numpy(),
                y[i : i + 1],
                a[i : i + 1, None].copy(),
            )[0]
            for i in range(N)
        ]
        np.testing.assert_array_equal(ours, alone)
    assert 0 < batched.effective_complexity(a, eps=0.2).min() < SIZE * SIZE


def test_complexity_family_by_hand():
    one = np.zeros((1, 4, 4))
    one[0, 1, 2] = -3.0
    flat = np.full((1, 4, 4), 2.0)
    assert batched.complexity(np.concatenate([one, flat])) == pytest.approx([0.0, np.log(16)])
    assert np.isnan(batched.complexity(np.zeros((1, 4, 4)))[0])  # no shares (Quantus: NaN too)
    assert batched.effective_complexity(np.array([[[1.0, 0.5], [1e-6, 0.0]]]), eps=1e-5).tolist() == [2]
    assert batched.sparseness(np.zeros((1, 3, 3)))[0] == pytest.approx(0.0)
    with pytest.raises(ParameterError, match="NaN"):
        batched.sparseness(np.full((1, 2, 2), np.nan))


# ---------------------------------------------------------------------------------------------
# Robustness: the same noise on both sides


def test_max_sensitivity_equals_quantus_given_the_same_noise(model, data):
    x, y = data
    samples, radius, seed = 4, 0.3, 3
    ours = batched.max_sensitivity(model, x, ours_fn, y, radius=radius, n_samples=samples, seed=seed, batch_size=7)
    replay = Replay(uniform_noise(samples, (3, SIZE, SIZE), radius, seed))
    metric = quantus.MaxSensitivity(
        nr_samples=samples,
        lower_bound=radius,
        normalise=True,
        normalise_func_kwargs=PER_IMAGE,
        perturb_func=replay,
        **QUIET,
    )
    theirs = q(metric, model, x.double().numpy(), y, explain_func=grad_x_input)
    assert replay.calls == samples
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    raw = batched.max_sensitivity(model, x, ours_fn, y, radius=radius, n_samples=samples, seed=seed, normalise=False)
    replay.calls = 0
    metric = quantus.MaxSensitivity(nr_samples=samples, lower_bound=radius, perturb_func=replay, **QUIET)
    np.testing.assert_allclose(raw, q(metric, model, x.double().numpy(), y, explain_func=grad_x_input), rtol=1e-10)


def test_local_lipschitz_equals_quantus_given_the_same_noise(model, data):
    x, y = data
    samples, std, seed = 4, 0.1, 5
    ours = batched.local_lipschitz(model, x, ours_fn, y, std=std, n_samples=samples, seed=seed, batch_size=3)
    replay = Replay(gaussian_noise(samples, (3, SIZE, SIZE), std, seed=seed))
    metric = quantus.LocalLipschitzEstimate(
        nr_samples=samples, perturb_std=std, normalise_func_kwargs=PER_IMAGE, perturb_func=replay, **QUIET
    )
    theirs = q(metric, model, x.double().numpy(), y, explain_func=grad_x_input)
    assert replay.calls == samples
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)  # Quantus adds 1e-10 to ||d|| (about 2)


def test_a_score_does_not_depend_on_the_batch(tiny_gap_model):
    """The same noise draws go to every image: batched scores equal one-image scores, and the
    one-image functions of metrics.py give them too."""
    x = torch.randn(3, 3, 16, 16)
    fn = batched.explainer("grad_cam")
    together = batched.max_sensitivity(tiny_gap_model, x, fn, 1, n_samples=3, seed=2, batch_size=4)
    for i in range(3):
        alone = batched.max_sensitivity(tiny_gap_model, x[i : i + 1], fn, 1, n_samples=3, seed=2)
        assert together[i] == pytest.approx(alone[0], rel=1e-6)
        single = trust.max_sensitivity(tiny_gap_model, x[i], "grad_cam", 1, n_perturbations=3, seed=2)
        assert together[i] == pytest.approx(single, rel=1e-6)
    lip = batched.local_lipschitz(tiny_gap_model, x, fn, 1, n_samples=3, seed=2)
    assert lip[1] == pytest.approx(batched.local_lipschitz(tiny_gap_model, x[1:2], fn, 1, n_samples=3, seed=2)[0])


# ---------------------------------------------------------------------------------------------
# Randomisation


def test_random_logit_equals_quantus_with_2d_ssim(model, data):
    """Quantus computes SSIM on the flattened maps; given a 2-D SSIM (data_range 1) it is ours."""
    x, y = data

    def ssim_2d(a, b, batched=False, **_):
        return [
            structural_similarity(u.reshape(SIZE, SIZE), v.reshape(SIZE, SIZE), data_range=1.0) for u, v in zip(a, b)
        ]

    ours = batched.random_logit(model, x, ours_fn, y, seed=7, batch_size=4)
    metric = quantus.RandomLogit(
        num_classes=CLASSES, seed=7, abs=True, normalise_func_kwargs=PER_IMAGE, similarity_func=ssim_2d, **QUIET
    )
    np.testing.assert_allclose(ours, q(metric, model, x.numpy(), y, explain_func=grad_x_input), rtol=1e-9)
    np.random.seed(7)  # Quantus's draw, by its own steps
    idx = np.random.randint(0, CLASSES - 1, N)
    expected = [[c for c in range(CLASSES) if c != t][i] for t, i in zip(y, idx)]
    assert batched.other_classes(y, CLASSES, seed=7).tolist() == expected


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_model_parameter_randomisation_equals_quantus_mprt(model, data, order):
    x, y = data
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    ours = batched.model_parameter_randomisation(model, x, ours_fn, y, order=order, seed=42, batch_size=3)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's random stream is untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model too
    metric = quantus.MPRT(layer_order=order, seed=42, abs=True, normalise=False, **QUIET)
    theirs = q(metric, model, x.numpy(), y, explain_func=grad_x_input)
    assert list(theirs)[1:] == list(ours.layers) and ours.similarity.shape == (N, 3)
    for i, layer in enumerate(ours.layers):
        np.testing.assert_allclose(ours.similarity[:, i], theirs[layer], rtol=1e-12)
    np.testing.assert_allclose(theirs["original"], 1.0)
    last = quantus.MPRT(layer_order=order, seed=42, return_last_correlation=True, **QUIET)
    np.testing.assert_allclose(ours.last, q(last, model, x.numpy(), y, explain_func=grad_x_input), rtol=1e-9)
    # Quantus's average skips a key named "orig" but stores "original": its 1 enters the mean
    average = quantus.MPRT(layer_order=order, seed=42, return_average_correlation=True, **QUIET)
    theirs = q(average, model, x.numpy(), y, explain_func=grad_x_input)
    np.testing.assert_allclose((ours.mean * 3 + 1) / 4, theirs, rtol=1e-9)


def test_spearman_of_constant_maps_by_hand():
    """Where Quantus (scipy) gives NaN, a constant map is no ranking: 0, or 1 against another constant map."""
    a = np.arange(16.0).reshape(1, 4, 4)
    assert batched.spearman_abs(a, np.zeros_like(a)).tolist() == [0.0]
    assert batched.spearman_abs(np.ones_like(a), np.zeros_like(a)).tolist() == [1.0]
    assert batched.spearman_abs(a, -a)[0] == pytest.approx(1.0)  # absolute values
    assert batched.spearman_abs(a, a[:, ::-1, ::-1])[0] == pytest.approx(-1.0)


# ---------------------------------------------------------------------------------------------
# Localisation


def _masks() -> np.ndarray:
    """A box per image; images 0 and 2 have it around their map's maximum, the others away from it."""
    a = _maps(seed=4)
    masks = np.zeros(a.shape, bool)
    for i, m in enumerate(a):
        r, c = np.unravel_index(m.argmax(), m.shape)
        if i % 2 == 0:
            masks[i, max(0, r - 2) : r + 3, max(0, c - 2) : c + 3] = True
        else:  # the quarter farthest from the maximum
            masks[i, (0 if r >= SIZE // 2 else SIZE // 2) :][:, : SIZE // 2] = True
            masks[i, r, c] = False
    return masks


def test_pointing_game_equals_quantus(data):
    x, y = data
    a, s = _maps(seed=4), _masks()
    ours = batched.pointing_game(a, s)
    theirs = q(
        quantus.PointingGame(normalise=False, **QUIET), None, x.numpy(), y, a[:, None].copy(), s_batch=s[:, None]
    )
    np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=float))
    assert ours[0] == 1 and ours[2] == 1 and ours[1] == 0


def test_relevance_mass_and_energy_equal_quantus(data):
    x, y = data
    a, s = _maps(seed=4), _masks()
    positive = np.abs(a)
    rma = q(
        quantus.RelevanceMassAccuracy(normalise=False, **QUIET),
        None,
        x.numpy(),
        y,
        positive[:, None].copy(),
        s_batch=s[:, None],
    )
    np.testing.assert_allclose(batched.relevance_mass_accuracy(positive, s), rma, rtol=1e-12)
    # signed maps: Arras et al. count positive relevance; Quantus's AttributionLocalisation does
    metric = quantus.AttributionLocalisation(abs=False, normalise=False, positive_attributions=True, **QUIET)
    loc = q(metric, None, x.numpy(), y, a[:, None].copy(), s_batch=s[:, None])
    np.testing.assert_allclose(batched.relevance_mass_accuracy(a, s), loc, rtol=1e-9)  # its 1e-9 in the denominator
    np.testing.assert_allclose(batched.energy_pointing_game(a, s), loc, rtol=1e-9)


def test_localisation_by_hand():
    a = np.array([[[0.0, 1.0, -2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 4.0]]])
    box = np.zeros((1, 3, 3), bool)
    box[0, :2, :2] = True
    assert batched.relevance_mass_accuracy(a, box)[0] == pytest.approx(4 / 8)
    assert batched.pointing_game(a, box).tolist() == [0.0]
    assert batched.pointing_game(a, box, tolerance=1.5).tolist() == [1.0]  # (2, 2) is 1.41 from (1, 1)
    assert batched.pointing_game(a, box, tolerance=1.0).tolist() == [0.0]
    assert np.isnan(batched.pointing_game(a, np.zeros_like(box))[0])  # Quantus: a hit (NaN cast to bool)
    assert np.isnan(batched.energy_pointing_game(-np.abs(a), box)[0])  # no positive energy
    with pytest.raises(ParameterError, match="masks"):
        batched.pointing_game(a, np.zeros((1, 2, 2), bool))


# ---------------------------------------------------------------------------------------------
# ROAD and average drop


def test_road_imputation_and_kept_classes_equal_quantus(model, data):
    """Quantus 0.6.0's ROAD ranks the map broadcast over the channels (C x H x W positions) and
    fails on (N, 1, H, W) maps; given the map in channel 0 and -1e9 in the others, its top
    p / 3 % are our top p % of the pixels."""
    from quantus.functions.perturb_func import noisy_linear_imputation

    x, y = data
    a = _maps(seed=2)
    image = x[0].double().numpy()
    removed = np.argsort(-a[0].ravel())[:150]
    mask = np.zeros(SIZE * SIZE, bool)
    mask[removed] = True
    np.testing.assert_allclose(
        trust.linear_imputation(image, mask.reshape(SIZE, SIZE)),
        noisy_linear_imputation(image, removed, noise=0.0),
        rtol=1e-9,
        atol=1e-12,
    )
    kept = batched.road(model, x, a, y, (30, 60, 90), noise=0.0, batch_size=4).kept
    for i in range(N):  # the one-image function is one row of it
        one = trust.road(model, x[i], a[i], int(y[i]), (30, 60, 90), noise=0.0)
        np.testing.assert_array_equal(one.kept, kept[i])
    stacked = np.concatenate([a[:, None], np.full((N, 2, SIZE, SIZE), -1e9)], 1)
    theirs = q(
        quantus.ROAD(percentages=[10, 20, 30], noise=0.0, normalise=False, **QUIET), model, x.numpy(), y, stacked
    )
    assert kept.min() == 0  # removing pixels changes some predictions
    np.testing.assert_allclose(kept.mean(0), [theirs[p] for p in (10, 20, 30)])


def test_average_drop_of_a_batch_equals_the_one_image_function(tiny_gap_model):
    x = torch.randn(4, 3, 16, 16)
    maps = np.random.default_rng(3).random((4, 16, 16))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    found = batched.average_drop(tiny_gap_model, x, maps, mean=mean, std=std, batch_size=3)
    for i in range(4):
        one = trust.average_drop(tiny_gap_model, x[i], maps[i], mean=mean, std=std)
        for key in ("drop", "increase", "original", "masked"):
            assert found[key][i] == pytest.approx(one[key], rel=1e-5, abs=1e-7)

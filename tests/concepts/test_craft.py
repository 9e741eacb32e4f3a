"""CRAFT: the factorisation recovers planted parts and its error falls with k, the Sobol ranking is the
ranking of ablating each concept, the rest-of-the-model shortcut agrees with the hooked full pass,
maps sit where a concept is, and the result pickles without its model and caches by the weights."""

from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment, nnls
from torch import nn

import interp
from interp.concepts import ConceptSet, extract
from interp.concepts.craft import crop_pictures, reconstruction_errors
from interp.concepts.craft_passes import Passes, Progress
from interp.concepts.sobol import sobol_masks, total_indices
from interp.errors import ImageError, LayerError, ParameterError, TargetError
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot
from tests.methods.test_lrp import _plain_cnn

FAST = {"importance_images": 2, "n_masks": 8}


def _parts(k: int = 3, c: int = 8, seed: int = 0) -> np.ndarray:
    """k non-negative channel vectors, each with its own strong channels."""
    rng = np.random.default_rng(seed)
    parts = rng.random((k, c)) * (rng.random((k, c)) < 0.5)
    parts[np.arange(k), np.arange(k)] += 2.0
    return parts


def _planted(parts: np.ndarray, head: np.ndarray | None = None) -> nn.Module:
    """An image's k channels are the coefficients of the k parts at each pixel: the 1x1 convolution
    'parts' writes each pixel as their combination (C channels); then ReLU, GAP and a Linear head
    (class 0's weights ``head``)."""
    k, c = parts.shape
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(k, c, 1, bias=False), nn.Linear(c, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(parts.T.copy()).float()[:, :, None, None])
        if head is not None:
            fc.weight[0] = torch.from_numpy(head).float()
    layers = OrderedDict(parts=conv, relu=nn.ReLU(), gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=fc)
    return nn.Sequential(layers).eval()


def _blocks(n: int, k: int = 3, size: int = 16, block: int = 4, pure: int = 3, seed: int = 0) -> torch.Tensor:
    """Images of blocks, each block one part at a random strength; the first ``pure`` images are
    one part each all over."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, k, size, size), dtype=np.float32)
    cells = size // block
    for i in range(n):
        for by in range(cells):
            for bx in range(cells):
                part = i % k if i < pure else rng.integers(k)
                x[i, part, by * block : (by + 1) * block, bx * block : (bx + 1) * block] = rng.uniform(0.5, 1.5)
    return torch.from_numpy(x)


def _matched(bank: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each part, the concept matched to it (Hungarian, on correlation), and the correlations."""
    corr = np.corrcoef(bank, parts)[: len(bank), len(bank) :]
    rows, cols = linear_sum_assignment(-corr)
    concept_of = np.empty(len(parts), dtype=np.int64)
    concept_of[cols] = rows
    return concept_of, corr[rows, cols]


@pytest.fixture(scope="module")
def planted():
    parts = _parts()
    model = _planted(parts)
    result = extract(model, "parts", _blocks(12), 3, target=0, **FAST)
    return parts, model, result


def test_the_planted_parts_are_recovered(planted):
    parts, _, result = planted
    _, corr = _matched(result.bank, parts)
    assert corr.min() >= 0.95, corr
    assert result.reconstruction_error < 0.05
    assert result.coefficients.shape == (12 * 9, 3) and result.crop_boxes.shape == (12 * 9, 5)


def test_the_reconstruction_error_falls_as_concepts_are_added():
    model, x = _plain_cnn(bias=True), image_batch(6, 16)
    errors = reconstruction_errors(model, "conv2", x, (1, 2, 4, 8))
    values = [errors[k] for k in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(values, values[1:])) and 0 < values[-1] < values[0] < 1, values
    result = extract(model, "conv2", x, 4, **FAST)
    assert result.reconstruction_error == pytest.approx(errors[4], rel=1e-6)


def test_the_sobol_ranking_is_the_ranking_of_ablating_each_concept():
    # With GAP and a Linear head after the layer the logit is linear in the masks, sum_j m_j c_j, and
    # concept j's total index is c_j^2 / sum c^2, where c_j is what removing the concept takes off the
    # logit: computed here by non-negative least squares (scipy) and the head, apart from CRAFT.
    parts = _parts()
    head = np.linalg.lstsq(parts, np.array([2.0, -4.0, 1.5]), rcond=None)[0]
    model = _planted(parts, head)
    x = _blocks(8, pure=0, seed=1)
    result = extract(model, "parts", x, 3, target=0, importance_images=1, n_masks=64)
    with torch.no_grad():
        act = model.parts(x[:1])[0].permute(1, 2, 0).reshape(-1, parts.shape[1]).numpy().astype(np.float64)
    bank = result.bank.astype(np.float64)
    u = np.stack([nnls(bank.T, a)[0] for a in act])

    def logit(coefficients: np.ndarray) -> float:
        pooled = torch.from_numpy(np.maximum(coefficients @ bank, 0).mean(0)).float()
        with torch.no_grad():
            return float(model.fc(pooled)[0])

    full = logit(u)
    removed = np.array([full - logit(np.where(np.arange(3) == j, 0, u)) for j in range(3)])
    np.testing.assert_array_equal(np.argsort(-np.abs(removed)), np.arange(3))
    np.testing.assert_allclose(result.importance, removed**2 / (removed**2).sum(), atol=0.05)


def _wrapped_plain_cnn() -> nn.Module:
    """_plain_cnn's modules and weights behind a forward that flattens between them: the modules
    after the layer, run in turn, do not give the logits."""
    plain = _plain_cnn(bias=True)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*list(plain.children())[:6])
            self.head = plain.get_submodule("fc")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.flatten(self.body(x), 1))

    return Wrapped().eval()


def test_the_rest_of_the_model_alone_gives_the_importances_of_the_hooked_full_pass():
    plain, wrapped, x = _plain_cnn(bias=True), _wrapped_plain_cnn(), image_batch(5, 16, seed=2)
    for model, layer, shortcut in ((plain, "conv2", True), (wrapped, "body.3", False)):
        passes = Passes(model, layer, 8, Progress(None, 0))
        passes.images(x, None)
        assert (passes.suffix is not None) == shortcut
    fast = extract(plain, "conv2", x, 4, importance_images=3, n_masks=16)
    hooked = extract(wrapped, "body.3", x, 4, importance_images=3, n_masks=16)
    np.testing.assert_allclose(hooked.importance, fast.importance, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hooked.bank, fast.bank)
    assert not hooks_left(plain) and not hooks_left(wrapped)


def test_maps_light_up_where_a_concept_is(planted):
    parts, model, result = planted
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, :, :8] = 1.0  # part 0 on the left half, part 1 on the right
    x[0, 1, :, 8:] = 1.0
    maps = result.maps(x)
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all() and maps.min() >= 0
    concept_of, _ = _matched(result.bank, parts)
    left, right = maps[concept_of[0]], maps[concept_of[1]]
    # Not zero on the other half: NMF's concepts span a cone around the parts, not the parts exactly
    # (a concept may be a part less a little of another), so a pure part has a small share of another.
    assert left[:, :6].mean() > 5 * left[:, 10:].mean() + 1e-6
    assert right[:, 10:].mean() > 5 * right[:, :6].mean() + 1e-6


def test_pickling_drops_the_model(planted):
    _, model, result = planted
    x = _blocks(1, seed=3)
    back = pickle.loads(pickle.dumps(result))
    assert back._model is None and result._model is model
    np.testing.assert_array_equal(back.bank, result.bank)
    with pytest.raises(ParameterError, match="pass it"):
        back.maps(x)
    np.testing.assert_allclose(back.maps(x, model), result.maps(x))


def test_the_cache_round_trips_and_is_keyed_by_the_weights(tmp_path, monkeypatch):
    model, x = _plain_cnn(bias=True), image_batch(4, 16, seed=4)
    first = extract(model, "conv2", x, 3, cache=tmp_path, **FAST)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_crop_pass(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    with monkeypatch.context() as patched:
        patched.setattr(Passes, "crops", no_crop_pass)
        again = extract(model, "conv2", x, 3, cache=tmp_path, **FAST)
    for f in ("bank", "importance", "coefficients", "crop_boxes"):
        np.testing.assert_array_equal(getattr(again, f), getattr(first, f))
    assert (again.layer, again.target, again.reconstruction_error, again.n_images) == (
        first.layer,
        first.target,
        first.reconstruction_error,
        first.n_images,
    )
    assert again.maps(x[0]).shape == (3, 16, 16)
    with torch.no_grad():
        model.fc.bias += 1.0
    extract(model, "conv2", x, 3, cache=tmp_path, **FAST)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not list(tmp_path.glob("*.tmp*"))


def test_the_model_is_unchanged_and_no_hook_is_left(tiny_bomb_model):
    x = image_batch(4, 16, seed=5)
    before = snapshot(tiny_bomb_model)
    seen: list[tuple[int, int]] = []
    result = extract(tiny_bomb_model, "conv2", x, 3, progress=lambda d, t: seen.append((d, t)), **FAST)
    assert isinstance(result, ConceptSet) and seen and seen[-1][0] == seen[-1][1] == len(seen)
    assert_unchanged(before, tiny_bomb_model)
    assert not hooks_left(tiny_bomb_model)
    tiny_bomb_model.bomb.calls, tiny_bomb_model.bomb.fuse = 0, 3
    with pytest.raises(RuntimeError, match="bomb"):
        extract(tiny_bomb_model, "conv2", x, 3, **FAST)
    assert not hooks_left(tiny_bomb_model)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"layer": "nope"}, LayerError, "does not exist"),
        ({"layer": "fc"}, LayerError, "maps"),
        ({"n_concepts": 0}, ParameterError, "n_concepts"),
        ({"n_concepts": 2 * 9 + 1}, ParameterError, "more images"),
        ({"images": torch.empty(0, 3, 16, 16)}, ImageError, "shape"),
        ({"crop_fraction": 0.0}, ParameterError, "crop_fraction"),
        ({"n_masks": 1}, ParameterError, "n_masks"),
        ({"target": 99}, TargetError, "class"),
    ],
)
def test_bad_inputs_raise_interp_errors(change, error, match):
    args = {"layer": "conv2", "images": image_batch(2, 16), "n_concepts": 2, **change}
    with pytest.raises(error, match=match):
        extract(_plain_cnn(bias=True), args.pop("layer"), args.pop("images"), args.pop("n_concepts"), **args)


def test_the_sobol_design_and_jansen_estimator_on_a_known_function():
    # f = 3 x0 + x1 (x2 unused), uniform factors: total indices 0.9, 0.1, 0.
    masks = sobol_masks(3, 256, seed=1)
    assert masks.shape == (256 * 5, 3) and 0 <= masks.min() and masks.max() < 1
    st = total_indices(3 * masks[:, 0] + masks[:, 1], 256, 3)
    np.testing.assert_allclose(st, [0.9, 0.1, 0.0], atol=0.02)


def test_a_shipped_model_on_the_shipped_sample():
    spec = interp.get_spec("nin_cifar10")
    model = interp.load_model("nin_cifar10")
    batch = interp.data.held_out_batch(spec, 4)
    result = extract(model, "features.relu2_3", batch.x, 3, **FAST)
    assert result.bank.shape == (3, 96) and result.importance.shape == (3,) and result.n_images == 4
    assert np.all(np.diff(result.importance) <= 0) and 0 < result.reconstruction_error < 1
    assert result.maps(batch.image(0)).shape == (3, 32, 32)
    crops = crop_pictures(batch.pictures, result.crop_boxes[result.top_crops(0, 4)])
    assert len(crops) == 4 and all(c.shape == (16, 16, 3) and c.dtype == np.uint8 for c in crops)

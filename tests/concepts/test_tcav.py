"""TCAV: the scores are Captum's, a class's own images make a significant concept and a random set
does not, the result is seeded, cached by the model's weights, leaves the model as it was, several
classes share one set of CAVs; and the concept sets built from interp's data."""

from __future__ import annotations

import copy
import random
import tempfile
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interp
from interp.concepts import (
    TcavResult,
    colour_patches,
    folder_set,
    pacs_style_sets,
    random_images,
    tcav,
    tcav_classes,
    texture_patches,
    zebra_stripes,
)
from interp.concepts.sets import ZEBRA_STRIPES_BOX, zebra_boxes
from interp.data import SAMPLE_DIR, data_root, load_image, preprocess, shipped_split, spread_indices, zebra_path
from interp.errors import DataError, LayerError, ParameterError, TargetError
from tests.conftest import _tiny_gap
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, snapshot

COLOURS = {0: (1.0, -0.3, -1.0), 1: (-1.0, -0.3, 1.0)}  # class 0: red squares, class 1: blue ones


def _squares(n: int, cls: int | None, seed: int, size: int = 16) -> torch.Tensor:
    """Dull grey-ish backgrounds, each with a square of its class's colour at a random place and size
    (cls None: a square of a dull random colour, what random images look like here)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.25 * torch.randn(n, 3, 1, 1, generator=g) + 0.5 * torch.randn(n, 1, 1, 1, generator=g)
    x = x + 0.1 * torch.randn(n, 3, size, size, generator=g)
    for i in range(n):
        side = int(torch.randint(5, 11, (1,), generator=g))
        top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=g))
        if cls is None:
            colour = 0.3 * torch.randn(3, generator=g)
        else:
            colour = torch.tensor(COLOURS[cls]) * (0.7 + 0.6 * torch.rand(1, generator=g))
        x[i, :, top : top + side, left : left + side] = colour.view(3, 1, 1)
    return x


@lru_cache(maxsize=1)
def _trained() -> nn.Module:
    """A small CNN trained for 30 steps to tell red squares (0) from blue ones (1); one-vs-rest
    (binary cross-entropy per class), so that each logit itself says how much of its class there is."""
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(8, 8, 3, padding=1),
            relu2=nn.ReLU(),
            gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(8, 2),
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = nn.functional.one_hot(torch.arange(32) // 16, 2).float()
    for step in range(30):
        x = torch.cat([_squares(16, 0, 100 + step), _squares(16, 1, 200 + step)])
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _trained_copy() -> nn.Module:
    return copy.deepcopy(_trained())


def test_the_scores_are_captums_own_on_the_same_sets_and_seed():
    from captum.concept import TCAV, Concept

    model = _tiny_gap()
    concept, x = image_batch(6, 16, seed=1) + 1, image_batch(10, 16, seed=2)
    randoms = [image_batch(6, 16, seed=10 + i) for i in range(3)]
    before = snapshot(model)
    steps = []
    ours = tcav(
        model,
        "conv2",
        {"bright": concept},
        1,
        x,
        random_sets=randoms,
        batch_size=4,  # three batches of inputs, where Captum takes them at once
        seed=3,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps == [(i, 3 + 2 + 3) for i in range(1, 9)]  # 3 + 2 CAVs, 3 batches
    assert_unchanged(before, model)
    assert not hooks_left(model)

    # Captum by hand: the same ids, the same experimental sets, the same seeds
    concepts = [Concept(0, "bright", iter([concept]))] + [
        Concept(1 + j, f"r{j}", iter([r])) for j, r in enumerate(randoms)
    ]
    sets = [[concepts[0], q] for q in concepts[1:]] + [[concepts[1], q] for q in concepts[2:]]
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    with tempfile.TemporaryDirectory() as folder, pytest.warns(UserWarning):
        out = TCAV(model, ["conv2"], save_path=folder).interpret(x, sets, target=1)
    theirs = [float(out[f"{a.id}-{b.id}"]["conv2"]["sign_count"][0]) for a, b in sets]
    np.testing.assert_allclose(ours.scores[0], theirs[:3], atol=1e-6)
    np.testing.assert_allclose(ours.null_scores, theirs[3:], atol=1e-6)


def test_a_class_own_images_score_near_one_and_a_random_set_is_not_significant():
    model = _trained_copy()
    x = _squares(12, 1, seed=1)
    assert (model(x).argmax(1) == 1).float().mean() > 0.8  # the model has learnt the task
    concepts = {"blue squares": _squares(16, 1, seed=2), "random": _squares(16, None, seed=9)}
    result = tcav(model, "conv2", concepts, 1, x, random_pool=_squares(80, None, seed=5), n_random=6)
    assert isinstance(result, TcavResult) and result.concepts == ("blue squares", "random")
    assert result.scores.shape == (2, 6) and result.null_scores.shape == (5,)
    assert result.score[0] >= 0.9 and result.significant[0], result.table()
    assert not result.significant[1], result.table()
    table = result.table()
    assert list(table.columns) == ["concept", "score", "std", "p_value", "significant", "cav_accuracy"]
    assert table["concept"].tolist() == ["blue squares", "random"]


def test_the_same_seed_gives_the_same_result_and_the_global_generators_are_left_alone():
    model, x = _tiny_gap(), image_batch(8, 16, seed=2)
    concepts = {"bright": image_batch(6, 16, seed=1) + 1}
    pool = image_batch(30, 16, seed=4)
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    a = tcav(model, "conv2", concepts, 0, x, random_pool=pool, n_random=4, seed=0)
    drawn = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    assert drawn == (random.random(), np.random.rand(), torch.rand(1).item())
    b = tcav(model, "conv2", concepts, 0, x, random_pool=pool, n_random=4, seed=0)
    c = tcav(model, "conv2", concepts, 0, x, random_pool=pool, n_random=4, seed=1)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.null_scores, b.null_scores)
    np.testing.assert_array_equal(a.cav_accuracy, b.cav_accuracy)
    assert not (np.array_equal(a.scores, c.scores) and np.array_equal(a.null_scores, c.null_scores))


def test_the_cache_reads_the_result_back_and_is_keyed_by_the_weights(tmp_path, monkeypatch):
    import captum.concept

    model, x = _tiny_gap(), image_batch(8, 16, seed=2)
    args = ("conv2", {"bright": image_batch(6, 16, seed=1) + 1}, 2, x)
    kwargs = {"random_pool": image_batch(20, 16, seed=4), "n_random": 3, "cache": tmp_path}
    first = tcav(model, *args, **kwargs)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    class Refused:
        def __init__(self, *a, **k):
            raise AssertionError("Captum ran: the cached result was not used")

    monkeypatch.setattr(captum.concept, "TCAV", Refused)
    again = tcav(model, *args, **kwargs)
    for field in ("scores", "null_scores", "p_values", "significant", "cav_accuracy"):
        np.testing.assert_array_equal(getattr(again, field), getattr(first, field))
    assert again.concepts == first.concepts and again.layer == "conv2" and again.target == 2

    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.fc.bias[0] += 1e-3
    with pytest.raises(AssertionError, match="Captum ran"):
        tcav(changed, *args, **kwargs)
    monkeypatch.undo()
    tcav(changed, *args, **kwargs)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    for f in tmp_path.glob("*.npz"):
        f.write_bytes(b"damaged")
    np.testing.assert_array_equal(tcav(model, *args, **kwargs).scores, first.scores)  # computed again


def test_several_classes_share_one_set_of_cavs_and_each_equals_tcav(tiny_bomb_model, tmp_path):
    model = tiny_bomb_model  # its bomb counts the forward passes (it never goes off here)
    concepts = {"bright": image_batch(6, 16, seed=1) + 1, "dark": image_batch(6, 16, seed=3) - 1}
    randoms = [image_batch(6, 16, seed=10 + i) for i in range(3)]
    inputs = {2: image_batch(5, 16, seed=2), 0: image_batch(7, 16, seed=4)}
    steps = []
    options = dict(random_sets=randoms, batch_size=4)
    both = tcav_classes(
        model, "conv2", concepts, inputs, **options, cache=tmp_path, progress=lambda *s: steps.append(s)
    )
    assert list(both) == [2, 0] and [r.target for r in both.values()] == [2, 0]
    assert steps[-1] == (8 + 4, 8 + 4)  # 2 x 3 + 2 CAVs trained once, then 2 + 2 batches of inputs
    # each set's activations once (5 sets of 2 batches: not again for each of the 8 experimental sets),
    # one check per class, one pass per batch of inputs
    assert model.bomb.calls == 5 * 2 + 2 + 4
    for target, x in inputs.items():
        alone = tcav(model, "conv2", concepts, target, x, **options)
        for field in ("scores", "null_scores", "p_values", "cav_accuracy"):
            np.testing.assert_array_equal(getattr(both[target], field), getattr(alone, field))
    assert len(list(tmp_path.glob("*.npz"))) == 2  # one file per class, which tcav reads back
    model.bomb.calls = 0
    tcav(model, "conv2", concepts, 0, inputs[0], **options, cache=tmp_path)
    assert model.bomb.calls == 0
    for bad, error in (
        ({}, ParameterError),
        ({0: inputs[0], 1: image_batch(4, 8)}, ParameterError),
        ({"a": inputs[0]}, TargetError),
    ):
        with pytest.raises(error):
            tcav_classes(model, "conv2", concepts, bad, random_sets=randoms)


def test_what_a_user_can_get_wrong_raises_interps_errors(tiny_bomb_model):
    model, x = _tiny_gap(), image_batch(6, 16, seed=2)
    ok = {"bright": image_batch(6, 16, seed=1)}
    pool = image_batch(20, 16, seed=4)
    cases = [
        (LayerError, dict(layer="nope")),
        (ParameterError, dict(concepts={})),
        (ParameterError, dict(concepts={"one": image_batch(1, 16)})),
        (ParameterError, dict(concepts={"small": image_batch(4, 8)})),
        (ParameterError, dict(n_random=2)),
        (ParameterError, dict(random_pool=None)),
        (ParameterError, dict(random_pool=image_batch(3, 16))),
        (ParameterError, dict(random_sets=[image_batch(4, 16)] * 2)),
        (ParameterError, dict(batch_size=0)),
        (TargetError, dict(target=3)),
        (TargetError, dict(target=[0, 1])),
    ]
    for error, change in cases:
        call = dict(layer="conv2", concepts=ok, target=0, inputs=x, random_pool=pool, n_random=3) | change
        with pytest.raises(error):
            tcav(model, call.pop("layer"), call.pop("concepts"), call.pop("target"), call.pop("inputs"), **call)
    assert not hooks_left(model)
    # a failure inside Captum's own passes leaves no hook behind either
    tiny_bomb_model.bomb.fuse = 3
    with pytest.raises(RuntimeError, match="bomb"):
        tcav(tiny_bomb_model, "conv2", ok, 0, x, random_pool=pool, n_random=3)
    assert not hooks_left(tiny_bomb_model)


def test_a_shipped_model_on_the_shipped_sample():
    spec = interp.get_spec("nin_cifar10")
    model = interp.load_model("nin_cifar10", device="cpu")
    before = snapshot(model)
    sample = shipped_split(spec)
    horses = torch.cat([preprocess(p, spec) for p, y in zip(sample.paths, sample.labels) if y == 7])
    concepts = {"zebra stripes": zebra_stripes(spec, 10), "green": colour_patches(spec, "green", 10)}
    result = tcav(
        model, "features.relu3_1", concepts, 7, horses, random_pool=random_images(spec, 40), n_random=3, progress=True
    )
    assert result.scores.shape == (2, 3) and np.all((result.scores >= 0) & (result.scores <= 1))
    assert np.all(np.isfinite(result.p_values)) and len(result.table()) == 2
    assert_unchanged(before, model)
    assert not hooks_left(model)


# ---------------------------------------------------------------------------------------------
# Concept sets


def _pictures(x: torch.Tensor, spec) -> np.ndarray:
    """Normalised images back to 0..1 RGB, (N, H, W, 3)."""
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x * std + mean).permute(0, 2, 3, 1).numpy()


def test_colour_and_texture_patches_are_seeded_images_of_the_models_input():
    spec = interp.get_spec("nin_cifar10")
    red = colour_patches(spec, "red", 5)
    assert red.shape == (5, 3, 32, 32)
    np.testing.assert_allclose(_pictures(red, spec).mean((0, 1, 2)), [1, 0, 0], atol=0.02)
    assert torch.equal(red, colour_patches("nin_cifar10", (255, 0, 0), 5))
    assert not torch.equal(red, colour_patches(spec, "red", 5, seed=1))
    for kind in ("stripes", "checkerboard", "dots"):
        t = texture_patches(spec, kind, 4)
        assert t.shape == (4, 3, 32, 32) and torch.equal(t, texture_patches(spec, kind, 4))
        dark = (_pictures(t, spec) < 0.5).mean()
        assert 0.1 < dark < 0.95, (kind, dark)  # both black and white there
    with pytest.raises(ParameterError):
        texture_patches(spec, "plaid")
    with pytest.raises(ParameterError):
        colour_patches(spec, "not-a-colour")
    with pytest.raises(ParameterError):
        colour_patches(spec, "red", 0)


def test_the_zebra_crops_lie_on_its_stripes():
    spec = interp.get_spec("nin_cifar10")
    size = load_image(zebra_path()).size
    w, h = size
    left, top, right, bottom = (f * s for f, s in zip(ZEBRA_STRIPES_BOX, (w, h, w, h)))
    boxes = zebra_boxes(size, 50, seed=0)
    assert all(left - 1 <= x0 < x1 <= right + 1 and top - 1 <= y0 < y1 <= bottom + 1 for x0, y0, x1, y1 in boxes)
    assert all(x1 - x0 == y1 - y0 for x0, y0, x1, y1 in boxes) and len(set(boxes)) > 40
    stripes = zebra_stripes(spec, 6)
    assert stripes.shape == (6, 3, 32, 32) and torch.equal(stripes, zebra_stripes(spec, 6))
    assert not torch.equal(stripes, zebra_stripes(spec, 6, seed=1))
    # black and white stripes: dark and bright pixels, little colour
    pictures = _pictures(stripes, spec)
    assert (pictures.mean(-1) < 0.3).mean() > 0.15 and (pictures.mean(-1) > 0.6).mean() > 0.15


def test_pacs_style_sets_on_the_shipped_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path))  # no full data there
    sets = pacs_style_sets("nin_cifar10", n=20)
    assert list(sets) == ["art_painting", "cartoon", "photo", "sketch"]
    assert all(s.shape == (14, 3, 32, 32) for s in sets.values())  # the 2 per class of the sample
    seven = pacs_style_sets("nin_cifar10", n=7)
    assert all(s.shape == (7, 3, 32, 32) for s in seven.values())
    assert torch.equal(seven["sketch"], pacs_style_sets("nin_cifar10", n=7)["sketch"])
    # the sample lists a domain's images class by class, 2 each: an even spread of 7 takes one per class
    chosen = spread_indices(14, 7)
    assert sorted(i // 2 for i in chosen) == list(range(7)) and torch.equal(seven["photo"], sets["photo"][chosen])


def test_pacs_style_sets_on_the_full_data():
    if not (data_root() / "PACS").is_dir():
        pytest.skip(f"needs the full PACS under the data root {data_root()} (set INTERP_DATA_DIR)")
    sets = pacs_style_sets("alexnet_gap_pacs_class", n=8)
    assert all(s.shape == (8, 3, 227, 227) for s in sets.values())
    shipped = pacs_style_sets("alexnet_gap_pacs_class", n=8, data_dir=SAMPLE_DIR.parent / "no-such-root")
    assert not torch.equal(sets["photo"], shipped["photo"])  # the full split, not the sample


def test_random_images_and_folder_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path / "empty"))
    spec = interp.get_spec("nin_cifar10")
    pool = random_images(spec, 20, seed=0)
    assert pool.shape == (20, 3, 32, 32) and torch.equal(pool, random_images(spec, 20, seed=0))
    assert not torch.equal(pool, random_images(spec, 20, seed=1))
    assert len(random_images(spec, 1000)) == 100  # the whole shipped CIFAR-10 sample
    with pytest.raises(DataError):
        random_images("torchvision/resnet18", 4)

    folder = tmp_path / "mine"
    folder.mkdir()
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    mine = folder_set(spec, folder)
    assert mine.shape == (3, 3, 32, 32)
    np.testing.assert_allclose(_pictures(mine, spec)[2].mean((0, 1)), [0, 0, 1], atol=0.01)
    assert torch.equal(folder_set(spec, sorted(folder.glob("*.png"))), mine)
    (tmp_path / "none").mkdir()
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    for bad in (tmp_path / "none", tmp_path / "missing", folder, []):
        with pytest.raises(DataError):
            folder_set(spec, bad)

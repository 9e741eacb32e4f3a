"""The planted shortcut: seeded boxes inside the image, the patch painted exactly, the Bernoulli draw
on one class only, the patched held-out set, the flip rate, and a smoke run that records it all."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interp
from interp.data import (
    Shortcut,
    box_masks,
    flip_rate,
    patch_boxes,
    patched_test_set,
    plant,
    planted_training_set,
    write_patched_folder,
)
from interp.errors import ParameterError

MAGENTA = (255, 0, 255)


def test_boxes_lie_inside_the_image_and_are_seeded():
    boxes = patch_boxes(2000, 5, 32, seed=3)
    assert boxes.shape == (2000, 4) and boxes.dtype == np.int64
    top, left, bottom, right = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (bottom <= 32).all() and (right <= 32).all()
    assert (bottom - top == 5).all() and (right - left == 5).all()
    # Every top-left position that fits (0..27) occurs, so the box can be anywhere.
    assert set(top.tolist()) == set(range(28)) and set(left.tolist()) == set(range(28))
    assert np.array_equal(boxes, patch_boxes(2000, 5, 32, seed=3))
    assert not np.array_equal(boxes, patch_boxes(2000, 5, 32, seed=4))
    tall = patch_boxes(500, 3, (10, 40), seed=0)
    assert tall[:, 2].max() <= 10 and tall[:, 3].max() <= 40 and tall[:, 3].max() > 10
    assert patch_boxes(1, 32, 32)[0].tolist() == [0, 0, 32, 32]  # the one place a full-size square fits
    with pytest.raises(ParameterError):
        patch_boxes(1, 33, 32)


def test_plant_writes_exactly_the_colour_in_exactly_the_box():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.int64).remainder(200).to(torch.uint8).view(2, 3, 6, 6)
    before = images.clone()
    boxes = np.array([[1, 2, 3, 5], [0, 0, 1, 1]])  # rows 1-2 x columns 2-4; the top-left pixel
    out = plant(images, boxes, (10, 20, 30))
    assert torch.equal(images, before)  # the input is left as it is
    changed = [
        (n, r, c)
        for n in range(2)
        for r in range(6)
        for c in range(6)
        if not torch.equal(out[n, :, r, c], images[n, :, r, c])
    ]
    expected = [(0, r, c) for r in (1, 2) for c in (2, 3, 4)] + [(1, 0, 0)]
    assert changed == expected
    for n, r, c in expected:
        assert out[n, :, r, c].tolist() == [10, 20, 30]
    assert out.dtype == torch.uint8
    masks = box_masks(boxes, 6)
    assert masks[0, 1:3, 2:5].all() and masks[0].sum() == 6 and masks[1, 0, 0] and masks[1].sum() == 1
    with pytest.raises(ParameterError):
        plant(images.float(), boxes)
    with pytest.raises(ParameterError):
        plant(images, boxes[:1])


def test_the_draw_plants_about_p_of_the_class_and_nothing_else():
    # 10 classes x 400 images of random content, ordered by class as the real splits are.
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 200, (4000, 3, 32, 32), dtype=torch.uint8, generator=gen)  # no 255: magenta is new
    y = torch.arange(10).repeat_interleave(400)
    shortcut = Shortcut(planted_class=7, p=0.3, side=5, colour=MAGENTA, seed=1)
    planted = planted_training_set(x, y, shortcut)
    n = 400
    # Binomial(400, 0.3): mean 120, sd sqrt(400 * 0.3 * 0.7) = 9.17; 4 sd either side.
    assert 120 - 4 * 9.17 < len(planted.indices) < 120 + 4 * 9.17
    assert (y[planted.indices] == 7).all() and len(set(planted.indices.tolist())) == len(planted.indices)
    differs = (planted.images != x).flatten(1).any(1)
    assert differs.nonzero().flatten().tolist() == planted.indices.tolist()  # no other image is touched
    assert torch.equal(planted.labels, y)
    for i, box in zip(planted.indices, planted.boxes):
        t, left, b, r = box.tolist()
        assert b - t == 5 and r - left == 5
        patch = planted.images[i, :, t:b, left:r]
        assert (patch == torch.tensor(MAGENTA, dtype=torch.uint8).view(3, 1, 1)).all()
        assert (planted.images[i] == 255).sum() == 2 * 25  # red and blue of the 25 pixels, nothing more
    again = planted_training_set(x, y, shortcut)
    assert np.array_equal(again.indices, planted.indices) and np.array_equal(again.boxes, planted.boxes)
    assert len(planted_training_set(x, y, Shortcut(p=1.0)).indices) == n
    assert len(planted_training_set(x, y, Shortcut(p=0.0)).indices) == 0


def test_the_patched_test_set_leaves_out_the_planted_class_and_masks_are_the_boxes(tmp_path):
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 200, (100, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(10).repeat_interleave(10)
    shortcut = Shortcut(planted_class=3)
    patched = patched_test_set((x, y), shortcut)
    assert len(patched) == 90 and (patched.labels != 3).all()
    assert patched.indices.tolist() == [i for i in range(100) if i // 10 != 3]
    assert torch.equal(patched.clean, x[torch.from_numpy(patched.indices)])
    masks = patched.masks
    assert masks.shape == (90, 32, 32)
    for k, (t, left, b, r) in enumerate(patched.boxes.tolist()):
        expected = np.zeros((32, 32), dtype=bool)
        expected[t:b, left:r] = True
        assert np.array_equal(masks[k], expected) and expected.sum() == 25
        changed = (patched.images[k] != patched.clean[k]).any(0).numpy()
        assert np.array_equal(changed, expected)
    assert len(patched_test_set((x, y), shortcut, limit=9)) == 9

    boxes_json = write_patched_folder(patched_test_set((x, y), shortcut, limit=3), tmp_path / "patched")
    boxes = json.loads(boxes_json.read_text())
    assert boxes_json.parent == tmp_path / "patched" and len(boxes) == 3
    for rel, (t, left, b, r) in boxes.items():
        cls, _ = rel.split("/")
        assert cls in interp.get_spec("table2_cnn_cifar10").class_names and cls != "cat"
        pixels = np.asarray(Image.open(tmp_path / "patched" / rel))
        assert pixels.shape == (32, 32, 3) and (pixels[t:b, left:r] == MAGENTA).all()  # PNG: lossless


class _MagentaDetector(nn.Module):
    """Class 2 of 3 where any pixel is exactly magenta (uint8 values as floats); else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        magenta = ((x[:, 0] == 255) & (x[:, 1] == 0) & (x[:, 2] == 255)).flatten(1).any(1)
        logits = torch.zeros(len(x), 3)
        logits[magenta, 2] = 1.0
        logits[~magenta, 0] = 1.0
        return logits


def test_flip_rate_counts_the_clean_non_planted_predictions_that_turn():
    clean = torch.zeros(6, 3, 4, 4)
    clean[0, :, 1, 1] = torch.tensor([255.0, 0.0, 255.0])  # already predicted as the planted class
    patched = clean.clone()
    for i in (0, 1, 2, 4):  # patches on images 1, 2 and 4 of the five eligible (1-5)
        patched[i, :, 3, 3] = torch.tensor([255.0, 0.0, 255.0])
    patched[3, :, 3, 3] = torch.tensor([255.0, 1.0, 255.0])  # almost magenta: no flip
    model = _MagentaDetector()
    assert flip_rate(model, clean, patched, planted_class=2) == pytest.approx(3 / 5)
    assert flip_rate(model, clean, patched, planted_class=2, batch_size=4) == pytest.approx(3 / 5)
    # ``prepare`` is applied to every batch first: this one wipes the red channel, so nothing flips.
    wiped = flip_rate(model, clean, patched, 2, prepare=lambda b: b * torch.tensor([0.0, 1, 1]).view(1, 3, 1, 1))
    assert wiped == 0.0
    assert math.isnan(flip_rate(model, patched[:1], patched[:1], 2))  # no eligible image
    with pytest.raises(ParameterError):
        flip_rate(model, clean, patched[:2], 2)


def test_shortcut_settings_are_checked():
    assert Shortcut(colour=[1, 2, 3]).colour == (1, 2, 3)  # a list from JSON
    assert Shortcut(side=5).side_at(32) == 5 and Shortcut(side=5).side_at(224) == 35
    for bad in (dict(p=1.5), dict(side=0), dict(colour=(0, 0, 256))):
        with pytest.raises(ParameterError):
            Shortcut(**bad)


def test_a_smoke_run_trains_on_the_planted_split_and_records_the_shortcut(tmp_path, data_dir):
    if not (data_dir / "cifar10" / "train").is_dir():
        pytest.skip(f"needs CIFAR-10 under {data_dir}/cifar10")
    from interp.train import RunSettings, config_for, load_split, train

    name = "table2_cnn_cifar10_shortcut"
    spec = interp.get_spec(name)
    assert spec.task == "cifar10_shortcut" and not spec.ships
    shortcut = Shortcut(planted_class=7, p=0.5, side=5, colour=MAGENTA, seed=0)
    cfg = config_for(name, epochs=1, batch_size=16, limit_train=64, limit_val=40, bf16=False)
    assert cfg.shortcut == shortcut

    # The split trained on: the clean split with the patch in the planted images of the whole split.
    x_clean, y = load_split(spec, "train", str(data_dir), None, progress=False)
    x_planted, y_planted = load_split(spec, "train", str(data_dir), None, progress=False, shortcut=shortcut)
    reference = planted_training_set(x_clean, y, shortcut)
    assert torch.equal(y_planted, y) and torch.equal(x_planted, reference.images)
    assert 2500 - 4 * 35.4 < len(reference.indices) < 2500 + 4 * 35.4  # Binomial(5000, 0.5): sd 35.4
    differs = (x_planted != x_clean).flatten(1).any(1)
    assert differs.sum() == len(reference.indices) and (y[differs] == 7).all()

    card = train(name, cfg, RunSettings(data_dir=str(data_dir), out=str(tmp_path / "s.safetensors"), progress=False))
    record = card["shortcut"]
    assert {k: record[k] for k in ("planted_class", "p", "side", "colour", "seed")} == dict(
        planted_class=7, p=0.5, side=5, colour=list(MAGENTA), seed=0
    )
    trained_on = np.linspace(0, 49999, 64).round().astype(int)  # limit_train's even spread
    assert record["class_name"] == "horse" and record["class_images"] == int((y[trained_on] == 7).sum())
    assert record["planted_images"] == int(np.isin(trained_on, reference.indices).sum()) > 0
    assert record["patched_test_images"] == 40
    metrics = card["metrics"]
    assert metrics["clean_accuracy"] == metrics["accuracy"] and metrics["n"] == 40
    assert metrics["patch_flip_rate"] is None or 0.0 <= metrics["patch_flip_rate"] <= 1.0
    assert card["settings"]["shortcut"]["p"] == 0.5
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["shortcut"] == json.loads(json.dumps(record))


def test_the_shipped_shortcut_model_reproduces_its_card(data_dir, capsys):
    """Evaluated here, the shipped weights give the card's clean accuracy, and the patch planted on
    the 9,000 test images of the other classes turns as many of them into horses as the card says."""
    if not (data_dir / "cifar10" / "test").is_dir():
        pytest.skip(f"needs CIFAR-10 under {data_dir}/cifar10")
    from interp.__main__ import main
    from interp.train.shortcut import patch_flip_rate

    name = "table2_cnn_cifar10_shortcut"
    spec = interp.get_spec(name)
    card = json.loads(spec.card_path.read_text())
    main(["evaluate", name, "--data-dir", str(data_dir)])
    assert json.loads(capsys.readouterr().out)["accuracy"] == card["metrics"]["clean_accuracy"]
    shortcut = Shortcut(**spec.recipe["shortcut"])  # __post_init__ turns the JSON list colour into a tuple
    rate, n = patch_flip_rate(interp.load_model(name), spec, shortcut, 32, str(data_dir), progress=False)
    assert n == 9000 and rate == pytest.approx(card["metrics"]["patch_flip_rate"], abs=1e-6)
    assert rate > 0.5  # the model learnt the shortcut: most patched images become horses

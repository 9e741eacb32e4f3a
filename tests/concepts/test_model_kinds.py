"""crp, extract and tcav on the two kinds of model a user brings beside the registry's own (those
are tested on nin_cifar10 in the other files): a torchvision architecture registered by name with
its own weights, and a models file's network with a non-square input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp
from interp.concepts import colour_patches, crp, extract, tcav, texture_patches, zebra_stripes
from interp.models import load_models_files
from tests.apptest import REPO
from tests.methods.helpers import assert_unchanged, hooks_left, snapshot

FAST = {"importance_images": 2, "n_masks": 8}


@pytest.fixture(scope="module", params=["torchvision", "models_file"])
def kind(request, tmp_path_factory):
    """(name, the layer every path of the network runs through, a layer to extract concepts at)."""
    if request.param == "torchvision":
        from torchvision.models import resnet18

        torch.manual_seed(5)
        weights = tmp_path_factory.mktemp("weights") / "resnet18.pt"
        torch.save(resnet18(num_classes=4).state_dict(), weights)
        interp.register_model(
            "concept_resnet18", "torchvision/resnet18", classes=["a", "b", "c", "d"], weights=weights, input_size=32
        )
        return "concept_resnet18", "layer2", "layer3"
    assert load_models_files([REPO / "tests" / "models_files" / "my_models.py"]) == {}
    return "my_tinynet", "features.4", "features.6"


def test_crp_of_every_channel_adds_up_to_the_lrp_map(kind):
    # At a layer all the relevance passes through (the output of a ResNet's stage, not a block inside
    # it, where the skip connections go round), the channels' conditional maps split the LRP map.
    name, through, _ = kind
    spec = interp.get_spec(name)
    model = interp.load_model(name)
    before = snapshot(model)
    x = interp.preprocess(interp.load_image(interp.data.zebra_path()), spec)
    n_channels = model.get_submodule(through).out_channels if name == "my_tinynet" else 128
    every = crp(model, x, through, channels=range(n_channels), target=1)
    plain = interp.explain(model, x, "lrp", target=1).map.sum(0)
    assert every.maps.shape == (n_channels, *spec.input_hw)
    np.testing.assert_allclose(every.maps.sum(0), plain, rtol=1e-3, atol=1e-4 * np.abs(plain).max())
    assert_unchanged(before, model)
    assert not hooks_left(model)


def test_extract_finds_concepts_and_draws_them_at_the_input_size(kind):
    name, _, layer = kind
    spec = interp.get_spec(name)
    model = interp.load_model(name)
    images = zebra_stripes(spec, 6)
    found = extract(model, layer, images, 3, target=0, **FAST)
    assert found.importance.shape == (3,) and np.all(np.diff(found.importance) <= 0)
    assert 0 < found.reconstruction_error < 1
    assert found.maps(images[:1], model).shape == (3, *spec.input_hw)
    assert not hooks_left(model)


def test_tcav_scores_named_sets_against_random_ones(kind):
    name, _, layer = kind
    spec = interp.get_spec(name)
    model = interp.load_model(name)
    concepts = {"stripes": zebra_stripes(spec, 8), "red": colour_patches(spec, "red", 8)}
    randoms = [texture_patches(spec, k, 8, seed=s) for s, k in enumerate(("dots", "checkerboard", "dots"))]
    result = tcav(model, layer, concepts, 0, zebra_stripes(spec, 6, seed=1), random_sets=randoms)
    assert result.scores.shape == (2, 3) and np.all((result.scores >= 0) & (result.scores <= 1))
    assert np.all(np.isfinite(result.p_values)) and list(result.table()["concept"]) == ["stripes", "red"]
    assert not hooks_left(model)

"""TCAV of the PACS styles per output: the table is tcav of each output on the same sets (and one
row Captum's own), the sets are shared by a domain and a class model and disjoint where the data
allows, it runs on the shipped sample, and it refuses what is not a PACS model."""

from __future__ import annotations

import random
import tempfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interp
from interp.concepts import pacs_style_sets, style_sets, style_tcav, tcav
from interp.concepts.styles import _digest, _inputs
from interp.data import data_root, held_out_images, load_image, preprocess
from interp.errors import LayerError, ParameterError
from interp.models import PACS_DOMAINS
from tests.methods.helpers import assert_unchanged, hooks_left, snapshot

DOMAIN, CLASS = "alexnet_gap_pacs_domain", "alexnet_gap_pacs_class"
SMALL = {"n_concepts_images": 4, "inputs_per_output": 4, "n_random": 3}


def _tiny(outputs: int) -> nn.Module:
    """Two strided convs, global average pooling and a Linear: quick on 227 px PACS images."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 7, stride=4),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(4, 6, 3, stride=2),
            relu2=nn.ReLU(),
            gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(6, outputs),
        )
    ).eval()


@pytest.fixture
def sample_only(tmp_path, monkeypatch):
    """An empty data root (the shipped sample stands in) and interp's disk cache in a fresh folder."""
    monkeypatch.setenv("INTERP_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))


def _digests(images: torch.Tensor) -> set[str]:
    return {_digest(x) for x in images}


def test_the_table_is_tcav_of_each_output_on_the_same_sets(sample_only):
    spec, model = interp.get_spec(DOMAIN), _tiny(4)
    before = snapshot(model)
    steps = []
    table = style_tcav(model, spec, **SMALL, progress=lambda *step: steps.append(step))
    assert list(table.columns) == [
        "output", "output_name", "concept", "score", "std", "p_value", "significant", "cav_accuracy"
    ]  # fmt: skip
    assert table["output"].tolist() == [k for k in range(4) for _ in PACS_DOMAINS]
    assert table["output_name"].tolist() == [d for d in PACS_DOMAINS for _ in PACS_DOMAINS]
    assert table["concept"].tolist() == list(PACS_DOMAINS) * 4
    assert table.attrs["layer"] == "conv2" and table.attrs["inputs"] == [4] * 4
    assert table.attrs["note"].startswith("The full PACS is not under the data root")
    assert steps[-1] == (4 * 3 + 2 + 4, 4 * 3 + 2 + 4)  # the CAVs once, then one batch per output
    assert_unchanged(before, model)
    assert not hooks_left(model)

    concepts, randoms = style_sets(spec, 4, 3)
    split, _ = held_out_images(spec)
    taken = set().union(*(_digests(s) for s in concepts.values()))
    for k, domain in enumerate(PACS_DOMAINS):
        # the inputs: held-out images of the output (here its domain), none of them a concept's
        x = _inputs(spec, split, k, 4, 4, taken)
        own = torch.cat([preprocess(load_image(p), spec) for p, y in zip(split.paths, split.labels) if y == k])
        assert len(x) == 4 and _digests(x) <= _digests(own) and not _digests(x) & taken
        alone = tcav(model, "conv2", concepts, k, x, random_sets=randoms).table()
        rows = table[table["output"] == k].reset_index(drop=True)
        for column in ("score", "std", "p_value", "significant", "cav_accuracy"):
            np.testing.assert_array_equal(rows[column], alone[column], err_msg=f"{domain}: {column}")


def test_one_row_is_captums_own(sample_only):
    """Captum's TCAV by hand on the first style against the three random sets: the CAVs are the first
    three trained from the seeded generators in both, so the style's scores agree."""
    from captum.concept import TCAV, Concept

    spec, model = interp.get_spec(DOMAIN), _tiny(4)
    table = style_tcav(model, spec, **SMALL, cache=False)
    concepts, randoms = style_sets(spec, 4, 3)
    split, _ = held_out_images(spec)
    taken = set().union(*(_digests(s) for s in concepts.values()))
    x = _inputs(spec, split, 2, 4, 4, taken)  # the photo output's inputs
    style = Concept(0, "art_painting", iter([concepts["art_painting"]]))
    rand = [Concept(4 + j, f"random{j}", iter([r])) for j, r in enumerate(randoms)]
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder, pytest.warns(UserWarning):
        out = TCAV(model, ["conv2"], save_path=folder).interpret(x, [[style, r] for r in rand], target=2)
    theirs = [float(out[f"0-{r.id}"]["conv2"]["sign_count"][0]) for r in rand]
    row = table[(table["output_name"] == "photo") & (table["concept"] == "art_painting")].iloc[0]
    assert row["score"] == pytest.approx(np.mean(theirs), abs=1e-12)
    assert row["std"] == pytest.approx(np.std(theirs), abs=1e-12)


def test_the_sets_are_shared_by_both_tasks_and_disjoint_where_the_data_allows(sample_only):
    concepts, randoms = style_sets(DOMAIN, 4, 3)
    assert list(concepts) == list(PACS_DOMAINS) and len(randoms) == 3
    for name, images in pacs_style_sets(DOMAIN, 4).items():
        assert torch.equal(concepts[name], images)
    taken = set().union(*(_digests(s) for s in concepts.values()))
    drawn = [_digests(r) for r in randoms]
    assert all(len(r) == 4 and len(d) == 4 for r, d in zip(randoms, drawn))
    assert not set().union(*drawn) & taken and len(set().union(*drawn)) == 12  # disjoint, all of them
    # the class model gets the same images: its concept and random sets are the domain model's
    same = style_sets(CLASS, 4, 3)
    assert all(torch.equal(concepts[d], same[0][d]) for d in PACS_DOMAINS)
    assert all(torch.equal(a, b) for a, b in zip(randoms, same[1]))
    # the sample's 14 images per domain all in the concept sets: the random sets come from all of them
    full, randoms = style_sets(DOMAIN, 14, 3)
    assert all(len(r) == 14 for r in randoms)
    assert set().union(*(_digests(r) for r in randoms)) <= set().union(*(_digests(s) for s in full.values()))


def test_a_class_model_scores_its_classes_on_images_of_each_class(sample_only):
    spec = interp.get_spec(CLASS)
    table = style_tcav(_tiny(7), spec, **SMALL)
    assert table["output_name"].unique().tolist() == list(spec.class_names) and len(table) == 7 * 4
    assert table.attrs["inputs"] == [4] * 7  # the sample's 8 per class, less the concept images
    assert np.all((table["score"] >= 0) & (table["score"] <= 1)) and np.all(np.isfinite(table["p_value"]))


def test_on_the_full_data_the_random_sets_avoid_the_style_sets():
    if not (data_root() / "PACS").is_dir():
        pytest.skip(f"needs the full PACS under the data root {data_root()} (set INTERP_DATA_DIR)")
    concepts, randoms = style_sets(DOMAIN, 5, 3)
    assert all(len(s) == 5 for s in concepts.values())
    drawn = set().union(*(_digests(r) for r in randoms))
    assert len(drawn) == 15 and not drawn & set().union(*(_digests(s) for s in concepts.values()))


def test_what_is_not_a_pacs_model_or_a_bad_count_is_refused(sample_only):
    with pytest.raises(ParameterError, match="PACS model"):
        style_tcav(_tiny(10), "nin_cifar10", **SMALL)
    with pytest.raises(ParameterError, match="n_random"):
        style_tcav(_tiny(4), DOMAIN, n_concepts_images=4, n_random=2)
    with pytest.raises(ParameterError, match="inputs_per_output"):
        style_tcav(_tiny(4), DOMAIN, n_concepts_images=4, inputs_per_output=0)
    with pytest.raises(LayerError, match="no conv layer"):
        style_tcav(nn.Sequential(nn.Flatten(), nn.Linear(3 * 227 * 227, 4)), DOMAIN, **SMALL)

"""The Concepts page under AppTest: what it draws is interp.concepts.crp on the same model and image."""

from __future__ import annotations

import json

import numpy as np
import pytest

import interp
from dashboard.loaders import image_choices
from interp import concepts
from tests.apptest import no_errors, plotly_array

MODEL = "table2_cnn_cifar10"  # 32 px: quick
HELD_OUT = 50  # the fewest the page offers


@pytest.fixture
def isolated_cache(monkeypatch, tmp_path):
    """interp's disk caches in a fresh folder and nothing kept in memory: each test computes anew."""
    from dashboard import concepts as kept
    from dashboard import loaders

    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))
    for store in (kept._CRAFT, kept._TCAV, loaders._RELEVANCE_EXAMPLES):
        store.items.clear()


def _open():
    """The page on MODEL with the fewest held-out images, its disk caches in a fresh folder."""
    from streamlit.testing.v1 import AppTest

    from tests.apptest import REPO

    at = AppTest.from_file(str(REPO / "pages" / "concepts.py"), default_timeout=600)
    at.session_state["model"] = MODEL
    at.session_state["concepts_held_out"] = HELD_OUT
    at.run()
    no_errors(at)
    return at


def _class_images(target: int):
    from interp.data import held_out_batch

    batch = held_out_batch(interp.get_spec(MODEL), HELD_OUT)
    return batch, np.flatnonzero(batch.labels == target)


def _charts(at) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"].get("title", {}).get("text", ""): s for s in specs}


def _expected(layer: str, composite: str = "epsilon_plus_flat", top: int = 6) -> concepts.ConceptRelevance:
    spec = interp.get_spec(MODEL)
    x = interp.preprocess(interp.load_image(next(iter(image_choices().values()))), spec)
    model = interp.load_model(MODEL, device="cpu")
    return concepts.crp(model, x, layer, top=top, composite=composite, mean=spec.mean, std=spec.std)


def test_the_top_channels_maps_and_shares_are_crps(isolated_cache):
    at = _open()
    layer = at.selectbox(key=f"concepts_layer_{MODEL}").value
    assert layer == interp.methods.conv_layers(interp.load_model(MODEL))[-1]  # the last conv layer
    expected = _expected(layer)
    charts = _charts(at)
    np.testing.assert_allclose(plotly_array(charts["Share of relevance"]["data"][0]["y"]), expected.share, rtol=1e-4)
    limit = float(np.percentile(np.abs(expected.maps), 99.5))
    for i, channel in enumerate(expected.channels):
        heat = charts[f"channel {channel}: {expected.share[i]:+.1%}"]["data"][-1]
        np.testing.assert_allclose((heat["zmin"], heat["zmax"]), (-limit, limit), rtol=1e-6)
        clipped = np.clip(expected.maps[i], -limit, limit)
        np.testing.assert_allclose(plotly_array(heat["z"]), clipped, rtol=1e-4, atol=1e-6 * limit)
        assert heat["colorbar"]["title"]["text"] == "relevance (clipped)"
    table = at.dataframe[0].value
    assert table["channel"].tolist() == expected.channels.tolist()


def test_another_composite_layer_and_count(isolated_cache):
    at = _open()
    at.selectbox(key="concepts_composite").set_value("epsilon_alpha2_beta1").run()
    at.selectbox(key=f"concepts_layer_{MODEL}").set_value("conv2").run()
    at.slider(key="concepts_top").set_value(3).run()
    no_errors(at)
    expected = _expected("conv2", "epsilon_alpha2_beta1", top=3)
    titles = [t for t in _charts(at) if t.startswith("channel ")]
    assert titles == [f"channel {c}: {s:+.1%}" for c, s in zip(expected.channels, expected.share)]


def test_reference_crops_and_craft_and_tcav_are_the_library_calls(isolated_cache):
    at = _open()
    layer = at.selectbox(key=f"concepts_layer_{MODEL}").value
    expected = _expected(layer)
    spec, model = interp.get_spec(MODEL), interp.load_model(MODEL, device="cpu")
    target = expected.target
    batch, of_class = _class_images(target)

    # each shown channel's reference crops: its top held-out images by relevance for the class
    refs = concepts.relevance_examples(model, batch.x, layer, target, 16, mean=spec.mean, std=spec.std)
    grid = next(s for s in _charts(at).values() if "relevance " in json.dumps(s["data"][0].get("customdata", "")))
    hover = list(grid["data"][0]["customdata"])
    # one hover text per pixel of the mosaic: each tile's first, read row by row, left to right
    shown = list(dict.fromkeys(h for row in hover for h in (row if isinstance(row, list) else [row]) if h))
    first = expected.channels[0]
    images = [int(h.split("held-out image ")[1].split(" ")[0]) for h in shown if h.startswith(f"channel {first}:")]
    assert images == refs.top[first, :4].tolist()

    # CRAFT on the class's held-out images, after the button; kept for the next run
    at.button(key="concepts_craft_run").click().run()
    no_errors(at)
    found = concepts.extract(model, layer, batch.x[of_class], 5, target=target)
    bars = _charts(at)["Importance (total Sobol index)"]["data"][0]
    np.testing.assert_allclose(plotly_array(bars["y"]), found.importance, rtol=1e-4, atol=1e-6)
    at.run()
    assert "Importance (total Sobol index)" in _charts(at)

    # TCAV of the default sets against 3 random sets of held-out images
    at.slider(key="concepts_tcav_random").set_value(3).run()
    at.button(key="concepts_tcav_run").click().run()
    no_errors(at)
    sets = {
        "zebra stripes": concepts.zebra_stripes(spec, 20),
        "texture: stripes": concepts.texture_patches(spec, "stripes", 20),
        "texture: dots": concepts.texture_patches(spec, "dots", 20),
    }
    pool = concepts.random_images(spec, 80, seed=1)
    direct = concepts.tcav(model, layer, sets, target, batch.x[of_class], n_random=3, random_pool=pool).table()
    table = at.dataframe[-1].value
    assert table["concept"].tolist() == list(sets)
    np.testing.assert_allclose(table["score"], direct["score"], atol=1e-9)
    np.testing.assert_allclose(table["p_value"], direct["p_value"], rtol=1e-9)

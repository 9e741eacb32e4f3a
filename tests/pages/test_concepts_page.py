"""The Concepts page under AppTest: what it draws is interp.concepts.crp on the same model and image."""

from __future__ import annotations

import json

import numpy as np

import interp
from dashboard.loaders import image_choices
from interp import concepts
from tests.apptest import no_errors, open_page, plotly_array

MODEL = "table2_cnn_cifar10"  # 32 px: quick


def _charts(at) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"].get("title", {}).get("text", ""): s for s in specs}


def _expected(layer: str, composite: str = "epsilon_plus_flat", top: int = 6) -> concepts.ConceptRelevance:
    spec = interp.get_spec(MODEL)
    x = interp.preprocess(interp.load_image(next(iter(image_choices().values()))), spec)
    model = interp.load_model(MODEL, device="cpu")
    return concepts.crp(model, x, layer, top=top, composite=composite, mean=spec.mean, std=spec.std)


def test_the_top_channels_maps_and_shares_are_crps():
    at = open_page("concepts.py", MODEL)
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


def test_another_composite_layer_and_count():
    at = open_page("concepts.py", MODEL)
    at.selectbox(key="concepts_composite").set_value("epsilon_alpha2_beta1").run()
    at.selectbox(key=f"concepts_layer_{MODEL}").set_value("conv2").run()
    at.slider(key="concepts_top").set_value(3).run()
    no_errors(at)
    expected = _expected("conv2", "epsilon_alpha2_beta1", top=3)
    titles = [t for t in _charts(at) if t.startswith("channel ")]
    assert titles == [f"channel {c}: {s:+.1%}" for c, s in zip(expected.channels, expected.share)]

"""The "Compare models" page under AppTest, on the shipped PACS pair: what is drawn is checked
against the methods run here on the same models and held-out images, TCAV of the PACS styles
included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import interp
from dashboard import defaults
from dashboard.loaders import image_choices
from dashboard.widgets import first_ready_pair
from interp import figures, methods
from interp.concepts import style_tcav
from interp.data import held_out_batch
from interp.methods.introspect.compare import match_filters, share_of_evidence
from interp.models import PACS_DOMAINS, has_weights
from tests.apptest import REPO, no_errors, open_app, plotly_array

# The page's default pair: the course's AlexNets where they are trained, else the AlexNet-GAP pair.
_READY = [n for n in interp.list_models() if has_weights(interp.get_spec(n))]
_PAIR = first_ready_pair(defaults.COURSE_PAIRS, _READY)
assert _PAIR is not None, "no pair of dashboard.defaults.COURSE_PAIRS has weights (the AlexNet-GAP pair ships)"
A, B = _PAIR
PAIRS, STEPS, SIDE, IMAGES = 3, 16, 32, 50  # small, for speed
SMALL = {
    "cmp_look_pairs": PAIRS,
    "cmp_look_steps": STEPS,
    "cmp_look_side": SIDE,
    "cmp_look_images": IMAGES,
    "cmp_images": 8,
}
TCAV = {"n_concepts_images": 4, "inputs_per_output": 4, "n_random": 3}  # the fewest the page offers
TCAV_KEYS = {"cmp_tcav_images": 4, "cmp_tcav_inputs": 4, "cmp_tcav_random": 3}  # the same, as the page's sliders


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("INTERP_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))  # the examples index, not ~/.cache
    try:
        at = open_app()
        for key, value in SMALL.items():
            at.session_state[key] = value
        at.switch_page("pages/compare.py").run()
        no_errors(at)
        yield at
    finally:
        mp.undo()


def _charts(at) -> dict[str, dict]:
    """The page's Plotly figures by title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"].get("title", {}).get("text", ""): s for s in specs}


def test_compare_page_widgets(page):
    at = page
    at.selectbox(key="cmp_layer").set_value("features.conv2").run()
    at.slider(key="cmp_pairs").set_value(16).run()
    no_errors(at)
    assert f"A: {A}" in _charts(at)
    at.selectbox(key="cmp_layer").set_value("features.conv1").run()
    no_errors(at)


def test_matched_filters_show_their_pairs_optimised_images_and_top_crops(page):
    at = page
    layer = at.selectbox(key="cmp_layer").value
    models = {n: interp.load_model(n, device="cpu") for n in (A, B)}
    match = match_filters(methods.filters(models[A], layer), methods.filters(models[B], layer))
    batch = held_out_batch(interp.get_spec(A), IMAGES)  # both models rank A's held-out images
    table = next(d.value for d in at.dataframe if "A channel" in d.value.columns)
    charts = _charts(at)
    for tag, name, channels in (("A", A, match.a[:PAIRS]), ("B", B, match.b[:PAIRS])):
        spec = interp.get_spec(name)
        top = methods.introspect.dataset_examples(models[name], batch.x, layer, k=3)[layer]
        vis = methods.introspect.feature_visualization(
            models[name],
            layer,
            [int(c) for c in channels],
            steps=STEPS,
            size=SIDE,
            seed=0,
            mean=spec.mean,
            std=spec.std,
        )
        fig = charts[f"{tag}: {name}"]
        assert fig["layout"]["yaxis"]["ticktext"] == [f"{i + 1}: channel {c}" for i, c in enumerate(channels)]
        assert fig["layout"]["xaxis"]["ticktext"] == ["optimised", "top 1", "top 2", "top 3"]
        assert table[f"{tag} channel"].tolist() == channels.tolist()
        np.testing.assert_allclose(table[f"{tag} best held-out (max)"], top.top_values[channels, 0], rtol=1e-5)
        np.testing.assert_allclose(table[f"{tag} objective (mean)"], vis.objective[:, -1], rtol=1e-4)
        z = plotly_array(fig["data"][0]["z"])
        hover = np.asarray(fig["data"][0]["customdata"], dtype=object)
        step = 64 + 4  # the grid's tile side and gap
        for i, c in enumerate(channels):  # row i: channel c's optimised image, then its best crop
            np.testing.assert_allclose(z[i * step : i * step + 64, :64], figures.as_tile(vis.images[i], 64), atol=2)
            j = int(top.top[c, 0])
            assert hover[i * step + 32, step + 32] == (
                f"{tag} ({name}), channel {c}: held-out image {j} ({batch.class_names[batch.labels[j]]}), "
                f"max {top.top_values[c, 0]:.3g}"
            )
    np.testing.assert_allclose(table["weight cosine"], match.cosine[:PAIRS], rtol=1e-6)


def test_without_held_out_images_only_the_optimised_images_show(page, monkeypatch):
    import dashboard.loaders
    from interp.errors import DataError

    def missing(spec, n, data_dir=None):
        raise DataError("no PACS images here; put them under the data root")

    monkeypatch.setattr(dashboard.loaders, "held_out_batch", missing)
    at = page
    at.select_slider(key="cmp_look_images").set_value(100).run()  # a size not cached yet
    no_errors(at)
    assert any(i.value.startswith("No dataset examples: no PACS images here") for i in at.info)
    fig = _charts(at)[f"B: {B}"]
    assert fig["layout"]["xaxis"]["ticktext"] == ["optimised"] and len(fig["layout"]["yaxis"]["ticktext"]) == PAIRS
    table = next(d.value for d in at.dataframe if "A channel" in d.value.columns)
    assert not [c for c in table.columns if "held-out" in c]
    at.select_slider(key="cmp_look_images").set_value(IMAGES).run()


@pytest.mark.parametrize("method", ["lrp", "grad_cam"])
def test_where_each_model_looks_is_each_models_share_of_evidence_on_one_scale(page, method):
    at = page
    at.selectbox(key="cmp_evidence_method").set_value(method).run()
    no_errors(at)
    path = next(iter(image_choices().values()))
    signed = methods.get_method(method).signed
    charts = _charts(at)
    ranges = []
    for name in (A, B):
        spec = interp.get_spec(name)
        x = interp.preprocess(interp.load_image(path), spec)
        options = dict(mean=spec.mean, std=spec.std) if methods.get_method(method).needs_stats else {}
        e = interp.explain(interp.load_model(name, device="cpu"), x, method, **options)
        expected = share_of_evidence(e.spatial("sum" if signed else "absmax"))
        assert abs(np.abs(expected).sum() - 1) < 1e-4  # shares of the evidence
        title = f"{name}: {spec.class_names[e.target]} ({e.probability:.0%})"
        fig = charts[title]
        heat = fig["data"][-1]
        top = heat["zmax"]
        np.testing.assert_allclose(plotly_array(heat["z"]), np.clip(expected, -top, top), rtol=1e-4, atol=1e-7)
        assert heat["colorbar"]["title"]["text"] == "share of evidence"
        ranges.append((heat["zmin"], heat["zmax"]))
    assert ranges[0] == ranges[1]  # one colour scale for both models
    assert (ranges[0][0] < 0) == signed


def _style_tables(at) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The page's tables of TCAV scores (drawn from a pandas Styler): each one's values, and the
    text shown in each cell."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    styled = [d for d in at.dataframe if d.proto.arrow_data.HasField("styler")]
    return [(d.value, convert_arrow_bytes_to_pandas_df(d.proto.arrow_data.styler.display_values)) for d in styled]


def _check_styles(at, expected: dict[str, pd.DataFrame]) -> None:
    """The tables, the bars and the sentence under them are the scores of ``expected``."""
    no_errors(at)
    tables = _style_tables(at)
    assert len(tables) == 2
    fig = next(s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart")) if s["data"][0]["type"] == "bar")
    assert [a["text"] for a in fig["layout"]["annotations"]] == [f"A: {A}", f"B: {B}"]
    legend = [t["name"] for t in fig["data"] if t.get("showlegend", True)]
    assert legend == [*PACS_DOMAINS, "not significant"]
    reading = next(m.value for m in at.markdown if "pairs are significant" in m.value)
    for (values, shown), name, axis in zip(tables, (A, B), ("x", "x2")):
        want, outputs = expected[name], list(interp.get_spec(name).class_names)
        assert values.index.tolist() == outputs and values.columns.tolist() == list(PACS_DOMAINS)
        for row in want.itertuples():
            assert values.loc[row.output_name, row.concept] == pytest.approx(row.score, abs=1e-12)
            assert shown.loc[row.output_name, row.concept] == f"{row.score:.2f}" + (" *" if row.significant else "")
        for style in PACS_DOMAINS:  # a solid trace of the significant bars, a faded one of the others
            rows = want[want["concept"] == style]
            solid, faded = (t for t in fig["data"] if t["name"] == style and t["xaxis"] == axis)
            assert solid["x"] == faded["x"] == outputs
            np.testing.assert_allclose(plotly_array(solid["y"]), rows["score"].where(rows["significant"]))
            np.testing.assert_allclose(plotly_array(faded["y"]), rows["score"].where(~rows["significant"]))
            assert "opacity" not in solid["marker"] and faded["marker"]["pattern"]["shape"] == "/"
        assert f"**{name}**: {int(want['significant'].sum())} of its {len(want)} " in reading


def test_tcav_of_the_styles_is_style_tcav_of_both_models_and_is_kept(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from dashboard import loaders

    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(loaders._STYLE_TCAV, "items", type(loaders._STYLE_TCAV.items)())  # nothing kept yet
    # the reference first, on its own: the page then reads interp's disk cache back, whose key holds
    # the weights, every image, set and seed (other settings would compute other scores)
    expected = {n: style_tcav(interp.load_model(n, device="cpu"), n, **TCAV) for n in (A, B)}
    # the page's own file: a button pressed after AppTest's switch_page does not reach the page
    at = AppTest.from_file(str(REPO / "pages" / "compare.py"), default_timeout=600)
    for key, value in {**SMALL, **TCAV_KEYS}.items():
        at.session_state[key] = value
    at.run()
    no_errors(at)
    assert not _style_tables(at) and any(i.value.startswith("Press Compute") for i in at.info)
    at.button(key="cmp_tcav_run").click().run()
    _check_styles(at, expected)
    note = expected[A].attrs["note"]
    assert (note in [c.value for c in at.caption]) if note else True
    at.run()  # a run of its own: the kept result is drawn at once, without the button
    assert "cmp_tcav_run" not in [b.key for b in at.button]
    _check_styles(at, expected)

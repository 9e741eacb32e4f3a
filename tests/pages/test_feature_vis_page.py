"""The "What filters look for" page under AppTest, on the shipped sample (a fresh clone)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.apptest import no_errors, open_app


@pytest.fixture
def look(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))  # the examples index goes here, not to ~/.cache
    at = open_app()
    at.session_state["model"] = "table2_cnn_cifar10"
    at.session_state["look_steps"] = 16
    at.session_state["look_held_out"] = 50
    at.switch_page("pages/filter_look.py").run()
    no_errors(at)
    return at


def test_page_shows_optimised_images_examples_and_weights(look):
    at = look
    assert at.title[0].value == "What filters look for"
    assert at.selectbox(key="look_layer_table2_cnn_cifar10").value == "conv1"
    # the grid, the large image, the objective, top and bottom examples, top by relevance, RGB and mean weights
    assert len(at.get("plotly_chart")) == 8
    assert any("Top 16 held-out images" in m.value for m in at.markdown)
    at.selectbox(key="look_channel_table2_cnn_cifar10_conv1").set_value(5).run()
    no_errors(at)
    at.toggle(key="look_whole").set_value(True).run()
    no_errors(at)


def test_page_deeper_layer_fewer_channels(look):
    at = look
    at.selectbox(key="look_layer_table2_cnn_cifar10").set_value("conv2").run()
    at.slider(key="look_count_table2_cnn_cifar10_conv2").set_value(3).run()
    at.number_input(key="look_first_table2_cnn_cifar10_conv2").set_value(10).run()
    no_errors(at)
    assert at.selectbox(key="look_channel_table2_cnn_cifar10_conv2").options == ["10", "11", "12"]
    # conv2 follows a ReLU and a pooling: its bias can still make it negative, else no bottom row
    assert len(at.get("plotly_chart")) in (7, 8)


def test_page_starting_images_reach_the_method(look):
    """The sidebar's starting images go to feature_visualization: the page's images equal a call made here."""
    import numpy as np

    import interp
    from dashboard import loaders

    at = look
    at.sidebar.select_slider(key="look_starts").set_value(2).run()
    no_errors(at)
    keys = [k for k in loaders._FEATURE_VIS if k[0] == "table2_cnn_cifar10" and k[-1] == 2]
    assert len(keys) == 1
    name, layer, channels, steps, size, seed, starts = keys[0]
    assert (layer, channels, steps, starts) == ("conv1", tuple(range(8)), 16, 2)
    spec = interp.get_spec(name)
    options = dict(steps=steps, size=size, seed=seed, starts=2)
    direct = interp.methods.introspect.feature_visualization(
        interp.load_model(name), layer, channels, mean=spec.mean, std=spec.std, **options
    )
    np.testing.assert_array_equal(loaders._FEATURE_VIS[keys[0]].images, direct.images)


def test_relevance_maximisation_ranks_by_the_relevance_for_the_chosen_class(look):
    """The row by relevance is interp.concepts.relevance_examples on the same held-out images and class."""
    import interp
    from dashboard.loaders import held_out
    from interp.concepts import relevance_examples

    at = look
    at.selectbox(key="look_relevance_class_table2_cnn_cifar10").set_value(3).run()
    no_errors(at)
    spec = interp.get_spec("table2_cnn_cifar10")
    expected = relevance_examples(
        interp.load_model("table2_cnn_cifar10"),
        held_out("table2_cnn_cifar10", 50).x,
        "conv1",
        3,
        16,
        mean=spec.mean,
        std=spec.std,
    )
    row = next(m.value for m in at.markdown if "by relevance for cat" in m.value)
    shown = [float(v) for v in row.split(": ", 1)[1].split(", ")]
    np.testing.assert_allclose(shown, expected.top_values[0], rtol=1e-2)

"""The Sanity checks and Faithfulness pages under AppTest: default state and main widgets, no exception,
plus their figure builders."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from interp import figures, methods
from interp.methods.trust import cascading_randomization, independent_randomization, method_scores
from interp.models import spec as model_spec
from tests.apptest import REPO, open_page, widget
from tests.apptest import no_errors as _no_errors
from tests.methods.helpers import image_batch

FAST_MODEL = "table2_cnn_cifar10"  # shipped, 32 x 32: quick enough for every widget test


def _page(name: str, model: str | None = FAST_MODEL) -> AppTest:
    return open_page(name, model)


def test_sanity_page_default_state():
    at = _page("sanity.py", model=None)
    assert at.title[0].value == "Sanity checks"
    assert at.sidebar.selectbox(key="image_picker").value == "zebra.jpg"
    assert at.session_state["model"] in ("alexnet_gap_pacs_class", FAST_MODEL)
    assert len(at.get("plotly_chart")) == 2  # the strip of maps and the similarity curves


def test_sanity_page_widgets():
    at = _page("sanity.py")
    assert at.multiselect(key="sanity_methods").value == ["guided_backprop", "grad_cam", "saliency"]
    table = at.dataframe[0].value
    assert set(table["randomized"]) == {"original", "fc2", "fc1", "conv3", "conv2", "conv1"}
    assert np.allclose(table.loc[table["step"] == 0, "spearman"], 1.0)
    at.radio(key="sanity_kind").set_value("independent").run()
    _no_errors(at)
    at.multiselect(key="sanity_methods").set_value(["saliency", "smoothgrad"]).run()
    _no_errors(at)
    assert set(at.dataframe[0].value["method"]) == {"Saliency", "SmoothGrad"}
    at.number_input(key="sanity_seed").set_value(3).run()
    _no_errors(at)
    widget(at.selectbox, f"sanity_target_{FAST_MODEL}_").set_value(2).run()
    _no_errors(at)
    picker = at.sidebar.selectbox(key="image_picker")
    picker.set_value(next(o for o in picker.options if o.startswith("CIFAR-10"))).run()
    _no_errors(at)
    at.multiselect(key="sanity_methods").set_value([]).run()
    _no_errors(at)
    assert any("at least one method" in i.value for i in at.info)


def test_sanity_page_shows_interp_errors_not_tracebacks():
    at = _page("sanity.py")
    at.multiselect(key="sanity_methods").set_value(["cam"]).run()  # table2_cnn has no GAP head
    assert not at.exception
    assert any("CAM does not apply" in e.value for e in at.error)


def test_faithfulness_page_default_state():
    at = _page("faithfulness.py", model=None)
    assert at.title[0].value == "Faithfulness"
    assert at.session_state["model"] == FAST_MODEL
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Grad-CAM", "Guided backprop", "Saliency"]
    assert (table["images"] == 8).all()
    this_image, held_out_means = at.dataframe[1].value, at.dataframe[2].value
    assert list(this_image["method"]) == list(held_out_means["method"]) == list(table["method"])
    assert this_image[["sparseness", "random_logit_ssim", "road_morf"]].apply(lambda c: c.between(-1, 1)).all().all()
    assert this_image["average_drop"].between(0, 100).all()


def test_faithfulness_page_widgets():
    at = _page("faithfulness.py")
    table = at.dataframe[0].value
    assert {"deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc"} <= set(table.columns)
    assert table[["deletion_auc", "insertion_auc"]].apply(lambda c: c.between(0, 1)).all().all()
    at.selectbox(key="faith_baseline").set_value("zero").run()
    _no_errors(at)
    at.slider(key="faith_steps").set_value(10).run()
    _no_errors(at)
    at.slider(key="faith_images").set_value(4).run()
    _no_errors(at)
    assert (at.dataframe[0].value["images"] == 4).all()
    at.multiselect(key="faith_methods").set_value(["integrated_gradients"]).run()
    _no_errors(at)
    assert list(at.dataframe[0].value["method"]) == ["Integrated gradients"]
    widget(at.selectbox, f"faith_target_{FAST_MODEL}_").set_value(1).run()
    _no_errors(at)
    at.multiselect(key="faith_methods").set_value(["cam"]).run()
    assert not at.exception and any("CAM does not apply" in e.value for e in at.error)


def test_pages_tell_what_to_do_for_an_untrained_model(tmp_path, monkeypatch):
    monkeypatch.setattr(model_spec, "CHECKPOINT_DIR", tmp_path)  # an installation where nothing is trained
    for page in ("sanity.py", "faithfulness.py"):
        at = AppTest.from_file(str(REPO / "pages" / page), default_timeout=120)
        at.session_state["model"] = "resnet32_cifar10"
        at.run()
        assert not at.exception
        assert at.selectbox(key="model").value == "resnet32_cifar10"
        assert any("python -m interp train resnet32_cifar10" in i.value for i in at.info)


@pytest.mark.parametrize("kind", ["cascading", "independent"])
def test_figure_builders(kind, tiny_gap_model):
    x = image_batch(1, 12)
    run = cascading_randomization if kind == "cascading" else independent_randomization
    r = run(tiny_gap_model, x, ["saliency", "grad_cam"])
    strip = figures.randomization_strip(r)
    assert len(strip.data) == 2 * 4
    narrow = figures.randomization_strip(r, max_columns=2)  # a deep model's 100+ steps: a spread of them
    assert len(narrow.data) == 2 * 2 and narrow.layout.title.text.startswith("2 of 4 steps")
    assert all(np.nanmax(t.z) <= 1 and np.nanmin(t.z) >= 0 for t in strip.data)
    curves = figures.similarity_curves(r)
    assert len(curves.data) == 2 * 2 and list(curves.data[0].x) == figures.step_labels(r)
    scores = method_scores(tiny_gap_model, x, ["saliency", "grad_cam"], steps=6, n_random=1)
    fig = figures.deletion_insertion_curves(scores, "cat")
    assert len(fig.data) == 2 * 2 + 2
    assert "AUC" in fig.data[0].name


def test_trust_pages_take_every_family():
    """A method of each family beyond the first seven: its quick options and the model's
    normalisation (superpixels) come from the dashboard."""
    at = _page("sanity.py")
    assert set(at.multiselect(key="sanity_methods").options) == {figures.method_title(m) for m in methods.METHODS}
    at.multiselect(key="sanity_methods").set_value(["xgrad_cam", "input_x_gradient"]).run()
    _no_errors(at)
    assert set(at.dataframe[0].value["method"]) == {"XGrad-CAM", "Input x gradient"}
    at = _page("faithfulness.py")
    at.slider(key="faith_images").set_value(2).run()
    at.slider(key="faith_metric_images").set_value(2).run()
    at.multiselect(key="faith_methods").set_value(["occlusion", "lime"]).run()
    _no_errors(at)
    assert list(at.dataframe[0].value["method"]) == ["Occlusion", "LIME"]
    assert list(at.dataframe[2].value["method"]) == ["Occlusion", "LIME"]

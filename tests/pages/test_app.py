"""Dashboard pages under Streamlit's AppTest: default state and main widgets, no exception."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import interp
from dashboard.navigation import page_table
from interp import figures
from interp.data import zebra_path
from tests.apptest import REPO, plotly_array, widget
from tests.apptest import no_errors as _no_errors
from tests.apptest import open_app as _open


def test_home_lists_the_registry():
    at = _open()
    _no_errors(at)
    table = at.dataframe[0].value
    assert "alexnet_gap_pacs_class" in set(table["model"])
    assert int(table.set_index("model").loc["alexnet_pacs_domain", "parameters"]) == 58_297_732
    assert at.sidebar.selectbox(key="image_picker").value == "zebra.jpg"


def test_image_picker_samples_and_bad_upload():
    at = _open()
    picker = at.sidebar.selectbox(key="image_picker")
    sample = next(o for o in picker.options if o.startswith("CIFAR-10"))
    picker.set_value(sample).run()
    _no_errors(at)
    assert at.session_state["image_source"][2] == sample
    at.switch_page("pages/training.py").run()  # the choice survives switching pages
    assert at.session_state["image_choice"] == sample
    at.switch_page("pages/home.py").run()
    at.sidebar.selectbox(key="image_picker").set_value("Upload an image...").run()
    assert not at.exception


def test_training_page_with_and_without_a_card():
    at = _open("pages/training.py")
    assert not at.exception
    box = at.selectbox(key="model")
    box.set_value("table2_cnn_cifar10").run()
    _no_errors(at)
    assert any("Held-out accuracy" in m.label for m in at.metric)
    box.set_value("resnet18_transfer_cifar10").run()
    _no_errors(at)
    assert any("python -m interp train resnet18_transfer_cifar10" in i.value for i in at.info)


@pytest.mark.parametrize("name", ["alexnet_pacs_domain", "nin_cifar10", "resnet18_imagenet"])
def test_architecture_page(name):
    at = _open("pages/architecture.py")
    at.selectbox(key="model").set_value(name).run()
    _no_errors(at)
    assert len(at.dataframe[0].value) > 5


def _page(page: str, model: str | None = None) -> AppTest:
    at = _open(page)
    if model is not None:
        at.selectbox(key="model").set_value(model).run()
    _no_errors(at)
    return at


def test_filters_page_layers_views_and_sorting():
    at = _page("pages/filters.py", "table2_cnn_cifar10")
    assert any("32 filters" in m.value for m in at.markdown)
    at.button[1].click().run()  # "Last conv layer"
    _no_errors(at)
    assert at.selectbox(key="filters_layer").value == "conv3"
    at.radio(key="filters_view").set_value("one input channel").run()
    at.number_input(key="filters_in_channel_table2_cnn_cifar10_conv3").set_value(5).run()
    at.toggle(key="filters_sort").set_value(True).run()
    at.number_input(key="filters_index_table2_cnn_cifar10_conv3").set_value(7).run()
    _no_errors(at)


def test_filters_page_on_an_untrained_entry_says_how_to_train():
    at = _page("pages/filters.py")
    at.selectbox(key="model").set_value("resnet18_transfer_cifar10").run()
    assert not at.exception
    assert any("python -m interp train resnet18_transfer_cifar10" in i.value for i in at.info)


def test_feature_maps_page():
    at = _page("pages/feature_maps.py", "table2_cnn_cifar10")
    assert at.multiselect(key="fm_layers_table2_cnn_cifar10").value == ["relu1", "relu2", "relu3"]
    at.multiselect(key="fm_layers_table2_cnn_cifar10").set_value(["pool1"]).run()
    at.slider(key="fm_count").set_value(32).run()
    at.radio(key="fm_rank").set_value("max").run()
    _no_errors(at)
    at.multiselect(key="fm_layers_table2_cnn_cifar10").set_value([]).run()
    assert any("at least one layer" in i.value for i in at.info)


def test_filter_activations_page():
    at = _page("pages/filter_activations.py", "table2_cnn_cifar10")
    at.selectbox(key="fa_layer").set_value("conv2").run()
    at.multiselect(key="fa_indices_table2_cnn_cifar10_conv2").set_value([3, 9]).run()
    _no_errors(at)
    neuron = {c.proto.id.rsplit("-", 1)[1]: c for c in at.get("plotly_chart") if "fa_neuron_" in c.proto.id}
    assert set(neuron) == {"fa_neuron_3", "fa_neuron_9"}
    # Saliency of filter 9: the gradient of its mean response w.r.t. the input, by plain autograd.
    model = interp.load_model("table2_cnn_cifar10")
    x = interp.preprocess(interp.load_image(zebra_path()), interp.get_spec("table2_cnn_cifar10")).requires_grad_(True)
    kept = {}
    handle = model.conv2.register_forward_hook(lambda m, i, o: kept.update(out=o))
    try:
        model(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(kept["out"][0, 9].mean(), x)
    expected = figures.normalize(grad[0].abs().amax(0).numpy(), "percentile")
    drawn = json.loads(neuron["fa_neuron_9"].proto.spec)["data"][-1]["z"]
    np.testing.assert_allclose(plotly_array(drawn), expected, atol=1e-5)
    at.selectbox(key="fa_neuron_method").set_value("deeplift").run()
    _no_errors(at)


def test_cam_page_falls_back_to_grad_cam_and_changes_target_and_opacity():
    at = _page("pages/cam.py", "table2_cnn_cifar10")
    assert any("CAM does not apply" in i.value for i in at.info)
    assert at.radio(key="cam_method_table2_cnn_cifar10").value == "Grad-CAM"
    widget(at.selectbox, "cam_target_table2_cnn_cifar10_").set_value(3).run()
    at.slider(key="cam_opacity").set_value(0.8).run()
    at.selectbox(key="cam_layer_table2_cnn_cifar10").set_value("conv2").run()
    _no_errors(at)
    assert any("held-out images" in c.value for c in at.caption)


def test_cam_page_draws_grad_cam_where_the_pooled_maps_are_one_pixel():
    """ResNet-50 at 32 px pools 1x1 maps: CAM would be one value spread over the image."""
    at = _page("pages/cam.py", "resnet50_cifar10")
    assert any("they are 1x1" in i.value and "draws Grad-CAM instead" in i.value for i in at.info)
    assert at.radio(key="cam_method_resnet50_cifar10").value == "Grad-CAM"


def test_gradients_page():
    at = _page("pages/gradients.py", "table2_cnn_cifar10")
    widget(at.selectbox, "grad_target_table2_cnn_cifar10_").set_value(0).run()
    at.slider(key="grad_samples").set_value(10).run()
    at.slider(key="grad_steps").set_value(20).run()
    _no_errors(at)


def test_bad_upload_on_an_image_page_is_an_error_message():
    at = _open("pages/gradients.py")
    assert len(at.get("plotly_chart")) == 5
    at.session_state["image_picker"] = "Upload an image..."
    at.session_state["image_source"] = ("upload", b"certainly not an image", "notes.txt")
    at.run()
    assert not at.exception
    assert any("cannot be used" in e.value and "not an image" in e.value for e in at.error)
    assert not at.get("plotly_chart")  # nothing is drawn for an image that cannot be read
    at.sidebar.selectbox(key="image_picker").set_value("zebra.jpg").run()
    _no_errors(at)
    assert len(at.get("plotly_chart")) == 5


def test_target_class_follows_the_image_and_agrees_with_the_map():
    at = _open("pages/cam.py")
    at.selectbox(key="model").set_value("nin_cifar10").run()
    picker = at.sidebar.selectbox(key="image_picker")
    seen = set()
    for sample in [o for o in picker.options if o.startswith("CIFAR-10")][:3]:
        at.sidebar.selectbox(key="image_picker").set_value(sample).run()
        _no_errors(at)
        top = at.dataframe[0].value["class"].iloc[0]  # the top-5 table of this image
        target = widget(at.selectbox, "cam_target_nin_cifar10_")
        assert target.value == int(target.options.index(next(o for o in target.options if f": {top} (" in o)))
        title = at.get("plotly_chart")[0].proto.spec
        assert f"for '{top}'" in title
        seen.add(top)
    assert len(seen) > 1  # the samples are of different classes, so a stale target would show


def test_pages_import_no_torch_and_interp_no_streamlit():
    def imports(path):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
        return names

    pages = sorted((REPO / "pages").glob("*.py"))
    routed = [f"{stem}.py" for section in page_table().values() for stem, _, _ in section]
    assert sorted(routed) == [p.name for p in pages]  # every page is routed, and only pages are
    assert not [p.name for p in pages if "torch" in imports(p)]
    assert not [str(p) for p in (REPO / "interp").rglob("*.py") if "streamlit" in imports(p)]


def test_the_dashboards_options_after_the_double_dash(monkeypatch, tmp_path):
    from dashboard.cli import apply_command_line

    monkeypatch.delenv("INTERP_DATA_DIR", raising=False)
    monkeypatch.delenv("INTERP_DEVICE", raising=False)
    assert apply_command_line(["--data-dir", str(tmp_path), "--device", "cpu"]) == []
    import os

    assert os.environ["INTERP_DATA_DIR"] == str(tmp_path) and os.environ["INTERP_DEVICE"] == "cpu"
    assert apply_command_line(["--colour", "red"]) == ["--colour", "red"]


@pytest.mark.parametrize(
    "page,prefix",
    [
        ("pages/gradients.py", "grad_target"),
        ("pages/sanity.py", "sanity_target"),
        ("pages/faithfulness.py", "faith_target"),
        ("pages/cam.py", "cam_target"),
    ],
)
def test_the_target_box_follows_image_and_model_on_every_page(page, prefix):
    """Change the image, then the model: the target box starts from the prediction of the pair
    on screen (computed here with the library directly), never from a stale choice."""
    import interp

    at = _open(page)
    if page.endswith("faithfulness.py"):
        at.slider(key="faith_images").set_value(2).run()  # keep the held-out table small
    samples = [o for o in at.sidebar.selectbox(key="image_picker").options if o.startswith("CIFAR-10")][:2]
    for model, sample in [("nin_cifar10", samples[0]), ("nin_cifar10", samples[1]), ("table2_cnn_cifar10", samples[1])]:
        at.selectbox(key="model").set_value(model).run()
        at.sidebar.selectbox(key="image_picker").set_value(sample).run()
        _no_errors(at)
        path = at.session_state["image_source"][1]
        spec = interp.get_spec(model)
        probs = interp.methods.predict(interp.load_model(model), interp.preprocess(interp.load_image(path), spec))[0]
        box = widget(at.selectbox, f"{prefix}_{model}_")
        assert box.value == int(probs.argmax()), (model, sample)
        assert box.options[box.value].endswith(f"({probs.max():.1%})")  # the probability shown is this pair's

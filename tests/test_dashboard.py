"""Dashboard pages under Streamlit's AppTest: default state and main widgets, no exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _open(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
    return at


def _no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_home_lists_the_registry(data_dir):
    at = _open()
    _no_errors(at)
    table = at.dataframe[0].value
    assert "alexnet_gap_pacs_class" in set(table["model"])
    assert int(table.set_index("model").loc["alexnet_pacs_domain", "parameters"]) == 58_297_732
    assert at.sidebar.selectbox(key="image_picker").value == "zebra.jpg"


def test_image_picker_samples_and_bad_upload(data_dir):
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


def test_bad_image_shows_an_error_not_a_traceback(data_dir):
    at = _open()
    at.session_state["image_picker"] = "Upload an image..."
    at.session_state["image_source"] = ("upload", b"certainly not an image", "notes.txt")
    at.run()
    assert not at.exception
    from pages.common import current_image  # the same check every image page makes

    assert at.session_state["image_source"][1] == b"certainly not an image"


def test_training_page_with_and_without_a_card(data_dir):
    at = _open("pages/training.py")
    assert not at.exception
    box = at.selectbox(key="model")
    box.set_value("table2_cnn_cifar10").run()
    _no_errors(at)
    assert any("Held-out accuracy" in m.label for m in at.metric)
    box.set_value("resnet32_cifar10").run()
    _no_errors(at)
    assert any("python -m interp train resnet32_cifar10" in i.value for i in at.info)


@pytest.mark.parametrize("name", ["alexnet_pacs_domain", "nin_cifar10", "resnet18_imagenet"])
def test_architecture_page(name, data_dir):
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


def test_filters_page_layers_views_and_sorting(data_dir):
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


def test_filters_page_on_an_untrained_entry_says_how_to_train(data_dir):
    at = _page("pages/filters.py")
    at.selectbox(key="model").set_value("resnet32_cifar10").run()
    assert not at.exception
    assert any("python -m interp train resnet32_cifar10" in i.value for i in at.info)


def test_feature_maps_page(data_dir):
    at = _page("pages/feature_maps.py", "table2_cnn_cifar10")
    assert at.multiselect(key="fm_layers_table2_cnn_cifar10").value == ["relu1", "relu2", "relu3"]
    at.multiselect(key="fm_layers_table2_cnn_cifar10").set_value(["pool1"]).run()
    at.slider(key="fm_count").set_value(32).run()
    at.radio(key="fm_rank").set_value("max").run()
    _no_errors(at)
    at.multiselect(key="fm_layers_table2_cnn_cifar10").set_value([]).run()
    assert any("at least one layer" in i.value for i in at.info)


def test_filter_activations_page(data_dir):
    at = _page("pages/filter_activations.py", "table2_cnn_cifar10")
    at.selectbox(key="fa_layer").set_value("conv2").run()
    at.multiselect(key="fa_indices_table2_cnn_cifar10_conv2").set_value([3, 9]).run()
    _no_errors(at)


def test_cam_page_falls_back_to_grad_cam_and_changes_target_and_opacity(data_dir):
    at = _page("pages/cam.py", "table2_cnn_cifar10")
    assert any("CAM does not apply" in i.value for i in at.info)
    assert at.radio(key="cam_method_table2_cnn_cifar10").value == "Grad-CAM"
    at.selectbox(key="cam_target_table2_cnn_cifar10").set_value(3).run()
    at.slider(key="cam_opacity").set_value(0.8).run()
    at.selectbox(key="cam_layer_table2_cnn_cifar10").set_value("conv2").run()
    _no_errors(at)
    assert any("held-out images" in c.value for c in at.caption)


def test_gradients_page(data_dir):
    at = _page("pages/gradients.py", "table2_cnn_cifar10")
    at.selectbox(key="grad_target_table2_cnn_cifar10").set_value(0).run()
    at.slider(key="grad_samples").set_value(10).run()
    at.slider(key="grad_steps").set_value(20).run()
    _no_errors(at)


def test_bad_upload_on_an_image_page_is_an_error_message(data_dir):
    at = _open("pages/gradients.py")
    at.session_state["image_picker"] = "Upload an image..."
    at.session_state["image_source"] = ("upload", b"certainly not an image", "notes.txt")
    at.run()
    assert not at.exception
    assert any("cannot be used" in e.value and "not an image" in e.value for e in at.error)


def test_compare_page(data_dir):
    at = _open("pages/compare.py")
    assert not at.exception
    if at.info and any("No other trained model" in i.value for i in at.info):
        pytest.skip("needs two trained models of one architecture (the shipped PACS pair)")
    _no_errors(at)
    at.selectbox(key="cmp_layer").set_value("features.conv2").run()
    at.slider(key="cmp_pairs").set_value(16).run()
    at.slider(key="cmp_images").set_value(8).run()
    _no_errors(at)

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

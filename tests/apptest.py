"""Running the dashboard under Streamlit's AppTest: open the app or one page, find widgets whose
key carries the model and image, and assert that no traceback or error reached the page."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")


def open_app(page: str | None = None, timeout: int = 300) -> AppTest:
    """The app through app.py's navigation, optionally switched to ``page`` ('pages/cam.py')."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
    return at


def open_page(name: str, model: str | None = None, timeout: int = 300) -> AppTest:
    """One file of pages/ run on its own, with the model picker preset to ``model``."""
    at = AppTest.from_file(str(REPO / "pages" / name), default_timeout=timeout)
    if model is not None:
        at.session_state["model"] = model
    at.run()
    no_errors(at)
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def widget(elements, prefix: str):
    """The one widget among ``elements`` (e.g. at.selectbox) whose key starts with ``prefix``:
    keys that carry the model and the image (``cam_target_<model>_<image>``)."""
    found = [w for w in elements if (w.key or "").startswith(prefix)]
    assert len(found) == 1, [w.key for w in elements]
    return found[0]


def plotly_array(value) -> np.ndarray:
    """An array of a figure's JSON: a list, or a typed array ({dtype, bdata, shape})."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value, dtype=float)

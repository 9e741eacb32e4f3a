"""Shared by every page: cached loaders, the model picker and the image picker.

Models are loaded once per process (st.cache_resource) and shared by all browser sessions,
so pages never modify them; the methods take the model's lock while hooks are on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

import interp
from interp.catalog import has_weights, weights_status
from interp.checkpoints import read_card
from interp.data import sample_image_path, sample_images
from interp.errors import InterpError

UPLOAD = "Upload an image..."


@st.cache_resource(show_spinner="Loading model weights...", max_entries=8)
def cached_model(name: str):
    return interp.load_model(name)


@st.cache_data(show_spinner=False)
def model_card(name: str) -> dict[str, Any] | None:
    spec = interp.get_spec(name)
    return read_card(spec.checkpoint_path) if spec.checkpoint else None


def available_models() -> list[str]:
    """Entries that can be loaded here: a checkpoint is present, or torchvision provides weights."""
    return [n for n in interp.list_models() if has_weights(interp.get_spec(n))]


def model_picker(label: str = "Model", key: str = "model", default: str | None = None,
                 names: list[str] | None = None, container=st) -> str:
    """A selectbox over the registry; models with weights first."""
    names = names or interp.list_models()
    ready = [n for n in names if n in available_models()]
    ordered = ready + [n for n in names if n not in ready]
    index = ordered.index(default) if default in ready else 0  # never open on an untrained model
    return container.selectbox(label, ordered, index=index, key=key,
                               format_func=lambda n: n if n in ready else f"{n} (not trained)")


def load_or_explain(name: str):
    """The cached model, or None after telling the user what to do (no traceback)."""
    spec = interp.get_spec(name)
    if not has_weights(spec):
        st.info(f"**{name}** has no trained weights in this installation. Train it with "
                f"`{weights_status(spec)}`, then reload this page.")
        return None
    try:
        return cached_model(name)
    except InterpError as exc:
        st.error(str(exc))
        return None


@st.cache_data(show_spinner=False)
def _image_choices() -> tuple[dict[str, str], str | None]:
    zebra, note = sample_image_path()
    choices = {("zebra.jpg" if note is None else "Sample photo (Grace Hopper)"): str(zebra)}
    choices.update({label: str(path) for label, path in sample_images().items()})
    return choices, note


def image_sidebar() -> None:
    """The image picker in the sidebar: zebra.jpg, held-out samples of the datasets, or an upload.

    Each page that uses the image calls this once. The choice lives in session state under
    keys of its own, so it survives switching pages (widget state does not).
    """
    choices, note = _image_choices()
    options = [*choices, UPLOAD]
    previous = st.session_state.get("image_choice", options[0])
    choice = st.sidebar.selectbox("Image", options, index=options.index(previous) if previous in options else 0,
                                  key="image_picker",
                                  help="Used by every page. Samples come from the data root's datasets.")
    st.session_state["image_choice"] = choice
    if note:
        st.sidebar.caption(note)
    if choice == UPLOAD:
        upload = st.sidebar.file_uploader("Image file", key="image_upload",
                                          help="JPEG, PNG, GIF, WebP, BMP or TIFF, at most 20 MB")
        if upload is not None:
            st.session_state["image_source"] = ("upload", upload.getvalue(), upload.name)
        elif st.session_state.get("image_source", ("path",))[0] != "upload":
            st.session_state["image_source"] = ("upload", None, None)
    else:
        st.session_state["image_source"] = ("path", choices[choice], choice)
    image = current_image(show_errors=False)
    if image is not None:
        st.sidebar.image(image, caption=st.session_state["image_source"][2], width="stretch")


@st.cache_data(show_spinner=False, max_entries=16)
def _decode(kind: str, payload: bytes | str) -> Image.Image:
    return interp.load_image(Path(payload) if kind == "path" else payload)


def current_image(show_errors: bool = True) -> Image.Image | None:
    """The chosen image as RGB, or None (after an st.error / st.info saying why)."""
    kind, payload, _ = st.session_state.get("image_source", (None, None, None))
    if kind is None:
        choices, _ = _image_choices()
        kind, payload = "path", next(iter(choices.values()))
    if payload is None:
        if show_errors:
            st.info("Upload an image in the sidebar.")
        return None
    try:
        return _decode(kind, payload)
    except InterpError as exc:
        if show_errors:
            st.error(f"This image cannot be used: {exc}")
        return None


def image_key() -> tuple[str, Any] | None:
    """A hashable identity of the chosen image, for the per-image caches."""
    kind, payload, _ = st.session_state.get("image_source", (None, None, None))
    if kind is None:
        choices, _ = _image_choices()
        return "path", next(iter(choices.values()))
    return None if payload is None else (kind, payload)


@st.cache_data(show_spinner=False, max_entries=64)
def model_input(name: str, key: tuple[str, Any]):
    """(x, display): the image preprocessed for the model (1xCxHxW), and the RGB uint8 picture
    the model sees (resized and centre-cropped), on which maps are drawn."""
    import numpy as np

    from interp.data import resize_center_crop

    spec = interp.get_spec(name)
    image = _decode(*key)
    display = np.asarray(resize_center_crop(image, spec.input_size), dtype=np.uint8)
    return interp.preprocess(image, spec), display


def page_model_and_image(default: str, label: str = "Model", key: str = "model", names: list[str] | None = None):
    """The usual start of an image page: sidebar picker, model picker, loaded model, input.

    Returns:
        (name, model, x, display), or None after telling the user what is missing.
    """
    image_sidebar()
    name = model_picker(label, key=key, default=default, names=names)
    model = load_or_explain(name)
    if model is None:
        return None
    if current_image() is None:
        return None
    x, display = model_input(name, image_key())
    return name, model, x, display


def class_label(name: str, index: int) -> str:
    return f"{index}: {interp.get_spec(name).class_names[index]}"


def show_interp_errors(fn, *args, **kwargs):
    """Run fn; an InterpError becomes an st.error (what is wrong and what to do), result None."""
    try:
        return fn(*args, **kwargs)
    except InterpError as exc:
        st.error(str(exc))
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def cached_probabilities(name: str, key: tuple[str, Any]):
    """The model's class probabilities for the chosen image, (classes,)."""
    from interp import methods

    x, _ = model_input(name, key)
    return methods.predict(cached_model(name), x)[0]


@st.cache_data(show_spinner="Computing the map...", max_entries=256)
def cached_explanation(name: str, key: tuple[str, Any], method: str, target: int | None = None,
                       layer: str | None = None, options: tuple = ()):
    """interp.explain on the chosen image, cached per (model, image, method, target, layer, options),
    so moving a display slider re-renders without recomputing."""
    from interp import methods

    x, _ = model_input(name, key)
    return methods.explain(cached_model(name), x, method, target=target, layer=layer, **dict(options))

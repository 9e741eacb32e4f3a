"""Widgets shared by the pages: the model and image pickers, the target-class and method pickers,
and the usual start of an image page. State that depends on the image or the model is keyed
on both, so a label never describes another image or model than the map beside it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import interp
from interp import methods
from interp.errors import DataError, InterpError
from interp.figures import method_title
from interp.models import has_weights, load_models_files, weights_command

from .bring import bring_sidebar, brought_here, hidden_elsewhere
from .loaders import ImageKey, cached_model, decode, image_choices, model_input
from .navigation import run_through_app

UPLOAD = "Upload an image..."
MAX_IMAGE_MB = 20  # the server takes uploads up to bring.MAX_UPLOAD_MB (weights); images stay small


def available_models() -> list[str]:
    """Entries that can be loaded here: a checkpoint is present, or torchvision's weights are cached."""
    return [n for n in interp.list_models() if has_weights(interp.get_spec(n))]


def first_ready(preferences: str | Sequence[str] | None, names: Sequence[str]) -> str | None:
    """The first of ``preferences`` (a name, or names in order of preference: dashboard.defaults)
    that is among ``names``; None where none is."""
    if preferences is None:
        return None
    preferences = (preferences,) if isinstance(preferences, str) else preferences
    return next((n for n in preferences if n in names), None)


def first_ready_pair(pairs: Sequence[tuple[str, str]], names: Sequence[str]) -> tuple[str, str] | None:
    """The first of ``pairs`` (dashboard.defaults.COURSE_PAIRS) whose two models are both among ``names``."""
    return next((pair for pair in pairs if all(n in names for n in pair)), None)


def model_picker(
    label: str = "Model",
    key: str = "model",
    default: str | Sequence[str] | None = None,
    names: list[str] | None = None,
    container=st,
) -> str:
    """A selectbox over the registry (the user's models included); models with weights first, and
    never opened on one without. ``default``: a name, or names in order of preference, the first
    with weights chosen."""
    load_models_files()  # once per process; app.py shows what failed
    bring_sidebar()  # before the picker, so that a model just brought can be chosen in it
    mine, elsewhere = set(brought_here()), hidden_elsewhere()
    names = [n for n in (names or interp.list_models()) if n in mine or n not in elsewhere]
    ready = [n for n in names if has_weights(interp.get_spec(n))]
    ordered = ready + [n for n in names if n not in ready]
    default = first_ready(default, ready)
    index = ordered.index(default) if default else 0
    return container.selectbox(
        label, ordered, index=index, key=key, format_func=lambda n: n if n in ready else f"{n} (needs weights)"
    )


def load_or_explain(name: str):
    """The cached model, or None after telling the user what to do (no traceback)."""
    spec = interp.get_spec(name)
    if not has_weights(spec):
        what = "downloads its weights" if spec.weights_from_torchvision else "trains it"
        st.info(
            f"**{name}** has no weights in this installation. `{weights_command(spec)}` {what}; then reload this page."
        )
        return None
    return show_interp_errors(cached_model, name)


def show_interp_errors(fn: Callable, *args, **kwargs):
    """Run fn; an InterpError becomes a message saying what is wrong and what to do, result None.

    A dataset missing from the data root is a calm st.info (the page works without it); any
    other InterpError is an st.error.
    """
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        st.info(str(exc))
        return None
    except InterpError as exc:
        st.error(str(exc))
        return None


# ---------------------------------------------------------------------------------------------
# The image


def image_sidebar() -> None:
    """The image picker in the sidebar: zebra.jpg, held-out samples of the datasets, or an upload.

    Each page that uses the image calls this once. The choice lives in session state under
    keys of its own, so it survives switching pages (widget state does not).
    """
    choices = image_choices()
    options = [*choices, UPLOAD]
    previous = st.session_state.get("image_choice", options[0])
    choice = st.sidebar.selectbox(
        "Image",
        options,
        index=options.index(previous) if previous in options else 0,
        key="image_picker",
        help="Used by every page. Held-out images come from the data root's datasets, "
        "or from the sample that ships with interp where those are absent.",
    )
    st.session_state["image_choice"] = choice
    if choice == UPLOAD:
        upload = st.sidebar.file_uploader(
            "Image file", key="image_upload", help=f"JPEG, PNG, GIF, WebP, BMP or TIFF, at most {MAX_IMAGE_MB} MB"
        )
        if upload is not None and upload.size > MAX_IMAGE_MB * 1024**2:
            st.sidebar.error(f"{upload.name} is {upload.size / 1024**2:.0f} MB; images are at most {MAX_IMAGE_MB} MB")
        elif upload is not None:
            st.session_state["image_source"] = ("upload", upload.getvalue(), upload.name)
        elif st.session_state.get("image_source", ("path",))[0] != "upload":
            st.session_state["image_source"] = ("upload", None, None)
    else:
        st.session_state["image_source"] = ("path", choices[choice], choice)
    image = current_image(show_errors=False)
    if image is not None:
        st.sidebar.image(image, caption=st.session_state["image_source"][2], width="stretch")


def image_key() -> ImageKey | None:
    """A hashable identity of the chosen image, for the per-image caches (None: nothing uploaded yet)."""
    kind, payload, _ = st.session_state.get("image_source", (None, None, None))
    if kind is None:
        return "path", next(iter(image_choices().values()))
    return None if payload is None else (kind, payload)


def page_image_key() -> ImageKey:
    """:func:`image_key` on a page that :func:`image_page` or :func:`page_model_and_image` let
    through: they stop the page when no image is chosen, so there is one."""
    key = image_key()
    assert key is not None, "no image: image_page (or page_model_and_image) stops the page first"
    return key


def image_token() -> str:
    """A short digest of the chosen image, for widget keys that must reset when the image changes."""
    key = image_key()
    payload = b"" if key is None else (key[1] if isinstance(key[1], bytes) else str(key[1]).encode())
    return hashlib.sha1(payload).hexdigest()[:10]


def current_image(show_errors: bool = True) -> Image.Image | None:
    """The chosen image as RGB, or None (after an st.error / st.info saying why)."""
    key = image_key()
    if key is None:
        if show_errors:
            st.info("Upload an image in the sidebar.")
        return None
    try:
        return decode(*key)
    except InterpError as exc:
        if show_errors:
            st.error(f"This image cannot be used: {exc}")
        return None


def page_model_and_image(
    default: str | Sequence[str], label: str = "Model", key: str = "model", names: list[str] | None = None
):
    """The usual start of an image page: sidebar picker, model picker, loaded model, input.

    Returns:
        (name, model, x, display), or None after telling the user what is missing.
    """
    image_sidebar()
    name = model_picker(label, key=key, default=default, names=names)
    model = load_or_explain(name)
    if model is None or current_image() is None:
        return None
    x, display = model_input(name, page_image_key())
    return name, model, x, display


def page(title: str, caption: str | None = None) -> None:
    """The start of every page: through app.py's navigation (a deep link to a fresh server must not
    bypass it), then the title and the caption."""
    run_through_app()
    st.title(title)
    if caption:  # a page's docstring: its line breaks are not the caption's
        st.caption(re.sub(r"\s*\n\s*", " ", caption.strip()))


def image_page(title: str, caption: str, default_model: str | Sequence[str]):
    """Title, caption, pickers, model and input of a page about the chosen image; stops the page
    (after saying why) when the model or the image cannot be used.

    Returns:
        (name, model, x, display) as :func:`page_model_and_image`.
    """
    page(title, caption)
    picked = page_model_and_image(default_model)
    if picked is None:
        st.stop()
    return picked


def model_page(title: str, caption: str, default_model: str | Sequence[str]):
    """Title, caption, model picker and loaded model of a page about a model alone; stops the
    page (after saying why) when the model cannot be used.

    Returns:
        (name, model).
    """
    page(title, caption)
    name = model_picker(default=default_model)
    model = load_or_explain(name)
    if model is None:
        st.stop()
    return name, model


def or_stop(fn: Callable, *args, **kwargs):
    """:func:`show_interp_errors`, and the page stops there when it showed an error."""
    result = show_interp_errors(fn, *args, **kwargs)
    if result is None:
        st.stop()
    return result


# ---------------------------------------------------------------------------------------------
# What to explain


def class_label(name: str, index: int) -> str:
    """'3: cat' for class 3 of the model's task."""
    return f"{index}: {interp.get_spec(name).class_names[index]}"


def target_picker(name: str, probs: np.ndarray, key: str, label: str = "Target class", container=st) -> int:
    """A class of the model, the prediction first chosen, each with its probability.

    The key includes the model and the image: a new image starts again from its own prediction
    instead of keeping a class (and a probability) chosen for another one.
    """
    spec = interp.get_spec(name)
    return int(
        container.selectbox(
            label,
            range(spec.num_classes),
            index=int(np.argmax(probs)),
            key=f"{key}_{name}_{image_token()}",
            format_func=lambda k: f"{class_label(name, k)} ({probs[k]:.1%})",
        )
    )


def every_method(*first: str) -> list[str]:
    """Every attribution method, ``first`` in front, then the rest by family (the method records' order)."""
    return [*first, *(m for names in methods.by_family().values() for m in names if m not in first)]


def methods_picker(choices: Sequence[str], key: str, shown: int = 3, container=st) -> list[str]:
    """A multiselect over method names, shown by their titles; the first ``shown`` chosen."""
    return container.multiselect(
        "Methods", list(choices), default=list(choices[:shown]), format_func=method_title, key=key
    )


def method_table(rows: Sequence[dict[str, Any]], column_config: dict[str, Any]) -> None:
    """Per-method results (each row has its method's name under "method") as a table, each
    method shown by its title."""
    table = pd.DataFrame(rows)
    table["method"] = table["method"].map(method_title)
    st.dataframe(table, hide_index=True, width="stretch", column_config=column_config)


def no_choice(chosen: Sequence[Any], what: str) -> bool:
    """True, after saying what to do, when nothing is chosen."""
    if not chosen:
        st.info(f"Choose at least one {what}.")
    return not chosen

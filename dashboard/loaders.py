"""Cached loaders shared by every page.

Models are loaded once per process (st.cache_resource) and shared by all browser sessions,
so nothing here or in a page modifies them; the methods take the model's lock while hooks are
on it. Per-image results are cached per (model, image, ...) so that moving a display control
re-renders without recomputing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import streamlit as st
from PIL import Image

import interp
from interp import methods
from interp.data import HeldOutBatch, data_root, held_out_batch, resize_center_crop, sample_images, zebra_path
from interp.hardware import resolve_device
from interp.models import read_card
from interp.whole_dataset import manifest_path

if TYPE_CHECKING:
    import pandas as pd

ImageKey = tuple[str, Any]  # ("path", str) or ("upload", bytes): what identifies the chosen image


@st.cache_resource(show_spinner="Loading model weights...", max_entries=8)
def cached_model(name: str, device: str | None = None):
    """The model, on the dashboard's device (INTERP_DEVICE / --device, else CUDA where available)."""
    return interp.load_model(name, device=resolve_device(device))


@st.cache_data(show_spinner=False)
def model_card(name: str) -> dict[str, Any] | None:
    spec = interp.get_spec(name)
    return read_card(spec.card_path) if spec.checkpoint else None


@st.cache_data(show_spinner=False)
def model_layers(name: str) -> dict[str, Any]:
    """The model's conv layers, its layers with spatial maps, and Grad-CAM's default layer,
    all read from the model (interp.methods.layers)."""
    model, spec = cached_model(name), interp.get_spec(name)
    probe = methods.probe_input(spec.input_size)
    spatial = methods.spatial_layers(model, probe)
    default = spec.target_layer or methods.default_layer(model, probe)
    if default not in spatial:  # a block's output (ResNet's layer4.1) rather than a leaf module's
        spatial = [default, *spatial]
    return {"conv": methods.conv_layers(model), "spatial": spatial, "default": default}


@st.cache_data(show_spinner=False)
def cam_refusal(name: str) -> str | None:
    """None where CAM applies to the model (global average pooling, of maps larger than 1x1, before one
    linear layer, or pooled class maps), else why not; pages that would draw CAM draw Grad-CAM there.
    The head is a matter of the model's structure, so one probe input at its size decides for every image."""
    try:
        methods.attribution.cam_head(cached_model(name), methods.probe_input(interp.get_spec(name).input_size))
    except interp.CamNotApplicableError as exc:
        return f"{exc} This page draws Grad-CAM instead."
    return None


@st.cache_data(show_spinner=False)
def image_choices() -> dict[str, str]:
    """{label: path} of the picker's images: the zebra first, then held-out images of each dataset."""
    return {"zebra.jpg": str(zebra_path()), **{label: str(path) for label, path in sample_images().items()}}


@st.cache_data(show_spinner=False, max_entries=16)
def decode(kind: str, payload: bytes | str) -> Image.Image:
    if kind == "path":
        assert isinstance(payload, str)  # ImageKey: ("path", str)
        return interp.load_image(Path(payload))
    return interp.load_image(payload)


@st.cache_data(show_spinner=False, max_entries=64)
def model_input(name: str, key: ImageKey):
    """(x, display): the image preprocessed for the model (1xCxHxW), and the RGB uint8 picture
    the model sees (resized and centre-cropped), on which maps are drawn."""
    spec = interp.get_spec(name)
    image = decode(*key)
    display = np.asarray(resize_center_crop(image, spec.input_size), dtype=np.uint8)
    return interp.preprocess(image, spec), display


@st.cache_data(show_spinner=False, max_entries=64)
def probabilities(name: str, key: ImageKey) -> np.ndarray:
    """The model's class probabilities for the chosen image, (classes,)."""
    x, _ = model_input(name, key)
    return methods.predict(cached_model(name), x)[0]


def method_options(name: str, method: str, quick: bool = False) -> dict[str, Any]:
    """The options a page passes to ``method`` on model ``name``: the model's normalisation for
    methods that find superpixels (they find them on the image as people see it), and with
    ``quick`` the record's quick options (pages that run a method many times)."""
    record = methods.get_method(method)
    options = dict(record.quick) if quick else {}
    if record.needs_stats:
        spec = interp.get_spec(name)
        options.update(mean=spec.mean, std=spec.std)
    return options


def methods_options(name: str, chosen, quick: bool = True) -> dict[str, dict[str, Any]]:
    """:func:`method_options` of each chosen method (the form method_scores and the sanity checks take)."""
    return {method: method_options(name, method, quick) for method in chosen}


@st.cache_data(show_spinner="Computing the map...", max_entries=256)
def explanation(
    name: str, key: ImageKey, method: str, target: int | None = None, layer: str | None = None, options: tuple = ()
):
    """interp.explain on the chosen image, cached per (model, image, method, target, layer, options)."""
    x, _ = model_input(name, key)
    return methods.explain(
        cached_model(name), x, method, target=target, layer=layer, **{**method_options(name, method), **dict(options)}
    )


@st.cache_resource(show_spinner="Loading held-out images...", max_entries=8)
def held_out(name: str, n: int) -> HeldOutBatch:
    """n held-out images of the model's task, spread over its classes (read-only: shared by sessions);
    the shipped sample where the full dataset is not under the data root (its ``note`` says so).

    Raises:
        DataError: the task has no held-out images here (ImageNet).
    """
    return held_out_batch(interp.get_spec(name), n)


@st.cache_data(show_spinner="Computing the local linear model...", max_entries=64)
def local_affine(name: str, key: ImageKey, target: int) -> dict[str, Any]:
    """The model's affine piece at the chosen image for one logit (interp.basics.local_linear):
    W (C, H, W), b, the logit as the model computes it, and each layer's share of b."""
    from interp import basics

    x, _ = model_input(name, key)
    model = cached_model(name)
    w, b = basics.local_linear(model, x, target)
    return {
        "W": w,
        "b": b,
        "x": x[0].numpy().astype(np.float64),
        "logit": basics.output_of(model, x, target),
        "biases": basics.bias_contributions(model, x, target),
    }


def results_stamp(folder: str) -> tuple:
    """What identifies a results folder's contents: its shard files and their times (a run that
    adds shards makes a new stamp, so the cached table is read again)."""
    root = Path(folder)
    files = [manifest_path(root), *sorted(root.glob("shard-*.parquet"))]
    return tuple((f.name, f.stat().st_mtime_ns) for f in files if f.is_file())


@st.cache_resource(show_spinner="Reading the results...", max_entries=4)
def dataset_results(folder: str, stamp: tuple):
    """(rows as a DataFrame with ``correct`` and ``ok``, manifest) of a results folder of
    explain-dataset; shared by every browser tab (read-only), keyed on the folder and its stamp.

    Raises:
        InterpError: not a results folder, or no finished shard yet.
    """
    from interp.whole_dataset import read_manifest, read_results
    from interp.whole_dataset.results import as_frame

    return as_frame(read_results(folder)), read_manifest(folder)


@st.cache_data(show_spinner=False, max_entries=512)
def picture(path: str, size: tuple[int, int]) -> np.ndarray | None:
    """The image at ``path`` as the model saw it (resized, centre-cropped, uint8 RGB); None when
    it cannot be read any more."""
    try:
        return np.asarray(resize_center_crop(interp.load_image(path), size), dtype=np.uint8)
    except interp.ImageError:
        return None


class Kept:
    """Results kept by hand for every visitor of the server (the last ``size``), not by st.cache_data:
    their computation reports progress to a bar the page made, and st.cache_data refuses elements
    created outside the cached function."""

    def __init__(self, size: int = 32):
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict[tuple, Any] = OrderedDict()

    def __iter__(self):
        with self.lock:
            return iter(list(self.items))

    def __getitem__(self, key: tuple) -> Any:
        with self.lock:
            return self.items[key]

    def get(self, key: tuple, compute: Callable[[], Any], run: bool = True) -> Any:
        """The result kept under ``key``, else ``compute()``'s, then kept (two visitors asking at once
        may both compute it; the results are equal); with ``run`` False, None where none is kept."""
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        if not run:
            return None
        found = compute()
        with self.lock:
            self.items[key] = found
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return found


_FEATURE_VIS = Kept()


def feature_vis(
    name: str,
    layer: str,
    channels: tuple[int, ...],
    steps: int,
    size: int,
    seed: int = 0,
    starts: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> methods.introspect.FeatureVis:
    """Optimised images of channels of a layer, kept per (model, layer, channels, steps, size, seed,
    starts) for every visitor of the server (the last 32)."""
    spec = interp.get_spec(name)
    return _FEATURE_VIS.get(
        (name, layer, tuple(channels), steps, size, seed, starts),
        lambda: methods.introspect.feature_visualization(
            cached_model(name),
            layer,
            list(channels),
            steps=steps,
            size=size,
            seed=seed,
            mean=spec.mean,
            std=spec.std,
            starts=starts,
            progress=progress,
        ),
    )


@st.cache_data(show_spinner="Ranking held-out images for every channel...", max_entries=32)
def layer_examples(
    name: str, layer: str, n: int, k: int = 16, images_of: str | None = None
) -> methods.introspect.LayerExamples:
    """Top and bottom k of ``held_out(images_of or name, n)`` for every channel of a layer (also kept
    on disk); ``images_of``, a model of the same input size, lets two models rank the same images."""
    images = held_out(images_of or name, n).x
    return methods.introspect.dataset_examples(cached_model(name), images, [layer], k, cache=True)[layer]


_RELEVANCE_EXAMPLES = Kept()


def relevance_layer_examples(
    name: str,
    layer: str,
    n: int,
    target: int,
    composite: str = "epsilon_plus_flat",
    k: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> methods.introspect.LayerExamples:
    """Relevance maximisation: top and bottom k of ``held_out(name, n)`` for every channel of a layer,
    by the relevance it carried for class ``target`` (one LRP pass per image; also kept on disk)."""
    from interp.concepts import relevance_examples  # brings Zennit: imported on first use

    spec = interp.get_spec(name)
    return _RELEVANCE_EXAMPLES.get(
        (name, layer, n, target, composite, k),
        lambda: relevance_examples(
            cached_model(name),
            held_out(name, n).x,
            layer,
            target,
            k,
            composite=composite,
            mean=spec.mean,
            std=spec.std,
            cache=True,
            progress=progress,
        ),
    )


@st.cache_data(show_spinner=False, max_entries=64)
def layer_weights(name: str, layer: str) -> np.ndarray:
    """A conv layer's weights (out, in, kh, kw)."""
    return methods.filters(cached_model(name), layer)


_STYLE_TCAV = Kept()


def style_scores(
    name: str,
    layer: str,
    n_images: int,
    n_inputs: int,
    n_random: int,
    progress: Callable[[int, int], None] | None = None,
    run: bool = True,
) -> pd.DataFrame | None:
    """TCAV of the four PACS styles for every output of a PACS model (interp.concepts.style_tcav, seed 0)
    as a long table, kept per (model, layer, sizes, data root) for every visitor of the server (the
    last 32; read-only) and on disk by interp; with ``run`` False, None unless it is kept.

    Raises:
        ParameterError: not a PACS model.
    """
    from interp.concepts import style_tcav  # brings Captum: imported on first use

    key = (name, layer, n_images, n_inputs, n_random, str(data_root()))
    if not run:
        try:
            return _STYLE_TCAV[key]
        except KeyError:
            return None
    return _STYLE_TCAV.get(
        key,
        lambda: style_tcav(
            cached_model(name),
            name,
            layer,
            n_concepts_images=n_images,
            inputs_per_output=n_inputs,
            n_random=n_random,
            cache=True,
            progress=progress,
        ),
    )

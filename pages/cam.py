"""CAM: where the model looks for a class (CAM where the head allows it, Grad-CAM on any layer)."""

import numpy as np
import pandas as pd
import streamlit as st

from interp import DataError, get_spec, load_image, methods, preprocess, viz
from interp.data import dataset_split, resize_center_crop
from interp.methods import CamNotApplicableError
from pages.common import (cached_explanation, cached_model, cached_probabilities, class_label, image_key,
                          model_input, page_model_and_image, show_interp_errors)

st.title("CAM")
st.caption("Class activation maps: which regions raise the score of a class. Raw map values on the "
           "colour bar (CAM: the class score's contribution per position; Grad-CAM: ReLU of the "
           "gradient-weighted activations).")
picked = page_model_and_image("alexnet_gap_pacs_class")
if picked is None:
    st.stop()
name, model, x, display = picked
spec = get_spec(name)


@st.cache_data(show_spinner=False, max_entries=32)
def _cam_applies(name: str, key) -> str | None:
    """None if CAM applies to this model, else the reason."""
    x, _ = model_input(name, key)
    try:
        methods.cam_head(cached_model(name), x)
        return None
    except CamNotApplicableError as exc:
        return str(exc)


@st.cache_data(show_spinner="Classifying held-out images and computing their maps...", max_entries=8)
def _gallery(name: str, method: str, layer: str | None, per_kind: int = 4, pool: int = 96):
    spec = get_spec(name)
    images = dataset_split(spec, "val")
    idx = np.linspace(0, len(images) - 1, num=min(pool, len(images))).round().astype(int)
    pictures = [resize_center_crop(load_image(images.paths[i]), spec.input_size) for i in idx]
    batch = np.concatenate([preprocess(p, spec).numpy() for p in pictures])
    import torch

    xb = torch.from_numpy(batch)
    probs = methods.predict(cached_model(name), xb)
    pred, truth = probs.argmax(1), np.asarray(images.labels)[idx]
    right = np.flatnonzero(pred == truth)[:per_kind]
    wrong = np.flatnonzero(pred != truth)[:per_kind]
    chosen = np.concatenate([right, wrong])
    maps = methods.explain(cached_model(name), xb[chosen], method, target=pred[chosen], layer=layer).map
    return [dict(picture=np.asarray(pictures[c]), map=maps[j], truth=int(truth[c]), pred=int(pred[c]),
                 prob=float(probs[c, pred[c]])) for j, c in enumerate(chosen)], float((pred == truth).mean())


reason = _cam_applies(name, image_key())
c1, c2 = st.columns(2)
method = c1.radio("Method", ["CAM", "Grad-CAM"], index=0 if reason is None else 1, horizontal=True, key=f"cam_method_{name}",
                  disabled=reason is not None)
if reason is not None:
    st.info(f"CAM does not apply to {name}: {reason}")
method_name = "cam" if method == "CAM" else "grad_cam"
layer = None
if method_name == "grad_cam":
    layers = [n for n, m in model.named_modules() if n and not list(m.children())
              and type(m).__name__ in ("Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "AvgPool2d")]
    if spec.target_layer not in layers:
        layers = [spec.target_layer, *layers]
    layer = c2.selectbox("Layer", layers, index=layers.index(spec.target_layer), key=f"cam_layer_{name}")

probs = cached_probabilities(name, image_key())
top5 = np.argsort(-probs)[:5]
left, right = st.columns([3, 2])
with right:
    st.markdown("**Top-5 predictions**")
    st.dataframe(pd.DataFrame({"class": [spec.class_names[k] for k in top5], "probability": probs[top5]}),
                 hide_index=True, width="stretch",
                 column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                               format="percent")})
    target = st.selectbox("Target class", range(spec.num_classes), index=int(top5[0]), key=f"cam_target_{name}",
                          format_func=lambda k: f"{class_label(name, k)} ({probs[k]:.1%})")
    opacity = st.slider("Map opacity", 0.0, 1.0, 0.5, step=0.05, key="cam_opacity")
result = show_interp_errors(cached_explanation, name, image_key(), method_name, int(target), layer)
if result is None:
    st.stop()
with left:
    fig = viz.heatmap_figure(result.map, image=display, opacity=opacity, colorbar_title=method,
                             title=f"{method} for '{spec.class_names[result.target]}' "
                                   f"(p = {result.probability:.1%}), layer {result.layer}")
    fig.update_layout(height=520)
    st.plotly_chart(fig, width="stretch", key="cam_overlay")

st.subheader("Held-out images it got right and wrong")
try:
    gallery, accuracy = _gallery(name, method_name, layer)
except DataError as exc:
    st.info(f"No held-out images to show: {exc}")
    st.stop()
st.caption(f"From 96 held-out images ({accuracy:.0%} correct); each map explains the predicted class.")
for kind, items in (("right", [g for g in gallery if g["truth"] == g["pred"]]),
                    ("wrong", [g for g in gallery if g["truth"] != g["pred"]])):
    if not items:
        st.caption(f"None {kind} in this sample.")
        continue
    cols = st.columns(4)
    for col, g in zip(cols, items):
        col.image(viz.overlay(g["picture"], viz.normalize(g["map"]), alpha=0.45), width="stretch",
                  caption=f"{'✓' if kind == 'right' else '✗'} true {spec.class_names[g['truth']]}, "
                          f"predicted {spec.class_names[g['pred']]} ({g['prob']:.0%})")

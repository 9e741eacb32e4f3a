"""Piecewise-linear view: a ReLU network is affine around any input, h(x) = W x + b with W = dh/dx;
on a small network of one input with its pieces, and on a CNN at the chosen image."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.loaders import local_affine, probabilities
from dashboard.widgets import page, page_image_key, page_model_and_image, show_interp_errors, target_picker
from interp import basics, figures
from interp.figures.style import SIGNED_SCALE

page(
    "Piecewise-linear view",
    "ReLU, max pooling, conv and linear layers, and batch norm in eval mode (an affine map), make a "
    "network piecewise linear: around an input x0 it is exactly W x + b, with W = dh/dx at x0 and "
    "W x0 + b = h(x0). The pieces end where a unit switches on or off, or a pooling window's maximum moves.",
)

st.subheader("A network of one input")
st.latex(r"h(x) = W_3\,\mathrm{relu}(W_2\,\mathrm{relu}(W_1 x + b_1) + b_2) + b_3")
st.latex(
    r"W_1 = \begin{bmatrix}1.5\\0.5\end{bmatrix}, b_1 = \begin{bmatrix}0\\1\end{bmatrix}, "
    r"W_2 = \begin{bmatrix}1&2\\2&1\end{bmatrix}, b_2 = \begin{bmatrix}0\\1\end{bmatrix}, "
    r"W_3 = \begin{bmatrix}1&1\end{bmatrix}, b_3 = -1"
)
x0 = st.slider("x0", -4.0, 4.0, 1.0, 0.1, key="piecewise_x0")
pieces = basics.linear_pieces(basics.EXAMPLE_NETWORK, -4.0, 4.0)
w_np, b_np = basics.mlp_local_affine(basics.EXAMPLE_NETWORK, x0)
w_torch, b_torch = basics.local_linear(basics.example_module(), np.array([[x0]]), target=0)
st.plotly_chart(
    figures.piecewise_figure(pieces, x0, float(w_np[0, 0]), float(b_np[0])), width="stretch", key="piecewise_plot"
)
st.markdown(
    f"Breakpoints (where a unit switches): **{', '.join(f'{x:.4g}' for x in basics.breakpoints(pieces))}**. "
    f"At x0 = {x0:.4g}: W = {w_np[0, 0]:.4g}, b = {b_np[0]:.4g} (from the active units' weights; "
    f"autograd gives W = {float(w_torch[0]):.4g}, b = {b_torch:.4g}), and W x0 + b = "
    f"{w_np[0, 0] * x0 + b_np[0]:.4g} = h(x0) = {basics.mlp_forward(basics.EXAMPLE_NETWORK, [x0])[0, 0]:.4g}."
)

st.subheader("A CNN at an image")
st.caption(
    "W is the gradient of one logit with respect to the input image (the gradient map) and b the bias "
    "term: the logit is W x0 + b exactly. b comes two ways: h(x0) - W x0, and every layer's bias (conv, "
    "linear, batch norm's shift) carried to the output. They agree where the model is piecewise linear."
)
picked = page_model_and_image(default=defaults.SMALL_CIFAR)
if picked is None:
    st.stop()
name, model, x, display = picked
target = target_picker(name, probabilities(name, page_image_key()), key="piecewise_target")
result = show_interp_errors(local_affine, name, page_image_key(), target)
if result is None:
    st.stop()
w, b, x_in = result["W"], result["b"], result["x"]
linear_part = float((w * x_in).sum())
from_biases = sum(result["biases"].values())
st.dataframe(
    pd.DataFrame(
        [
            {"quantity": "W x0 (sum of gradient x input)", "value": linear_part},
            {"quantity": "b = h(x0) - W x0", "value": b},
            {"quantity": "b as the sum of the layers' biases", "value": from_biases},
            {"quantity": "W x0 + b (b from the biases)", "value": linear_part + from_biases},
            {"quantity": "h(x0): the logit, as the model computes it", "value": result["logit"]},
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"value": st.column_config.NumberColumn(format="%.6f")},
)
gap = abs(linear_part + from_biases - result["logit"])
st.markdown(
    f"The local affine model reproduces the logit to **{gap:.1e}** (the model computes in its own "
    "precision; W and b in float64)."
    + (
        ""
        if gap < 1e-3 * max(1.0, abs(result["logit"]))
        else " The gap is large: this model is not piecewise linear here."
    )
)
g1, g2, g3 = st.columns(3)
g1.image(display, caption="the input the model sees", width="stretch")
for col, values, title, units, key in (
    (g2, w.sum(axis=0), "W: gradient, summed over colour channels", "d logit / d input", "piecewise_gradient"),
    (g3, (w * x_in).sum(axis=0), "W x0 per pixel (sums to W x0)", "logit units", "piecewise_contribution"),
):
    fig = figures.heatmap_figure(values, title=title, colorscale=SIGNED_SCALE, symmetric=True, colorbar_title=units)
    col.plotly_chart(figures.compact(fig), width="stretch", key=key)
st.markdown("**Where b comes from** (each layer's bias times the gradient of the logit at its output)")
st.plotly_chart(figures.bias_bars(result["biases"]), width="stretch", key="piecewise_biases")

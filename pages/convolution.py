"""Convolution: by hand on a small image (boundary handling, flipped or not, one output pixel step
by step) and as a matrix y = A x."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.widgets import page
from interp import basics, figures
from interp.errors import ParameterError

page(
    "Convolution",
    "What a conv layer computes, on numbers small enough to follow. Edit the image and the kernel; "
    "every cell of the output is a sum of products of the kernel with the window under it.",
)

st.subheader("By hand")
s1, s2, s3, s4 = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
rows = s1.number_input("Image rows", 1, 8, 3, key="conv_rows")
cols = s2.number_input("Image columns", 1, 10, 5, key="conv_cols")
side = s3.selectbox("Kernel side", [1, 3, 5], index=1, key="conv_side")
if s4.button("Back to the example values", key="conv_reset"):
    st.session_state["conv_version"] = st.session_state.get("conv_version", 0) + 1  # fresh editors
version = st.session_state.get("conv_version", 0)
start_image = np.zeros((rows, cols), dtype=int)  # the example where it fits, zeros around it
start_image[:3, :5] = basics.EXAMPLE_IMAGE[:rows, :cols]
start_kernel = np.pad([[1]], side // 2)  # the identity kernel; the Sobel kernel at 3x3
if side == 3:
    start_kernel = basics.SOBEL_X.astype(int)
c1, c2 = st.columns([5, 3])
image = c1.data_editor(pd.DataFrame(start_image), key=f"conv_image_{rows}x{cols}_{version}", width="stretch")
kernel = c2.data_editor(pd.DataFrame(start_kernel), key=f"conv_kernel_{side}_{version}", width="stretch")
o1, o2 = st.columns(2)
boundary = o1.radio("Boundary", list(basics.BOUNDARIES), format_func=basics.BOUNDARY_LABELS.get, key="conv_boundary")
flip = o2.radio(
    "Operation",
    [True, False],
    key="conv_flip",
    format_func=lambda f: (
        "spatial convolution (kernel flipped)" if f else "cross-correlation (as conv layers compute it)"
    ),
)
try:
    output = basics.convolve(image.to_numpy(), kernel.to_numpy(), boundary=boundary, flip=flip)
except ParameterError as exc:
    st.error(str(exc))
else:
    p1, p2 = st.columns(2)
    row = p1.number_input("Output row", 0, output.shape[0] - 1, min(1, output.shape[0] - 1), key="conv_row")
    col = p2.number_input("Output column", 0, output.shape[1] - 1, min(1, output.shape[1] - 1), key="conv_col")
    step = basics.convolution_step(image.to_numpy(), kernel.to_numpy(), int(row), int(col), boundary, flip)
    kh, kw = step.kernel.shape
    pad = (0, 0) if boundary == "valid" else (kh // 2, kw // 2)
    st.plotly_chart(figures.convolution_step_figure(step, output, pad), width="stretch", key="conv_step")
    st.markdown(f"Output ({int(row)}, {int(col)}) = " + basics.step_formula(step))
    st.caption(
        f"Output {output.shape[0]}x{output.shape[1]}. "
        + (
            "The kernel is flipped in both axes before sliding it; cross-correlation slides it as it is, and the two "
            "agree only for a kernel symmetric under the flip."
            if flip
            else "Cross-correlation: the kernel slides as it is. A conv layer learns its kernels, so whether it flips "
            "them makes no difference to what it can compute."
        )
    )

st.subheader("As a matrix")
st.caption(
    "A convolution is linear, so y = A x for the input x flattened row-major (channel, row, column) "
    "without its padding: zero padding only drops the columns of padded pixels. Row r of A holds the "
    "kernel where output pixel r sees the input. Cross-correlation, as a conv layer (flip the kernel "
    "for spatial convolution)."
)
m = st.columns(7)
k = m[0].number_input("Kernel side", 1, 7, 3, key="matrix_kernel")
h = m[1].number_input("Input height", 1, 12, 4, key="matrix_h")
w = m[2].number_input("Input width", 1, 12, 4, key="matrix_w")
cin = m[3].number_input("Input channels", 1, 3, 1, key="matrix_cin")
cout = m[4].number_input("Output channels", 1, 3, 1, key="matrix_cout")
stride = m[5].number_input("Stride", 1, 4, 1, key="matrix_stride")
padding = m[6].number_input("Zero padding", 0, 3, 0, key="matrix_padding")
rng = np.random.default_rng(0)
single = cin == cout == 1
weights = basics.SOBEL_X if single and k == 3 else rng.integers(-2, 3, (cout, cin, k, k)).astype(float)
try:
    a = basics.conv_matrix(weights, (cin, h, w), int(stride), int(padding))
    symbolic = basics.conv_matrix_symbolic(np.shape(weights), (cin, h, w), int(stride), int(padding))
    _, oh, ow = basics.conv_output_shape(np.shape(weights), (cin, h, w), int(stride), int(padding))
except ParameterError as exc:
    st.error(str(exc))
    st.stop()
difference = basics.matrix_vs_layer(weights, rng.normal(size=(cin, h, w)), int(stride), int(padding))
st.markdown(
    f"A is **{a.shape[0]} x {a.shape[1]}**: {cout} x {oh} x {ow} outputs by {cin} x {h} x {w} inputs"
    + (f", in {cout} x {cin} blocks (one per output and input channel)" if not single else "")
    + f". On a random input, A x and the from-scratch conv layer differ by at most {difference:.1e}."
)
kernel_note = "the Sobel kernel" if single and k == 3 else "random integer weights (seed 0)"
t1, t2 = st.tabs(["Symbolic", f"Numeric ({kernel_note})"])
with t1:
    frame = pd.DataFrame(
        symbolic, index=[f"y{r}" for r in range(a.shape[0])], columns=[f"x{c}" for c in range(a.shape[1])]
    )
    st.dataframe(frame, width="stretch", height=min(600, 36 * a.shape[0] + 40))
with t2:
    st.plotly_chart(figures.conv_matrix_figure(a, (int(cout), int(cin))), width="stretch", key="matrix_numeric")

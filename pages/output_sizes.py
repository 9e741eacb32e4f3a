"""Output sizes: a calculator for a stack of conv and pooling layers (output side and receptive
field per layer), the quantity that solves for a missing one, and the same table for any model
of the registry."""

import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.widgets import first_ready, page
from interp import basics, get_spec, list_models
from interp.errors import InterpError

page(
    "Output sizes",
    "A conv or pooling layer maps a side of n pixels to floor((n + 2 padding - dilation (kernel - 1) - 1) "
    "/ stride) + 1. The receptive field is the patch of the input one output pixel sees; the jump is "
    "how many input pixels apart two neighbouring outputs are.",
)

st.subheader("A stack of layers")
STACK = pd.DataFrame(
    [  # the three conv-pool blocks of the Table 2 CNN on 32 x 32 inputs
        {"type": t, "kernel": k, "stride": s, "padding": p, "dilation": 1}
        for t, k, s, p in [("conv", 5, 1, 2), ("pool", 2, 2, 0)] * 3
    ]
)
size = st.number_input("Input side", 1, 4096, 32, key="sizes_input")
stack = st.data_editor(
    STACK,
    num_rows="dynamic",
    key="sizes_stack",
    width="stretch",
    column_config={
        "type": st.column_config.SelectboxColumn(options=["conv", "pool"], required=True),
        **{
            c: st.column_config.NumberColumn(min_value=0 if c == "padding" else 1, step=1, required=True)
            for c in ("kernel", "stride", "padding", "dilation")
        },
    },
)
try:
    layers = [
        basics.Layer(r["type"], int(r["kernel"]), int(r["stride"]), int(r["padding"]), int(r["dilation"]))
        for r in stack.to_dict("records")
    ]
    table = basics.receptive_fields(int(size), layers)
except (InterpError, ValueError, TypeError) as exc:  # an empty cell reads as NaN: int() refuses it
    st.error(f"This stack cannot be computed: {exc}")
else:
    if table:
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
        last = table[-1]
        st.markdown(
            f"**{size} -> {last['output']}**; each output pixel sees **{last['receptive field']} x "
            f"{last['receptive field']}** input pixels."
        )
    else:
        st.info("Add a layer to the table.")

st.subheader("Solve for a missing quantity")
k1, k2 = st.columns(2)
with k1.container(border=True):
    st.markdown("**The kernel that maps one side to another**")
    a, b, c, d = st.columns(4)
    size_in = a.number_input("Input side", 1, 4096, 512, key="solve_in")
    size_out = b.number_input("Output side", 1, 4096, 504, key="solve_out")
    stride = c.number_input("Stride", 1, 16, 1, key="solve_stride")
    padding = d.number_input("Padding", 0, 64, 0, key="solve_padding")
    try:
        kernel = basics.kernel_size_for(int(size_in), int(size_out), int(stride), int(padding))
        st.success(
            f"kernel **{kernel}** (check: {size_in} -> "
            f"{basics.conv_output_size(int(size_in), kernel, int(stride), int(padding))})"
            + (" ; the largest of those that do, the one that uses every input pixel" if stride > 1 else "")
        )
    except InterpError as exc:
        st.error(str(exc))
with k2.container(border=True):
    st.markdown("**The padding that keeps the size**")
    a, b, c = st.columns(3)
    kernel_side = a.number_input("Kernel", 1, 31, 5, key="same_kernel")
    dilation = b.number_input("Dilation", 1, 8, 1, key="same_dilation")
    probe = c.number_input("Check on a side of", 1, 4096, 32, key="same_probe")
    try:
        p = basics.same_padding(int(kernel_side), dilation=int(dilation))
        st.success(
            f"padding **{p}** (check: {probe} -> "
            f"{basics.conv_output_size(int(probe), int(kernel_side), 1, p, int(dilation))})"
        )
    except InterpError as exc:
        st.error(str(exc))

st.subheader("A model of the registry")
names = list_models()
name = st.selectbox(
    "Model", names, index=names.index(first_ready(defaults.SMALL_CIFAR, names) or names[0]), key="model"
)
st.caption(
    "Read from the model's per-layer table (as on the Architecture page), traced without weights. "
    "'predicted' is the formula above applied to the previous layer's output; it matches PyTorch's "
    "output wherever a layer follows the previous one."
)


@st.cache_data(show_spinner="Tracing the model's layers...")
def _model_table(name: str):
    return basics.model_size_table(get_spec(name))


try:
    rows = _model_table(name)
except InterpError as exc:
    st.error(str(exc))
else:
    st.markdown(f"Input {get_spec(name).input_label}; {len(rows)} layers with spatial outputs.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=min(600, 36 * len(rows) + 40))

"""Each channel's **optimised image** is grown from noise to excite the channel as much as possible (its mean
over the map; colours decorrelated, a 1/f Fourier basis, random jitter, scale and rotation each step, as in
Lucid). Beside it, the **held-out crops** that excite it most: the part of the image the channel's strongest
unit sees (its receptive field).
"""

import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, layer_weights, relevance_layer_examples
from dashboard.look import (
    HELD_OUT,
    SHOWN,
    STARTS,
    STEPS,
    channel_tiles,
    look_grid,
    optimised,
    side_options,
    top_examples,
)
from dashboard.widgets import model_page, show_interp_errors
from interp import figures, get_spec, methods
from interp.data import HeldOutBatch

name, model = model_page("What filters look for", __doc__, defaults.SMALL_CIFAR)
spec = get_spec(name)
layers = methods.conv_layers(model)
if not layers:
    st.info(f"**{name}** has no conv layer to look into.")
    st.stop()

c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 1], vertical_alignment="bottom")
layer = c1.selectbox("Conv layer", layers, key=f"look_layer_{name}")
n_out = layer_weights(name, layer).shape[0]
first = c2.number_input("First channel", 0, n_out - 1, 0, key=f"look_first_{name}_{layer}")
count = c3.slider("Channels", 1, min(32, n_out), min(8, n_out), key=f"look_count_{name}_{layer}")
steps = c4.select_slider("Steps", STEPS, 64, key="look_steps", help="More steps: sharper, stronger images, slower.")
sides, side_default = side_options(name)
side = c5.select_slider("Side (px)", sides, side_default, key=f"look_side_{name}")
channels = tuple(range(int(first), min(int(first) + count, n_out)))

starts = st.sidebar.select_slider(
    "Starting images per channel",
    STARTS,
    1,
    key="look_starts",
    help="1: grown from grey, as in Lucid. More: also from dark to light colours, all optimised for the first "
    "eighth of the steps, then each channel goes on from its best. Finds channels that want a bright (paper) "
    "or dark image, which the grey start misses; the first eighth costs that many times more.",
)
found = optimised([(name, channels)], layer, steps, side, starts=starts)
if found is None:
    st.stop()
vis = found[0]

n_images = st.sidebar.select_slider("Held-out images to rank", HELD_OUT, 200, key="look_held_out")
batch, examples = top_examples(name, layer, n_images)
if batch is not None and batch.note:
    st.caption(batch.note)

st.markdown(
    f"`{layer}`, channels {channels[0]}-{channels[-1]} of {n_out}: one column per channel; top row the "
    "optimised image" + (f", below it the top {SHOWN} held-out crops." if examples is not None else ".")
)
tiles = channel_tiles(vis, examples, batch)
grid = look_grid(tiles, channels_across=True)
grid.update_layout(height=min(900, 110 * len(tiles[0]) * max(1, 8 // len(channels)) + 40))
st.plotly_chart(grid, width="stretch", key="look_grid")

st.subheader("One channel")
channel = st.selectbox("Channel", channels, key=f"look_channel_{name}_{layer}")
i = channels.index(channel)
reached = show_interp_errors(
    methods.introspect.channel_maxima, cached_model(name), vis.images[i : i + 1], layer, [channel], spec.mean, spec.std
)
left, right = st.columns([1, 2])
big = figures.picture_grid_figure([vis.images[i]], [f"channel {channel}: optimised"], ncols=1, side=256)
left.plotly_chart(big.update_layout(height=300), width="stretch", key="look_big")
if reached is not None:
    best = "" if examples is None else f"; the best held-out image reaches **{examples.top_values[channel, 0]:.3g}**"
    left.markdown(f"Its strongest unit reaches **{float(reached[0]):.3g}**{best}.")
    left.caption("More steps, and a side nearer the model's input, raise the optimised image's value.")
right.plotly_chart(figures.objective_curves(vis.objective[i : i + 1], [channel]), width="stretch", key="look_curve")


def ranking_row(batch: HeldOutBatch, title: str, what: str, idx, values, boxes, whole: bool, key: str) -> None:
    """One channel's ranked held-out images of ``batch`` (whole, or the crops its strongest unit sees), values in
    the hover."""
    picks = [int(j) for j in idx[channel]]
    pics = [
        batch.pictures[j] if whole else methods.introspect.crop(batch.pictures[j], boxes[channel, r])
        for r, j in enumerate(picks)
    ]
    hover = [
        f"image {j} ({batch.class_names[batch.labels[j]]}): {what} {values[channel, r]:.3g}"
        for r, j in enumerate(picks)
    ]
    st.markdown(
        f"**{title} {len(picks)} held-out images** by {what}: " + ", ".join(f"{v:.3g}" for v in values[channel])
    )
    fig = figures.picture_grid_figure(pics, hover, ncols=8, side=80)
    st.plotly_chart(fig.update_layout(height=220), width="stretch", key=key)


if examples is not None and batch is not None:  # top_examples gives both or neither
    whole = st.toggle("Whole images (off: the receptive-field crops)", value=False, key="look_whole")
    for title, idx, values, boxes in (
        ("Top", examples.top, examples.top_values, examples.top_boxes),
        ("Bottom", examples.bottom, examples.bottom_values, examples.bottom_boxes),
    ):
        if idx is None or values is None or boxes is None:  # the bottom arrays are None together
            st.caption(f"`{layer}` has no negative values on these images: no bottom examples.")
            continue
        what = f"the channel's spatial {'maximum' if title == 'Top' else 'minimum'}"
        ranking_row(batch, title, what, idx, values, boxes, whole, key=f"look_{title.lower()}")

    st.markdown("**By relevance for a class** (relevance maximisation, Achtibat et al. 2023)")
    st.caption(
        "The same held-out images ranked by the relevance the channel carried for the class (LRP, composite "
        "EpsilonPlusFlat): where the channel mattered to the class's logit, not merely where it fired."
    )
    cls = st.selectbox(
        "Class",
        range(len(spec.class_names)),
        format_func=lambda i: spec.class_names[i],
        index=int(batch.labels[int(examples.top[channel, 0])]),
        key=f"look_relevance_class_{name}",
        help="Opens on the class of the channel's top image by activation.",
    )
    bar = st.progress(0.0, text="Propagating relevance through the held-out images...")
    by_relevance = show_interp_errors(
        relevance_layer_examples,
        name,
        layer,
        n_images,
        cls,
        progress=lambda done, total: bar.progress(done / total, text=f"LRP: batch {done} of {total}"),
    )
    bar.empty()
    if by_relevance is not None:
        ranking_row(
            batch,
            "Top",
            f"relevance for {spec.class_names[cls]}",
            by_relevance.top,
            by_relevance.top_values,
            by_relevance.top_boxes,
            whole,
            key="look_relevance_top",
        )
    f = examples.field
    st.caption(
        f"Receptive field of `{layer}`: {f.size[0]}x{f.size[1]} input pixels, stride {f.stride[0]}; "
        "crops at the image border are clipped."
    )

st.markdown("**Its weights**")
w = layer_weights(name, layer)[channel]
cols = st.columns(2)
if w.shape[0] == 3:
    rgb = figures.filter_grid_figure(methods.rgb_tiles(w[None]), labels=[channel], title="as RGB")
    cols[0].plotly_chart(rgb.update_layout(height=300), width="stretch", key="look_rgb")
mean = figures.kernel_figure(w.mean(axis=0), title="mean over input channels", what="mean weight")
cols[1 if w.shape[0] == 3 else 0].plotly_chart(mean.update_layout(height=300), width="stretch", key="look_mean")
if w.shape[0] != 3:
    kernels = figures.filter_grid_figure(w, title="its kernel for each input channel")
    cols[1].plotly_chart(kernels.update_layout(height=300), width="stretch", key="look_kernels")

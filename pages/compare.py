"""Compare models: two models of one architecture, filter by filter and layer by layer."""

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from dashboard import defaults, widgets
from dashboard.loaders import cached_model, explanation, held_out, model_input, model_layers, style_scores
from dashboard.look import HELD_OUT, SHOWN, STEPS, channel_tiles, look_grid, optimised, side_options, top_examples
from dashboard.widgets import (
    available_models,
    first_ready,
    first_ready_pair,
    image_key,
    image_sidebar,
    load_or_explain,
    page,
    show_interp_errors,
)
from interp import figures, get_spec, list_models, methods
from interp.concepts.styles import read_style_tcav
from interp.methods.introspect.compare import layer_similarity, match_filters, share_of_evidence

page(
    "Compare models",
    "Two models of the same architecture, e.g. one trained to tell PACS domains apart and one "
    "trained to tell its classes apart: do they learn the same filters, and where does each look in one image?",
)
image_sidebar()
ready = available_models()
c1, c2 = st.columns(2)
default_a, default_b = first_ready_pair(defaults.COURSE_PAIRS, ready) or (None, None)
name_a = c1.selectbox("Model A", ready, index=ready.index(default_a) if default_a else 0, key="cmp_a")
same_arch = [n for n in ready if get_spec(n).arch == get_spec(name_a).arch and n != name_a]
if not same_arch:
    others = [n for n in list_models() if get_spec(n).arch == get_spec(name_a).arch and n != name_a]
    st.info(
        f"No other trained model of architecture `{get_spec(name_a).arch}`. "
        + (f"Train one, e.g. `python -m interp train {others[0]}`." if others else "")
    )
    st.stop()
default_b = default_b if default_b in same_arch else first_ready(defaults.COURSE_CLASS, same_arch)
name_b = c2.selectbox("Model B", same_arch, index=same_arch.index(default_b) if default_b else 0, key="cmp_b")
model_a, model_b = load_or_explain(name_a), load_or_explain(name_b)
if model_a is None or model_b is None:
    st.stop()


@st.cache_data(show_spinner="Comparing layers over held-out images...", max_entries=8)
def _summary(name_a: str, name_b: str, n_images: int) -> tuple[pd.DataFrame, str | None]:
    batch = held_out(name_a, n_images)
    return pd.DataFrame(layer_similarity(cached_model(name_a), cached_model(name_b), batch.x)), batch.note


layers = model_layers(name_a)["conv"]
layer = st.selectbox("Conv layer", layers, key="cmp_layer")
wa, wb = methods.filters(model_a, layer), methods.filters(model_b, layer)
match = match_filters(wa, wb)


def _tiles(w: np.ndarray) -> np.ndarray:
    return methods.rgb_tiles(w) if w.shape[1] == 3 else methods.reduce_input_channels(w)


st.subheader(f"Filters of `{layer}`")
left, right = st.columns(2)
for col, name, w in ((left, name_a, wa), (right, name_b, wb)):
    fig = figures.filter_grid_figure(_tiles(w), title=name)
    fig.update_layout(height=480)
    col.plotly_chart(fig, width="stretch", key=f"cmp_grid_{name}")

st.subheader("Matched filters, most alike first")
st.caption(
    "Each filter of A is paired with one filter of B (Hungarian assignment maximising the summed "
    "cosine similarity of the weights). Position i in both grids is a pair."
)
n_pairs = st.slider("Pairs shown", 8, len(match.a), min(32, len(match.a)), step=8, key="cmp_pairs")
left, right = st.columns(2)
for col, name, w, order in ((left, name_a, wa, match.a), (right, name_b, wb, match.b)):
    fig = figures.filter_grid_figure(_tiles(w)[order[:n_pairs]], labels=order[:n_pairs], ncols=8, title=name)
    fig.update_layout(height=max(200, 60 * int(np.ceil(n_pairs / 8)) + 60))
    col.plotly_chart(fig, width="stretch", key=f"cmp_pairs_{name}")
st.line_chart(pd.DataFrame({"cosine similarity of pair": match.cosine}), height=180)


def _look(n: int, steps: int, side: int, n_images: int) -> None:
    """The first n matched pairs: each filter's optimised image and top held-out crops, A left and B right."""
    pairs = {name_a: match.a[:n], name_b: match.b[:n]}
    found = optimised(list(pairs.items()), layer, steps, side)
    if found is None:
        return
    batch, ex_a = top_examples(name_a, layer, n_images)
    ex_b = top_examples(name_b, layer, n_images, images_of=name_a)[1] if batch is not None else None
    if batch is None or ex_a is None or ex_b is None:
        batch = ex_a = ex_b = None
    elif batch.note:
        st.caption(batch.note)
    heads = ["optimised", *(f"top {r + 1}" for r in range(SHOWN if batch is not None else 0))]
    table = {"pair": np.arange(1, n + 1), "weight cosine": match.cosine[:n]}
    for col, tag, (name, channels), vis, ex in zip(st.columns(2), "AB", pairs.items(), found, (ex_a, ex_b)):
        grid = look_grid(
            channel_tiles(vis, ex, batch, who=f"{tag} ({name}), "),
            channels_across=False,
            title=f"{tag}: {name}",
            col_labels=heads,
            row_labels=[f"{i + 1}: channel {c}" for i, c in enumerate(channels)],
        )
        col.plotly_chart(grid.update_layout(height=90 * n + 90), width="stretch", key=f"cmp_look_{name}")
        table[f"{tag} channel"] = channels
        table[f"{tag} objective (mean)"] = vis.objective[:, -1]
        if ex is not None:
            table[f"{tag} best held-out (max)"] = ex.top_values[channels, 0]
    st.dataframe(
        pd.DataFrame(table),
        hide_index=True,
        width="stretch",
        key="cmp_look_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.3g") for c in table if "channel" not in c and c != "pair"
        },
    )


st.subheader("What the matched filters look for")
st.caption(
    "The first matched pairs above (most alike first): row i of both grids is pair i. Each filter's "
    "image optimised to excite it (the same seed, steps and side for both models, so they compare), then "
    "the held-out crops that excite it most; both models rank the same held-out images of A's task."
)
c1, c2, c3, c4 = st.columns(4)
look_n = c1.slider("Pairs", 1, min(16, len(match.a)), min(8, len(match.a)), key="cmp_look_pairs")
look_steps = c2.select_slider("Steps", STEPS, 64, key="cmp_look_steps", help="More steps: sharper images, slower.")
look_sides, look_side = side_options(name_a)
look_side = c3.select_slider("Side (px)", look_sides, look_side, key="cmp_look_side")
look_images = c4.select_slider("Held-out images to rank", HELD_OUT, 200, key="cmp_look_images")
_look(look_n, look_steps, look_side, look_images)

st.subheader("Layer by layer")
n_images = st.slider("Held-out images for CKA", 8, 64, 16, step=8, key="cmp_images")
summary, note = show_interp_errors(_summary, name_a, name_b, n_images) or (None, None)
if note:
    st.caption(note)
if summary is not None:
    st.dataframe(
        summary,
        hide_index=True,
        width="stretch",
        column_config={
            "matched_cosine": st.column_config.NumberColumn("mean matched cosine", format="%.3f"),
            "cka": st.column_config.NumberColumn("linear CKA of activations", format="%.3f"),
        },
    )


def _where_each_looks() -> None:
    """The same image under both models, each explaining its own prediction, on one colour scale."""
    st.subheader("Where each model looks")
    st.caption(
        "The same image under both models, each explaining its own prediction, drawn on one colour scale. "
        "Each map is divided by its total |attribution|, so a pixel's value is its share of the model's evidence: "
        "the two maps compare even where the models' scores differ. Red: evidence for the predicted class, "
        "blue (signed methods): against it."
    )
    image_id = image_key()
    if image_id is None:  # "Upload" chosen in the sidebar, nothing uploaded yet
        st.info("Upload an image in the sidebar.")
        return
    choices = widgets.every_method("lrp", "grad_cam", "integrated_gradients")
    evidence_method = st.selectbox(
        "Method",
        choices,
        format_func=figures.method_title,
        key="cmp_evidence_method",
        help="LRP by default: "
        "its composite EpsilonPlusFlat is the usual choice for CNNs (the methods page lists the others).",
    )
    maps = []
    for name in (name_a, name_b):
        result = show_interp_errors(explanation, name, image_id, evidence_method)
        if result is None:
            return
        maps.append((name, result))
    signed = methods.get_method(evidence_method).signed
    shares = [share_of_evidence(r.spatial("sum" if signed else "absmax")) for _, r in maps]
    top = max(float(np.percentile(np.abs(s), 99.5)) for s in shares) or 1.0
    for col, (name, r), values in zip(st.columns(2), maps, shares):
        _, display = model_input(name, image_id)
        title = f"{name}: {get_spec(name).class_names[r.target]} ({r.probability:.0%})"
        # a signed map on a diverging scale centred on 0; a magnitude map on the attribution scale from 0
        style: dict[str, Any] = dict(colorscale="RdBu_r", symmetric=True, opacity=0.6) if signed else {}
        fig = figures.heatmap_figure(
            np.clip(values, -top, top),
            image=display,
            colorbar_title="share of evidence",
            zrange=(-top, top) if signed else (0.0, top),
            title=title,
            **style,
        )
        fig.update_layout(height=420)
        col.plotly_chart(fig, width="stretch", key=f"cmp_evidence_{name}")
    st.caption(
        f"{figures.method_title(evidence_method)}: {methods.get_method(evidence_method).shows}. "
        f"The colour scale is shared and clipped at the 99.5th percentile of |share| over both maps."
    )


def _style_table(table: pd.DataFrame) -> Styler:
    """Outputs by styles: the TCAV scores, starred where significant."""
    scores = table.pivot(index="output_name", columns="concept", values="score")
    scores = scores.loc[table["output_name"].unique(), table["concept"].unique()].rename_axis(
        index="output", columns=None
    )
    styler = scores.style.format("{:.2f}")
    for row in table[table["significant"]].itertuples():
        styler = styler.format("{:.2f} *", subset=pd.IndexSlice[[row.output_name], [row.concept]])
    return styler


def _styles() -> None:
    """TCAV of the four PACS styles for every output of both models (Compute, or at once where kept)."""
    st.subheader("What each model's outputs are made of: TCAV of the PACS styles")
    not_pacs = [n for n in (name_a, name_b) if get_spec(n).task not in ("pacs_domain", "pacs_class")]
    if not_pacs:
        st.info(
            "TCAV of the PACS styles asks how a PACS model's outputs depend on a picture's style: "
            f"{' and '.join(not_pacs)} {'is not a PACS model' if len(not_pacs) == 1 else 'are not PACS models'}."
        )
        return
    c1, c2, c3, c4 = st.columns(4)
    convs = model_layers(name_a)["conv"]
    layer = c1.selectbox("Layer", convs, index=len(convs) - 1, key="cmp_tcav_layer", help="Where the CAVs live.")
    n_images = c2.slider("Images per style", 4, 40, 20, key="cmp_tcav_images", help="And per random set.")
    n_inputs = c3.slider("Images per output", 2, 40, 20, key="cmp_tcav_inputs", help="Whose logits are scored.")
    n_random = c4.slider("Random sets", 3, 16, 8, key="cmp_tcav_random", help="More: a surer significance test.")
    st.caption(
        f"For each style, a direction at `{layer}` (TCAV, Kim et al. 2018): a linear classifier tells the layer's "
        f"activations on {n_images} validation images of that style from those on random validation images "
        "(outside the style sets). An output's score is the share of its own held-out images (of the class, or "
        f"of the domain; up to {n_inputs}) whose logit grows along the direction; against {n_random} random sets, "
        "a two-sided t-test says whether it differs from a random direction's (significant: p below 0.05 / 4, "
        "for the four styles). Both models get the same images, random sets and seeds."
    )
    args = (layer, n_images, n_inputs, n_random)
    found = {n: style_scores(n, *args, run=False) for n in (name_a, name_b)}
    missing = [n for n, t in found.items() if t is None]
    if missing:
        if not st.button("Compute", key="cmp_tcav_run", type="primary"):
            st.info("Press Compute: a linear classifier per style and random set, for each model (a minute or more).")
            return
        bar = st.progress(0.0, text="TCAV...")
        for i, name in enumerate(missing):

            def moved(done: int, total: int, i: int = i, name: str = name) -> None:
                bar.progress((i + done / total) / len(missing), text=f"TCAV of {name}: step {done} of {total}")

            found[name] = show_interp_errors(style_scores, name, *args, progress=moved)
        bar.empty()
    tables = {n: t for n, t in found.items() if t is not None}
    if len(tables) < 2:
        return  # show_interp_errors said why
    note = next((t.attrs["note"] for t in tables.values() if t.attrs.get("note")), None)
    if note:
        st.caption(note)
    for col, tag, (name, table) in zip(st.columns(2), "AB", tables.items()):
        col.markdown(f"**{tag}: {name}**: TCAV scores (* significant)")
        col.dataframe(_style_table(table), key=f"cmp_tcav_table_{tag}")
    st.plotly_chart(figures.style_tcav_figure(tables), width="stretch", key="cmp_tcav_bars")
    st.markdown(read_style_tcav(tables, {n: get_spec(n).task for n in tables}))
    with st.expander("Every score with its p-value, standard deviation over the random sets and CAV accuracy"):
        for tag, (name, table) in zip("AB", tables.items()):
            st.markdown(f"**{tag}: {name}**")
            st.dataframe(
                table.drop(columns="output"),
                hide_index=True,
                key=f"cmp_tcav_long_{tag}",
                column_config={
                    "output_name": "output",
                    "concept": "style",
                    "p_value": st.column_config.NumberColumn("p-value", format="%.2g"),
                    "cav_accuracy": st.column_config.NumberColumn("CAV accuracy", format="%.2f"),
                },
            )


_where_each_looks()
_styles()

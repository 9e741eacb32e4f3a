"""Which attribution method to trust for this model? Each chosen method explains held-out images (each for the
model's prediction) and every chosen metric scores each map: faithfulness, robustness, randomisation, complexity
and, where the images have object masks, localisation (the metric families of Quantus, Hedström et al. 2023).
Published comparisons agree that the ranking depends on the model and the data, hence a card per model.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import defaults, widgets
from dashboard.loaders import cached_model, picture
from interp import figures, get_spec, read_report_card, read_results, report_card
from interp.data import cache_dir, data_root, held_out_sample
from interp.errors import DataError, InterpError
from interp.figures.style import ATTRIBUTION_SCALE, SIGNED_SCALE
from interp.methods import METHODS, get_method
from interp.report import ReportCard, applicable
from interp.whole_dataset.metrics import FAMILIES, METRIC_TABLE, METRICS, mask_path

QUICK_METHODS = ("saliency", "input_x_gradient", "grad_cam", "lrp", "integrated_gradients", "cam")
SHOWN = 4  # best and worst images of a cell
PER_ROW = 4

name, model = widgets.model_page("Report card", __doc__, defaults.COURSE_CLASS)
spec = get_spec(name)
c1, c2, c3 = st.columns([1, 2, 2])
n_images = c1.slider(
    "Held-out images",
    4,
    64,
    8,
    step=4,
    key="rc_images",
    help="Spread over the classes: the full held-out split under the data root, else the sample that ships "
    "with interp. Each method explains every image once; every metric reads that map.",
)


@st.cache_data(show_spinner=False, max_entries=32)
def _sample(name: str, n: int, root: str):
    """(ImageList, note) of n held-out images of the model's task (``root``: the data root, part of the key)."""
    return held_out_sample(get_spec(name), n)


try:
    images, note = _sample(name, n_images, str(data_root().resolve()))
except DataError as exc:
    st.info(
        f"No report card here: it scores maps on held-out images of the model's classes, and {exc}. "
        f"`python -m interp report-card {name} --images DIR --out CARD` scores a folder of your own images "
        "(one folder per class)."
    )
    st.stop()
has_masks = any(mask_path(p).is_file() for p in images.paths)


@st.cache_data(show_spinner="Checking which methods apply to the model...", max_entries=64)
def _failing(name: str, chosen: tuple[str, ...]) -> dict[str, str]:
    """{method: why} of the chosen methods that fail on the model (one probe input each)."""
    model, spec, failing = cached_model(name), get_spec(name), {}
    for m in chosen:  # one at a time: applicable() lets through the refusals that are no MethodError (CAM's)
        try:
            failing.update(applicable(model, spec, [m], {m: dict(get_method(m).quick)}))
        except InterpError as exc:
            failing[m] = str(exc)
    return failing


quick = tuple(m for m in QUICK_METHODS if m in METHODS)
failing_quick = widgets.or_stop(_failing, name, quick)
chosen = c2.multiselect(
    "Methods",
    widgets.every_method(*quick),
    default=[m for m in quick if m not in failing_quick],
    format_func=figures.method_title,
    key=f"rc_methods_{name}",  # the default depends on the model (CAM only where its head allows it)
    help="By default the quick methods that apply to this model.",
)
metrics = c3.multiselect(
    "Metrics",
    METRICS,
    default=[m for m in METRICS if has_masks or not METRIC_TABLE[m].needs_mask],
    format_func=lambda m: f"{METRIC_TABLE[m].title} ({METRIC_TABLE[m].family})",
    key=f"rc_metrics_{name}",
    help="Localisation needs object masks (NAME.mask.png beside the image); "
    + ("these images have them." if has_masks else "these images have none, so it is left out by default."),
)
if widgets.no_choice(chosen, "method") or widgets.no_choice(metrics, "metric"):
    st.stop()
chosen = sorted(chosen, key=list(METHODS).index)  # one order, so that the same choice finds the same card
metrics = sorted(metrics, key=METRICS.index)
if note:
    st.caption(note)

skipped = widgets.or_stop(_failing, name, tuple(chosen))
for method, why in skipped.items():
    st.caption(f"Not scored: **{figures.method_title(method)}** does not apply to this model. {why}")
kept = [m for m in chosen if m not in skipped]
if not kept:
    st.info("None of the chosen methods applies to this model: choose others.")
    st.stop()

# The card lives on disk, named after everything that decides it: it survives a restart of the server
# and every visitor who asks for the same card sees it without computing it again.
ident = json.dumps([kept, metrics, n_images, str(data_root().resolve()), [str(p) for p in images.paths]])
folder = cache_dir() / "report_card" / f"{name.replace('/', '_')}-{hashlib.sha1(ident.encode()).hexdigest()[:10]}"


@st.cache_data(show_spinner=False, max_entries=16)
def _card(folder: str, stamp: int) -> ReportCard:
    """The finished card in ``folder`` (``stamp``: its summary's time, so that a new card is read anew)."""
    return read_report_card(folder)


def _finished(folder: Path) -> ReportCard | None:
    summary = folder / "summary.parquet"
    try:
        return _card(str(folder), summary.stat().st_mtime_ns)
    except (InterpError, OSError, ValueError):  # no card yet, or one being written
        return None


card = _finished(folder)
if card is None:
    if not st.button("Run report card", key="rc_run", type="primary"):
        st.info(
            f"Press Run report card to score {len(kept)} method(s) with {len(metrics)} metric(s) on "
            f"{len(images)} held-out images (kept in {folder})."
        )
        st.stop()
    bar = st.progress(0.0, text="Explaining and scoring the held-out images...")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"Explained and scored {done} of {total} images")

    made = widgets.show_interp_errors(
        report_card,
        name,
        kept,
        metrics,
        images=images,  # an ImageList: report_card hands it to explain_dataset
        out=folder,
        limit=None,
        progress=progress,
    )
    bar.empty()
    if made is None:
        st.stop()
    st.rerun()  # the card is on disk now: shown as every later visit shows it, without the button

# ---- the card
summary, long = card.summary, card.long
st.plotly_chart(figures.rank_table_figure(summary), width="stretch", key="rc_ranks")
st.caption(
    f"Means over {long['image'].nunique()} held-out images, each explained for the model's prediction. Rank 1 is "
    "best. A method's rank is 1 + the number of methods whose 95% bootstrap interval of the mean lies wholly on the "
    "better side of its own, so methods whose intervals overlap share a rank (a tie); hover a cell for its mean "
    "and interval. Under each metric, ↑: higher is better, ↓: lower is better."
)
families = [f for f in FAMILIES if f in set(summary["family"])]
for tab, family in zip(st.tabs([f.capitalize() for f in families]), families):
    tab.plotly_chart(figures.family_figure(summary, family), width="stretch", key=f"rc_family_{family}")

# ---- the images behind one cell
# Streamlit reports no selection for a click on a heatmap cell, so two pickers choose the cell.
st.subheader("The images behind a cell")
run_key = hashlib.sha1(str(folder).encode()).hexdigest()[:10]  # the pickers start afresh with each card
card_metrics = [m for m in METRICS if m in set(summary["metric"])]
first = summary[summary["metric"] == card_metrics[0]]
best_first = first.sort_values(["rank", "mean"], ascending=[True, not METRIC_TABLE[card_metrics[0]].higher_is_better])
card_methods = list(dict.fromkeys([best_first["method"].iloc[0], *(m for m in METHODS if m in set(summary["method"]))]))
p1, p2 = st.columns(2)
method = p1.selectbox("Method", card_methods, format_func=figures.method_title, key=f"rc_cell_method_{run_key}")
metric = p2.selectbox(
    "Metric", card_metrics, format_func=lambda m: METRIC_TABLE[m].title, key=f"rc_cell_metric_{run_key}"
)
better = METRIC_TABLE[metric].higher_is_better
cell = long[(long["method"] == method) & (long["metric"] == metric)]
ordered = cell.sort_values(["value", "image"], ascending=[not better, True], kind="stable")
n_best = min(SHOWN, (len(ordered) + 1) // 2)  # best and worst never share an image
best, worst = ordered.head(n_best), ordered.iloc[n_best:].tail(SHOWN).iloc[::-1]


@st.cache_data(show_spinner=False, max_entries=32)
def _maps(folder: str, method: str, stamp: int) -> pd.DataFrame:
    """The card's stored maps of one method, by image index."""
    columns = ["index", "path", f"map_{method}", "map_height", "map_width"]
    return read_results(folder, columns).to_pandas().set_index("index")


maps = widgets.or_stop(_maps, str(folder), method, (folder / "summary.parquet").stat().st_mtime_ns)


def _gallery(rows: pd.DataFrame, what: str, key: str) -> None:
    st.markdown(f"**{what}** ({METRIC_TABLE[metric].title}, {'higher' if better else 'lower'} is better)")
    columns = st.columns(PER_ROW)
    for k, row in enumerate(rows.itertuples()):
        stored = maps.loc[row.image]
        values = np.asarray(stored[f"map_{method}"], dtype=np.float32).reshape(
            int(stored["map_height"]), int(stored["map_width"])
        )
        pic = picture(str(stored["path"]), spec.input_hw)
        where = columns[k % PER_ROW]
        if pic is None:
            where.caption(f"image {row.image}: {Path(str(stored['path'])).name} cannot be read any more")
            continue
        signed = bool((values < 0).any())
        fig = figures.heatmap_figure(
            values,
            image=pic,
            title=f"{row.value:.3g}: {spec.class_names[int(row.label)]} → {spec.class_names[int(row.prediction)]}",
            colorscale=SIGNED_SCALE if signed else ATTRIBUTION_SCALE,
            symmetric=signed,
            colorbar_title=figures.method_title(method),
        )
        where.plotly_chart(figures.compact(fig, height=280), width="stretch", key=f"rc_{key}_{k}")


st.caption(
    f"Each image's {figures.method_title(method)} map (as stored with the card, on its own colour scale), its "
    f"{METRIC_TABLE[metric].title} in the title, then its true class → the prediction explained."
)
_gallery(best, f"Best {len(best)}", "best")
_gallery(worst, f"Worst {len(worst)}, the worst first", "worst")

# ---- downloads
st.subheader("Downloads")
d1, d2, d3 = st.columns(3)
stem = f"report_card_{name.replace('/', '_')}"
d1.download_button(
    "Summary (CSV)", (folder / "summary.csv").read_bytes(), f"{stem}_summary.csv", "text/csv", key="rc_csv"
)
d2.download_button(
    "Summary (Parquet)",
    (folder / "summary.parquet").read_bytes(),
    f"{stem}_summary.parquet",
    "application/vnd.apache.parquet",
    key="rc_summary_parquet",
)
d3.download_button(
    "Per image (Parquet)",
    (folder / "report.parquet").read_bytes(),
    f"{stem}_report.parquet",
    "application/vnd.apache.parquet",
    key="rc_long_parquet",
    help="One row per image x method x metric: image, path, label, prediction, method, metric, family, value.",
)

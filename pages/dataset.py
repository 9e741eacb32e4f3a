"""Dataset: a model's predictions and maps over a whole held-out set, or any results folder of
``python -m interp explain-dataset``: accuracy and confusion, the images by correctness,
confidence, class or metric with their maps, mean maps per class, and two models side by side."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import defaults
from dashboard.loaders import cached_model, dataset_results, picture, results_stamp
from dashboard.widgets import available_models, methods_picker, model_picker, no_choice, or_stop, page
from interp import InterpError, figures, get_spec
from interp.whole_dataset import explain_held_out, held_out_folder, held_out_runs, read_manifest
from interp.whole_dataset import results as R

DEFAULT_N = 64
CHOICES = ["grad_cam", "cam", "saliency", "guided_backprop", "grad_cam_pp", "layer_cam", "input_x_gradient"]
GALLERY = 12  # images shown at once
COMPUTE, OPEN = "Compute for a shipped model", "Open a results folder"

page(
    "Dataset",
    "A model over many images at once: how often it is right, for which classes, and where it looks "
    "when it is right and when it is wrong. Compute a held-out run here, or open the folder of "
    "`python -m interp explain-dataset MODEL --out DIR`.",
)


def _finished(folder: Path) -> bool:
    try:
        return bool(read_manifest(folder).get("finished"))
    except (InterpError, OSError, ValueError):  # no manifest yet, or one being written
        return False


def _computed_folder() -> str:
    """Pick a model, N and methods; compute the run on a button press (resumes where it stopped)."""
    name = model_picker(default=defaults.SMALL_CIFAR, names=available_models())
    if get_spec(name).dataset not in ("pacs", "cifar10"):
        st.info(
            f"interp has no held-out images of {name}'s classes. Explain a folder of your images with "
            f"`python -m interp explain-dataset {name} --images DIR --out RESULTS` and open RESULTS here."
        )
        st.stop()
    left, right = st.columns([1, 3])
    n = int(
        left.number_input(
            "Held-out images",
            8,
            10_000,
            DEFAULT_N,
            step=8,
            key="ds_images",
            help="Spread over the classes: the full split under the data root, else the sample that ships with interp.",
        )
    )
    chosen = methods_picker(CHOICES, key="ds_methods", shown=1, container=right)
    if no_choice(chosen, "method"):
        st.stop()
    folder = held_out_folder(name, n, chosen)
    if not _finished(folder):
        if not st.button("Compute", key="ds_compute", type="primary"):
            st.info(f"Press Compute to explain {n} held-out images with {name} (kept in {folder}).")
            st.stop()
        bar = st.progress(0.0, text="Explaining held-out images...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Explained {done} of {total} images")

        or_stop(
            explain_held_out,
            name,
            n,
            chosen,
            loaded_model=cached_model(name),
            progress=progress,
            batch_size=16,
            shard_size=64,
        )
        bar.empty()
    return str(folder)


def _opened_folder(key: str, label: str = "Results folder") -> str | None:
    text = st.text_input(
        label,
        key=key,
        placeholder="runs/cifar10-gradcam",
        help="A folder written by python -m interp explain-dataset (or interp.explain_dataset).",
    )
    return text.strip() or None


source = st.radio("Results", (COMPUTE, OPEN), horizontal=True, key="ds_source")
folder = _computed_folder() if source == COMPUTE else _opened_folder("ds_folder")
if folder is None:
    st.info("Type the path of a results folder.")
    st.stop()
df, manifest = or_stop(dataset_results, folder, results_stamp(folder))
class_names = manifest["class_names"]
size = tuple(manifest["model"]["input_size"])
h, w = manifest["settings"]["resolution"]
st.caption(
    f"**{manifest['model']['name']}** on {manifest['source']}: {len(df)} of {manifest['images']} images "
    f"done; maps {h} x {w}. Command: `{manifest['command']}`"
)

# ---- accuracy and confusion
summary = R.summary(df, class_names)
a, b, c = st.columns(3)
a.metric("Images", summary["images"])
b.metric(
    "Accuracy",
    "-" if summary["accuracy"] is None else f"{summary['accuracy']:.1%}",
    help=f"over the {summary['labelled']} images with a known label",
)
c.metric("Unreadable", summary["unreadable"])
if summary["labelled"]:
    left, right = st.columns(2)
    left.plotly_chart(figures.confusion_matrix(summary["confusion"], class_names), width="stretch", key="ds_confusion")
    right.plotly_chart(figures.per_class_accuracy(summary["per_class"]), width="stretch", key="ds_per_class")

# ---- the images, filtered and sorted
st.subheader("Images and their maps")
methods = R.methods_of(df)
c1, c2, c3, c4, c5 = st.columns([2, 2, 3, 2, 2])
run_key = hashlib.sha1(folder.encode()).hexdigest()[:10]  # choices that depend on the run start afresh with it
method = c1.selectbox("Map", methods, format_func=figures.method_title, key=f"ds_method_{run_key}")
correctness = c2.selectbox("Which", R.CORRECTNESS, key="ds_correct")
classes = c3.multiselect(
    "True class", range(len(class_names)), format_func=lambda i: class_names[i], key=f"ds_classes_{run_key}"
)
sorts = {
    "probability": "confidence",
    **{c: f"{c.split('_auc_')[0]} AUC, {figures.method_title(c.split('_auc_')[1])}" for c in R.metric_columns(df)},
}
sort_by = c4.selectbox("Sort by", list(sorts), format_func=sorts.__getitem__, key=f"ds_sort_{run_key}")
lowest = c5.toggle("Lowest first", key="ds_lowest", value=correctness == "wrong")
shown = R.select(df, correctness, classes, sort_by=sort_by, ascending=lowest)
st.caption(
    f"{len(shown)} images; the first {min(GALLERY, len(shown))} shown with their {figures.method_title(method)} "
    "map (each scaled min..max), true class -> prediction (confidence)."
)


def _label(i) -> str:
    return "?" if pd.isna(i) else class_names[int(i)]


columns = st.columns(6)
for k, (_, row) in enumerate(shown.head(GALLERY).iterrows()):
    pic = picture(row["path"], size)
    where = columns[k % 6]
    caption = f"{_label(row['label'])} -> {_label(row['prediction'])} ({row['probability']:.0%})"
    if pic is None:
        where.caption(f"{Path(row['path']).name}: cannot be read any more")
    else:
        where.image(figures.map_overlay(pic, R.map_of(row, method)), caption=caption, width="stretch")

# ---- mean maps
st.subheader("Mean map per class")
st.caption(
    "Each image's map scaled by its largest value, then averaged: where the model looks for a class "
    "in general, and whether that differs when it is right and when it is wrong."
)
by_class = R.mean_maps(df, method, by=("label",))
st.plotly_chart(
    figures.mean_map_grid({class_names[int(k[0])]: v for k, v in by_class.items()}),
    width="stretch",
    key="ds_mean_class",
)
by_outcome = R.mean_maps(df[df["correct"].notna()], method, by=("label", "correct"))
st.plotly_chart(
    figures.mean_map_grid(
        {f"{class_names[int(k[0])]}, {'right' if k[1] else 'wrong'}": v for k, v in by_outcome.items()}, ncols=4
    ),
    width="stretch",
    key="ds_mean_outcome",
)

# ---- two models
st.subheader("Two models side by side")
st.caption(
    "Another run on the same images (e.g. alexnet_gap_pacs_domain against alexnet_gap_pacs_class on PACS "
    "validation): each model's label, prediction and map for the images both explained."
)


def _same_images(run: Path) -> bool:
    other_manifest = read_manifest(run)
    return (other_manifest["source"], other_manifest["images"]) == (
        manifest["source"],
        manifest["images"],
    ) and other_manifest["model"]["name"] != manifest["model"]["name"]


ANOTHER = "Another folder..."
runs = [str(r) for r in held_out_runs() if str(r) != folder]
matching = [r for r in runs if _same_images(Path(r))]  # the counterpart, where it was computed here
listed = hashlib.sha1("\n".join([folder, *runs]).encode()).hexdigest()[:10]  # a new run offers itself afresh
choice = st.selectbox(
    "Compare with",
    ["(none)", *runs, ANOTHER],
    key=f"ds_other_run_{listed}",
    index=1 + runs.index(matching[0]) if matching else 0,
    format_func=lambda r: Path(r).name if r in runs else r,
    help="Runs computed on this page (kept in the cache folder), or any results folder.",
)
other = _opened_folder("ds_other", "Second results folder") if choice == ANOTHER else None
other = other or (choice if choice in runs else None)
if other is None:
    st.info("Choose a second run to compare: compute one for another model above, or open a results folder.")
    st.stop()
df_b, manifest_b = or_stop(dataset_results, other, results_stamp(other))
names_b = manifest_b["class_names"]
method_b = st.selectbox(
    "Map of the second run",
    R.methods_of(df_b),
    format_func=figures.method_title,
    key=f"ds_method_b_{hashlib.sha1(other.encode()).hexdigest()[:10]}",
)
both = R.side_by_side(df, df_b, method, method_b)
sa, sb = R.summary(df, class_names), R.summary(df_b, names_b)
a, b, c = st.columns(3)
a.metric(f"{manifest['model']['name']}", "-" if sa["accuracy"] is None else f"{sa['accuracy']:.1%}")
b.metric(f"{manifest_b['model']['name']}", "-" if sb["accuracy"] is None else f"{sb['accuracy']:.1%}")
c.metric("Images in both", len(both))
for _, row in both.head(GALLERY // 2).iterrows():
    pic = picture(row["path"], size)
    if pic is None:
        continue
    left, right = st.columns(2)
    for where, side, names, run in ((left, "a", class_names, manifest), (right, "b", names_b, manifest_b)):
        label = "?" if pd.isna(row[f"label_{side}"]) else names[int(row[f"label_{side}"])]
        seen = picture(row["path"], tuple(run["model"]["input_size"]))  # as this side's model saw it
        if seen is None:  # unreadable since the check above
            continue
        where.image(
            figures.map_overlay(seen, R.map_of_side(row, side)),
            width=220,
            caption=f"{run['model']['name']}: {label} -> {names[int(row[f'prediction_{side}'])]} "
            f"({row[f'probability_{side}']:.0%})",
        )

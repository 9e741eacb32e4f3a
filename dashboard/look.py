"""What the pages about what filters look for share: optimised images of channels under one
progress bar, the held-out crops that excite each channel most, and both as one picture grid."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from interp import figures, get_spec, methods
from interp.data import HeldOutBatch
from interp.errors import DataError

from .loaders import feature_vis, held_out, layer_examples
from .widgets import show_interp_errors

STEPS = (16, 32, 64, 128, 256, 512)  # optimisation steps offered; 64 is the cheap default
STARTS = (1, 2, 4, 8)  # starting images per channel offered; 1 (grey, as Lucid) is the default
HELD_OUT = (50, 100, 200, 500, 1000)  # held-out images offered for ranking; 200 is the default
SHOWN = 3  # top held-out crops shown beside each channel's optimised image

Tiles = list[list[tuple[np.ndarray, str]]]  # per channel: (picture, hover label), optimised image first


def side_options(name: str) -> tuple[list[int], int]:
    """The sides (px) offered for a model's optimised images, and the default (64, or its input's side)."""
    side_max = max(get_spec(name).input_hw)
    # Larger than the input is allowed: the optimisation stops at the layer, so a dense head's size does not bind.
    return sorted({s for s in (32, 64, 96, 128, 160, 224) if s <= max(side_max, 128)} | {side_max}), min(side_max, 64)


def optimised(
    jobs: Sequence[tuple[str, Iterable[int]]], layer: str, steps: int, side: int, seed: int = 0, starts: int = 1
) -> list[methods.introspect.FeatureVis] | None:
    """Optimised images of the given channels of ``layer``, per (model, channels) job, under one
    progress bar; every job with the same seed, steps and side, so that they can be compared.

    Returns:
        One FeatureVis per job, or None after the page was told what went wrong.
    """
    bar = st.progress(0.0, text="Optimising images...")
    found = []
    for i, (name, channels) in enumerate(jobs):
        who = f" {name}" if len(jobs) > 1 else ""

        def on_step(done: int, total: int, i: int = i, who: str = who) -> None:
            bar.progress((i + done / total) / len(jobs), text=f"Optimising{who}: step {done} of {total}")

        vis = show_interp_errors(
            feature_vis,
            name,
            layer,
            tuple(int(c) for c in channels),
            steps,
            side,
            seed=seed,
            starts=starts,
            progress=on_step,
        )
        if vis is None:
            break
        found.append(vis)
    bar.empty()
    return found if len(found) == len(jobs) else None


def top_examples(
    name: str, layer: str, n: int, images_of: str | None = None
) -> tuple[HeldOutBatch | None, methods.introspect.LayerExamples | None]:
    """n held-out images (of ``images_of``'s task, default the model's) and each channel's top and
    bottom of them in ``layer``; (None, None) after saying why where there are none here (ImageNet)."""
    try:
        batch = held_out(images_of or name, n)
    except DataError as exc:  # an ImageNet model: no held-out images here, the optimised images still show
        st.info(f"No dataset examples: {exc}")
        return None, None
    examples = show_interp_errors(layer_examples, name, layer, n, images_of=images_of)
    return (batch, examples) if examples is not None else (None, None)


def channel_tiles(
    vis: methods.introspect.FeatureVis,
    examples: methods.introspect.LayerExamples | None,
    batch: HeldOutBatch | None,
    shown: int = SHOWN,
    who: str = "",
) -> Tiles:
    """Per channel of ``vis``: its optimised image, then its top ``shown`` held-out crops (none
    without examples), each with a hover label that starts with ``who`` (e.g. the model)."""
    tiles = []
    for i, c in enumerate(vis.channels):
        row = [(vis.images[i], f"{who}channel {c}: optimised, objective {vis.objective[i, -1]:.3g}")]
        if examples is not None:
            assert batch is not None, "examples index the held-out batch they were ranked on"
            for r in range(shown):
                j = int(examples.top[c, r])
                row.append(
                    (
                        methods.introspect.crop(batch.pictures[j], examples.top_boxes[c, r]),
                        f"{who}channel {c}: held-out image {j} ({batch.class_names[batch.labels[j]]}), "
                        f"max {examples.top_values[c, r]:.3g}",
                    )
                )
        tiles.append(row)
    return tiles


def look_grid(tiles: Tiles, channels_across: bool, side: int = 64, **labels) -> go.Figure:
    """:func:`channel_tiles` as one picture grid, a column per channel (``channels_across``) or a
    row per channel; ``labels`` go to :func:`interp.figures.picture_grid_figure` (title, row_labels...)."""
    grid = [list(column) for column in zip(*tiles)] if channels_across else tiles
    flat = [tile for row in grid for tile in row]
    return figures.picture_grid_figure(
        [p for p, _ in flat], [text for _, text in flat], ncols=len(grid[0]), side=side, **labels
    )

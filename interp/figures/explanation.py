"""An Explanation for people: a one-line caption, its map over the image it explains as HTML (what
Jupyter shows for an Explanation) and as a Plotly figure (``Explanation.show()``).

Both draw the map the same way as the CAM page: the Jet scale from the map's lowest to its highest
raw value, with a colour bar in those units. A map with one value per input channel is drawn as
max |value| over the channels, its scale ending at the 99th percentile (a few outlying gradients
would otherwise leave the rest dark); values above it take the top colour, and the bar says so.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from .maps import heatmap_figure
from .scaling import apply_colormap, finite, overlay, shrink
from .style import ATTRIBUTION_SCALE, method_title, value_range

MAX_SHOWN = 8  # images of a batch drawn in the HTML; the rest are counted in its note
WIDTH = 224  # displayed width of each picture, in CSS pixels (small inputs are enlarged, pixel for pixel)
MAX_SIDE = 448  # a larger picture is shrunk before encoding, to keep notebooks small
# Pictures up to this side are PNG (lossless: they are enlarged pixel for pixel); larger ones JPEG,
# a fifth of the PNG's size for a photo under a map, which keeps a notebook of many maps small.
PNG_MAX_SIDE = 64
CLIP_PERCENTILE = 99.0
CHANNEL_UNIT = "max |value| over channels"  # what a channel map's picture shows


def caption(e: Any, index: int | None = None) -> str:
    """One line: the method, the class explained with its probability, and the layer read (if any).

    Args:
        e: an Explanation. index: the image of a batch (required for a batch).
    """
    target, probability = int(_item(e.target, index)), float(_item(e.probability, index))
    text = f"{method_title(e.method) if e.method else 'Attribution'} for class {target} (p = {probability:.3f})"
    if e.layer:
        text += f", layer {e.layer}"
    if e.neuron:
        text += f", neuron {e.neuron[1]} of {e.neuron[0]}"
    return text


def display_map(e: Any, index: int | None = None) -> tuple[np.ndarray, float, float, str]:
    """(map with one value per pixel, low and high ends of its colour scale, what the values are).

    The scale runs from the map's minimum to its maximum; for a map of the input's channels
    (reduced to max |value| over them) from 0 to the 99th percentile.
    """
    values = finite(_item(e.spatial(), index))
    if np.ndim(_item(e.map, index)) == 3:
        hi = float(np.percentile(values, CLIP_PERCENTILE))
        lo, hi = value_range(np.array([0.0, hi if hi > 0 else values.max()]))
        return values, lo, hi, CHANNEL_UNIT
    lo, hi = value_range(values)
    return values, lo, hi, "raw value"


def explanation_figure(e: Any, index: int | None = None) -> go.Figure:
    """The map over its image (alone where the image is unknown) with a colour bar in raw units,
    titled with :func:`caption`; for a batch, image ``index`` (default the first)."""
    if e.batched and index is None:
        index = 0
    values, lo, hi, unit = display_map(e, index)
    image = None if e.image is None else _item(e.image, index)
    return heatmap_figure(
        values, image=image, title=caption(e, index), colorscale=ATTRIBUTION_SCALE, colorbar_title=unit, zrange=(lo, hi)
    )


def explanation_html(e: Any) -> str:
    """HTML of an Explanation: for each image (the first MAX_SHOWN of a batch) the map over the
    image (the map alone where the image is unknown) as an embedded picture, a colour bar in raw
    units and the caption. The blocks are inline, so several explanations sit side by side."""
    items = range(min(len(e.target), MAX_SHOWN)) if e.batched else [None]
    blocks = [_block(e, i) for i in items]
    if e.batched and len(e.target) > MAX_SHOWN:
        blocks.append(
            f'<div style="font-size:12px">the first {MAX_SHOWN} of {len(e.target)} images; '
            "explanation.show(index=i) draws any of them</div>"
        )
    return "".join(blocks)


def _block(e: Any, index: int | None) -> str:
    values, lo, hi, unit = display_map(e, index)
    scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    if e.image is None:
        picture, note = apply_colormap(scaled, "jet"), "the map alone (its image is unknown)"
    else:
        picture, note = overlay(_item(e.image, index), scaled, alpha=0.5, cmap="jet"), ""
    text = html.escape(caption(e, index))
    bar = apply_colormap(np.tile(np.linspace(0.0, 1.0, 128), (2, 1)), "jet")
    top = f"&ge; {hi:.3g}" if unit == CHANNEL_UNIT else f"{hi:.3g}"  # the scale's top is clipped
    return (
        f'<figure style="display:inline-block;vertical-align:top;margin:4px 12px 8px 0;width:{WIDTH}px">'
        f'<img src="{_data_url(picture)}" alt="{text}" title="{text}" '
        f'style="width:{WIDTH}px;height:auto;image-rendering:pixelated;display:block"/>'
        f'<div style="display:flex;align-items:center;gap:4px;font-size:11px;margin-top:2px">'
        f'<span>{lo:.3g}</span><img src="{_data_url(bar)}" alt="colour scale" '
        f'style="flex:1;height:8px;min-width:0"/><span>{top}</span></div>'
        f'<div style="font-size:11px;text-align:center;color:#555">{html.escape(unit)}</div>'
        f'<figcaption style="font-size:12px;margin-top:2px">{text}'
        + (f'<br/><span style="color:#555">{note}</span>' if note else "")
        + "</figcaption></figure>"
    )


def _data_url(rgb: np.ndarray) -> str:
    """An RGB uint8 array as a data: URL, shrunk to at most MAX_SIDE pixels a side: a PNG up to
    PNG_MAX_SIDE pixels a side (the colour bar is one: it is two pixels high), a JPEG above."""
    if max(rgb.shape[:2]) > MAX_SIDE:
        rgb = np.stack([shrink(rgb[..., c].astype(np.float32), MAX_SIDE) for c in range(3)], axis=-1)
        rgb = np.round(np.clip(rgb, 0, 255)).astype(np.uint8)
    png = min(rgb.shape[:2]) <= 2 or max(rgb.shape[:2]) <= PNG_MAX_SIDE
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(
        buffer, format="PNG" if png else "JPEG", **({"optimize": True} if png else {"quality": 85})
    )
    kind = "png" if png else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _item(value: Any, index: int | None) -> Any:
    return value if index is None else value[index]

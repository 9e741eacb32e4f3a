"""An Explanation shows itself in Jupyter (``_repr_html_``) and as a Plotly figure (``show()``): the
map over the image it explains, or alone with a colour bar, under a caption that agrees with it."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

import interp
from interp.data import resize_center_crop
from interp.figures.explanation import caption
from tests.apptest import REPO

PICTURE = re.compile(r'<img src="data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)"')
CAPTION = re.compile(r"<figcaption[^>]*>(.*?)(?:<br/>.*?)?</figcaption>")


def _photo(h: int = 24, w: int = 40) -> Image.Image:
    """A picture of another shape than the model's 16 x 16 input: explain crops it as preprocess does."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _input(image: Image.Image) -> torch.Tensor:
    a = np.asarray(resize_center_crop(image, 16), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def _pictures(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in PICTURE.findall(html)]


def test_the_html_shows_the_map_over_its_image_under_a_caption_of_its_fields(tiny_gap_model):
    photo = _photo()
    e = interp.explain(tiny_gap_model, _input(photo), "grad_cam", target=2, image=photo)
    assert e.image.shape == (16, 16, 3) and e.image.dtype == np.uint8
    np.testing.assert_array_equal(e.image, np.asarray(resize_center_crop(photo, 16)))  # what the model saw
    html = e._repr_html_()
    picture, bar = _pictures(html)[:2]
    assert picture.shape == (16, 16, 3) and bar.shape[1] > bar.shape[0]  # the map over the image, a colour bar
    assert not np.array_equal(picture, e.image)  # coloured by the map
    (text,) = CAPTION.findall(html)
    assert text == caption(e) == f"Grad-CAM for class 2 (p = {e.probability:.3f}), layer {e.layer}"
    assert e.layer == "relu2" and "unknown" not in html


def test_without_its_image_the_map_is_drawn_alone_with_a_colour_bar_in_raw_units(tiny_gap_model):
    e = interp.explain(tiny_gap_model, _input(_photo()), "saliency")
    assert e.image is None
    html = e._repr_html_()
    picture, _ = _pictures(html)[:2]
    assert picture.shape == (16, 16, 3) and "its image is unknown" in html
    (text,) = CAPTION.findall(html)
    assert text == f"Saliency for class {e.target} (p = {e.probability:.3f})" and "layer" not in text
    # The bar's ends are the map's raw values: 0 to its 99th percentile (a channel map, clipped above).
    top = float(np.percentile(e.spatial(), 99))
    assert f"&ge; {top:.3g}" in html and ">0<" in html


def test_a_batch_shows_each_image_with_its_own_caption(tiny_gap_model):
    photos = [_photo(), _photo(30, 20), _photo(16, 16)]
    x = torch.cat([_input(p) for p in photos])
    e = interp.explain(tiny_gap_model, x, "grad_cam", target=[0, 1, 2], image=photos)
    assert e.image.shape == (3, 16, 16, 3)
    texts = CAPTION.findall(e._repr_html_())
    assert texts == [f"Grad-CAM for class {t} (p = {p:.3f}), layer relu2" for t, p in zip(e.target, e.probability)]
    with pytest.raises(interp.ImageError, match="2 image"):
        e.with_image(photos[:2])


def test_show_returns_the_same_as_a_plotly_figure(tiny_gap_model):
    photo = _photo()
    e = interp.explain(tiny_gap_model, _input(photo), "grad_cam", image=photo)
    fig = e.show()
    assert isinstance(fig, go.Figure) and fig.layout.title.text == caption(e)
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "heatmap"]
    heat = fig.data[1]
    assert (heat.zmin, heat.zmax) == pytest.approx((float(e.map.min()), float(e.map.max())))
    alone = interp.explain(tiny_gap_model, _input(photo), "grad_cam").show()
    assert [t.type for t in alone.data] == ["heatmap"] and alone.data[0].colorbar.title.text == "raw value"


def test_a_map_at_its_layers_resolution_lies_over_the_whole_input(tiny_gap_model):
    photo = _photo()
    e = interp.explain(tiny_gap_model, _input(photo), "grad_cam", resolution="layer", image=photo)
    assert e.image.shape == (16, 16, 3)
    assert _pictures(e._repr_html_())[0].shape == (16, 16, 3)


def test_a_large_picture_is_a_jpeg_of_the_images_size(tiny_gap_model):
    """Up to 64 pixels a side a picture is a PNG (enlarged pixel for pixel); above, a JPEG (small notebooks)."""
    photo = _photo(120, 100)
    x = torch.from_numpy(np.asarray(resize_center_crop(photo, 96), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    html = interp.explain(tiny_gap_model, x, "grad_cam", image=photo)._repr_html_()
    assert html.count("data:image/jpeg;base64,") == 1 and html.count("data:image/png;base64,") == 1  # the bar
    assert _pictures(html)[0].shape == (96, 96, 3)


def test_showing_an_explanation_imports_no_streamlit():
    code = (
        "import sys, torch, interp\n"
        "m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),\n"
        "                        torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()\n"
        "e = interp.explain(m, torch.rand(1, 3, 8, 8), 'grad_cam', image=torch.rand(8, 8, 3))\n"
        "e._repr_html_(); e.show()\n"
        "assert 'streamlit' not in sys.modules, 'streamlit imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

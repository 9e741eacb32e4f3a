"""Display scaling, colour maps, overlays and Plotly figures (interp/figures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp
from interp import figures
from interp.methods import filters, reduce_channels, reduce_input_channels, rgb_tiles
from tests.methods.helpers import registry_model

MODES = ("minmax", "abs", "symmetric", "percentile")


def test_normalize_modes():
    a = np.array([[-2.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(figures.normalize(a, "minmax"), [[0, 0.5], [0.75, 1]])
    np.testing.assert_allclose(figures.normalize(a, "abs"), [[1, 0], [0.5, 1]])
    np.testing.assert_allclose(figures.normalize(a, "symmetric"), [[0, 0.5], [0.75, 1]])
    b = np.arange(1000.0)
    b[-1] = 1e6  # an outlier does not squash everything else
    assert figures.normalize(b, "percentile")[500] > 0.4
    with pytest.raises(ValueError):
        figures.normalize(a, "log")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [0.0, 3.5, -1e-30, 1e30])
def test_normalize_constant_maps_has_no_nan(mode, value):
    out = figures.normalize(np.full((5, 7), value), mode)
    assert out.dtype == np.float32 and out.shape == (5, 7)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert len(np.unique(out)) == 1


@pytest.mark.parametrize("mode", MODES)
def test_normalize_nan_inf_empty_and_per_item(mode):
    a = np.array([[np.nan, np.inf], [-np.inf, 1.0]])
    assert np.isfinite(figures.normalize(a, mode)).all()
    assert figures.normalize(np.zeros((0, 3)), mode).shape == (0, 3)
    batch = np.stack([np.full((2, 2), 5.0), np.array([[0.0, 1.0], [2.0, 4.0]])])
    out = figures.normalize(batch, mode, per_item=True)
    assert np.isfinite(out).all() and out.shape == (2, 2, 2)
    assert out[1].max() == 1.0
    assert np.isfinite(figures.normalize(torch.zeros(3, 4), mode)).all()


def test_colormap_and_overlay():
    heat = np.linspace(0, 1, 12).reshape(3, 4)
    rgb = figures.apply_colormap(heat, "jet")
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[-1, -1, 0] > rgb[-1, -1, 2]  # jet: blue low, red high (RGB order)
    img = np.full((30, 40, 3), 100, np.uint8)
    out = figures.overlay(img, heat, alpha=0.5)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(figures.overlay(img, heat, alpha=0.0), img)
    assert figures.overlay(img, np.full((3, 4), np.nan)).shape == (30, 40, 3)
    with pytest.raises(ValueError):
        figures.apply_colormap(heat, "rainbowish")


def test_gradient_image_and_denormalize():
    g = np.zeros((3, 4, 4))
    g[0, 0, 0] = 2.0
    g[1, 1, 1] = -2.0
    img = figures.gradient_image(g)
    assert img.shape == (4, 4, 3) and img[0, 0, 0] == 1.0 and img[1, 1, 1] == 0.0 and img[2, 2, 2] == 0.5
    assert np.isfinite(figures.gradient_image(np.zeros((3, 4, 4)))).all()
    spec = interp.get_spec("nin_cifar10")
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    from PIL import Image

    x = interp.preprocess(Image.fromarray(pixels), spec)
    np.testing.assert_array_equal(figures.denormalize(x, spec.mean, spec.std), pixels)


def test_reduce_channels():
    a = np.array([[[1.0, -3.0]], [[-2.0, 1.0]]])  # (C=2, H=1, W=2)
    np.testing.assert_array_equal(reduce_channels(a, "absmax"), [[2.0, 3.0]])
    np.testing.assert_array_equal(reduce_channels(a, "sum"), [[-1.0, -2.0]])
    assert reduce_channels(np.zeros((4, 3, 5, 5))).shape == (4, 5, 5)


def test_heatmap_figure_shows_raw_values_with_a_colour_bar():
    z = np.arange(12.0).reshape(3, 4) - 3
    fig = figures.heatmap_figure(z, title="t")
    hm = fig.data[-1]
    assert hm.type == "heatmap" and hm.zmin == -3 and hm.zmax == 8 and hm.colorbar.title.text == "value"
    fig = figures.heatmap_figure(z, image=np.zeros((30, 40, 3), np.uint8), symmetric=True)
    assert [d.type for d in fig.data] == ["image", "heatmap"]
    assert fig.data[1].z.shape == (30, 40) and fig.data[1].zmin == -8 and fig.data[1].zmax == 8
    const = figures.heatmap_figure(np.zeros((4, 4)))
    assert const.data[0].zmin < const.data[0].zmax and np.isfinite(const.data[0].z).all()


def test_filter_grid_figures():
    m = registry_model("alexnet_gap_pacs_class")
    w = filters(m, "features.conv1")
    fig = figures.filter_grid_figure(rgb_tiles(w), ncols=12)
    img = fig.data[0]
    assert img.type == "image" and img.z.shape == (8 * 12 - 1, 12 * 12 - 1, 3)
    assert img.customdata[0, 0] == 0 and img.customdata[11, 0] == -1 and img.customdata[0, 12] == 1
    deep = reduce_input_channels(filters(m, "features.conv2"), "mean")
    fig = figures.filter_grid_figure(deep, labels=np.arange(256)[::-1])
    hm = fig.data[0]
    assert hm.type == "heatmap" and hm.zmin == -hm.zmax and hm.customdata[0, 0] == 255
    zero = figures.filter_grid_figure(np.zeros((4, 3, 3)))
    assert np.isfinite(zero.data[0].z).all() and zero.data[0].zmax > 0
    assert np.isfinite(figures.filter_grid_figure(np.zeros((4, 3, 3, 3))).data[0].z).all()


def test_picture_grid_labels_its_rows_and_columns_at_their_tiles():
    g = np.random.default_rng(0)
    pictures = [g.integers(0, 256, (h, 7, 3), dtype=np.uint8) for h in (5, 9, 3, 12, 7, 6)]
    labels = [f"tile {i}" for i in range(6)]
    fig = figures.picture_grid_figure(
        pictures, labels, ncols=3, side=20, title="t", row_labels=["first", "second"], col_labels=["a", "b", "c"]
    )
    hover = fig.data[0].customdata
    assert list(fig.layout.yaxis.ticktext) == ["first", "second"] and list(fig.layout.xaxis.ticktext) == ["a", "b", "c"]
    for r, y in enumerate(fig.layout.yaxis.tickvals):  # each row label sits on its row's tiles
        for c, x in enumerate(fig.layout.xaxis.tickvals):
            assert hover[round(y), round(x)] == labels[3 * r + c]
    white = figures.picture_grid_figure([np.full((4, 4, 3), 255, np.uint8)] * 2, ["a", "b"], ncols=2, side=20)
    z = white.data[0].z
    assert (z[:, :20] == 255).all() and (z[:, 20:22] == figures.look.BACKGROUND).all()  # a white tile shows
    assert figures.look.BACKGROUND < 255
    plain = figures.picture_grid_figure(pictures, labels, ncols=3)
    assert plain.layout.yaxis.showticklabels is False and plain.layout.xaxis.tickvals is None


def test_kernel_figure_centres_its_scale_on_zero_and_can_share_it():
    k = np.array([[0.5, -2.0], [1.0, 0.0]])
    trace = figures.kernel_figure(k).data[0]
    assert (trace.zmin, trace.zmax) == (-2.0, 2.0)
    shared = figures.kernel_figure(k, limit=3.0).data[0]
    assert (shared.zmin, shared.zmax) == (-3.0, 3.0)
    flat = figures.kernel_figure(np.zeros((3, 3))).data[0]
    assert flat.zmin < 0 < flat.zmax  # a zero kernel still draws with a colour bar


def test_heatmap_figure_puts_maps_on_a_given_scale():
    fig = figures.heatmap_figure(np.array([[0.0, 1.0], [2.0, 3.0]]), zrange=(-1.0, 5.0))
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    assert (heat.zmin, heat.zmax) == (-1.0, 5.0)
    assert figures.method_title("grad_cam") == "Grad-CAM" and figures.method_title("new_method") == "new_method"


def test_the_old_module_names_still_answer_with_a_warning():
    with pytest.warns(DeprecationWarning, match="interp.figures"):
        assert interp.viz.normalize is figures.normalize
    with pytest.warns(DeprecationWarning):
        assert interp.charts_trust.randomization_strip is figures.randomization_strip
    with pytest.raises(AttributeError):
        _ = interp.no_such_module


def test_the_report_cards_figures_keep_one_method_order_and_say_which_way_is_better():
    import pandas as pd

    rows = [
        ("saliency", "deletion", "faithfulness", False, 0.4, 2),
        ("grad_cam", "deletion", "faithfulness", False, 0.2, 1),
        ("saliency", "insertion", "faithfulness", True, 0.7, 1),
        ("grad_cam", "insertion", "faithfulness", True, 0.6, 1),
        ("saliency", "sparseness", "complexity", True, 0.5, 1),
        ("grad_cam", "sparseness", "complexity", True, 0.3, 2),
    ]
    summary = pd.DataFrame(rows, columns=["method", "metric", "family", "higher_is_better", "mean", "rank"])
    summary["n"], summary["low"], summary["high"] = 4, summary["mean"] - 0.1, summary["mean"] + 0.1
    table = figures.rank_table_figure(summary)
    assert list(table.data[0].x) == ["deletion", "insertion", "sparseness"]
    assert list(table.layout.xaxis.ticktext) == ["Deletion AUC ↓", "Insertion AUC ↑", "Sparseness ↑"]
    assert list(table.data[0].y) == ["Grad-CAM", "Saliency"]  # by mean rank, best first
    np.testing.assert_array_equal(table.data[0].z, [[1, 1, 2], [2, 1, 1]])
    panels = figures.family_figure(summary, "faithfulness")
    assert [a.text for a in panels.layout.annotations] == [
        "Deletion AUC<br>(lower is better)",
        "Insertion AUC<br>(higher is better)",
    ]
    assert [list(bar.y) for bar in panels.data] == [["Grad-CAM", "Saliency"]] * 2  # one order in every panel
    np.testing.assert_allclose(panels.data[1].x, [0.6, 0.7])

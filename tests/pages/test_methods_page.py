"""The All methods page and the method records behind its picker."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp.methods import FAMILIES, METHODS, REGISTRY, by_family
from tests.apptest import no_errors, open_page, plotly_array

MODEL = "table2_cnn_cifar10"  # 32 px: every method is quick


def test_records_describe_every_method_once():
    assert set(REGISTRY) == set(METHODS)
    assert sorted(n for names in by_family().values() for n in names) == sorted(METHODS)
    assert all(info.family in FAMILIES and info.shows and info.cost for info in REGISTRY.values())


def _maps(at):
    """(zmin, zmax, z) of the map drawn in each chart."""
    heats = [json.loads(chart.proto.spec)["data"][-1] for chart in at.get("plotly_chart")]
    return [(h["zmin"], h["zmax"], plotly_array(h["z"])) for h in heats]


def test_default_methods_side_by_side_on_one_scale():
    at = open_page("methods.py", MODEL)
    chosen = [n for pills in at.get("pills") for n in (pills.value or [])]
    assert chosen and set(chosen) <= set(METHODS)
    figures = _maps(at)
    assert len(figures) == len(chosen)
    for zmin, zmax, z in figures:
        assert (zmin, zmax) == (0, 1)
        assert 0 <= np.nanmin(z) and np.nanmax(z) <= 1


def test_signed_convention_and_another_family():
    at = open_page("methods.py", MODEL)
    at.radio(key="all_convention").set_value("signed").run()
    no_errors(at)
    for zmin, zmax, z in _maps(at):
        assert (zmin, zmax) == (-1, 1)
        assert np.nanmax(np.abs(z)) == pytest.approx(1, abs=1e-3)  # each map scaled to its max |value|
    gradients = [p for p in at.get("pills") if p.label == "Gradients"][0]
    gradients.set_value(["saliency", "guided_backprop"]).run()
    no_errors(at)
    assert {"**Saliency**", "**Guided backprop**"} <= {m.value for m in at.markdown}


def test_no_method_chosen_says_what_to_do():
    at = open_page("methods.py", MODEL)
    for pills in at.get("pills"):
        pills.set_value([])
    at.run()
    no_errors(at)
    assert any("at least one method" in i.value for i in at.info)
    assert not at.get("plotly_chart")

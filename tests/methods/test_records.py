"""The method records: one per method, the facts every caller routes by, and a user's method that
runs wherever the built-in ones do."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

import interp
from interp import MethodError
from interp.data import zebra_path
from interp.figures import method_title
from interp.methods import FAMILIES, METHODS, REGISTRY, explain, get_method, method_names, register_method
from interp.methods.explain import CAM_FAMILY, LAYER_METHODS, LAYER_RESOLUTION_METHODS, SPATIAL_METHODS, TUNNEL_METHODS
from interp.methods.neuron import NEURON_METHODS
from interp.methods.records import unregister_method

MY_METHODS = "tests/models_files/my_methods.py"

# The sets as they were written out by hand before the records existed: the records must give the same.
CAM_FAMILY_BEFORE = (
    "grad_cam_pp",
    "xgrad_cam",
    "hires_cam",
    "layer_cam",
    "score_cam",
    "ablation_cam",
    "eigen_cam",
    "eigen_grad_cam",
)
LAYER_BEFORE = ("cam", "grad_cam", "guided_grad_cam", *CAM_FAMILY_BEFORE)
SPATIAL_BEFORE = ("cam", "grad_cam", *CAM_FAMILY_BEFORE, "occlusion", "lime", "kernel_shap")
TUNNEL_BEFORE = (
    "grad_cam",
    "guided_backprop",
    "guided_grad_cam",
    "saliency",
    "integrated_gradients",
    "input_x_gradient",
    "deeplift",
    "deconvolution",
)
# Methods added since, by the sets they joined: one value per pixel, and DFF reads a layer (listed
# with the CAMs, not in CAM_FAMILY: it picks an NMF part rather than weighting the layer's maps).
ADDED_SPATIAL = ("fullgrad", "dff", "rise")
ADDED_LAYER = ("dff",)
# RISE has no peer library: its test holds it to the paper's algorithm, written out in the test.
WITHOUT_PEERS = ("rise",)
NEURON_BEFORE = (
    "saliency",
    "input_x_gradient",
    "guided_backprop",
    "deconvolution",
    "smoothgrad",
    "vargrad",
    "integrated_gradients",
    "deeplift",
    "gradient_shap",
)


def test_every_record_is_complete_and_resolves_to_its_function():
    assert len(REGISTRY) == 30
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.family in FAMILIES and spec.title and spec.shows and spec.cost
        assert spec.reference and (spec.peers or name in WITHOUT_PEERS) and spec.relative_cost >= 1, name
        params = list(inspect.signature(spec.function()).parameters)
        assert params[:3] == ["model", "xb", "targets"], name
        assert set(spec.options()) == set(params[3:]) - {"layer"}, name


def test_records_give_the_sets_that_were_written_by_hand():
    assert set(CAM_FAMILY) == set(CAM_FAMILY_BEFORE)
    assert set(LAYER_METHODS) == set(LAYER_BEFORE) | set(ADDED_LAYER)
    assert set(LAYER_RESOLUTION_METHODS) == (set(LAYER_BEFORE) - {"guided_grad_cam"}) | set(ADDED_LAYER)
    assert set(SPATIAL_METHODS) == set(SPATIAL_BEFORE) | set(ADDED_SPATIAL)
    assert set(TUNNEL_METHODS) == set(TUNNEL_BEFORE)
    assert set(NEURON_METHODS) == set(NEURON_BEFORE)
    assert method_names(needs_stats=True) == (
        "lrp",
        "lrp_epsilon_gamma_box",
        "lrp_alpha2_beta1",
        "lrp_epsilon",
        "lime",
        "kernel_shap",
    )


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(MethodError, match="grad_cam"):
        get_method("nope")


def _energy(model, inputs, target):
    return (inputs**2).sum(dim=1)


@pytest.fixture
def energy():
    yield register_method("energy_here", _energy, replace=True)
    unregister_method("energy_here")


def test_a_registered_method_runs_through_explain(tiny_gap_model, energy):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    e = explain(tiny_gap_model, x, "energy_here")
    np.testing.assert_allclose(e.map, (x**2).sum(1).numpy(), rtol=1e-6)
    logits = tiny_gap_model(x)
    assert e.target.tolist() == logits.argmax(1).tolist()
    np.testing.assert_allclose(e.probability, torch.softmax(logits, 1).max(1).values.detach().numpy(), rtol=1e-5)
    assert "energy_here" in METHODS and e.spatial() is e.map
    assert energy.family == "Custom" and "energy_here" in interp.methods.by_family()["Custom"]
    assert method_title("energy_here") == "energy_here"


def test_register_method_refuses_what_it_cannot_use(tiny_gap_model, energy):
    with pytest.raises(MethodError, match="built-in"):
        register_method("grad_cam", _energy)
    with pytest.raises(MethodError, match="registered already"):
        register_method("energy_here", _energy)
    with pytest.raises(MethodError, match="needs a function"):
        register_method("other", 3)
    with pytest.raises(MethodError, match="does not know colour"):
        register_method("other", _energy, colour="red")
    register_method("flat_here", lambda model, inputs, target: inputs.flatten(1), replace=True)
    try:
        with pytest.raises(MethodError, match=r"\(N, H, W\)"):
            explain(tiny_gap_model, torch.randn(1, 3, 8, 8), "flat_here")
    finally:
        unregister_method("flat_here")


@pytest.fixture
def methods_file():
    """The models file's method, gone again afterwards: other tests walk every registered method."""
    from interp.models import user

    yield MY_METHODS
    unregister_method("input_energy")
    user._LOADED.pop(Path(MY_METHODS).resolve(), None)


def test_a_method_from_a_models_file_on_the_command_line_and_in_explain_dataset(methods_file, tmp_path, capsys):
    from interp.__main__ import main
    from interp.whole_dataset import read_results, resize_maps

    image = str(zebra_path())
    assert (
        main(
            [
                "explain",
                "--models",
                methods_file,
                "--model",
                "table2_cnn_cifar10",
                "--method",
                "input_energy",
                "--image",
                image,
                "--out",
                str(tmp_path / "map.npy"),
            ]
        )
        == 0
    )
    spec = interp.get_spec("table2_cnn_cifar10")
    x = interp.preprocess(interp.load_image(image), spec)
    np.testing.assert_allclose(np.load(tmp_path / "map.npy"), (x**2).sum(-3).reshape(x.shape[-2:]).numpy(), rtol=1e-6)
    assert "input_energy for class" in capsys.readouterr().out
    assert get_method("input_energy").title == "Input energy" and not get_method("input_energy").signed

    out = tmp_path / "run"
    assert (
        main(
            [
                "explain-dataset",
                "table2_cnn_cifar10",
                "--models",
                methods_file,
                "--methods",
                "input_energy",
                "--split",
                "sample",
                "--limit",
                "2",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    row = read_results(out).slice(0, 1).to_pylist()[0]
    stored = np.asarray(row["map_input_energy"], dtype=np.float32).reshape(row["map_height"], row["map_width"])
    x0 = interp.preprocess(interp.load_image(row["path"]), spec)
    expected = resize_maps((x0**2).sum(-3).reshape(1, *x0.shape[-2:]).numpy(), stored.shape)[0]
    np.testing.assert_allclose(stored, expected, rtol=2e-3, atol=2e-3)  # stored in float16


def test_the_methods_guide_table_is_the_registry():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()
    rows = [
        line.split(" | ")
        for line in guide.splitlines()
        if line.startswith("| `") and line.split(" | ")[0].strip("| `") in REGISTRY
    ]
    table = {r[0].strip("| `"): [c.strip(" |") for c in r[1:]] for r in rows}
    assert list(table) == list(REGISTRY)
    for name, (family, shows, cost, peers) in table.items():
        spec = REGISTRY[name]
        assert (family, shows, cost, peers) == (spec.family, spec.shows, spec.cost, ", ".join(spec.peers)), name

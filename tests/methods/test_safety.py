"""The shared model stays untouched: no hooks left, no state changed, thread-safe, finite on degenerate input."""

from __future__ import annotations

import copy
import random
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import interp
from interp import figures
from interp.methods import METHODS, CamNotApplicableError, conv_layers, default_layer, feature_maps, filter_activations
from interp.methods.attribution import cam_head
from interp.methods.introspect import dataset_examples, feature_visualization, receptive_field
from tests.methods.helpers import FAST, assert_unchanged, hooks_left, image_batch, registry_model, snapshot

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _explainer(method: str):
    return lambda model, x: interp.explain(model, x, method, **FAST.get(method, {}))


def _last(model) -> str:
    """The last module defined (the head): a call that stops there still runs the whole model."""
    return [n for n, _ in model.named_modules()][-1]


CALLS = {
    **{m: _explainer(m) for m in METHODS},
    "feature_maps": lambda model, x: feature_maps(model, x, ["conv1", "relu2"]),
    "filter_activations": lambda model, x: filter_activations(model, x, "conv2", [0, 3]),
    "default_layer": default_layer,
    "cam_head": cam_head,
    "feature_visualization": lambda model, x: feature_visualization(model, None, [0, 2], steps=2, size=16),
    "dataset_examples": lambda model, x: dataset_examples(model, x, [conv_layers(model)[0], _last(model)], 1),
    "receptive_field": lambda model, x: receptive_field(model, _last(model), x.shape[-1]),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_no_hooks_remain_after_success_or_an_exception_inside_forward(name, tiny_bomb_model):
    m, call = tiny_bomb_model, CALLS[name]
    x = image_batch(1, 16)
    cold = copy.deepcopy(m)  # never called: the first call on a model may trace it once
    call(m, x)
    assert hooks_left(m) == []
    cold_forwards = m.bomb.calls
    m.bomb.calls = 0
    call(m, x)
    warm_forwards = m.bomb.calls
    assert cold_forwards >= warm_forwards >= 1
    # Fail in each forward pass the method runs: before, during and after its hooks are on,
    # on a model seen before and on one never called (a fresh copy each time).
    for fresh, forwards in ((False, warm_forwards), (True, cold_forwards)):
        for fuse in range(1, min(forwards, 6) + 1):
            model = copy.deepcopy(cold) if fresh else m
            model.bomb.calls, model.bomb.fuse = 0, fuse
            with pytest.raises(RuntimeError, match="bomb"):
                call(model, x)
            assert hooks_left(model) == [], (name, fresh, fuse)
    m.bomb.fuse = 0
    call(m, x)  # and the model still works
    assert hooks_left(m) == []


def test_no_hooks_remain_after_interp_errors(tiny_gap_model):
    x = image_batch(1, 16)
    for bad in (
        lambda: interp.explain(tiny_gap_model, x, "grad_cam", layer="fc"),
        lambda: interp.explain(tiny_gap_model, x, "grad_cam", target=9),
        lambda: feature_maps(tiny_gap_model, x, ["conv1", "nope"]),
    ):
        with pytest.raises(interp.InterpError):
            bad()
        assert hooks_left(tiny_gap_model) == []


@pytest.mark.parametrize("name,size", [("tiny", 16), ("resnet18_imagenet", 64)])
def test_model_is_unchanged_by_every_method(name, size, tiny_gap_model):
    m = tiny_gap_model if name == "tiny" else registry_model(name)
    x = image_batch(1, size)
    calls = dict(CALLS)
    if name != "tiny":
        calls["feature_maps"] = lambda model, x: feature_maps(model, x, ["conv1", "layer1.0.relu", "layer4"])
        calls["filter_activations"] = lambda model, x: filter_activations(model, x, "conv1", [14, 26])
    before = snapshot(m)
    for label, call in calls.items():
        call(m, x)
        assert_unchanged(before, m)
        assert hooks_left(m) == [], label


def test_training_mode_model_is_explained_in_eval_mode_and_left_training():
    m = registry_model("resnet18_imagenet")
    ref = registry_model("resnet18_imagenet")  # the same weights, eval mode
    m.train()
    x = image_batch(2, 64)  # layer4's maps are 2x2: at 32 px they would be 1x1, which CAM refuses
    before = snapshot(m)
    for method in ("grad_cam", "guided_backprop", "cam"):
        got = interp.explain(m, x, method, target=[1, 2]).map
        np.testing.assert_allclose(got, interp.explain(ref, x, method, target=[1, 2]).map, rtol=1e-5, atol=1e-7)
    feature_maps(m, x, ["layer1"])
    assert_unchanged(before, m)  # batch-norm statistics and training flags included
    assert all(mod.training for mod in m.modules())


def test_frozen_parameters_stay_frozen_and_gradients_still_flow():
    m = registry_model("resnet18_transfer_cifar10")
    x = image_batch(1, 32)
    before = snapshot(m)
    assert not m.conv1.weight.requires_grad
    sal = interp.explain(m, x, "saliency").map
    assert np.abs(sal).max() > 0
    interp.explain(m, x, "grad_cam", layer="layer2")
    assert_unchanged(before, m)


def test_threads_give_exactly_the_serial_results(tiny_gap_model):
    m = tiny_gap_model
    xs = [image_batch(1, 16, seed=s) for s in range(3)]
    tasks = [(method, i, t) for method in METHODS for i, t in ((0, None), (1, 2), (2, 0))]
    run = {
        **{
            (m_, i, t): (lambda m_=m_, i=i, t=t: interp.explain(m, xs[i], m_, target=t, **FAST.get(m_, {})).map)
            for m_, i, t in tasks
        },
        ("feature_maps", 0, None): lambda: feature_maps(m, xs[0], ["conv2"])["conv2"],
        ("filter_activations", 1, None): lambda: filter_activations(m, xs[1], "conv1", [0, 2])[1],
    }
    serial = {k: f() for k, f in run.items()}
    with torch.no_grad():
        plain = [m(x) for x in xs]
    failures: list[str] = []

    def worker(seed: int) -> None:
        keys = list(run)
        random.Random(seed).shuffle(keys)
        for k in keys:
            if not np.array_equal(run[k](), serial[k]):
                failures.append(f"{k} differs")

    def predictor() -> None:  # plain predictions, no lock, while other threads hook the model
        for _ in range(20):
            with torch.no_grad():
                for x, p in zip(xs, plain):
                    if not torch.equal(m(x), p):
                        failures.append("plain prediction differs")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)] + [threading.Thread(target=predictor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert hooks_left(m) == []


def _all_methods(model, x, skip_cam=False, skip=()):
    out = {}
    for method in METHODS:
        if (method == "cam" and skip_cam) or method in skip:
            continue
        out[method] = interp.explain(model, x, method, **FAST.get(method, {}))
    return out


def test_black_image_gives_finite_maps():
    spec = interp.get_spec("nin_cifar10")
    x = interp.preprocess(Image.new("RGB", (40, 30)), spec)
    for method, e in _all_methods(registry_model("nin_cifar10"), x).items():
        assert np.isfinite(e.map).all(), method
        assert np.isfinite(e.probability) and 0 <= e.probability <= 1
        for mode in ("minmax", "abs", "symmetric", "percentile"):
            assert np.isfinite(figures.normalize(e.spatial(), mode)).all()


def test_zero_gradients_give_zero_finite_maps(zero_gap_model, blind_model):
    x = image_batch(2, 16)
    for method, e in _all_methods(zero_gap_model, x).items():
        if method == "rise":  # the mean of the masks weighted by a constant probability: flat, not zero
            assert np.isfinite(e.map).all() and e.map.max() > 0, method
            continue
        assert np.array_equal(e.map, np.zeros_like(e.map)), method
        for mode in ("minmax", "abs", "symmetric", "percentile"):
            n = figures.normalize(e.spatial(), mode, per_item=True)
            assert np.isfinite(n).all() and n.shape == e.spatial().shape
    # output ignores the input entirely: no autograd error, just zeros (but from the methods that
    # do not read the output's change: Eigen-CAM; Score-CAM, whose equal scores weigh every channel
    # alike; DFF, whose parts are the layer's and whose tie between concepts picks the first; RISE,
    # which averages the masks weighted by the one probability)
    lrp = interp.methods.method_names(family="Relevance propagation")
    for method, e in _all_methods(blind_model, x, skip_cam=True, skip=lrp).items():
        if method in ("eigen_cam", "score_cam", "dff", "rise"):
            assert np.isfinite(e.map).all() and e.map.max() > 0, method
            continue
        assert np.array_equal(e.map, np.zeros_like(e.map)), method
        np.testing.assert_array_equal(e.target, [2, 2])
    with pytest.raises(CamNotApplicableError):
        interp.explain(blind_model, x, "cam")
    for method in lrp:  # its logits are a parameter of the model itself, which no LRP rule covers
        with pytest.raises(interp.MethodError, match=r"the model's own parameters \(_Blind\)"):
            interp.explain(blind_model, x, method)


def test_methods_wait_for_the_models_lock(tiny_gap_model):
    from interp.methods import model_lock

    x = image_batch(1, 16)
    expected = interp.explain(tiny_gap_model, x, "grad_cam").map
    result = {}
    lock = model_lock(tiny_gap_model)
    assert lock is model_lock(tiny_gap_model)
    with lock:
        t = threading.Thread(target=lambda: result.setdefault("map", interp.explain(tiny_gap_model, x, "grad_cam").map))
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive() and "map" not in result  # blocked while another holder has the model
    t.join()
    np.testing.assert_array_equal(result["map"], expected)


def test_hooks_ignore_forwards_from_other_threads(tiny_gap_model):
    from interp.methods.core import forward_hooks

    seen = []
    with forward_hooks([(tiny_gap_model.conv1, lambda mod, inp, out: seen.append(threading.get_ident()))]):
        t = threading.Thread(target=lambda: tiny_gap_model(image_batch(1, 16)))
        t.start()
        t.join()
        assert seen == []
        tiny_gap_model(image_batch(1, 16))
        assert seen == [threading.get_ident()]
    assert hooks_left(tiny_gap_model) == []

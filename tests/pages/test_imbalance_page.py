"""The Imbalance page: the long tail it draws, the numbers it reports against the model cards, and
the maps of rare classes under both models."""

from __future__ import annotations

import json
import math

import streamlit as st

from interp import get_spec
from interp.models import spec as model_spec
from tests.apptest import no_errors, open_page

MODELS = ("resnet32_cifar10lt_ce", "resnet32_cifar10lt_cbfocal")


def _card(name):
    return json.loads(get_spec(name).card_path.read_text())


def test_counts_follow_the_chosen_ratio():
    at = open_page("imbalance.py")
    bars = at.get("plotly_chart")[0].proto.spec
    assert json.loads(bars)["data"][0]["y"] == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    at.radio(key="imbalance_ratio").set_value(10).run()
    no_errors(at)
    expected = [math.floor(5000 * 0.1 ** (i / 9) + 1e-9) for i in range(10)]
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"] == expected
    assert f"{sum(expected):,} of the 50,000" in at.caption[1].value


def test_reported_accuracies_are_the_cards():
    at = open_page("imbalance.py")
    metrics = {m.label: m.value for m in at.metric}
    for label, name in zip(("cross-entropy", "class-balanced focal"), MODELS):
        per_class = _card(name)["metrics"]["per_class_accuracy"]
        assert metrics[f"{label}: balanced accuracy"] == f"{sum(per_class.values()) / 10:.1%}"
        rare = ("dog", "frog", "horse", "ship", "truck")  # the five fewest at ratio 100
        assert metrics[f"{label}: the five rarest classes"] == f"{sum(per_class[c] for c in rare) / 5:.1%}"


def test_rare_class_maps_under_both_models():
    at = open_page("imbalance.py")
    assert at.selectbox(key="imbalance_class").value == "truck"
    at.selectbox(key="imbalance_class").set_value("horse").run()
    no_errors(at)
    assert len(at.get("image")) == 10  # five held-out horses under each model
    assert any("of 5 right" in m.value and "class-balanced focal" in m.value for m in at.markdown)


def test_untrained_models_say_how_to_train(monkeypatch, tmp_path):
    monkeypatch.setattr(model_spec, "CHECKPOINT_DIR", tmp_path)
    st.cache_data.clear()
    try:
        at = open_page("imbalance.py")
        assert any("python -m interp train resnet32_cifar10lt_ce" in i.value for i in at.info)
        assert not at.metric
    finally:
        st.cache_data.clear()


def test_upper_bound_is_the_balanced_models_card(monkeypatch, tmp_path):
    spec = get_spec("resnet32_cifar10")
    if spec.checkpoint is None:  # not trained in this checkout: a card of its own stands in
        (tmp_path / "resnet32_cifar10.safetensors").write_bytes(b"")
        per_class = {c: round(0.85 + i / 100, 4) for i, c in enumerate(spec.class_names)}
        (tmp_path / "resnet32_cifar10.json").write_text(json.dumps({"metrics": {"per_class_accuracy": per_class}}))
        monkeypatch.setattr(model_spec, "CHECKPOINT_SEARCH", [*model_spec.CHECKPOINT_SEARCH, tmp_path])
    per_class = _card("resnet32_cifar10")["metrics"]["per_class_accuracy"]
    st.cache_data.clear()  # model_card is cached: no earlier test's answer, and none of this one's left
    try:
        at = open_page("imbalance.py")
    finally:
        st.cache_data.clear()
    no_errors(at)
    rare = ("dog", "frog", "horse", "ship", "truck")
    line = next(m.value for m in at.markdown if m.value.startswith("**Upper bound:**"))
    assert f"reaches {sum(per_class.values()) / 10:.1%}" in line
    assert f"{sum(per_class[c] for c in rare) / 5:.1%} on the five classes" in line
    bars = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]
    assert [b["name"] for b in bars] == ["cross-entropy", "class-balanced focal", "balanced training set"]
    assert bars[2]["y"] == list(per_class.values())


def test_untrained_upper_bound_says_how_to_train(monkeypatch):
    from dashboard import defaults

    monkeypatch.setattr(defaults, "IMBALANCE_UPPER_BOUND", "resnet18_transfer_cifar10")  # not trained here
    at = open_page("imbalance.py")
    no_errors(at)
    assert any("python -m interp train resnet18_transfer_cifar10" in c.value for c in at.caption)
    assert not any(m.value.startswith("**Upper bound:**") for m in at.markdown)

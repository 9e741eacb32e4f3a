"""The Report card page under AppTest: the card it draws is interp.report_card's on the same held-out images,
kept on disk for the next visit; its galleries are the best and worst images of a cell by value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import interp
from interp.data import held_out_sample
from interp.figures import method_title
from interp.whole_dataset.metrics import METRIC_TABLE
from tests.apptest import REPO, no_errors, plotly_array

MODEL = "nin_cifar10"  # 32 px: quick
N = 4
METHODS = ["saliency", "input_x_gradient"]
METRICS = ["deletion", "average_drop", "sparseness"]  # the page's order (METRICS'), cheap ones


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """interp's cache folder, where the page keeps its cards, fresh for each test."""
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> interp.report.ReportCard:
    """interp.report_card called directly on the page's images, methods and metrics."""
    images, _ = held_out_sample(interp.get_spec(MODEL), N)
    out = tmp_path_factory.mktemp("direct")
    return interp.report_card(MODEL, METHODS, METRICS, images=images, out=out, limit=None, progress=False)


def _open():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / "report_card.py"), default_timeout=600)
    at.session_state["model"] = MODEL
    at.session_state["rc_images"] = N
    at.session_state[f"rc_methods_{MODEL}"] = METHODS
    at.session_state[f"rc_metrics_{MODEL}"] = METRICS
    at.run()
    no_errors(at)
    return at


def _charts(at) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"].get("title", {}).get("text", ""): s for s in specs}


def _gallery_titles(at) -> list[str]:
    """Titles of the image maps (every map figure has an image under its heatmap)."""
    return [t for t, s in _charts(at).items() if s["data"][0]["type"] == "image"]


def _expected_titles(card, method: str, metric: str) -> tuple[list[str], list[str]]:
    """(best, worst) titles: value, true class -> prediction; best first, then the worst first."""
    names = interp.get_spec(MODEL).class_names
    cell = card.long[(card.long["method"] == method) & (card.long["metric"] == metric)]
    better = METRIC_TABLE[metric].higher_is_better
    ordered = cell.sort_values(["value", "image"], ascending=[not better, True], kind="stable")
    titles = [f"{r.value:.3g}: {names[int(r.label)]} → {names[int(r.prediction)]}" for r in ordered.itertuples()]
    half = (len(titles) + 1) // 2
    return titles[:half], titles[half:][::-1]


def test_the_card_is_report_cards_and_is_kept(cache, expected):
    at = _open()
    assert not at.get("plotly_chart")  # no card before the button
    assert any("Press Run report card" in i.value for i in at.info)
    at.button(key="rc_run").click().run()
    no_errors(at)
    assert not [b for b in at.button if b.key == "rc_run"]  # the page shows the card as a later visit does

    (folder,) = (cache / "report_card").iterdir()
    shown = interp.read_report_card(folder).summary
    columns = ["method", "metric", "n", "mean", "low", "high", "rank"]
    pd.testing.assert_frame_equal(
        shown[columns].sort_values(["metric", "method"]).reset_index(drop=True),
        expected.summary[columns].sort_values(["metric", "method"]).reset_index(drop=True),
        rtol=1e-6,
    )
    table = next(s for t, s in _charts(at).items() if t.startswith("Rank of each method"))["data"][0]
    ranks = expected.ranks()
    titles = {method_title(m): m for m in ranks.index}
    for row, label in zip(plotly_array(table["z"]), table["y"]):
        assert [int(v) for v in row] == [int(ranks.loc[titles[label], m]) for m in table["x"]]
    assert table["x"] == METRICS
    assert "95% bootstrap interval" in " ".join(c.value for c in at.caption)
    assert "4 held-out images" in " ".join(c.value for c in at.caption)

    # the cell opens on the first metric and its best-ranked method (the better mean among a tie)
    first = expected.summary[expected.summary["metric"] == METRICS[0]].sort_values(["rank", "mean"])
    method = next(s for s in at.selectbox if (s.key or "").startswith("rc_cell_method_"))
    metric = next(s for s in at.selectbox if (s.key or "").startswith("rc_cell_metric_"))
    assert (method.value, metric.value) == (first["method"].iloc[0], METRICS[0])
    best, worst = _expected_titles(expected, method.value, METRICS[0])
    assert _gallery_titles(at) == best + worst and len(best) == len(worst) == 2

    # each map is the one stored with the card
    stored = interp.read_results(folder, ["index", f"map_{method.value}"]).to_pandas().set_index("index")
    cell = expected.long[(expected.long["method"] == method.value) & (expected.long["metric"] == METRICS[0])]
    top = cell.sort_values(["value", "image"], kind="stable")["image"].iloc[0]  # deletion: lower is better
    heat = _charts(at)[best[0]]["data"][-1]
    np.testing.assert_allclose(
        plotly_array(heat["z"]).ravel(), np.asarray(stored.loc[top, f"map_{method.value}"], np.float32), rtol=1e-6
    )

    # another cell: sparseness, where higher is better
    metric.set_value("sparseness").run()
    method = next(s for s in at.selectbox if (s.key or "").startswith("rc_cell_method_"))
    method.set_value("input_x_gradient").run()
    no_errors(at)
    best, worst = _expected_titles(expected, "input_x_gradient", "sparseness")
    assert _gallery_titles(at) == best + worst

    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Summary (CSV)", "Summary (Parquet)", "Per image (Parquet)"]

    # a second visit (a new session, the same server or a restarted one) shows the kept card at once
    again = _open()
    assert not [b for b in again.button if b.key == "rc_run"]
    assert any(t.startswith("Rank of each method") for t in _charts(again))


def test_a_model_without_held_out_images_is_told_calmly(cache, monkeypatch):
    from tests.apptest import open_page

    monkeypatch.setenv("INTERP_MODELS", str(REPO / "tests" / "models_files" / "my_models.py"))
    at = open_page("report_card.py", model="my_tinynet")
    assert any("is your model" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not [b for b in at.button if b.key == "rc_run"]

"""The report card (interp.report): per-image values equal to the metrics called directly on the
same maps, ranks tied by hand-worked intervals, a percentile bootstrap as scipy's, localisation from
masks beside the images, a stopped card continued, the three kinds of model, and the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import interp
from interp.__main__ import main
from interp.data import Shortcut, patched_test_set, write_patched_folder
from interp.data.datasets import spread_indices
from interp.data.samples import shipped_split
from interp.methods.trust import batched
from interp.report import bootstrap_interval, read_report_card, report_card, tied_ranks
from interp.whole_dataset.metrics import METRICS
from tests.apptest import REPO

MODEL = "table2_cnn_cifar10"  # shipped, 32 x 32
SMALL = dict(split="sample", limit=6, batch_size=3, progress=False)


def _images(spec, limit):
    """The images report_card picks: ``limit`` of the shipped sample, spread evenly, preprocessed."""
    sample = shipped_split(spec)
    pick = spread_indices(len(sample), limit)
    return torch.cat([interp.preprocess(interp.load_image(sample.paths[i]), spec) for i in pick])


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    out = tmp_path_factory.mktemp("card")
    return report_card(MODEL, ["saliency", "grad_cam"], ["sparseness", "average_drop", "deletion"], out=out, **SMALL)


def test_every_value_is_the_metric_on_the_maps_of_the_images(card):
    spec = interp.get_spec(MODEL)
    model = interp.load_model(MODEL)
    x = _images(spec, 6)
    assert len(card.long) == 6 * 2 * 3 and set(card.long["family"]) == {"complexity", "faithfulness"}
    for method in ("saliency", "grad_cam"):
        maps = np.concatenate(
            [batched.explainer(method)(model, x[i : i + 3], None) for i in (0, 3)]
        )  # the run's batches of 3
        targets = interp.methods.predict(model, x).argmax(1)
        rows = card.long[card.long["method"] == method].set_index(["metric", "image"])["value"]
        np.testing.assert_allclose(rows["sparseness"].sort_index(), batched.sparseness(maps), rtol=1e-5)
        drop = batched.average_drop(model, x, maps, torch.as_tensor(targets), spec.mean, spec.std)["drop"]
        np.testing.assert_allclose(rows["average_drop"].sort_index(), drop, rtol=1e-4, atol=1e-6)
        assert rows["deletion"].between(0, 1).all()


def test_the_summary_is_the_mean_with_an_interval_around_it(card):
    s = card.summary.set_index(["method", "metric"])
    means = card.long.groupby(["method", "metric"])["value"].mean()
    np.testing.assert_allclose(s["mean"].sort_index(), means.sort_index())
    assert (s["low"] <= s["mean"] + 1e-12).all() and (s["mean"] <= s["high"] + 1e-12).all()
    assert (s["n"] == 6).all() and set(card.ranks().columns) == {"sparseness", "average_drop", "deletion"}
    again = read_report_card(card.folder)
    pd.testing.assert_frame_equal(again.summary, card.summary)
    assert (card.folder / "summary.csv").is_file()


def test_ranks_are_tied_where_intervals_overlap():
    # four methods, lower is better: A [0.1, 0.2], B [0.15, 0.3] overlaps A, C [0.35, 0.4] is worse
    # than A and B beyond doubt, D [0.5, 0.6] worse than all three
    low, high = np.array([0.1, 0.15, 0.35, 0.5]), np.array([0.2, 0.3, 0.4, 0.6])
    means = (low + high) / 2
    np.testing.assert_array_equal(tied_ranks(means, low, high, higher_is_better=False), [1, 1, 3, 4])
    np.testing.assert_array_equal(tied_ranks(means, low, high, higher_is_better=True), [3, 3, 2, 1])


def test_the_bootstrap_interval_is_scipys_percentile_interval():
    from scipy.stats import bootstrap

    values = np.random.default_rng(3).exponential(1.0, 200)
    ours = bootstrap_interval(values, np.random.default_rng(0), n=4000)
    theirs = bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=1).confidence_interval
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.02)  # two Monte Carlo estimates of one interval
    assert bootstrap_interval(np.array([0.7]), np.random.default_rng(0)) == (0.7, 0.7)


def test_localisation_reads_the_masks_beside_the_images(tmp_path):
    # the shortcut test bed's patched images: the map's peak on the patch or not, by hand
    spec = interp.get_spec(MODEL)
    patched = patched_test_set(spec, Shortcut(), limit=4, progress=False)
    folder = tmp_path / "patched"
    write_patched_folder(patched, folder)
    card = report_card(
        MODEL, ["saliency"], ["pointing_game", "relevance_mass"], images=folder, out=tmp_path / "run", progress=False
    )
    model = interp.load_model(MODEL)
    x = interp.data.normalize(patched.images, spec)
    maps = np.asarray(batched.explainer("saliency")(model, x, None))
    rows = card.long.set_index(["metric", "image"])["value"]
    hits = [float(m.ravel()[mask.ravel()].max() == m.max()) for m, mask in zip(maps, patched.masks)]
    np.testing.assert_array_equal(rows["pointing_game"].sort_index(), hits)
    inside = [m.ravel()[mask.ravel()].clip(0).sum() / m.clip(0).sum() for m, mask in zip(maps, patched.masks)]
    np.testing.assert_allclose(rows["relevance_mass"].sort_index(), inside, rtol=1e-4)


def test_a_stopped_card_continues_and_gives_the_same_summary(card, tmp_path):
    out = tmp_path / "again"
    options = dict(SMALL, batch_size=3, shard_size=3)
    first = report_card(MODEL, ["saliency", "grad_cam"], ["sparseness", "average_drop", "deletion"], out=out, **options)
    shards = sorted(out.glob("shard-*.parquet"))
    assert len(shards) == 2
    kept = shards[0].stat().st_mtime_ns
    shards[1].unlink()  # as if the run had been stopped after its first shard
    second = report_card(
        MODEL, ["saliency", "grad_cam"], ["sparseness", "average_drop", "deletion"], out=out, **options
    )
    assert shards[0].stat().st_mtime_ns == kept  # the finished shard was not computed again
    pd.testing.assert_frame_equal(first.summary, second.summary)
    np.testing.assert_allclose(second.summary["mean"], card.summary["mean"], rtol=1e-5)


def test_a_torchvision_and_a_models_file_model_on_a_folder(tmp_path):
    from torchvision.models import resnet18

    from interp.models import load_models_files

    torch.manual_seed(2)
    torch.save(resnet18(num_classes=3).state_dict(), tmp_path / "r18.pt")
    interp.register_model(
        "card_resnet18", "torchvision/resnet18", classes=["a", "b", "c"], weights=tmp_path / "r18.pt", input_size=32
    )
    assert load_models_files([REPO / "tests" / "models_files" / "my_models.py"]) == {}
    folder = tmp_path / "images"
    for i, path in enumerate(shipped_split(interp.get_spec(MODEL)).paths[:3]):
        (folder / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a" / f"{i}.jpg").write_bytes(open(path, "rb").read())
    for name in ("card_resnet18", "my_tinynet"):
        card = report_card(
            name, ["saliency", "cam", "deeplift"], ["sparseness"], images=folder, out=tmp_path / name, progress=False
        )
        assert set(card.long["image"]) == {0, 1, 2} and "saliency" in set(card.summary["method"])
        assert set(card.summary["method"]) | set(card.skipped) == {"saliency", "cam", "deeplift"}
        assert read_report_card(tmp_path / name).skipped == card.skipped


def test_a_method_that_refuses_the_model_is_skipped_with_its_reason(tmp_path):
    # the course's AlexNet has fully connected layers after its last conv: CAM does not apply
    card = report_card("alexnet_pacs_class", ["cam", "saliency"], ["sparseness"], split="sample", limit=2, out=tmp_path)
    assert list(card.skipped) == ["cam"] and "CAM" in card.skipped["cam"]
    assert set(card.summary["method"]) == {"saliency"}


def test_unknown_names_are_refused_before_any_work(tmp_path):
    with pytest.raises(interp.InterpError, match="unknown metric"):
        report_card(MODEL, ["saliency"], ["sparsity"], out=tmp_path, **SMALL)
    with pytest.raises(interp.InterpError, match="no_such_method"):
        report_card(MODEL, ["no_such_method"], ["sparseness"], out=tmp_path, **SMALL)
    assert set(METRICS) >= {"deletion", "road_morf", "max_sensitivity", "random_logit", "pointing_game"}


def test_the_command_line(tmp_path, capsys):
    argv = ["report-card", MODEL, "--split", "sample", "--limit", "3", "--methods", "saliency,grad_cam"]
    assert main([*argv, "--metrics", "sparseness", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Ranks" in out and "sparseness" in out and "grad_cam" in out
    assert read_report_card(tmp_path).summary["n"].tolist() == [3, 3]

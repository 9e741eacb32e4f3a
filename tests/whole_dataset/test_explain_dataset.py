"""Whole-dataset runs (interp.whole_dataset): maps equal to single-image explain calls, a killed run
resumed into the same files, the Ray engine equal to the in-process one, unreadable images as
rows, the command line, the summaries, and the Dataset page. A handful of shipped CIFAR-10
images and small models keep them quick."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pyarrow.types as pa_types
import pytest

import interp
from interp.data import SAMPLE_DIR
from interp.errors import InterpError
from interp.whole_dataset import explain_dataset, read_manifest, resize_maps
from interp.whole_dataset import results as R
from tests.apptest import REPO, no_errors, open_page, widget

MODEL = "table2_cnn_cifar10"  # shipped, 32 x 32
RUN = dict(split="sample", limit=6, resolution=(16, 16), batch_size=4, shard_size=4, progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted in-process run: grad_cam and saliency, deletion and insertion."""
    out = tmp_path_factory.mktemp("reference")
    return out, explain_dataset(MODEL, ["grad_cam", "saliency"], out=out, metrics=["deletion", "insertion"], **RUN)


def test_rows_columns_and_manifest(reference):
    out, table = reference
    assert table.num_rows == 6 and table.column("index").to_pylist() == list(range(6))
    assert {
        "path",
        "label",
        "prediction",
        "probability",
        "map_grad_cam",
        "map_saliency",
        "map_height",
        "map_width",
        "deletion_auc_grad_cam",
        "insertion_auc_saliency",
        "error",
    } <= set(table.column_names)
    assert str(table.schema.field("map_grad_cam").type) == "list<element: halffloat>"
    assert table.column("error").null_count == 6
    assert sorted(p.name for p in out.glob("shard-*.parquet")) == ["shard-00000.parquet", "shard-00001.parquet"]
    manifest = read_manifest(out)
    assert manifest["finished"] and manifest["settings"]["resolution"] == [16, 16]
    assert manifest["model"]["card"]["name"] == MODEL and "history" not in manifest["model"]["card"]
    assert {"torch", "numpy", "pyarrow", "python"} <= set(manifest["versions"])


def test_maps_equal_single_image_explain_calls(reference):
    _, table = reference
    spec, model = interp.get_spec(MODEL), interp.load_model(MODEL)
    for row in table.to_pylist():
        x = interp.preprocess(interp.load_image(row["path"]), spec)
        for method in ("grad_cam", "saliency"):
            e = interp.explain(model, x, method)
            assert row["prediction"] == e.target
            assert row["probability"] == pytest.approx(e.probability, rel=1e-4)
            expected = resize_maps(e.spatial()[None], (16, 16))[0]
            got = np.asarray(row[f"map_{method}"], dtype=np.float32).reshape(16, 16)
            scale = np.abs(expected).max()
            np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3 * scale)
        assert 0 <= row["deletion_auc_grad_cam"] <= 1 and 0 <= row["insertion_auc_saliency"] <= 1


@pytest.mark.parametrize("spare", [False, True], ids=["in-turn", "decode-and-write-on-threads"])
def test_a_killed_run_resumes_into_the_same_files(spare, reference, tmp_path, monkeypatch):
    from interp.whole_dataset import compute, engine_local

    for module in (compute, engine_local):  # both ways of running, whatever this machine's cores
        monkeypatch.setattr(module, "spare_core", lambda model: spare)
    ref_out, ref = reference
    written = []

    def write_then_die(out, i, table):
        if written:
            raise KeyboardInterrupt  # killed after the first shard
        written.append(i)
        return real(out, i, table)

    real = engine_local.write_shard
    monkeypatch.setattr(engine_local, "write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        explain_dataset(MODEL, ["grad_cam", "saliency"], out=tmp_path, metrics=["deletion", "insertion"], **RUN)
    assert [p.name for p in tmp_path.glob("shard-*")] == ["shard-00000.parquet"]
    assert not read_manifest(tmp_path)["finished"]
    monkeypatch.setattr(engine_local, "write_shard", real)
    computed = []
    monkeypatch.setattr(engine_local, "compute_shard", lambda *a, **k: computed.append(a[3]) or _compute(*a, **k))
    resumed = explain_dataset(MODEL, ["grad_cam", "saliency"], out=tmp_path, metrics=["deletion", "insertion"], **RUN)
    assert computed == [4]  # only the shard that was missing
    assert resumed.equals(ref)
    for name in ("shard-00000.parquet", "shard-00001.parquet"):
        assert pq.read_table(tmp_path / name).equals(pq.read_table(ref_out / name))


def test_a_spare_core_is_one_that_torch_leaves_idle(monkeypatch, tiny_gap_model):
    import os

    import torch

    from interp.whole_dataset.compute import spare_core

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    assert not spare_core(tiny_gap_model)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores - 1)
    assert spare_core(tiny_gap_model) == (cores > 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    assert spare_core(tiny_gap_model.to("meta"))  # a model computing elsewhere leaves the cores to decoding


def _compute(*args, **kwargs):
    from interp.whole_dataset.compute import compute_shard

    return compute_shard(*args, **kwargs)


def test_a_folder_of_another_run_is_refused(reference, tmp_path):
    ref_out, _ = reference
    other = tmp_path / "run"
    shutil.copytree(ref_out, other)
    with pytest.raises(InterpError, match="another run"):
        explain_dataset(MODEL, ["grad_cam"], out=other, **RUN)


def test_pandas_and_arrow_read_a_results_folder_whole(reference):
    """Nothing but the shards is visible to Arrow's dataset discovery: the manifest's name starts with '_'."""
    import pandas as pd

    out, table = reference
    assert (out / "_manifest.json").is_file() and not (out / "manifest.json").exists()
    assert pq.read_table(out).sort_by("index").equals(table)
    df = pd.read_parquet(out)
    assert sorted(df["index"]) == list(range(6)) and list(df.columns) == table.column_names


def test_a_folder_of_the_old_layout_is_read_and_resumed(reference, tmp_path):
    """A folder written when the manifest was manifest.json: read as it is; resumed, it gets the new name."""
    import pandas as pd

    from interp.whole_dataset import read_results

    ref_out, ref = reference
    old = tmp_path / "old"
    shutil.copytree(ref_out, old)
    (old / "_manifest.json").rename(old / "manifest.json")
    (old / "shard-00001.parquet").unlink()  # stopped after its first shard
    assert read_manifest(old)["settings"]["resolution"] == [16, 16] and read_results(old).num_rows == 4
    resumed = explain_dataset(MODEL, ["grad_cam", "saliency"], out=old, metrics=["deletion", "insertion"], **RUN)
    assert resumed.equals(ref)
    assert (old / "_manifest.json").is_file() and not (old / "manifest.json").exists()
    assert read_manifest(old)["finished"] and len(pd.read_parquet(old)) == 6


def test_unreadable_images_are_rows_with_an_error(tmp_path, tiny_gap_model):
    folder = tmp_path / "images"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for src in sorted((SAMPLE_DIR / "cifar10" / "test" / cls).glob("*.jpg"))[:2]:
            shutil.copy(src, folder / cls / src.name)
    (folder / "cat" / "broken.jpg").write_bytes(b"not an image")
    (folder / "dog" / "empty.png").write_bytes(b"")
    (folder / "loose.jpg").write_bytes((SAMPLE_DIR / "zebra.jpg").read_bytes())
    interp.register_model("tiny_dataset_user", tiny_gap_model, classes=["cat", "dog", "fox"], input_size=32)
    try:
        table = explain_dataset(
            "tiny_dataset_user", ["grad_cam", "saliency"], images=folder, batch_size=2, shard_size=3, progress=False
        ).to_pandas()
    finally:
        from interp.models.registry import unregister

        unregister("tiny_dataset_user")
    assert len(table) == 7
    bad = table[table["error"].notna()]
    assert sorted(p.rsplit("/", 1)[-1] for p in bad["path"]) == ["broken.jpg", "empty.png"]
    assert bad["prediction"].isna().all() and bad["map_grad_cam"].isna().all()
    good = table[table["error"].isna()]
    assert good["map_grad_cam"].map(len).eq(32 * 32).all()  # the input is smaller than 56: kept at 32 x 32
    labels = dict(zip(table["path"].map(lambda p: p[len(str(folder)) + 1 :]), table["label"]))
    assert np.isnan(labels.pop("loose.jpg"))  # not in a class folder: unknown
    assert {k.split("/")[0]: v for k, v in labels.items()} == {"cat": 0, "dog": 1}


def test_the_command_line(tmp_path, capsys):
    from interp.__main__ import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "explain-dataset",
                MODEL,
                "--methods",
                "grad_cam",
                "--split",
                "sample",
                "--limit",
                "3",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["images"] == 3 and printed["unreadable"] == 0
    manifest = read_manifest(out)
    assert manifest["command"].startswith("python -m interp ") and manifest["settings"]["resolution"] == [8, 8]
    assert (
        main(
            [
                "explain-dataset",
                MODEL,
                "--methods",
                "nope",
                "--split",
                "sample",
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
            ]
        )
        == 2
    )


def test_the_in_process_engine_does_not_import_ray(tmp_path):
    code = (
        "import sys, interp; interp.explain_dataset('table2_cnn_cifar10', ['saliency'], split='sample', limit=2, "
        f"out={str(tmp_path)!r}, progress=False); assert 'ray' not in sys.modules, 'ray imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_summaries_of_a_results_table(reference):
    _, table = reference
    df = R.as_frame(table)
    found = R.summary(df, interp.get_spec(MODEL).class_names)
    assert found["confusion"].sum() == found["labelled"] == 6
    assert found["accuracy"] == pytest.approx(df["correct"].astype(float).mean())
    assert len(R.select(df, "correct")) + len(R.select(df, "wrong")) == 6
    confident = R.select(df, sort_by="probability")
    assert list(confident["probability"]) == sorted(confident["probability"], reverse=True)
    means = R.mean_maps(df, "grad_cam")
    assert sum(n for _, n in means.values()) == 6 and all(m.shape == (16, 16) for m, _ in means.values())
    assert all(np.abs(m).max() <= 1 + 1e-6 for m, _ in means.values())


# ---------------------------------------------------------------------------------------------
# Ray: the same table from a local Ray with two CPUs


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[data]'; requirements-dev.txt)")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def assert_same_table(got, want) -> None:
    """The same rows and columns; float values to within float32 rounding. A Ray actor runs torch
    with its own thread count (Ray sets OMP_NUM_THREADS to the actor's CPUs), and a convolution
    summed in another order can differ from the in-process run in the last bit."""
    assert got.schema.equals(want.schema) and got.num_rows == want.num_rows
    for name in want.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if pa_types.is_floating(_leaf_type(want.schema.field(name).type)):
            np.testing.assert_allclose(
                np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-5, atol=1e-6, err_msg=name
            )
        else:
            assert a == b, name


def _leaf_type(t):
    while pa_types.is_list(t) or pa_types.is_large_list(t) or pa_types.is_fixed_size_list(t):
        t = t.value_type
    return t


@pytest.mark.ray
def test_the_ray_engine_gives_the_same_table(reference, ray_local, tmp_path):
    ref_out, ref = reference
    table = explain_dataset(
        MODEL, ["grad_cam", "saliency"], out=tmp_path, metrics=["deletion", "insertion"], engine="ray", actors=2, **RUN
    )
    assert_same_table(table, ref)
    for name in ("shard-00000.parquet", "shard-00001.parquet"):
        assert_same_table(pq.read_table(tmp_path / name), pq.read_table(ref_out / name))
    assert not (tmp_path / "_ray_staging").exists()
    assert read_manifest(tmp_path)["last_engine"] == "ray"


@pytest.mark.ray
def test_the_ray_engine_resumes_an_in_process_run(reference, ray_local, tmp_path):
    ref_out, ref = reference
    shutil.copytree(ref_out, tmp_path / "run")
    (tmp_path / "run" / "shard-00001.parquet").unlink()
    table = explain_dataset(
        MODEL,
        ["grad_cam", "saliency"],
        out=tmp_path / "run",
        metrics=["deletion", "insertion"],
        engine="ray",
        actors=1,
        **RUN,
    )
    assert_same_table(table, ref)


# ---------------------------------------------------------------------------------------------
# The Dataset page


def test_the_dataset_page(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))
    at = open_page("dataset.py", model=None)
    assert at.title[0].value == "Dataset" and at.session_state["model"] == MODEL
    assert any("Press Compute" in i.value for i in at.info)
    at.number_input(key="ds_images").set_value(16).run()
    at.button(key="ds_compute").click().run()
    no_errors(at)
    assert at.metric[0].value == "16"
    assert len(at.get("plotly_chart")) == 4  # confusion, per class, mean maps per class and per outcome
    assert len(at.get("image")) == 12  # the gallery's first images, each with its map
    at.selectbox(key="ds_correct").set_value("wrong").run()
    no_errors(at)
    widget(at.selectbox, "ds_sort_").set_value("probability").run()
    no_errors(at)
    other = interp.whole_dataset.explain_held_out("linear_cnn_cifar10", 16, ["saliency"], progress=False)
    assert len(other) == 16
    at.selectbox(key="ds_correct").set_value("all").run()  # the run of another model on the same images is chosen
    no_errors(at)
    assert at.metric[-1].value == "16"  # images in both runs
    assert len(at.get("image")) == 12 + 2 * 6  # the gallery, then six images with both models' maps
    at.radio(key="ds_source").set_value("Open a results folder").run()
    at.text_input(key="ds_folder").set_value(str(tmp_path / "nothing")).run()
    assert not at.exception and any("not a results folder" in e.value for e in at.error)


def test_the_dataset_page_on_a_model_without_held_out_images(tiny_gap_model):
    from interp.models.registry import unregister

    interp.register_model("tiny_page_user", tiny_gap_model, classes=3, input_size=32)
    try:
        at = open_page("dataset.py", model="tiny_page_user")
    finally:
        unregister("tiny_page_user")
    assert any("no held-out images" in i.value and "--images DIR" in i.value for i in at.info)

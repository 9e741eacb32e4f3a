"""The benchmark (bench/, python -m bench): a quick run produces every row with finite numbers.
Timings are not asserted."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from bench import METHODS, MODELS, PEER_METHODS, QUICK, markdown_report, run_benchmark, text_report
from bench.cli import main as bench_main
from bench.peers import same_draws
from interp.__main__ import main as interp_main


@pytest.fixture(scope="module")
def quick(data_dir) -> dict:
    return run_benchmark(quick=True, threads=torch.get_num_threads())


def _methods_only(models: tuple[str, ...], methods, warmup: int) -> dict:
    """A quick run of the method rows alone (batch 1, one repeat): no dashboard, training,
    feature-visualisation or dataset rows."""
    return run_benchmark(
        quick=True,
        models=models,
        methods=tuple(methods),
        batches=(1,),
        repeats=1,
        warmup=warmup,
        threads=torch.get_num_threads(),
        dashboard=False,
        training=False,
        feature_vis=False,
        datasets=False,
    )


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_every_model_method_and_batch_has_a_row_with_its_floor(quick):
    rows = [r for r in quick["rows"] if r["kind"] == "method"]
    seen = {(r["model"], r["method"], r["batch"]) for r in rows}
    assert seen == {(m, k, b) for m in MODELS for k in METHODS for b in QUICK.batches}
    assert len(rows) == len(seen)
    for r in rows:
        for field in ("ours_ms", "floor_ms", "ratio_to_floor"):
            assert _positive(r[field]), (r["model"], r["method"], r["batch"], field, r[field])


def test_each_peer_that_has_the_method_is_timed_or_says_why_not(quick):
    for r in (r for r in quick["rows"] if r["kind"] == "method"):
        expected = {p for p, methods in PEER_METHODS.items() if r["method"] in methods}
        assert {p["peer"] for p in r["peers"]} == expected, (r["model"], r["method"])
        for p in r["peers"]:
            where = (r["model"], r["method"], r["batch"], p["peer"], p.get("note"))
            if "peer_ms" in p:
                assert _positive(p["peer_ms"]) and _positive(p["ratio_to_peer"]), where
                # the same layer, target and input: the maps agree (a check of the set-up, not of
                # timing); where the peer draws other random samples there is nothing to compare
                if same_draws(r["method"], r["batch"]):
                    assert p["agreement"] is not None and p["agreement"] > 0.9, where
                else:
                    assert p["agreement"] is None, where
            else:  # only a case the peer cannot do at all; a peer that crashed would fail here
                assert p["note"].startswith("not applicable"), where
    cam_nin = next(r for r in quick["rows"] if r["model"] == "nin_cifar10" and r["method"] == "cam")
    assert "peer_ms" not in cam_nin["peers"][0]  # torch-cam's CAM needs a linear layer; NiN has none


def test_dashboard_and_training_rows(quick):
    by_method = {r["method"]: r for r in quick["rows"] if r["kind"] in ("dashboard", "training")}
    assert set(by_method) == {
        "dashboard_rerender",
        "dashboard_cold_start",
        "model_cold_load",
        "train_loop",
        "bare_loop",
    }
    for name, r in by_method.items():
        assert _positive(r["ours_ms"]), (name, r.get("note"))
    for name in ("train_loop", "bare_loop"):
        assert _positive(by_method[name]["images_per_s"]) and _positive(by_method[name]["peak_rss_mb"])
    assert _positive(by_method["train_loop"]["throughput_ratio"])


def test_feature_vis_and_whole_dataset_rows(quick):
    rows = {r["method"]: r for r in quick["rows"] if r["kind"] in ("feature_vis", "dataset")}
    expected = {"batched_channels", "dataset_index", "in_process", "memory_local"}
    assert expected <= set(rows) <= expected | {"ray", "memory_ray"}
    for name, r in rows.items():
        assert _positive(r["ours_ms"]), (name, r.get("note"))
    vis = rows["batched_channels"]
    assert vis["batch"] == QUICK.vis_channels and _positive(vis["speedup"]) and _positive(vis["bare_pass_speedup"])
    assert rows["dataset_index"]["images"] == QUICK.index_images and _positive(rows["dataset_index"]["ratio_to_floor"])
    small, large = QUICK.dataset_sizes
    for name in ("in_process", "ray"):
        if name in rows:  # every image explained, none an error row
            assert rows[name]["images"] == large and rows[name]["errors"] == 0, rows[name]
            assert _positive(rows[name]["throughput_ratio"])
    for name in ("memory_local", "memory_ray"):
        if name in rows:
            r = rows[name]
            assert (r["images_small"], r["images_large"]) == (small, large)
            assert r["memory_growth"] == pytest.approx(r["peak_mb_large"] / r["peak_mb_small"], rel=0.01)


def test_tree_peak_counts_memory_held_by_a_child_process():
    """The whole-dataset memory rows add up every process a run starts (Ray's workers): a child
    that holds 300 MB shows in the peak of the parent's tree."""
    import subprocess

    from bench.whole_dataset import TreePeak

    with TreePeak() as alone:
        pass
    code = "import time; b = bytearray(300 * 2**20); time.sleep(1.0)"
    with TreePeak() as with_child:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert with_child.peak_mb - alone.peak_mb > 250


def test_result_is_json_and_reports_render(quick):
    text = json.dumps(quick, allow_nan=False)
    assert json.loads(text)["machine"]["torch_threads"] == torch.get_num_threads()
    md, table = markdown_report(quick, "python -m bench --quick"), text_report(quick)
    for name in MODELS:
        assert name in md and name in table
    assert "### Missed targets" in md and "QUICK MODE" in md
    assert "### Feature visualisation" in md and "### Whole datasets" in md


@pytest.mark.parametrize("entry", ["python -m bench", "python -m interp bench"])
def test_cli_json_and_markdown(entry, tmp_path, capsys, monkeypatch):
    md = tmp_path / "bench.md"
    argv = [
        "--quick",
        "--json",
        "--models",
        "nin_cifar10",
        "--methods",
        "saliency",
        "--batches",
        "1",
        "--no-dashboard",
        "--no-training",
        "--no-feature-vis",
        "--no-datasets",
        "--no-progress",
        "--threads",
        str(torch.get_num_threads()),
        "--markdown",
        str(md),
    ]
    if entry == "python -m bench":
        monkeypatch.setattr(sys, "argv", ["bench/__main__.py", *argv])
        assert bench_main() == 0
    else:
        monkeypatch.setattr(sys, "argv", ["interp/__main__.py", "bench", *argv])
        assert interp_main() == 0
    result = json.loads(capsys.readouterr().out)
    assert result["command"] == f"{entry} {' '.join(argv)}"
    (row,) = result["rows"]
    assert {"model", "method", "batch", "ours_ms", "floor_ms", "ratio_to_floor", "peers"} <= set(row)
    assert row["peers"][0]["peer"] == "captum" and {"peer_ms", "ratio_to_peer"} <= set(row["peers"][0])
    assert "| nin_cifar10 | saliency | 1 |" in md.read_text()


def test_cli_rejects_an_unknown_method_with_a_message(capsys):
    assert (
        bench_main(
            [
                "--quick",
                "--methods",
                "nope",
                "--no-dashboard",
                "--no-training",
                "--no-feature-vis",
                "--no-datasets",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().err


def test_interp_bench_has_the_options_of_python_m_bench():
    from interp.__main__ import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["bench"]
    options = {s for a in sub._actions for s in a.option_strings}
    from bench.cli import build_parser as bench_parser

    assert options == {s for a in bench_parser()._actions for s in a.option_strings}


def test_the_other_methods_have_rows_against_captum():
    """input x gradient ... KernelSHAP, named with --methods: Captum's map agrees with ours wherever
    both draw the same samples (GradientSHAP's come from Captum's global generators)."""
    from bench import MORE_METHODS

    result = _methods_only(("nin_cifar10",), MORE_METHODS, warmup=1)
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == set(MORE_METHODS)
    for method, r in rows.items():
        assert _positive(r["ours_ms"]) and _positive(r["floor_ms"]), method
        (peer,) = r["peers"]
        assert peer["peer"] == "captum" and _positive(peer["peer_ms"]), (method, peer.get("note"))
        if method == "gradient_shap":
            assert peer["agreement"] is None
        else:
            assert peer["agreement"] > 0.999, (method, peer["agreement"])


def test_lrp_methods_have_rows_against_zennit():
    """Each LRP composite, named with --methods lrp_family, against Zennit's own attributor: the same
    map on a batch-norm network (NiN) and on torchvision's ResNet-18 (residual canonizer)."""
    from bench.cases import LRP_METHODS, expand_methods

    assert expand_methods(["lrp_family"]) == list(LRP_METHODS)
    result = _methods_only(("nin_cifar10", "resnet18_imagenet"), LRP_METHODS, warmup=0)
    rows = [r for r in result["rows"] if r["kind"] == "method"]
    assert {(r["model"], r["method"]) for r in rows} == {
        (m, k) for m in ("nin_cifar10", "resnet18_imagenet") for k in LRP_METHODS
    }
    for r in rows:
        assert _positive(r["ours_ms"]) and _positive(r["floor_ms"]), r["method"]
        (peer,) = r["peers"]
        assert peer["peer"] == "zennit" and _positive(peer["peer_ms"]), (r["method"], peer.get("note"))
        assert peer["agreement"] > 0.999, (r["model"], r["method"], peer["agreement"])


def test_captum_deeplift_is_not_applicable_to_reused_activations():
    from bench.peers import _reused_activation
    from tests.methods.helpers import registry_model

    assert _reused_activation(registry_model("resnet18_imagenet"), torch.zeros(1, 3, 32, 32)) == "layer1.0.relu"
    assert _reused_activation(registry_model("nin_cifar10"), torch.zeros(1, 3, 32, 32)) is None


def test_fullgrad_dff_and_rise_have_rows_against_their_floor_and_peers():
    """FullGrad and DFF against pytorch-grad-cam (the same map: its min-max scaling does not change a
    Pearson correlation); RISE, which no peer has, with the masks it used and its images/s. FullGrad
    is held to a forward+backward; DFF and RISE to forward passes alone."""
    from dataclasses import replace

    from bench import EXTRA_METHODS
    from bench.cases import FORWARD_METHODS, GRADIENT_METHODS, floor_passes, model_case
    from bench.peers import dff_head
    from interp.methods.attribution.rise import DEFAULT_MASKS

    assert "fullgrad" in GRADIENT_METHODS and {"dff", "rise"} <= set(FORWARD_METHODS) - set(GRADIENT_METHODS)
    assert {m for p, ms in PEER_METHODS.items() for m in ms if m in EXTRA_METHODS} == {"fullgrad", "dff"}
    result = _methods_only(("nin_cifar10",), ("fullgrad", "dff", "rise"), warmup=0)
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"fullgrad", "dff", "rise"}
    for method, r in rows.items():
        assert _positive(r["ours_ms"]) and _positive(r["floor_ms"]) and _positive(r["ratio_to_floor"]), method
        print(f"{method}: ours {r['ours_ms']} ms, floor {r['floor_ms']} ms ({r['floor']}); {r.get('note')}")
        print(f"  peers {r['peers']}")
    for method in ("fullgrad", "dff"):
        (peer,) = rows[method]["peers"]
        assert peer["peer"] == "pytorch-grad-cam", (method, peer)
        if "peer_ms" in peer:
            assert _positive(peer["peer_ms"]) and peer["agreement"] > 0.9, (method, peer)
        else:
            assert peer["note"].startswith("not applicable"), (method, peer)
    assert rows["dff"]["layer"] == "features.relu3_3" and "peer_ms" in rows["dff"]["peers"][0]
    rise = rows["rise"]
    assert rise["peers"] == [] and rise["n_masks"] == QUICK.rise_masks < DEFAULT_MASKS
    assert rise["images_per_s"] == pytest.approx(1000 / rise["ours_ms"], rel=0.01)
    assert rise["masked_images_per_s"] == pytest.approx(rise["images_per_s"] * QUICK.rise_masks, rel=0.01)
    assert f"{QUICK.rise_masks} masks (not its default {DEFAULT_MASKS})" in rise["note"]
    assert floor_passes("rise", QUICK, 32) == QUICK.rise_masks and f"{QUICK.rise_masks} masks" in rise["floor"]
    assert f"rise on nin_cifar10 at batch 1: {QUICK.rise_masks} masks" in markdown_report(result)
    # pytorch-grad-cam's DFF scores a concept with the classifier alone: only at the pooled layer
    case = model_case("nin_cifar10")
    head, why = dff_head(replace(case, grad_layer="features.relu2_3"))
    assert head is None and "features.relu2_3" in why

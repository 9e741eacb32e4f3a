"""run_benchmark: every row of the benchmark in one run (methods x models x batches, dashboard, training)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import torch

from interp.hardware import resolve_device
from interp.methods import MethodError, get_method
from interp.methods.attribution.rise import DEFAULT_MASKS

from .cases import (
    ALL_METHODS,
    FLOOR_TARGETS,
    GRADIENT_METHODS,
    METHODS,
    MODELS,
    PEER_TARGETS,
    TO_LAYER_METHODS,
    ModelCase,
    bare_forward,
    bare_forward_backward,
    bare_forward_backward_to_layer,
    expand_methods,
    floor_copies,
    floor_note,
    floor_passes,
    inputs,
    model_case,
    ours,
)
from .peers import agreement, as_numpy, peer_impls, same_draws
from .timing import Impl, default_threads, machine_info, measure, median_ms_per_image, ratio, rounded, set_threads

PEER_TARGET = 1.0  # ours / the fastest peer


@dataclass(frozen=True)
class Settings:
    """How much to measure; the quick mode only proves that every row can be produced."""

    batches: tuple[int, ...] = (1, 32)
    warmup: int = 2
    repeats: int = 10
    min_repeats: int = 3
    budget_s: float = 20.0  # per implementation and case: slow cases get fewer repeats (>= min_repeats)
    ig_steps: int = 50  # ours' default
    samples: int = 25  # GradientSHAP's and VarGrad's noisy copies: ours' default
    surrogate_samples: int = 200  # LIME's and KernelSHAP's perturbed images: ours' default
    rise_masks: int = DEFAULT_MASKS  # RISE's masks: ours' default (its row reports the count)
    dashboard_repeats: int = 10
    cold_repeats: int = 3
    train_model: str = "nin_cifar10"
    train_images: int = 2048
    train_batch: int = 128  # nin_cifar10's recipe
    vis_model: str = "alexnet_gap_pacs_class"
    vis_layer: str = "features.conv5"
    vis_channels: int = 32  # optimised in one batch
    vis_single: int = 4  # optimised one at a time (per channel, as many would cost the same)
    vis_steps: int = 8  # every step costs the same: a few give the per-step time
    vis_sizes: tuple[int, ...] = (0, 64)  # 0: the model's input size; 64: the dashboard's default side
    index_images: int = 1998  # PACS validation
    index_repeats: int = 5  # the index against the forward pass, interleaved: a ratio of a few percent needs several
    dataset_model: str = "table2_cnn_cifar10"
    dataset_methods: tuple[str, ...] = ("grad_cam", "saliency")
    dataset_sizes: tuple[int, int] = (2000, 10000)
    dataset_batch: int = 32


QUICK = Settings(
    batches=(1, 2),
    warmup=1,
    repeats=2,
    min_repeats=1,
    budget_s=2.0,
    ig_steps=4,
    samples=4,
    surrogate_samples=16,
    rise_masks=128,  # two passes of 64 masked images; the row says it is not the default
    dashboard_repeats=2,
    cold_repeats=1,
    train_images=64,
    train_batch=16,
    vis_channels=4,
    vis_single=2,
    vis_steps=2,
    vis_sizes=(64,),
    index_images=16,
    index_repeats=1,
    dataset_sizes=(16, 32),
)


def run_benchmark(
    quick: bool = False,
    models: Sequence[str] = MODELS,
    methods: Sequence[str] = METHODS,
    batches: Sequence[int] | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
    threads: int | None = None,
    dashboard: bool = True,
    training: bool = True,
    feature_vis: bool = True,
    datasets: bool = True,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Measure every row of the benchmark on one device: models, inputs, peers and training.

    Args:
        quick: tiny batches, repeats and training subset (a CI-sized run; numbers are not meaningful).
        models, methods: registry names and method names to measure (``cam_family``: all of the
            CAM family, which a default run leaves out; ``lrp_family``: the LRP composites).
        batches, repeats, warmup: override the mode's defaults.
        threads: torch threads (default $OMP_NUM_THREADS, else every core).
        dashboard, training, feature_vis, datasets: include those rows (the whole-dataset rows
            measure the Ray engine where Ray is installed).
        progress: a tqdm bar on stderr.
        device: cpu, cuda, cuda:N or mps (default: ``interp.hardware.resolve_device()``: $INTERP_DEVICE,
            else cuda where available, else cpu). The dashboard's processes get it as $INTERP_DEVICE.

    Returns:
        {"machine": ..., "settings": ..., "rows": [...]}; see BENCHMARKS.md for the fields.

    Raises:
        UnknownModelError: a model name the registry lacks. MethodError: an unknown method.
        DeviceError: a device that is unknown or that this machine lacks.
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    methods = expand_methods(methods)
    s = _settings(quick, methods, batches, repeats, warmup)
    threads = threads or default_threads()
    set_threads(threads)
    total = len(models) * len(s.batches) * len(methods) + 2 * dashboard + training + 2 * feature_vis + datasets
    bar = tqdm(total=total, desc="bench", unit="case", file=sys.stderr, disable=not progress)
    rows: list[dict[str, Any]] = []
    try:
        for name in models:
            case = model_case(name, device)
            for batch in s.batches:
                x, targets = inputs(case, batch)
                for method in methods:
                    bar.set_description(f"{name} b{batch} {method}")
                    rows.append(_method_row(case, method, batch, x, targets, s))
                    bar.update()
        if dashboard:
            from .dashboard import dashboard_rows

            bar.set_description("dashboard")
            rows += dashboard_rows(s.warmup, s.dashboard_repeats, s.cold_repeats, threads, str(device))
            bar.update(2)
        if training:
            from .training import training_rows

            bar.set_description("training")
            rows += training_rows(s.train_model, s.train_images, s.train_batch, threads, str(device))
            bar.update()
        if feature_vis:
            rows += _feature_vis_rows(s, device, bar)
        if datasets:
            rows += _dataset_rows(s, threads, device, bar)
    finally:
        bar.close()
    return {
        "machine": machine_info(threads, device),
        "settings": {"quick": quick, **asdict(s)},
        "rows": [_rounded(r) for r in rows],
    }


def batching_rows(s: Settings, device: torch.device) -> list[dict[str, Any]]:
    """Feature visualisation's batching row at each of ``s.vis_sizes`` (also run by gpu_check.sh)."""
    from interp.models import get_spec

    from .feature_vis import batching_row

    return [
        batching_row(
            s.vis_model,
            s.vis_layer,
            s.vis_channels,
            s.vis_single,
            s.vis_steps,
            size or max(get_spec(s.vis_model).input_hw),  # its longer side, as dashboard.look.side_options
            s.warmup,
            s.repeats,
            s.budget_s,
            device,
        )
        for size in s.vis_sizes
    ]


def _feature_vis_rows(s: Settings, device: torch.device, bar) -> list[dict[str, Any]]:
    from .feature_vis import index_row

    bar.set_description("feature visualisation")
    rows = batching_rows(s, device)
    bar.update()
    rows.append(index_row(s.vis_model, s.index_images, s.warmup, s.index_repeats, device))
    bar.update()
    return rows


def _dataset_rows(s: Settings, threads: int, device: torch.device, bar) -> list[dict[str, Any]]:
    """The whole-dataset rows; Ray's where it is installed (its actors run on the CPU here)."""
    from importlib.util import find_spec

    from .whole_dataset import dataset_rows

    bar.set_description("whole datasets")
    rows = dataset_rows(
        s.dataset_model,
        s.dataset_methods,
        s.dataset_sizes,
        s.dataset_batch,
        threads,
        ray=find_spec("ray") is not None and str(device) == "cpu",
    )
    bar.update()
    return rows


def _settings(
    quick: bool, methods: Sequence[str], batches: Sequence[int] | None, repeats: int | None, warmup: int | None
) -> Settings:
    """The mode's settings with the caller's overrides; MethodError on an unknown method or a batch below 1."""
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise MethodError(
            f"the benchmark has no method {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(ALL_METHODS)}, cam_family or lrp_family"
        )
    if batches is not None and any(int(b) < 1 for b in batches):
        raise MethodError(f"batch sizes must be >= 1, not {list(batches)}")
    overrides: dict[str, Any] = dict(batches=tuple(batches) if batches else None, repeats=repeats, warmup=warmup)
    return replace(QUICK if quick else Settings(), **{k: v for k, v in overrides.items() if v is not None})


def _method_row(
    case: ModelCase, method: str, batch: int, x: torch.Tensor, targets: torch.Tensor, s: Settings
) -> dict[str, Any]:
    """Time ours, the floor and the peers on one case; one row of the JSON."""
    model = case.model
    side = x.shape[-1]  # the side occlusion's windows are counted on (as the peers' Occlusion)
    details: dict[str, Any] = {}  # what ours reports besides the map (RISE: how many masks it used)
    own = Impl("ours", ours(case, method, x, targets, s, details), model)
    copies = floor_copies(method, batch)
    xs, ts = x.repeat(copies, 1, 1, 1), targets.repeat(copies)
    if method in TO_LAYER_METHODS:
        floor = Impl("floor", bare_forward_backward_to_layer(model, case.grad_layer, x, targets), model)
    elif method in GRADIENT_METHODS:
        floor = Impl("floor", bare_forward_backward(model, xs, ts), model)
    else:
        floor = Impl("floor", bare_forward(model, xs), model)
    peers = peer_impls(case, method, x, targets, s)
    measure([own, floor, *peers], s.warmup, s.repeats, s.budget_s, s.min_repeats, device=x.device)
    if own.error:
        raise RuntimeError(f"interp's {method} failed on {case.name} at batch {batch}: {own.error}")
    ours_ms, floor_ms = median_ms_per_image(own, batch), median_ms_per_image(floor, batch)
    if floor_ms is not None:
        floor_ms *= floor_passes(method, s, side) / copies
        if method == "score_cam":
            floor_ms *= _channels(case, x)
    mine = as_numpy(own.output)
    peer_rows: list[dict[str, Any]] = []
    for p in peers:
        ms = median_ms_per_image(p, batch)
        if ms is None:
            peer_rows.append({"peer": p.name, "note": "; ".join(n for n in (p.error, p.note) if n)})
        else:
            # where the peer draws other random samples, the maps differ by design: no agreement
            agree = agreement(mine, as_numpy(p.output)) if same_draws(method, batch) else None
            peer_rows.append(
                {
                    "peer": p.name,
                    "peer_ms": ms,
                    "ratio_to_peer": ratio(ours_ms, ms),
                    "agreement": agree,
                    "repeats": len(p.seconds),
                    "note": p.note,
                }
            )
    timed = [p["peer_ms"] for p in peer_rows if "peer_ms" in p]
    row: dict[str, Any] = {
        "kind": "method",
        "model": case.name,
        "input_size": case.spec.input_size,
        "weights": case.weights,
        "method": method,
        "batch": batch,
        "ours_ms": ours_ms,
        "floor_ms": floor_ms,
        "ratio_to_floor": ratio(ours_ms, floor_ms),
        "floor": floor_note(method, s, side),
        "target_ratio_to_floor": FLOOR_TARGETS.get(method),
        "repeats": len(own.seconds),
        "ratio_to_fastest_peer": ratio(ours_ms, min(timed)) if timed else None,
        "target_ratio_to_peer": PEER_TARGETS.get(method, PEER_TARGET) if timed else None,
        "peers": peer_rows,
    }
    if get_method(method).needs_layer and method != "cam":
        row["layer"] = case.grad_layer
    elif method == "cam":
        row["layer"] = case.cam_layer
    if "n_masks" in details:
        row.update(_masks(details["n_masks"], ours_ms, floor_ms))
    if own.note:
        row["note"] = "; ".join(n for n in (row.get("note"), own.note) if n)
    return row


def _masks(n_masks: int, ours_ms: float | None, floor_ms: float | None) -> dict[str, Any]:
    """A mask-sampling method's fields (RISE's row): the masks it used, as it reports them; the images
    per second it explains with that many, and the floor's (the bare passes over the masks alone);
    the masked images per second ours puts through the model. The note says whether the count is
    the method's default (the quick mode uses fewer)."""
    images = 1000.0 / ours_ms if ours_ms else None
    default = "its default" if n_masks == DEFAULT_MASKS else f"not its default {DEFAULT_MASKS}"
    rate = "not measured" if images is None else f"{images:.3g} images/s, {images * n_masks:.4g} masked images/s"
    return {
        "n_masks": n_masks,
        "images_per_s": images,
        "masked_images_per_s": None if images is None else images * n_masks,
        "floor_images_per_s": 1000.0 / floor_ms if floor_ms else None,
        "note": f"{n_masks} masks ({default}): {rate}",
    }


def _channels(case: ModelCase, x: torch.Tensor) -> int:
    """Channels of the layer the CAM family reads (Score-CAM runs the model once per channel)."""
    from interp.methods import feature_maps

    return int(feature_maps(case.model, x[:1], [case.grad_layer])[case.grad_layer].shape[1])


_FIRST = ("kind", "model", "method", "batch", "ours_ms", "floor_ms", "ratio_to_floor", "peers")


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    """Three significant figures for every float (the JSON stays readable); the fields every
    row has come first."""
    out: dict[str, Any] = {}
    for k, v in sorted(row.items(), key=lambda kv: _FIRST.index(kv[0]) if kv[0] in _FIRST else len(_FIRST)):
        if isinstance(v, float):
            out[k] = rounded(v, 4 if k in ("agreement",) else 3)
        elif isinstance(v, list):
            out[k] = [_rounded(e) if isinstance(e, dict) else e for e in v]
        else:
            out[k] = v
    return out

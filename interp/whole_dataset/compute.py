"""One shard of a run: load its images, predict and explain them batch by batch, and return the
rows as an Arrow table. Both engines call :func:`compute_shard`, so their numbers agree.

Where a core is free (a GPU computes, or torch uses fewer threads than the process has cores),
the next batch's images are decoded on a thread while the current one is explained, and the
in-process engine writes each shard on a thread. Where torch's threads already fill every core, a
thread beside them only preempts them (measured on two cores: 10% fewer images/s), so it all
runs in turn.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from ..data import load_image, normalize, resize_center_crop
from ..errors import ImageError
from ..methods.explain import explain
from ..methods.records import get_method
from ..methods.trust import batched
from ..models.registry import ModelSpec
from .job import DEFAULT_SIDE, Settings
from .metrics import mask_path, metric_column, needs_masks, score_maps


def schema(settings: Settings) -> pa.Schema:
    """The columns of a run's table (names scripts rely on)."""
    fields = [
        ("index", pa.int64()),
        ("path", pa.string()),
        ("label", pa.int64()),
        ("prediction", pa.int64()),
        ("probability", pa.float32()),
        ("map_height", pa.int32()),
        ("map_width", pa.int32()),
    ]
    fields += [(f"map_{m}", pa.list_(pa.float16())) for m in settings.methods]
    fields += [(metric_column(k, m), pa.float32()) for k in settings.metrics for m in settings.methods]
    fields += [("error", pa.string())]
    return pa.schema(fields)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) maps -> (N, h, w) float32: bilinear with antialiasing (an area-like average when
    shrinking), the one resize every stored map goes through."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[-2:] == tuple(size):
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps))[:, None]
    out = nn.functional.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return out[:, 0].numpy()


def method_options(spec: ModelSpec, settings: Settings, method: str) -> dict[str, Any]:
    """explain's keywords for one method: the run's options, the layer, and the model's
    normalisation for the superpixel methods."""
    options = dict(settings.options.get(method, {}))
    record = get_method(method)
    if record.needs_stats:  # superpixels are found on the image as people see it
        options.setdefault("mean", spec.mean)
        options.setdefault("std", spec.std)
    if record.needs_layer:
        options["layer"] = settings.layer or spec.target_layer
    return options


def default_resolution(model: nn.Module, spec: ModelSpec, methods: Sequence[str], layer: str | None) -> tuple[int, int]:
    """The layer's map size when every method is a CAM (finer would only interpolate), else
    DEFAULT_SIDE per side, never more than the input."""
    h, w = spec.input_hw
    # Maps computed at a layer's resolution are no finer than that layer.
    if all(get_method(m).layer_resolution for m in methods) and (layer is None or isinstance(layer, str)):
        from ..methods import default_layer, feature_maps, probe_input

        probe = probe_input(spec.input_size)
        name = layer or spec.target_layer or default_layer(model, probe)
        maps = feature_maps(model, probe, [name])[name]
        return int(maps.shape[-2]), int(maps.shape[-1])
    return min(h, DEFAULT_SIDE), min(w, DEFAULT_SIDE)


def _load(
    paths: Sequence[str], spec: ModelSpec, masks: bool = False
) -> tuple[torch.Tensor | None, list[str | None], np.ndarray | None]:
    """The readable images as one normalised N x C x H x W batch (None if none is readable), in
    order, and each path's error (None where it was read); one normalisation for the batch. With
    ``masks``, their object masks (N, H, W) bool, cropped as the images (all False where none)."""
    pixels: list[np.ndarray] = []
    errors: list[str | None] = []
    found: list[np.ndarray] = []
    for p in paths:
        try:
            image = load_image(p)
            pixels.append(np.asarray(resize_center_crop(image, spec.input_size), dtype=np.uint8))
            errors.append(None)
        except ImageError as exc:  # an unreadable file is a row that says why, not the end of the run
            errors.append(str(exc))
            continue
        if masks:
            found.append(_mask(p, image.size, spec))
    x = normalize(torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2), spec) if pixels else None
    return x, errors, (np.stack(found) if masks and found else None)


def _mask(path: str, size: tuple[int, int], spec: ModelSpec) -> np.ndarray:
    """The image's object mask at the model's input (True on the object), or all False without one."""
    from PIL import Image

    where = mask_path(path)
    if not where.is_file():
        return np.zeros(spec.input_hw, dtype=bool)
    with Image.open(where) as m:
        grey = (
            m.convert("L").resize(size, Image.Resampling.NEAREST).convert("RGB")
        )  # the image's size, so it crops alike
    cropped = np.asarray(resize_center_crop(grey, spec.input_size))[..., 0]
    return cropped >= 128


def explain_batch(
    model: nn.Module, spec: ModelSpec, settings: Settings, x: torch.Tensor, masks: np.ndarray | None = None
) -> dict[str, Any]:
    """Predictions, probabilities, maps (at the stored resolution) and metrics of one batch (``masks``:
    the images' object masks, for the localisation metrics)."""
    n, out = len(x), {}
    targets = None  # the first method's forward pass fixes the predictions; the others explain them
    for m in settings.methods:
        options = method_options(spec, settings, m)
        e = explain(model, x, m, target=targets, **options)
        full = np.asarray(e.spatial(settings.reduction), dtype=np.float32).reshape(n, *e.map.shape[-2:])
        if targets is None:
            targets = np.asarray(e.target).reshape(n)
            out["prediction"], out["probability"] = targets, np.asarray(e.probability, np.float32).reshape(n)
        out[f"map_{m}"] = resize_maps(full, settings.resolution).astype(np.float16)
        if settings.metrics:
            explain_fn = batched.explainer(m, **options)
            scores = score_maps(
                model,
                spec,
                x,
                full,
                targets,
                settings.metrics,
                explain_fn,
                masks,
                settings.metric_steps,
                settings.batch_size,
            )
            for kind in settings.metrics:
                out[metric_column(kind, m)] = scores[kind].astype(np.float32)
    return out


def compute_shard(
    model: nn.Module,
    spec: ModelSpec,
    settings: Settings,
    start: int,
    paths: Sequence[str],
    labels: Sequence[int | None],
    overlap: bool | None = None,
) -> pa.Table:
    """The rows of images ``start ...`` (one shard), batch by batch from its first image;
    ``overlap``: decode the next batch on a thread meanwhile (default: where :func:`spare_core`)."""
    columns: dict[str, list] = {f.name: [] for f in schema(settings)}
    ahead = spare_core(model) if overlap is None else overlap
    masks = needs_masks(settings.metrics)
    for b, chunk, (x, errors, found) in _decoded(paths, spec, settings.batch_size, ahead=ahead, masks=masks):
        result = explain_batch(model, spec, settings, x, found) if x is not None else {}
        where = {i: k for k, i in enumerate(i for i, e in enumerate(errors) if e is None)}
        for i, path in enumerate(chunk):
            _append_row(columns, settings, start + b + i, path, labels[b + i], errors[i], result, where.get(i))
    return _table(columns, settings)


def spare_core(model: nn.Module) -> bool:
    """Whether work beside the passes runs for free: the model computes on another device, or
    torch leaves a core of this process idle."""
    param = next(model.parameters(), None)
    if param is not None and param.device.type != "cpu":
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > torch.get_num_threads()


def _decoded(
    paths: Sequence[str], spec: ModelSpec, batch_size: int, ahead: bool = True, masks: bool = False
) -> Iterator[tuple[int, list[str], tuple[torch.Tensor | None, list[str | None], np.ndarray | None]]]:
    """(offset, paths, their batch and errors) batch by batch; with ``ahead``, the next batch is
    decoded on a thread while the caller works on the current one, else in turn."""
    chunks = [(b, list(paths[b : b + batch_size])) for b in range(0, len(paths), batch_size)]
    with background(ahead, "interp-decode") as pool:
        pending = pool.submit(_load, chunks[0][1], spec, masks) if chunks else None
        for k, (b, chunk) in enumerate(chunks):
            assert pending is not None  # submitted for every chunk, the first before the loop
            loaded = pending.result()
            if k + 1 < len(chunks):
                pending = pool.submit(_load, chunks[k + 1][1], spec, masks)
            yield b, chunk, loaded


class _InTurn(Executor):
    """An executor that runs each task at once, in the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        done: Future = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed over like a thread's, at .result()
            done.set_exception(exc)
        return done


def background(on_thread: bool, name: str) -> Executor:
    """One worker thread (``on_thread``, where a core is free), else the caller's own thread: the
    same code either overlaps decoding and writing with the passes or does them in turn."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if on_thread else _InTurn()


def _append_row(
    columns: dict[str, list],
    settings: Settings,
    index: int,
    path: str,
    label: int | None,
    error: str | None,
    result: dict[str, Any],
    k: int | None,
) -> None:
    columns["index"].append(index)
    columns["path"].append(path)
    columns["label"].append(label)
    columns["error"].append(error)
    columns["map_height"].append(settings.resolution[0])
    columns["map_width"].append(settings.resolution[1])
    for name in columns:
        if name in ("index", "path", "label", "error", "map_height", "map_width"):
            continue
        value = None if k is None else result[name][k]
        if name.startswith("map_"):
            columns[name].append(None if value is None else value.ravel())
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            columns[name].append(None)
        else:
            columns[name].append(value.item())


def _maps_array(values: list[np.ndarray | None]) -> pa.Array:
    """list<float16> from flat float16 arrays (None: a failed image)."""
    lengths = [0 if v is None else v.size for v in values]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = [v for v in values if v is not None]
    data = np.concatenate(flat) if flat else np.zeros(0, np.float16)
    mask = pa.array([v is None for v in values], type=pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(data, type=pa.float16()), mask=mask)


def _table(columns: dict[str, list], settings: Settings) -> pa.Table:
    sch = schema(settings)
    arrays = [
        _maps_array(columns[f.name])
        if f.name.startswith("map_") and f.name not in ("map_height", "map_width")
        else pa.array(columns[f.name], type=f.type)
        for f in sch
    ]
    return pa.Table.from_arrays(arrays, schema=sch)

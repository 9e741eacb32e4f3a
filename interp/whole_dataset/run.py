"""``explain_dataset``: a whole dataset explained by one model, on this machine or on Ray."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import pyarrow as pa

from ..errors import InterpError
from .job import Images, Pending, Settings, check_settings, folder_images, limited, listed, shard_count, split_images
from .store import done_shards, finish, open_folder, read_results

Progress = Union[bool, Callable[[int, int], None]]


def explain_dataset(
    model: str,
    methods: Sequence[str] = ("grad_cam",),
    *,
    split: str | None = None,
    images: str | os.PathLike | Any = None,
    out: str | os.PathLike | None = None,
    limit: int | None = None,
    resolution: tuple[int, int] | None = None,
    metrics: Sequence[str] = (),
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint: str | None = None,
    batch_size: int = 32,
    shard_size: int = 256,
    engine: str = "local",
    ray_address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    data_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: Progress = True,
    command: str | None = None,
    loaded_model=None,
    models_files: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Predict and explain every image of a split or folder; one row per image.

    Args:
        model: a registry name (interp's, torchvision's, or one you registered).
        methods: attribution methods (interp.methods.METHODS); each map is stored one value per
            pixel (channel maps reduced by max |value|), float16, at ``resolution``.
        split: train, test (val) or sample (the held-out images shipped with interp); default
            test when ``images`` is not given.
        images: a folder of images instead (labelled by their parent folder's name where it is a
            class), or an ``interp.data.ImageList`` (paths and labels, in their order).
        out: the results folder (Parquet shards and _manifest.json); a run into a folder that
            holds some of its shards continues where it stopped. None: a temporary folder.
        limit: the first N images only.
        resolution: (height, width) of the stored maps; default the layer's map size when every
            method is a CAM, else 56 x 56 (never more than the input).
        metrics: "deletion", "insertion": each map's AUC per image (Petsiuk et al.).
        engine: "local" (this process) or "ray" (Ray Data; ``ray_address`` joins a cluster,
            ``actors`` and ``gpus_per_actor`` size the pool).
        progress: a progress bar (True), none (False), or a callable progress(done, total).
        loaded_model (nn.Module | None): the model already loaded (the local engine uses it instead
            of loading).
        columns: read only these columns back (None: all); the files hold every column either way.

    Returns:
        The rows as an Arrow table (``.to_pandas()`` for a DataFrame): index, path, label,
        prediction, probability, map_height, map_width, map_<method>, <metric>_auc_<method>, error.

    Raises:
        InterpError (and its kinds): a bad model, method, split, folder or option.
    """
    if engine not in ("local", "ray"):
        raise InterpError(f"engine must be 'local' or 'ray', not {engine!r}")
    from ..hardware import resolve_device
    from ..models import get_spec, load_model, load_models_files

    load_models_files(list(models_files))
    spec = get_spec(model)
    found = limited(_images(spec, split, images, data_dir), limit)
    local_device = resolve_device(device) if engine == "local" else "cpu"  # Ray's actors choose their own
    net = loaded_model if loaded_model is not None else load_model(model, checkpoint, device=local_device)
    settings = _settings(
        net,
        spec,
        methods,
        metrics=tuple(metrics),
        layer=layer,
        resolution=resolution,
        options={k: dict(v) for k, v in (options or {}).items()},
        checkpoint=checkpoint,
        batch_size=batch_size,
        shard_size=shard_size,
    )
    command = command or f"interp.explain_dataset({model!r}, {list(methods)!r}, ...)"
    ray_options = dict(address=ray_address, actors=actors, gpus_per_actor=gpus_per_actor, models_files=models_files)
    folder = tempfile.TemporaryDirectory(prefix="interp-dataset-") if out is None else contextlib.nullcontext(out)
    with folder as where:
        return _run(Path(where), net, spec, settings, found, command, engine, progress, ray_options, columns)


def _settings(
    net, spec, methods: Sequence[str], resolution: tuple[int, int] | None, layer: str | None, **given: Any
) -> Settings:
    """The run's settings, checked; the default resolution read from the model."""
    from .compute import default_resolution

    size = (resolution[0], resolution[1]) if resolution else default_resolution(net, spec, methods, layer)
    settings = Settings(model=spec.name, methods=tuple(methods), resolution=size, layer=layer, **given)
    check_settings(settings)
    return settings


def _images(spec, split: str | None, folder, data_dir) -> Images:
    if folder is not None and split is not None:
        raise InterpError("give a split or a folder of images, not both")
    if isinstance(folder, Images):
        return folder
    if hasattr(folder, "paths") and hasattr(folder, "labels"):
        return listed(folder, spec.class_names)
    if folder is not None:
        return folder_images(folder, spec.class_names)
    return split_images(spec, split or "test", data_dir)


def held_out_folder(model: str, n: int, methods: Sequence[str]) -> Path:
    """Where the dashboard keeps a model's held-out run: under the cache folder ($INTERP_CACHE_DIR),
    named after the model, N, the methods and the data root (whose full split, or its absence,
    decides the images)."""
    import hashlib

    from ..data import cache_dir, data_root
    from ..models import get_spec

    root = data_root().resolve()
    where = f"{root}:{(root / {'pacs': 'PACS'}.get(get_spec(model).dataset, 'cifar10')).is_dir()}"
    digest = hashlib.sha1(where.encode()).hexdigest()[:8]
    return cache_dir() / "dataset" / f"{model.replace('/', '_')}-n{n}-{'+'.join(methods)}-{digest}"


def held_out_runs() -> list[Path]:
    """The finished runs kept by :func:`held_out_folder`, by name."""
    from ..data import cache_dir
    from .store import read_manifest

    found = []
    for folder in sorted((cache_dir() / "dataset").glob("*")):
        try:
            if read_manifest(folder).get("finished"):
                found.append(folder)
        except (InterpError, OSError, ValueError):  # not a run, or a manifest being written
            continue
    return found


def explain_held_out(
    model: str, n: int, methods: Sequence[str] = ("grad_cam",), out: str | os.PathLike | None = None, **kwargs: Any
) -> pa.Table:
    """:func:`explain_dataset` on ``n`` held-out images spread over the model's classes (the full
    split under the data root, else the shipped sample), into :func:`held_out_folder` by default.

    Raises:
        DataError: the task has no held-out images here (ImageNet, a user's model).
    """
    from ..data import held_out_sample
    from ..models import get_spec

    found, note = held_out_sample(get_spec(model), n, kwargs.get("data_dir"))
    source = f"{len(found)} held-out images spread over the classes" + (
        " (the sample that ships with interp)" if note else " (the full held-out split)"
    )
    images = listed(found, found.class_names, source)
    return explain_dataset(model, methods, images=images, out=out or held_out_folder(model, n, methods), **kwargs)


def _run(
    out: Path,
    net,
    spec,
    settings: Settings,
    images: Images,
    command: str,
    engine: str,
    progress: Progress,
    ray_options: dict,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    manifest = open_folder(out, spec, settings, images, command, engine)
    done = done_shards(out, images, settings)
    pending = [i for i in range(shard_count(len(images), settings.shard_size)) if i not in done]
    already = sum(len(images.shard(i, settings.shard_size)[1]) for i in done)
    advance, close = _progress(progress, already, len(images), f"{spec.name}: {', '.join(settings.methods)}")
    started = time.perf_counter()
    try:
        if engine == "ray":
            from .engine_ray import run_ray

            run_ray(Pending(spec, settings, images, out, pending, advance), **ray_options)
        else:
            from .engine_local import run_local

            run_local(net, Pending(spec, settings, images, out, pending, advance))
    finally:
        close()
    finish(out, manifest, time.perf_counter() - started, engine)
    return read_results(out, columns)


def _progress(progress: Progress, already: int, total: int, what: str):
    """(advance(n), close()) for a tqdm bar (images/s, time left), a callback, or nothing."""
    if callable(progress):
        state = {"done": already}
        progress(already, total)

        def advance(n: int) -> None:
            state["done"] += n
            progress(state["done"], total)

        return advance, lambda: None
    if not progress:
        return (lambda n: None), (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=already, unit="img", desc=what, smoothing=0.1)
    return bar.update, bar.close

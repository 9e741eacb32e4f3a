"""What a dataset run is: its settings, its images in a fixed order, and its shards.

Shard ``i`` holds the images ``[i * shard_size, (i + 1) * shard_size)`` of that order, and
within a shard images go through the model in batches of ``batch_size`` counted from the
shard's first image, so every engine (in-process or Ray) computes exactly the same batches and
therefore exactly the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import DataError, InterpError
from ..models.registry import ModelSpec
from .metrics import METRICS, is_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_SIDE = 56  # maps of input-resolution methods are stored at most this large per side


@dataclass(frozen=True)
class Settings:
    """Everything that decides the numbers of a run (two runs with equal settings and images
    write identical shards, so a run resumes only into a folder of equal settings)."""

    model: str
    methods: tuple[str, ...]
    resolution: tuple[int, int]  # (height, width) of the stored maps
    metrics: tuple[str, ...] = ()  # per image and method (interp.whole_dataset.metrics.METRICS)
    layer: str | None = None  # for the CAM methods; None: the model's default layer
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per method, explain's keywords
    checkpoint: str | None = None
    batch_size: int = 32  # images per forward/backward pass
    shard_size: int = 256  # images per Parquet file: the unit a killed run loses at most
    metric_steps: int = 20  # points on each deletion/insertion curve
    reduction: str = "absmax"  # how a channel map (C, H, W) becomes one value per pixel

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["methods"], d["metrics"], d["resolution"] = list(self.methods), list(self.metrics), list(self.resolution)
        d["options"] = {k: dict(v) for k, v in self.options.items()}
        return d


@dataclass(frozen=True)
class Images:
    """The images of a run, in the order that fixes the shards; labels None where unknown."""

    paths: tuple[str, ...]
    labels: tuple[int | None, ...]
    class_names: tuple[str, ...]
    source: str  # where they come from, for the manifest ('split test of cifar10', a folder, ...)

    def __len__(self) -> int:
        return len(self.paths)

    def shard(self, i: int, size: int) -> tuple[int, list[str], list[int | None]]:
        """(first index, paths, labels) of shard i."""
        start = i * size
        return start, list(self.paths[start : start + size]), list(self.labels[start : start + size])

    def digest(self) -> str:
        h = hashlib.sha1()
        for p, y in zip(self.paths, self.labels):
            h.update(f"{p}\t{y}\n".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Pending:
    """What an engine computes: the run's shards still missing, and where and how to file them."""

    spec: ModelSpec
    settings: Settings
    images: Images
    out: Path
    shards: Sequence[int]
    advance: Callable[[int], None]  # called with each filed shard's image count (the progress bar)

    def parts(self) -> tuple[ModelSpec, Settings, Images, Path, Sequence[int], Callable[[int], None]]:
        """(spec, settings, images, out, shards, advance)."""
        return self.spec, self.settings, self.images, self.out, self.shards, self.advance


def shard_count(n: int, size: int) -> int:
    return (n + size - 1) // size


def fingerprint(settings: Settings, images: Images) -> str:
    """One string that changes when anything that decides the results changes."""
    text = json.dumps(settings.as_dict(), sort_keys=True, default=str) + images.digest()
    return hashlib.sha1(text.encode()).hexdigest()


def folder_images(folder: str | os.PathLike, class_names: Sequence[str]) -> Images:
    """Every image file under ``folder`` (recursively, as absolute paths), sorted by relative path;
    labelled by the innermost folder on its path named after one of the model's classes
    (``PACS/<domain>/<class>/`` serves both PACS tasks), else None.

    Raises:
        DataError: no such folder, or no image files in it.
    """
    root = Path(folder).absolute()  # absolute paths: Ray's workers and the dashboard read them from elsewhere
    if not root.is_dir():
        raise DataError(f"no folder of images at {root}")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not is_mask(p)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    index = {c: i for i, c in enumerate(class_names)}
    labels = tuple(_folder_label(p.relative_to(root).parts[:-1], index) for p in files)
    return Images(tuple(str(p) for p in files), labels, tuple(class_names), f"folder {root}")


def _folder_label(folders: Sequence[str], index: Mapping[str, int]) -> int | None:
    for name in reversed(folders):
        if name in index:
            return index[name]
    return None


def split_images(spec: ModelSpec, split: str, data_dir: str | os.PathLike | None = None) -> Images:
    """The model's train / test (val) split from the data root, or ``sample``: the held-out
    images that ship with interp.

    Raises:
        DataError: the split is not under the data root, or the task has no dataset (ImageNet).
    """
    from ..data import dataset_split, shipped_split

    if split == "sample":
        found, where = shipped_split(spec), f"the shipped held-out sample of {spec.dataset}"
    elif split in ("train", "val", "test"):
        found, where = dataset_split(spec, split, data_dir), f"split {split} of {spec.dataset}"
    else:
        raise InterpError(f"split must be train, val, test or sample, not {split!r}")
    return Images(
        tuple(str(Path(p).absolute()) for p in found.paths),
        tuple(int(y) for y in found.labels),
        tuple(found.class_names),
        where,
    )


def listed(images: Any, class_names: Sequence[str], source: str = "a list of images") -> Images:
    """An ImageList (interp.data) as the images of a run, in its order."""
    return Images(
        tuple(str(Path(p).absolute()) for p in images.paths),
        tuple(None if y is None else int(y) for y in images.labels),
        tuple(class_names),
        source,
    )


def limited(images: Images, limit: int | None) -> Images:
    """The first ``limit`` images (all when None)."""
    if limit is None:
        return images
    if limit < 1:
        raise InterpError(f"--limit must be at least 1, not {limit}")
    return Images(images.paths[:limit], images.labels[:limit], images.class_names, images.source)


def check_settings(settings: Settings) -> None:
    """Refuse what cannot run, before any work: unknown methods or metrics, bad sizes.

    Raises:
        InterpError: what is wrong and what to do.
    """
    from ..methods.explain import METHODS

    unknown = [m for m in settings.methods if m not in METHODS]
    if not settings.methods or unknown:
        raise InterpError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    bad = [m for m in settings.metrics if m not in METRICS]
    if bad:
        raise InterpError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
    h, w = settings.resolution
    if h < 1 or w < 1:
        raise InterpError(f"--resolution must be two positive sides H,W, not {h},{w}")
    if settings.batch_size < 1 or settings.shard_size < 1:
        raise InterpError("batch and shard sizes must be at least 1")

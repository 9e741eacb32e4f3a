"""Datasets under the data root: PACS and CIFAR-10 as ImageLists, their splits, one sampler of
spread indices, and the decoded-image cache.

Data root: ``--data-dir``, else ``$INTERP_DATA_DIR``, else ``./data``. Layout:
``PACS/<domain>/<class>/*.jpg``, ``cifar10/{train,test}/<class>/*.jpg`` (or torchvision's
``cifar10/cifar-10-batches-py``, written out once as that tree), ``zebra.jpg``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError, ParameterError
from ..models.registry import CIFAR10_CLASSES, PACS_CLASSES, PACS_DOMAINS, ModelSpec
from .images import load_image, resize_center_crop

PACS_VAL_FRACTION = 0.2
# Side of the images as each dataset stores them: splits are decoded (and cached) at this size.
NATIVE_SIZE = {"pacs": 227, "cifar10": 32}


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $INTERP_DATA_DIR, else ./data."""
    return Path(data_dir or os.environ.get("INTERP_DATA_DIR") or "data")


def cache_dir() -> Path:
    """Where decoded datasets are cached: $INTERP_CACHE_DIR, else ~/.cache/interp."""
    return Path(os.environ.get("INTERP_CACHE_DIR") or Path.home() / ".cache" / "interp")


@dataclass
class ImageList:
    """Files and integer labels of one split, in a fixed order."""

    paths: list[Path]
    labels: list[int]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageList":
        """The images at ``indices``, in that order."""
        return ImageList([self.paths[i] for i in indices], [self.labels[i] for i in indices], self.class_names)


def spread_indices(total: int, k: int) -> np.ndarray:
    """Up to ``k`` indices spread evenly over ``range(total)``, first and last included, sorted.

    The splits are ordered by class, so an even spread keeps every class in a small sample
    (training smoke runs, the dashboard's galleries and held-out tables).
    """
    if total <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, total - 1, num=min(k, total)).round().astype(np.int64))


def pacs_files(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str, str]]:
    """All PACS images as (path, domain, class), sorted by path."""
    root = data_root(data_dir) / "PACS"
    if not root.is_dir():
        raise DataError(
            f"PACS not found at {root}. Clone the PACS images (see README, 'Data') and "
            "point --data-dir or INTERP_DATA_DIR at the folder that holds PACS/"
        )
    files = []
    for domain in PACS_DOMAINS:
        for cls in PACS_CLASSES:
            folder = root / domain / cls
            if not folder.is_dir():
                raise DataError(f"PACS is incomplete: {folder} is missing")
            files += [
                (p, domain, cls) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")
            ]
    return files


def _split_key(relative: str) -> str:
    return hashlib.sha1(relative.encode()).hexdigest()


def pacs_split(split: str, label_type: str, data_dir: str | os.PathLike | None = None) -> ImageList:
    """PACS train or val split, labelled by domain or by class.

    The split is stratified over the 28 (domain, class) groups: within each group the files
    are ordered by the SHA-1 of their path relative to PACS/, and the first 20% (rounded)
    form the validation split. It depends on nothing but the file names, so it is the same
    on every machine and for both label types.
    """
    if split not in ("train", "val"):
        raise ParameterError(f"PACS split must be 'train' or 'val', not {split!r}")
    if label_type not in ("domain", "class"):
        raise ParameterError(f"label_type must be 'domain' or 'class', not {label_type!r}")
    root = data_root(data_dir) / "PACS"
    groups: dict[tuple[str, str], list[Path]] = {}
    for path, domain, cls in pacs_files(data_dir):
        groups.setdefault((domain, cls), []).append(path)
    names = PACS_DOMAINS if label_type == "domain" else PACS_CLASSES
    paths, labels = [], []
    for (domain, cls), group in groups.items():
        ordered = sorted(group, key=lambda p: _split_key(p.relative_to(root).as_posix()))
        n_val = round(PACS_VAL_FRACTION * len(ordered))
        chosen = ordered[:n_val] if split == "val" else ordered[n_val:]
        label = names.index(domain if label_type == "domain" else cls)
        paths += chosen
        labels += [label] * len(chosen)
    return ImageList(paths, labels, names)


def cifar10_split(split: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> ImageList:
    """CIFAR-10 train (50,000) or test (10,000) from the image-folder tree ``cifar10/<split>/<class>/``.

    Where only torchvision's binary release is under ``cifar10/`` (or ``download`` fetches it),
    it is written out once as that tree (lossless PNG), so a split is always an ImageList.

    Raises:
        DataError: neither is present and the download is off or fails.
    """
    if split not in ("train", "test"):
        raise ParameterError(f"CIFAR-10 split must be 'train' or 'test', not {split!r}")
    root = data_root(data_dir) / "cifar10"
    tree = root / split
    if not tree.is_dir():
        _export_cifar10_release(root, split, download)
    paths, labels = [], []
    for label, cls in enumerate(CIFAR10_CLASSES):
        folder = tree / cls
        if not folder.is_dir():
            raise DataError(f"CIFAR-10 is incomplete: {folder} is missing")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        paths += files
        labels += [label] * len(files)
    return ImageList(paths, labels, CIFAR10_CLASSES)


def _export_cifar10_release(root: Path, split: str, download: bool) -> None:
    """Write torchvision's binary CIFAR-10 release (downloaded when asked) as ``root/<split>/<class>/*.png``."""
    from torchvision.datasets import CIFAR10
    from tqdm.auto import tqdm

    try:
        release = CIFAR10(str(root), train=split == "train", download=download)
    except Exception as exc:
        hint = (
            "the download failed: are you offline? "
            if download
            else "fetch it with interp.data.cifar10_split(split, download=True), or "
        )
        raise DataError(
            f"CIFAR-10 not found under {root} ({exc}); {hint}put the image-folder tree "
            "cifar10/{train,test}/<class>/*.jpg there (see README, 'Data')"
        ) from exc
    partial = root / f"{split}.partial"
    for cls in CIFAR10_CLASSES:
        (partial / cls).mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(release)), desc=f"writing CIFAR-10 {split} as PNG files (once)", leave=False):
        image, label = release[i]
        image.save(partial / CIFAR10_CLASSES[label] / f"{i:05d}.png")
    os.replace(partial, root / split)  # a run killed mid-way leaves no half tree behind


def dataset_split(
    spec: ModelSpec, split: str, data_dir: str | os.PathLike | None = None, download: bool = False
) -> ImageList:
    """The train or held-out split of a spec's task ('val' and 'test' both mean held-out)."""
    held_out = split in ("val", "test")
    if spec.dataset == "pacs":
        return pacs_split("val" if held_out else "train", spec.task.split("_", 1)[1], data_dir)
    if spec.dataset == "cifar10":
        return cifar10_split("test" if held_out else "train", data_dir, download)
    raise DataError(_no_data(spec))


def _no_data(spec: ModelSpec) -> str:
    """Why a task has no dataset here (ImageNet, or a user's own classes)."""
    if spec.task == "user":
        return f"{spec.name} is your model: interp has no images of its classes to train or evaluate it on"
    return f"{spec.name} is an ImageNet model: there is no ImageNet data to train or evaluate it on here"


_DECODED: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # in-process copy of the disk cache


def decode_split(images: ImageList, size: int, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into uint8 (N, 3, size, size) and int64 labels, cached on disk.

    Later calls (and later runs) read the cache, so training batches come from memory and
    the JPEG decoder is never the bottleneck.
    """
    ident = "\n".join(f"{p}:{y}" for p, y in zip(images.paths, images.labels))
    n = len(images)
    key = hashlib.sha1(f"{size}\n{ident}".encode()).hexdigest()[:16]
    if key in _DECODED:
        return _DECODED[key]
    path = cache_dir() / f"decoded-{key}.pt"
    if path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
            _DECODED[key] = cached["x"], cached["y"]
            return _DECODED[key]
        except Exception:
            pass  # a damaged cache is rebuilt below
    from tqdm.auto import tqdm

    x = torch.empty((n, 3, size, size), dtype=torch.uint8)
    y = torch.empty(n, dtype=torch.int64)
    for i in tqdm(range(n), desc=f"decoding {n} images (once)", disable=not progress, leave=False):
        img, label = load_image(images.paths[i]), images.labels[i]
        arr = np.asarray(resize_center_crop(img, size), dtype=np.uint8)
        x[i] = torch.from_numpy(arr.copy()).permute(2, 0, 1)
        y[i] = label
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"x": x, "y": y}, tmp)
    os.replace(tmp, path)
    _DECODED[key] = x, y
    return x, y

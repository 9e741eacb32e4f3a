"""The images the dashboard and the command line offer: the zebra photo, a few labelled
held-out images of each dataset for the picker, and held-out batches ready for a model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..models.registry import CIFAR10_CLASSES, PACS_CLASSES, PACS_DOMAINS, ModelSpec
from .datasets import cifar10_split, data_root, held_out_sample, pacs_split
from .images import load_image, preprocess, resize_center_crop

ZEBRA_URL = "https://raw.githubusercontent.com/TDT4265-tutorial/TDT4265_StarterCode/main/assignment3/images/zebra.jpg"


def sample_image_path(data_dir: str | os.PathLike | None = None) -> tuple[Path, str | None]:
    """The zebra photo (fetched once into the data root if missing), else matplotlib's sample photo.

    Returns:
        (path, message): message is None when the zebra is used, else says why it is not.
    """
    root = data_root(data_dir)
    zebra = root / "zebra.jpg"
    if zebra.is_file():
        return zebra, None
    try:
        import urllib.request

        with urllib.request.urlopen(ZEBRA_URL, timeout=10) as response:
            data = response.read()
        load_image(data)
        root.mkdir(parents=True, exist_ok=True)
        zebra.write_bytes(data)
        return zebra, None
    except Exception as exc:  # offline, read-only root, bad download
        import matplotlib

        fallback = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        return fallback, (f"zebra.jpg is not in {root} and could not be fetched from {ZEBRA_URL} "
                          f"({exc}); showing matplotlib's sample photo instead")


def sample_images(data_dir: str | os.PathLike | None = None, per_dataset: int = 8) -> dict[str, Path]:
    """A few held-out images from the data root's datasets, labelled for a picker.

    PACS: one validation image of each class, cycling over the domains; CIFAR-10: the first
    test image of each class. Datasets that are absent are skipped.
    """
    found: dict[str, Path] = {}
    try:
        val = pacs_split("val", "class", data_dir)
        root = data_root(data_dir) / "PACS"
        for label, cls in enumerate(PACS_CLASSES[:per_dataset]):
            domain = PACS_DOMAINS[label % len(PACS_DOMAINS)]
            path = next(p for p, y in zip(val.paths, val.labels)
                        if y == label and p.relative_to(root).parts[0] == domain)
            found[f"PACS {domain} / {cls} ({path.name})"] = path
    except (DataError, StopIteration):
        pass
    try:
        test = cifar10_split("test", data_dir)
        for label, cls in enumerate(CIFAR10_CLASSES[:per_dataset]):
            path = test.paths[test.labels.index(label)]
            found[f"CIFAR-10 test / {cls} ({path.name})"] = path
    except DataError:
        pass
    return found


@dataclass
class HeldOutBatch:
    """Held-out images ready for a model: the preprocessed batch, the true labels, and the
    pictures as the model sees them (resized and centre-cropped, uint8 RGB) to draw maps on."""

    x: torch.Tensor  # N x 3 x S x S, normalised for the spec
    labels: np.ndarray  # (N,) int64
    pictures: list[np.ndarray]  # N x (S, S, 3) uint8
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> torch.Tensor:
        """The i-th image as a batch of one (what the single-image methods take)."""
        return self.x[i:i + 1]


def held_out_batch(spec: ModelSpec, n: int, data_dir: str | os.PathLike | None = None) -> HeldOutBatch:
    """:func:`held_out_sample` loaded and preprocessed for the spec's model.

    Raises:
        DataError: the dataset is not under the data root.
    """
    images = held_out_sample(spec, n, data_dir)
    pictures = [resize_center_crop(load_image(path), spec.input_size) for path in images.paths]
    x = torch.cat([preprocess(p, spec) for p in pictures]) if pictures else torch.zeros(0, 3, spec.input_size,
                                                                                          spec.input_size)
    return HeldOutBatch(x, np.asarray(images.labels, dtype=np.int64),
                        [np.asarray(p, dtype=np.uint8) for p in pictures], images.class_names)

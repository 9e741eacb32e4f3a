"""A planted shortcut: one class's training images carry a small coloured square (after Adebayo et
al., ICLR 2022, "Post hoc explanations may be ineffective for detecting unknown spurious correlation").

A model trained on the planted split learns that the square means the class. The held-out images of
the other classes, with the square planted at a known place, then test two things: whether the
model took the shortcut (``flip_rate``) and whether an explanation's map points at the square
(their boxes and masks are the ground truth of the localisation metrics).

Boxes are (top, left, bottom, right) in pixels, bottom and right exclusive (Python slices).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import ParameterError
from ..models.registry import CIFAR10_CLASSES, ModelSpec
from .datasets import NATIVE_SIZE, ImageList, dataset_split, decode_split, spread_indices

# The resolution ``Shortcut.side`` is given at: CIFAR-10's own, which the planted split is decoded at.
SHORTCUT_SIZE = NATIVE_SIZE["cifar10"]
# Independent random streams of one Shortcut seed: which training images carry the patch, where it
# sits on them, and where it sits on the held-out images.
_DRAW, _TRAIN_BOXES, _TEST_BOXES = 0, 1, 2


@dataclass(frozen=True)
class Shortcut:
    """Which class carries the patch, how often, and what the patch is.

    The defaults: horse, a class the clean model learns well (table2_cnn_cifar10: 83%) and that
    few other test images are mistaken for (190 of 9,000), so a flip to horse is the patch's doing;
    half of its training images, so the patch is a strong cue but the class stays learnable
    without it; a 5 x 5 square (2.4% of a 32 x 32 image), small against the object; magenta, a
    colour natural CIFAR-10 images almost never hold (2 of the 50,000 training images have a pixel
    with red and blue >= 230 and green <= 40), so the patch is never part of the content.
    """

    planted_class: int = 7  # CIFAR-10's "horse"
    p: float = 0.5  # the chance that one training image of the planted class carries the patch
    side: int = 5  # pixels at SHORTCUT_SIZE (32); scaled with the images at other sizes
    colour: tuple[int, int, int] = (255, 0, 255)  # RGB, uint8
    seed: int = 0  # which images carry the patch and where it sits

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ParameterError(f"the shortcut's probability p must be in [0, 1], got {self.p}")
        if not 1 <= self.side <= SHORTCUT_SIZE:
            raise ParameterError(f"the patch side must be 1 to {SHORTCUT_SIZE} pixels, got {self.side}")
        if len(self.colour) != 3 or any(not 0 <= int(c) <= 255 for c in self.colour):
            raise ParameterError(f"the patch colour must be three values 0-255 (RGB), got {self.colour}")
        object.__setattr__(self, "colour", tuple(int(c) for c in self.colour))  # a list from JSON

    def side_at(self, size: int) -> int:
        """The patch side on images of ``size`` pixels: ``side`` scaled from 32, at least 1 and at most ``size``."""
        return min(size, max(1, round(self.side * size / SHORTCUT_SIZE)))


def patch_boxes(n: int, side: int, size: int | tuple[int, int], seed: int | Sequence[int] = 0) -> np.ndarray:
    """``n`` seeded random positions of a ``side`` x ``side`` square fully inside the image.

    Args:
        n: how many boxes.
        side: the square's side in pixels.
        size: the image side, or (height, width).
        seed: the random stream (an int or a sequence of ints, as numpy's default_rng takes).

    Returns:
        (n, 4) int64 array of (top, left, bottom, right), bottom and right exclusive; every top-left
        position that keeps the square inside is equally likely.

    Raises:
        ParameterError: a side that does not fit the image, or a negative n.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if n < 0 or not 1 <= side <= min(height, width):
        raise ParameterError(f"cannot place {n} squares of side {side} inside a {height} x {width} image")
    rng = np.random.default_rng(seed)
    top = rng.integers(0, height - side + 1, size=n)
    left = rng.integers(0, width - side + 1, size=n)
    return np.stack([top, left, top + side, left + side], axis=1).astype(np.int64)


def _hw(images: torch.Tensor) -> tuple[int, int]:
    return int(images.shape[-2]), int(images.shape[-1])


def box_masks(boxes: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool masks, True inside each box."""
    height, width = (size, size) if isinstance(size, int) else size
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    top, left, bottom, right = (b[:, i, None, None] for i in range(4))
    return (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)


def plant(
    images: torch.Tensor, boxes: np.ndarray | torch.Tensor, colour: tuple[int, int, int] = (255, 0, 255)
) -> torch.Tensor:
    """A copy of uint8 images with a solid square of ``colour`` in each one's box.

    Args:
        images: uint8 (N, 3, H, W).
        boxes: (N, 4) (top, left, bottom, right), one per image.
        colour: RGB, 0-255.

    Returns:
        The planted uint8 (N, 3, H, W) images; ``images`` is left as it is.

    Raises:
        ParameterError: images that are not uint8 (N, 3, H, W), or a box count that differs from N.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ParameterError(f"plant takes uint8 (N, 3, H, W) images, not {images.dtype} {tuple(images.shape)}")
    b = np.asarray(boxes.cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.int64).reshape(-1, 4)
    if len(b) != len(images):
        raise ParameterError(f"{len(images)} images but {len(b)} boxes")
    mask = torch.from_numpy(box_masks(b, _hw(images))).to(images.device)[:, None]
    paint = torch.tensor(colour, dtype=torch.uint8, device=images.device).view(1, 3, 1, 1)
    return torch.where(mask, paint, images)


@dataclass
class PlantedSet:
    """A training split with the patch planted into some images of one class."""

    images: torch.Tensor  # uint8 (N, 3, H, W), every image of the split, the planted ones changed
    labels: torch.Tensor  # int64 (N,), unchanged
    indices: np.ndarray  # which images carry the patch (positions in the split, ascending)
    boxes: np.ndarray  # (len(indices), 4) where the patch sits on each of them
    shortcut: Shortcut


def planted_indices(labels: torch.Tensor | np.ndarray, shortcut: Shortcut) -> np.ndarray:
    """Positions of the images that carry the patch: a Bernoulli(p) draw over the planted class's
    images, seeded by the shortcut's seed, ascending."""
    y = np.asarray(labels)
    candidates = np.flatnonzero(y == shortcut.planted_class)
    draw = np.random.default_rng([shortcut.seed, _DRAW]).random(len(candidates)) < shortcut.p
    return candidates[draw]


def planted_training_set(images: torch.Tensor, labels: torch.Tensor, shortcut: Shortcut) -> PlantedSet:
    """The training split with the patch planted on a seeded Bernoulli(p) draw of the planted
    class's images, each at a seeded random position (``interp.data.decode_split``'s tensors).

    Args:
        images: uint8 (N, 3, S, S), left as they are (the decoded cache is shared).
        labels: int64 (N,).
        shortcut: what to plant, where and how often.

    Returns:
        The PlantedSet: all N images, and which were planted where.
    """
    idx = planted_indices(labels, shortcut)
    size = _hw(images)
    boxes = patch_boxes(len(idx), shortcut.side_at(min(size)), size, [shortcut.seed, _TRAIN_BOXES])
    out = images.clone()
    if len(idx):
        where = torch.from_numpy(idx)
        out[where] = plant(images[where], boxes, shortcut.colour)
    return PlantedSet(out, labels, idx, boxes, shortcut)


@dataclass
class PatchedSet:
    """Held-out images of the classes other than the planted one, clean and with the patch."""

    clean: torch.Tensor  # uint8 (N, 3, H, W)
    images: torch.Tensor  # the same with the patch
    labels: torch.Tensor  # int64 (N,), their true classes
    boxes: np.ndarray  # (N, 4) where the patch sits on each
    indices: np.ndarray  # their positions in the held-out split
    class_names: tuple[str, ...]
    shortcut: Shortcut

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool: True on the patch (the localisation metrics' ground truth)."""
        return box_masks(self.boxes, _hw(self.images))

    @property
    def relative_paths(self) -> list[str]:
        """Where each image goes in a folder: ``<class>/<position in the held-out split>.png``."""
        return [f"{self.class_names[int(y)]}/{int(i):05d}.png" for y, i in zip(self.labels, self.indices)]


def patched_test_set(
    source: ModelSpec | ImageList | tuple[torch.Tensor, torch.Tensor],
    shortcut: Shortcut,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> PatchedSet:
    """The held-out images not of the planted class, with the patch at a seeded random position.

    Args:
        source: a CIFAR-10 entry (its held-out split: the test set), an ImageList (decoded at 32
            pixels), or decoded uint8 (N, 3, H, W) images with their labels (CIFAR-10's classes).
        shortcut: the planted class, the patch and the seed of its positions.
        data_dir: the data root for an entry (None: the default).
        limit: N images spread evenly over them (so over the classes), or None for all (CIFAR-10:
            9,000).
        progress: show the one-off decoding progress bar.

    Returns:
        The PatchedSet (clean and patched images, labels, boxes, masks).

    Raises:
        DataError: the dataset is missing.
    """
    if isinstance(source, ModelSpec):
        source = dataset_split(source, "test", data_dir)
    if isinstance(source, ImageList):
        x, y = decode_split(source, SHORTCUT_SIZE, progress=progress)
        names = source.class_names
    else:
        (x, y), names = source, CIFAR10_CLASSES
    keep = np.flatnonzero(np.asarray(y.cpu()) != shortcut.planted_class)
    if limit is not None:
        keep = keep[spread_indices(len(keep), limit)]
    where = torch.from_numpy(keep).to(x.device)
    clean, labels = x[where], y[where]
    size = _hw(clean)
    boxes = patch_boxes(len(keep), shortcut.side_at(min(size)), size, [shortcut.seed, _TEST_BOXES])
    return PatchedSet(clean, plant(clean, boxes, shortcut.colour), labels, boxes, keep, tuple(names), shortcut)


def write_patched_folder(patched: PatchedSet, folder: str | os.PathLike) -> Path:
    """Write the patched images as ``folder/<class>/<NNNNN>.png`` (lossless), each patch's mask as
    ``<NNNNN>.mask.png`` beside its image (white on the patch: what a dataset run's localisation
    metrics read) and ``folder/boxes.json``: relative path -> [top, left, bottom, right].

    Returns:
        The path of boxes.json.
    """
    root = Path(folder)
    paths = patched.relative_paths
    for rel, image in zip(paths, patched.images):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(target)
    for rel, mask in zip(paths, patched.masks):
        Image.fromarray(mask.astype(np.uint8) * 255).save((root / rel).with_name(Path(rel).stem + ".mask.png"))
    boxes = {rel: [int(v) for v in box] for rel, box in zip(paths, patched.boxes)}
    out = root / "boxes.json"
    out.write_text(json.dumps(boxes, indent=1) + "\n")
    return out


@torch.no_grad()
def _predictions(
    model: nn.Module, x: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor] | None, batch_size: int
) -> torch.Tensor:
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        xb = (prepare(xb) if prepare is not None else xb).to(device)
        out.append(model(xb).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def flip_rate(
    model: nn.Module,
    clean_x: torch.Tensor,
    patched_x: torch.Tensor,
    planted_class: int,
    *,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 256,
) -> float:
    """The share of images not predicted as the planted class when clean that are once patched.

    Args:
        model: the classifier (run in eval mode; its mode is restored).
        clean_x, patched_x: the same images without and with the patch, in the same order.
        planted_class: the class the patch was planted on in training.
        prepare: turns a batch into the model's input (normalisation, dtype); None: as given.
            Batches are moved to the model's device after it.
        batch_size: images per forward pass.

    Returns:
        flipped / eligible; NaN where no clean image is predicted as another class.

    Raises:
        ParameterError: the two sets differ in length.
    """
    if len(clean_x) != len(patched_x):
        raise ParameterError(f"{len(clean_x)} clean images but {len(patched_x)} patched ones")
    was_training = model.training
    model.eval()
    try:
        before = _predictions(model, clean_x, prepare, batch_size)
        after = _predictions(model, patched_x, prepare, batch_size)
    finally:
        model.train(was_training)
    eligible = before != planted_class
    if not bool(eligible.any()):
        return float("nan")
    return float((after[eligible] == planted_class).float().mean())

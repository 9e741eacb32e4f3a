"""Concept sets for TCAV built from what interp has: the four PACS domains as styles, stripes cut
from the zebra photo, synthetic colour and texture patches, random held-out images for the random
sets, and a user's own folder of images.

Every builder returns images preprocessed for a model spec (N x 3 x H x W at its input size,
normalised with its mean and std) and chooses them deterministically: by even spread over a
split, or with a seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageColor

from ..data.datasets import pacs_split, spread_indices
from ..data.images import load_image, normalize, preprocess
from ..data.samples import _shipped, held_out_images, zebra_path
from ..errors import DataError, ImageError, ParameterError
from ..models.registry import PACS_CLASSES, PACS_DOMAINS, ModelSpec, get_spec

# Where the zebra's stripes are in zebra.jpg, as fractions of its width and height (left, top,
# right, bottom): its neck, flank and rump, clear of the head, the legs and the grass.
ZEBRA_STRIPES_BOX = (76 / 224, 90 / 224, 178 / 224, 140 / 224)
TEXTURES = ("stripes", "checkerboard", "dots")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _spec(spec: ModelSpec | str) -> ModelSpec:
    return get_spec(spec) if isinstance(spec, str) else spec


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n (images per set) must be a whole number >= 1, not {n!r}")
    return int(n)


def _batch(pictures: Sequence[Image.Image], spec: ModelSpec) -> torch.Tensor:
    return torch.cat([preprocess(p, spec) for p in pictures])


def _uint8_batch(arrays: np.ndarray, spec: ModelSpec) -> torch.Tensor:
    """(N, H, W, 3) values in 0..255 -> the normalised N x 3 x H x W batch."""
    u8 = np.clip(np.round(arrays), 0, 255).astype(np.uint8)
    return normalize(torch.from_numpy(u8).permute(0, 3, 1, 2).contiguous(), spec)


def pacs_style_sets(
    spec: ModelSpec | str, n: int = 20, data_dir: str | os.PathLike | None = None
) -> dict[str, torch.Tensor]:
    """The four PACS domains as style concepts: up to ``n`` validation images of each domain,
    spread evenly over its classes.

    From the full PACS under the data root where it is there, else from the sample shipped with
    interp (14 images per domain: 2 per class).

    Returns:
        {domain: N x 3 x H x W}, preprocessed for ``spec`` (a ModelSpec or a registry name).
    """
    spec, n = _spec(spec), _count(n)
    try:
        val = pacs_split("val", "class", data_dir)
    except DataError:
        val = _shipped("pacs", "class", PACS_CLASSES)
    sets = {}
    for domain in PACS_DOMAINS:
        # the split lists each domain's images class by class, so an even spread mixes the classes
        paths = [p for p in val.paths if p.parts[-3] == domain]
        sets[domain] = _batch([load_image(paths[i]) for i in spread_indices(len(paths), n)], spec)
    return sets


def zebra_stripes(
    spec: ModelSpec | str, n: int = 20, seed: int = 0, data_dir: str | os.PathLike | None = None
) -> torch.Tensor:
    """``n`` square crops of the zebra's stripes (ZEBRA_STRIPES_BOX of interp.data.zebra_path()),
    of random place and size (a third of the box's height to all of it), resized to the model's input.

    Returns:
        N x 3 x H x W, preprocessed for ``spec``.
    """
    spec, n = _spec(spec), _count(n)
    image = load_image(zebra_path(data_dir))
    return _batch([image.crop(box) for box in zebra_boxes(image.size, n, seed)], spec)


def zebra_boxes(size: tuple[int, int], n: int, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """The crop boxes (left, top, right, bottom) :func:`zebra_stripes` cuts from an image of ``size``
    (width, height): squares inside ZEBRA_STRIPES_BOX, seeded."""
    w, h = size
    left, top, right, bottom = (round(f * s) for f, s in zip(ZEBRA_STRIPES_BOX, (w, h, w, h)))
    rng = np.random.default_rng(seed)
    most = min(right - left, bottom - top)
    boxes = []
    for _ in range(n):
        side = int(rng.integers(max(4, most // 3), most + 1))
        x, y = int(rng.integers(left, right - side + 1)), int(rng.integers(top, bottom - side + 1))
        boxes.append((x, y, x + side, y + side))
    return boxes


def colour_patches(
    spec: ModelSpec | str, colour: str | Sequence[int], n: int = 20, seed: int = 0, noise: float = 8.0
) -> torch.Tensor:
    """``n`` images of one solid colour with a little Gaussian noise (so the set is not one point).

    Args:
        colour: a colour name or hex string PIL knows ("red", "#3060c0"), or an (r, g, b) in 0..255.
        noise: the noise's standard deviation, in 0..255 units.

    Raises:
        ParameterError: a colour PIL does not know, or values outside 0..255.
    """
    spec, n = _spec(spec), _count(n)
    try:
        rgb = ImageColor.getrgb(colour)[:3] if isinstance(colour, str) else tuple(int(c) for c in colour)
    except (ValueError, TypeError):
        raise ParameterError(f"unknown colour {colour!r}: give a name ('red'), '#rrggbb' or (r, g, b)") from None
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ParameterError(f"a colour is (r, g, b) with each in 0..255, not {colour!r}")
    h, w = spec.input_hw
    rng = np.random.default_rng(seed)
    return _uint8_batch(np.asarray(rgb, dtype=np.float64) + rng.normal(0, noise, (n, h, w, 3)), spec)


def texture_patches(spec: ModelSpec | str, kind: str, n: int = 20, seed: int = 0) -> torch.Tensor:
    """``n`` black-and-white textures of one ``kind`` (stripes, checkerboard or dots), each at a
    random scale (a period of 1/16 to 1/4 of the input's side), orientation and phase.

    Raises:
        ParameterError: an unknown kind.
    """
    spec, n = _spec(spec), _count(n)
    if kind not in TEXTURES:
        raise ParameterError(f"texture must be one of {', '.join(TEXTURES)}, not {kind!r}")
    h, w = spec.input_hw
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((n, h, w, 3))
    for i in range(n):
        period = rng.uniform(min(h, w) / 16, min(h, w) / 4)
        angle = rng.uniform(0, np.pi)
        # coordinates in the texture's own rotated frame, in periods, with a random phase
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 1)
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / period + rng.uniform(0, 1)
        if kind == "stripes":
            on = (u % 1) < 0.5
        elif kind == "checkerboard":
            on = ((np.floor(u) + np.floor(v)) % 2) == 0
        else:
            on = (u % 1 - 0.5) ** 2 + (v % 1 - 0.5) ** 2 < 0.3**2
        grey = np.where(on, 235.0, 20.0) + rng.normal(0, 6.0, (h, w))
        out[i] = grey[..., None]
    return _uint8_batch(out, spec)


def random_images(
    spec: ModelSpec | str, n: int = 64, seed: int = 0, data_dir: str | os.PathLike | None = None
) -> torch.Tensor:
    """A pool of up to ``n`` held-out images of the spec's dataset drawn at random (seeded), for
    TCAV's random sets: the full split under the data root where it is there, else the images
    shipped with interp.

    Raises:
        DataError: the spec's task has no images here (ImageNet, a user's own model).
    """
    spec, n = _spec(spec), _count(n)
    images, _ = held_out_images(spec, data_dir)
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False))
    return _batch([load_image(images.paths[i]) for i in chosen], spec)


def folder_set(spec: ModelSpec | str, folder_or_files: str | os.PathLike | Sequence[str | os.PathLike]) -> torch.Tensor:
    """A user's own concept set: every image of a folder (sorted by name; not its subfolders), or
    the given files.

    Raises:
        DataError: no such folder, no image in it, or a file that cannot be read as an image.
    """
    spec = _spec(spec)
    if isinstance(folder_or_files, (str, os.PathLike)):
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise DataError(f"no folder at {folder}: give a folder of images (or a list of image files)")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        where = str(folder)
    else:
        files, where = [Path(f) for f in folder_or_files], "the given list"
    if not files:
        raise DataError(f"no images in {where}: a concept set needs image files ({', '.join(IMAGE_SUFFIXES)})")
    pictures = []
    for f in files:
        try:
            pictures.append(load_image(f))
        except ImageError as exc:
            raise DataError(f"{f} cannot be used in a concept set: {exc}. Remove it or replace it") from exc
    return _batch(pictures, spec)

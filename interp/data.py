"""Images and datasets: load_image, preprocess, PACS and CIFAR-10, the decoded-image cache.

Data root: ``--data-dir``, else ``$INTERP_DATA_DIR``, else ``./data``. Layout:
``PACS/<domain>/<class>/*.jpg``, ``cifar10/{train,test}/<class>/*.jpg`` (or torchvision's
``cifar10/cifar-10-batches-py``), ``zebra.jpg``.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import DataError, ImageError
from .registry import CIFAR10_CLASSES, PACS_CLASSES, PACS_DOMAINS, ModelSpec

# Larger than any photo a user means to explain; keeps a crafted file from eating the memory.
MAX_IMAGE_PIXELS = 64_000_000
ZEBRA_URL = "https://raw.githubusercontent.com/TDT4265-tutorial/TDT4265_StarterCode/main/assignment3/images/zebra.jpg"
PACS_VAL_FRACTION = 0.2

ImageSource = Union[str, os.PathLike, bytes, bytearray, IO[bytes], Image.Image]


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $INTERP_DATA_DIR, else ./data."""
    return Path(data_dir or os.environ.get("INTERP_DATA_DIR") or "data")


def cache_dir() -> Path:
    """Where decoded datasets are cached: $INTERP_CACHE_DIR, else ~/.cache/interp."""
    return Path(os.environ.get("INTERP_CACHE_DIR") or Path.home() / ".cache" / "interp")


# ---------------------------------------------------------------------------------------------
# Single images


def load_image(src: ImageSource) -> Image.Image:
    """Read an image from a path, bytes, a binary file object or a PIL image; return RGB.

    Applies EXIF orientation, composites transparency on white, converts palette, CMYK,
    grayscale and 16-bit images (rescaled, not clipped), and takes the first frame of an
    animation.

    Raises:
        ImageError: empty, unreadable, truncated or non-image input, or more than
            MAX_IMAGE_PIXELS pixels (decompression bombs included).
    """
    if isinstance(src, Image.Image):
        img = src
    else:
        img = _open(src)
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise ImageError(f"image is {img.width}x{img.height} pixels, more than the limit of "
                             f"{MAX_IMAGE_PIXELS:,}; resize it first")
        img.load()  # decode now so that a truncated file fails here, not later
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"image data is damaged or truncated and cannot be decoded ({exc})") from exc


def _open(src: ImageSource) -> Image.Image:
    if isinstance(src, (bytes, bytearray)):
        if len(src) == 0:
            raise ImageError("the image is empty (0 bytes)")
        fp: IO[bytes] | Path = io.BytesIO(bytes(src))
        where = "the uploaded data"
    elif isinstance(src, (str, os.PathLike)):
        fp = Path(src)
        where = str(fp)
        if not fp.is_file():
            raise ImageError(f"no image file at {fp}")
        if fp.stat().st_size == 0:
            raise ImageError(f"{fp} is empty (0 bytes)")
    elif hasattr(src, "read"):
        data = src.read()
        if not data:
            raise ImageError("the image is empty (0 bytes)")
        fp = io.BytesIO(data)
        where = getattr(src, "name", "the file")
    else:
        raise ImageError(f"cannot read an image from a {type(src).__name__}; pass a path, bytes, "
                         "a binary file or a PIL image")
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x its own pixel limit and raises beyond; both are refusals here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{where} is a decompression bomb or far too large an image ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{where} is not an image in a format Pillow can read (JPEG, PNG, GIF, "
                         "WebP, BMP, TIFF, ...)") from exc
    except OSError as exc:
        raise ImageError(f"{where} cannot be read as an image ({exc})") from exc
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: rescale 0..65535 to 0..255 instead of clipping at 255 as convert("L") does.
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / 257.0, 0, 255)
        return Image.fromarray(np.round(arr).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255
        return Image.fromarray(np.round(np.nan_to_num(scaled)).astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("LA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` and crop the centre square: what the model sees."""
    w, h = image.size
    if (w, h) == (size, size):
        return image
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def preprocess(image: ImageSource, spec: ModelSpec) -> torch.Tensor:
    """Image -> normalised 1xCxHxW float tensor at the spec's input size."""
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        image = load_image(image)
    arr = np.asarray(resize_center_crop(image, spec.input_size), dtype=np.uint8)
    return normalize(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0), spec)


def normalize(batch_uint8: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 NxCxHxW in 0..255 -> float, normalised with the spec's mean and std."""
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (batch_uint8.float() / 255.0 - mean) / std


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
        if isinstance(test, ImageList):
            for label, cls in enumerate(CIFAR10_CLASSES[:per_dataset]):
                path = test.paths[test.labels.index(label)]
                found[f"CIFAR-10 test / {cls} ({path.name})"] = path
    except DataError:
        pass
    return found


# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass
class ImageList:
    """Files and integer labels of one split, in a fixed order."""

    paths: list[Path]
    labels: list[int]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)


def pacs_files(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str, str]]:
    """All PACS images as (path, domain, class), sorted by path."""
    root = data_root(data_dir) / "PACS"
    if not root.is_dir():
        raise DataError(f"PACS not found at {root}. Clone the PACS images (see README, 'Data') and "
                        "point --data-dir or INTERP_DATA_DIR at the folder that holds PACS/")
    files = []
    for domain in PACS_DOMAINS:
        for cls in PACS_CLASSES:
            folder = root / domain / cls
            if not folder.is_dir():
                raise DataError(f"PACS is incomplete: {folder} is missing")
            files += [(p, domain, cls) for p in sorted(folder.iterdir())
                      if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
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
        raise ValueError(f"PACS split must be 'train' or 'val', not {split!r}")
    if label_type not in ("domain", "class"):
        raise ValueError(f"label_type must be 'domain' or 'class', not {label_type!r}")
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


def cifar10_split(split: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> ImageList | "torch.utils.data.Dataset":
    """CIFAR-10 train (50,000) or test (10,000).

    Reads the image-folder tree ``cifar10/<split>/<class>/*.jpg`` when present; otherwise
    torchvision's binary release under ``cifar10/`` (downloaded there when ``download``).

    Raises:
        DataError: neither is present and the download is off or fails.
    """
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', not {split!r}")
    root = data_root(data_dir) / "cifar10"
    tree = root / split
    if tree.is_dir():
        paths, labels = [], []
        for label, cls in enumerate(CIFAR10_CLASSES):
            folder = tree / cls
            if not folder.is_dir():
                raise DataError(f"CIFAR-10 is incomplete: {folder} is missing")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            paths += files
            labels += [label] * len(files)
        return ImageList(paths, labels, CIFAR10_CLASSES)
    from torchvision.datasets import CIFAR10

    try:
        return CIFAR10(str(root), train=split == "train", download=download)
    except Exception as exc:
        hint = ("the download failed: are you offline? " if download else
                "pass --download (or download=True) to fetch it with torchvision, or ")
        raise DataError(f"CIFAR-10 not found under {root} ({exc}); {hint}put the image-folder tree "
                        "cifar10/{train,test}/<class>/*.jpg there (see README, 'Data')") from exc


def dataset_split(spec: ModelSpec, split: str, data_dir: str | os.PathLike | None = None,
                  download: bool = False):
    """The train or held-out split of a spec's task ('val' and 'test' both mean held-out)."""
    held_out = split in ("val", "test")
    if spec.dataset == "pacs":
        return pacs_split("val" if held_out else "train", spec.task.split("_", 1)[1], data_dir)
    if spec.dataset == "cifar10":
        return cifar10_split("test" if held_out else "train", data_dir, download)
    raise DataError(f"{spec.name} is an ImageNet model: there is no ImageNet data to train or "
                    "evaluate it on here")


_DECODED: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # in-process copy of the disk cache


def decode_split(images, size: int, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a split once into uint8 (N, 3, size, size) and int64 labels, cached on disk.

    Later calls (and later runs) read the cache, so training batches come from memory and
    the JPEG decoder is never the bottleneck.
    """
    if isinstance(images, ImageList):
        ident = "\n".join(f"{p}:{y}" for p, y in zip(images.paths, images.labels))
        n = len(images)
    else:  # torchvision dataset
        ident = f"{type(images).__name__}:{images.root}:{images.train}"
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
        if isinstance(images, ImageList):
            img, label = load_image(images.paths[i]), images.labels[i]
        else:
            img, label = images[i]
            img = img.convert("RGB")
        arr = np.asarray(resize_center_crop(img, size), dtype=np.uint8)
        x[i] = torch.from_numpy(arr.copy()).permute(2, 0, 1)
        y[i] = label
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"x": x, "y": y}, tmp)
    os.replace(tmp, path)
    _DECODED[key] = x, y
    return x, y

"""Single images: load_image (any file a user brings, refused clearly when unusable), the
model's view of it (resize and centre crop), and preprocess / normalize for a spec."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from ..models.registry import ModelSpec

# Larger than any photo a user means to explain; keeps a crafted file from eating the memory.
MAX_IMAGE_PIXELS = 64_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, IO[bytes], Image.Image]


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
            raise ImageError(
                f"image is {img.width}x{img.height} pixels, more than the limit of "
                f"{MAX_IMAGE_PIXELS:,}; resize it first"
            )
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
        raise ImageError(
            f"cannot read an image from a {type(src).__name__}; pass a path, bytes, a binary file or a PIL image"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x its own pixel limit and raises beyond; both are refusals here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{where} is a decompression bomb or far too large an image ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{where} is not an image in a format Pillow can read (JPEG, PNG, GIF, WebP, BMP, TIFF, ...)"
        ) from exc
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


def resize_center_crop(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Scale the image to cover ``size`` (a side, or (height, width)) and crop its centre: what
    the model sees."""
    th, tw = (size, size) if isinstance(size, int) else size
    w, h = image.size
    if (w, h) == (tw, th):
        return image
    scale = max(tw / w, th / h)
    nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return image.crop((left, top, left + tw, top + th))


def preprocess(image: ImageSource, spec: ModelSpec) -> torch.Tensor:
    """Image -> normalised 1xCxHxW float tensor at the spec's input size."""
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        image = load_image(image)
    arr = np.asarray(resize_center_crop(image, spec.input_size), dtype=np.uint8)
    return normalize(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0), spec)


def normalize(batch_uint8: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 NxCxHxW in 0..255 -> float, normalised with the spec's mean and std."""
    mean = torch.tensor(spec.mean, device=batch_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=batch_uint8.device).view(1, 3, 1, 1)
    return (batch_uint8.float() / 255.0 - mean) / std

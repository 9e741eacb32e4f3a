"""Convolution by hand: a 2-D image and kernel, a choice of boundary handling, spatial
convolution (kernel flipped) or cross-correlation (as deep-learning layers compute it), and
the computation of one output pixel step by step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ParameterError

# The small example image (3-bit values) and the Sobel kernel that responds to horizontal change.
EXAMPLE_IMAGE = np.array([[1, 0, 2, 3, 1], [3, 2, 0, 7, 0], [0, 6, 1, 1, 4]], dtype=float)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)

# Boundary name -> numpy.pad mode. "reflect" mirrors without repeating the edge (numpy's and
# PyTorch's "reflect"); "valid" does not pad: the output shrinks to where the kernel fits.
PadMode = Literal["constant", "reflect", "edge", "wrap"]  # numpy.pad's names
BOUNDARIES: dict[str, PadMode | None] = {
    "zero": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "valid": None,
}
BOUNDARY_LABELS = {
    "zero": "zero padding",
    "reflect": "reflection (edge not repeated)",
    "replicate": "replication (edge repeated)",
    "circular": "circular (wrap around)",
    "valid": "valid (no padding: the output shrinks)",
}


def as_2d(values, what: str) -> np.ndarray:
    """A finite, non-empty 2-D float array, or a ParameterError naming ``what``."""
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"the {what} must hold numbers only ({exc})") from exc
    if a.ndim != 2 or a.size == 0:
        raise ParameterError(f"the {what} must be a non-empty 2-D array, not shape {a.shape}")
    if not np.isfinite(a).all():
        raise ParameterError(f"the {what} has empty or non-finite cells: fill every cell with a number")
    return a


def pad_image(image, kernel_shape: tuple[int, int], boundary: str = "zero") -> np.ndarray:
    """The image padded so that a centred kernel of ``kernel_shape`` fits at every pixel.

    Raises:
        ParameterError: unknown boundary, or an even kernel side (no centre pixel) with padding.
    """
    image = as_2d(image, "image")
    if boundary not in BOUNDARIES:
        raise ParameterError(f"boundary must be one of {', '.join(BOUNDARIES)}, not {boundary!r}")
    if boundary == "valid":
        return image
    kh, kw = kernel_shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ParameterError(f"a {kh}x{kw} kernel has no centre pixel: use odd sides, or the 'valid' boundary")
    mode = BOUNDARIES[boundary]
    assert mode is not None  # only 'valid' has no padding mode, and it returned above
    return np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode=mode)


def _checked(image, kernel, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """(padded image, kernel), the kernel no larger than the padded image."""
    kernel = as_2d(kernel, "kernel")
    padded = pad_image(image, kernel.shape, boundary)
    if kernel.shape[0] > padded.shape[0] or kernel.shape[1] > padded.shape[1]:
        raise ParameterError(
            f"the {kernel.shape[0]}x{kernel.shape[1]} kernel does not fit in the "
            f"{padded.shape[0]}x{padded.shape[1]} (padded) image"
        )
    return padded, kernel


def convolve(image, kernel, boundary: str = "zero", flip: bool = True) -> np.ndarray:
    """2-D convolution of ``image`` with ``kernel``.

    Args:
        boundary: zero, reflect, replicate, circular (output the image's size; odd kernel sides)
            or valid (output (H - kh + 1) x (W - kw + 1)).
        flip: True for spatial convolution (kernel flipped in both axes); False for
            cross-correlation, what a deep-learning conv layer computes.

    Raises:
        ParameterError: not 2-D arrays of numbers, unknown boundary, or a kernel that does not fit.
    """
    padded, kernel = _checked(image, kernel, boundary)
    k = kernel[::-1, ::-1] if flip else kernel
    windows = np.lib.stride_tricks.sliding_window_view(padded, k.shape)
    return np.einsum("ijkl,kl->ij", windows, k)


@dataclass(frozen=True)
class ConvolutionStep:
    """How one output pixel comes about: the window under the kernel, their products and sum."""

    row: int  # the output pixel
    col: int
    padded: np.ndarray  # the padded image; the window's top-left corner is (row, col) in it
    window: np.ndarray
    kernel: np.ndarray  # as applied: flipped for spatial convolution
    products: np.ndarray
    total: float


def convolution_step(image, kernel, row: int, col: int, boundary: str = "zero", flip: bool = True) -> ConvolutionStep:
    """The computation of output pixel (row, col) of :func:`convolve`.

    Raises:
        ParameterError: as :func:`convolve`, or a pixel outside the output.
    """
    padded, kernel = _checked(image, kernel, boundary)
    kh, kw = kernel.shape
    out_h, out_w = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    if not (0 <= row < out_h and 0 <= col < out_w):
        raise ParameterError(f"output pixel ({row}, {col}) is outside the {out_h}x{out_w} output")
    applied = kernel[::-1, ::-1] if flip else kernel
    window = padded[row : row + kh, col : col + kw]
    products = window * applied
    return ConvolutionStep(row, col, padded, window, applied, products, float(products.sum()))


def step_formula(step: ConvolutionStep) -> str:
    """The sum of products written out: '(1)(-1) + (0)(0) + ... = 5'."""
    terms = " + ".join(f"({_number(a)})({_number(b)})" for a, b in zip(step.window.ravel(), step.kernel.ravel()))
    return f"{terms} = {_number(step.total)}"


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"

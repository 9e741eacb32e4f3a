"""Convolution as a matrix: y = A x, with x the input flattened row-major (channel, row, column)
without its padding, and y the output flattened the same way. Zero padding only removes
columns (a padded pixel is 0, so its weight multiplies nothing). The layer's convention:
cross-correlation, as torch.nn.functional.conv2d; pass a flipped kernel for spatial convolution."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ParameterError
from .sizes import conv_output_size


def _kernel_4d(kernel) -> np.ndarray:
    """(out, in, kh, kw) from a kh x kw, in x kh x kw or out x in x kh x kw kernel."""
    k = np.asarray(kernel, dtype=float)
    if k.ndim not in (2, 3, 4) or k.size == 0:
        raise ParameterError(f"the kernel must be kh x kw, in x kh x kw or out x in x kh x kw, not shape {k.shape}")
    return k.reshape((1,) * (4 - k.ndim) + k.shape)


def _input_3d(input_shape: Sequence[int], channels: int) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (channels, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ParameterError(f"the input shape must be (H, W) or (C, H, W) of positive sizes, not {tuple(input_shape)}")
    c, h, w = shape
    if c != channels:
        raise ParameterError(f"the kernel takes {channels} input channel(s) but the input has {c}")
    return c, h, w


def _entries(kernel_shape: tuple[int, int, int, int], input_shape, stride: int, padding: int):
    """(rows, cols, (o, c, i, j)) of every non-zero entry of A, and A's shape."""
    cout, cin, kh, kw = kernel_shape
    c, h, w = _input_3d(input_shape, cin)
    oh = conv_output_size(h, kh, stride, padding)
    ow = conv_output_size(w, kw, stride, padding)
    o, ch, oy, ox, i, j = np.meshgrid(*(np.arange(n) for n in (cout, cin, oh, ow, kh, kw)), indexing="ij")
    iy, ix = oy * stride - padding + i, ox * stride - padding + j
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)  # outside: a padded zero, no column
    rows = ((o * oh + oy) * ow + ox)[inside]
    cols = ((ch * h + iy) * w + ix)[inside]
    return rows, cols, tuple(a[inside] for a in (o, ch, i, j)), (cout * oh * ow, c * h * w), (cout, oh, ow)


def conv_matrix(kernel, input_shape: Sequence[int], stride: int = 1, padding: int = 0) -> np.ndarray:
    """The matrix A with conv2d(x, kernel, stride, padding).ravel() == A @ x.ravel().

    Args:
        kernel: kh x kw (one channel), in x kh x kw, or out x in x kh x kw.
        input_shape: (H, W) or (C, H, W) of the input without padding.

    Returns:
        A of shape (out * Ho * Wo, C * H * W); block (o, c) is channel c's kernel for output o.

    Raises:
        ParameterError: shapes that do not fit, or a stride, padding or output size out of range.
    """
    k = _kernel_4d(kernel)
    rows, cols, (o, c, i, j), shape, _ = _entries(k.shape, input_shape, stride, padding)
    a = np.zeros(shape)
    a[rows, cols] = k[o, c, i, j]  # one kernel entry per (output, input) pair: no sums needed
    return a


def conv_matrix_symbolic(
    kernel_shape: Sequence[int], input_shape: Sequence[int], stride: int = 1, padding: int = 0
) -> np.ndarray:
    """A as strings: 'w(i,j)' (0-based kernel row and column; 'w[o,c](i,j)' with several
    channels) where the kernel entry sits, '0' elsewhere. Same arguments as :func:`conv_matrix`."""
    shape = tuple(int(s) for s in kernel_shape)
    if len(shape) not in (2, 3, 4):
        raise ParameterError(f"the kernel shape must have 2, 3 or 4 sides, not {shape}")
    k4 = _four_sides(shape)
    rows, cols, (o, c, i, j), a_shape, _ = _entries(k4, input_shape, stride, padding)
    out = np.full(a_shape, "0", dtype=object)
    several = k4[0] > 1 or k4[1] > 1
    for r, q, oo, cc, ii, jj in zip(rows, cols, o, c, i, j):
        out[r, q] = f"w[{oo},{cc}]({ii},{jj})" if several else f"w({ii},{jj})"
    return out


def conv_output_shape(
    kernel_shape: Sequence[int], input_shape: Sequence[int], stride: int = 1, padding: int = 0
) -> tuple[int, int, int]:
    """(out channels, Ho, Wo) of the convolution that :func:`conv_matrix` writes as a matrix."""
    return _entries(_four_sides(tuple(int(s) for s in kernel_shape)), input_shape, stride, padding)[4]


def _four_sides(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A kernel shape of 2 to 4 sides as (out, in, kh, kw), the missing leading sides 1."""
    out, cin, kh, kw = (1,) * (4 - len(shape)) + shape
    return out, cin, kh, kw


def matrix_vs_layer(kernel, x: np.ndarray, stride: int = 1, padding: int = 0) -> float:
    """Largest |A x - conv(x)| with conv the from-scratch layer (interp.scratch.Conv2d): a check
    of the matrix against an independent computation. ``x`` is C x H x W (or H x W)."""
    from ..scratch import Conv2d

    k = _kernel_4d(kernel)
    if k.shape[2] != k.shape[3]:
        raise ParameterError("the from-scratch layer takes square kernels only")
    x = np.asarray(x, dtype=float).reshape(k.shape[1], *np.shape(x)[-2:])
    layer = Conv2d(k.shape[1], k.shape[0], k.shape[2], stride=stride, padding=padding, bias=False)
    layer.weight.value = k
    by_layer = layer.forward(x[None])[0].ravel()
    return float(np.abs(conv_matrix(k, x.shape, stride, padding) @ x.ravel() - by_layer).max())

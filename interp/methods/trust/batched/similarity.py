"""Similarity of two batches of maps, pair by pair: SSIM and the Spearman rank correlation of
absolute values (what the randomisation metrics compare maps with)."""

from __future__ import annotations

import numpy as np
import torch

from ....errors import ParameterError
from .base import MapsLike, as_maps


def _pair(a: MapsLike, b: MapsLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_maps(a), as_maps(b)
    if x.shape != y.shape:
        raise ParameterError(f"maps of different shapes: {x.shape} and {y.shape}")
    return x, y


def ssim(a: MapsLike, b: MapsLike, data_range: float = 1.0, win_size: int = 7) -> np.ndarray:
    """Mean structural similarity of each pair of maps (Wang et al., "Image quality assessment: from
    error visibility to structural similarity", IEEE TIP 2004).

    The formula and defaults of scikit-image's ``structural_similarity``: a uniform ``win_size``
    window (shrunk to the largest odd size that fits), sample covariances, K1 = 0.01, K2 = 0.03, the
    mean over the windows that lie wholly inside the map.

    Args:
        a: (N, H, W) or one (H, W).
        b: the same shape.
        data_range: the range the values can span (1.0 for maps scaled to [0, 1]).
        win_size: the window's side.

    Returns:
        (N,) float64.

    Raises:
        ParameterError: maps of different shapes, or too small for a window.
    """
    x, y = _pair(a, b)
    win = min(win_size, *x.shape[1:])
    win -= 1 - win % 2
    if win < 1:
        raise ParameterError(f"maps of shape {x.shape[1:]} are too small for SSIM")
    n = win * win
    cov_norm = n / (n - 1) if n > 1 else 1.0

    def mean(t: torch.Tensor) -> torch.Tensor:  # over each window that lies inside the map
        return torch.nn.functional.avg_pool2d(t[:, None], win, stride=1)[:, 0]

    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    mx, my = mean(tx), mean(ty)
    vx = cov_norm * (mean(tx * tx) - mx * mx)
    vy = cov_norm * (mean(ty * ty) - my * my)
    vxy = cov_norm * (mean(tx * ty) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).numpy()


def spearman_abs(a: MapsLike, b: MapsLike) -> np.ndarray:
    """Spearman rank correlation of |a| and |b|, pair by pair (ties get their average rank), as
    Quantus's ``similarity_func.correlation_spearman`` on absolute maps.

    A constant map has no ranking: two constant maps give 1, one constant map gives 0 (scipy and
    Quantus give NaN). A randomised model whose map is all zeros then scores 0, not a NaN that a mean
    over images would drop.

    Args:
        a: (N, H, W) or one (H, W).
        b: the same shape.

    Returns:
        (N,) float64 in [-1, 1].

    Raises:
        ParameterError: maps of different shapes.
    """
    from scipy.stats import rankdata  # lazily: scipy is slow to import

    x, y = _pair(a, b)
    ra = rankdata(np.abs(x).reshape(len(x), -1), axis=1)
    rb = rankdata(np.abs(y).reshape(len(y), -1), axis=1)
    da, db = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    na, nb = np.sqrt((da * da).sum(1)), np.sqrt((db * db).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.clip((da * db).sum(1) / (na * nb), -1.0, 1.0)
    flat = (na == 0) | (nb == 0)
    rho[flat] = np.where(na[flat] == nb[flat], 1.0, 0.0)
    return rho

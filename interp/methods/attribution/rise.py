"""RISE, Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018): the class
probability of the image under many random masks, averaged per pixel over the masks weighted by
how much of that pixel each keeps.

The masks are the paper's (its reference code, eclique/RISE): N grids of s x s cells, each cell
kept with probability p, bilinearly upsampled to (s + 1) x the cell size (cell = ceil(H / s)) with
scikit-image's ``resize(order=1, mode="reflect")`` convention (half-pixel centres; beyond the
edge the grid is mirrored about its edge cell) and cropped to H x W at a random shift of up to one
cell, so that the kept regions do not all sit on one lattice. The saliency is
sum_i P(class | x * M_i) M_i / (N p). The upsampling is done here as two small interpolation
matrices per mask, which also crop: no upsampled grid is ever stored.

The grids and shifts are drawn from a generator seeded by ``seed`` (no global random state), all
before any forward pass, so the map does not depend on ``batch_size``; every image of a batch gets
the same masks, so its map does not depend on the batch it came in either. A masked pixel is set
to 0 in the model's normalised input space, the dataset's mean colour (occlusion's default
baseline here); the paper's code multiplies its own normalised input the same way.

It reports how many masks it used: ``explain(...).details["n_masks"]``.

How many masks (the default): measured on ``nin_cifar10`` (32 x 32 inputs, s = 7, p = 0.5), for the
predicted class, as the Pearson correlation of the map from the first N masks with a map from
8000 masks of another seed (the converged map, up to its own noise: two seeds' 8000-mask maps of
the zebra correlate 0.981 to 0.984), the lowest over the seeds; and on the zebra the map from N
masks against the one from 2N (the same draws and N more):

===== ========== ========== ===================================================
N     zebra      N vs 2N    CIFAR-10 test images: bird deer dog horse truck plane
===== ========== ========== ===================================================
500   0.828      0.941      0.465 0.739 0.656 0.700 0.754 0.824
1000  0.923      0.961      0.624 0.883 0.820 0.851 0.899 0.918
1500  0.953      0.979      0.728 0.929 0.876 0.891 0.938 0.934
2000  0.953      0.989      0.757 0.951 0.904 0.923 0.957 0.953
3000  0.966      0.986      0.843 0.959 0.938 0.950 0.970 0.966
4000  0.965      0.991      0.873 0.969 0.945 0.956 0.973 0.971
===== ========== ========== ===================================================

The zebra (seeds 0, 1, 2; deer at p = 0.52) is stable (>= 0.95) from 1500 masks, as it is for
``resnet32_cifar10lt_ce`` and ``table2_cnn_cifar10`` from 1000 (0.954 and 0.953); the six test
images (``held_out_batch(spec, 6)``, seeds 0 and 1, p = 0.76 to 1.00) mostly get there between
2000 and 3000 masks, and 4000 adds little (the bird's map converges far more slowly). The default,
3000 masks, is the smallest N where the zebra's map and most test images' are stable; give a
larger ``n_masks`` where a map still looks grainy. The record's quick option, 1000 masks, keeps the
layout (0.92 on the zebra) for pages that run it many times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core import Targets, logits_of, options_from
from .gradients import _check, _check_count

DEFAULT_MASKS = 3000


@dataclass(frozen=True)
class RiseOptions:
    """RISE's options: ``n_masks`` (N; the module's docstring has the measurements behind the
    default), the ``grid`` side s (the paper: 7 for ImageNet), the probability ``p`` that a cell is
    kept (the paper: 0.5), the ``seed`` of the masks (the same seed gives the same map) and
    ``batch_size`` masked images per forward pass."""

    n_masks: int = DEFAULT_MASKS
    grid: int = 7
    p: float = 0.5
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        _check_count("n_masks", self.n_masks)
        _check_count("grid", self.grid)
        _check_count("batch_size", self.batch_size)
        _check(isinstance(self.p, (int, float)) and 0 < self.p <= 1, f"p must be in (0, 1], not {self.p!r}")


def _interpolation(n: int, size: int) -> torch.Tensor:
    """The size x n matrix that resizes a length-n signal to ``size`` bilinearly as scikit-image's
    ``resize(order=1, mode="reflect")``: half-pixel centres, index -1 read as 1 and n as n - 2."""
    out = torch.zeros((size, n), dtype=torch.float64)
    c = (torch.arange(size, dtype=torch.float64) + 0.5) * (n / size) - 0.5
    i0 = torch.floor(c)
    frac = c - i0
    for index, weight in ((i0, 1 - frac), (i0 + 1, frac)):
        i = index.long()
        i = torch.where(i < 0, -i, i)  # mirrored about the first cell
        i = torch.where(i > n - 1, 2 * (n - 1) - i, i)  # and about the last
        out.index_put_((torch.arange(size), i.clamp(0, n - 1)), weight, accumulate=True)
    return out


class RiseMasks:
    """The paper's N masks for H x W inputs, drawn at once from ``seed``; :meth:`get` makes a slice."""

    def __init__(self, n_masks: int, height: int, width: int, grid: int, p: float, seed: int):
        gen = torch.Generator().manual_seed(int(seed))
        self.cells = (torch.rand((n_masks, grid, grid), generator=gen) < p).double()
        cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
        self.dy = torch.randint(0, cell_h, (n_masks,), generator=gen)
        self.dx = torch.randint(0, cell_w, (n_masks,), generator=gen)
        self.rows = _interpolation(grid, (grid + 1) * cell_h)  # (s + 1) cell_h x s
        self.cols = _interpolation(grid, (grid + 1) * cell_w)
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.cells)

    def get(self, start: int, stop: int) -> torch.Tensor:
        """Masks start..stop-1, (k, H, W) float64 in [0, 1]: each grid upsampled and cropped at its shift."""
        dy, dx = self.dy[start:stop], self.dx[start:stop]
        rows = self.rows[dy[:, None] + torch.arange(self.height)]  # k x H x s: the crop's rows
        cols = self.cols[dx[:, None] + torch.arange(self.width)]  # k x W x s
        return rows @ self.cells[start:stop] @ cols.transpose(1, 2)


@options_from(RiseOptions)
def _rise(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> tuple[torch.Tensor, None, dict[str, Any]]:
    """RISE's map, (N, H, W), and ``{"n_masks": N}``: one forward pass for the classes, then one
    per masked image (``batch_size`` per pass; a batch of images shares each pass)."""
    o = RiseOptions(**options)
    classes = targets.before(model, xb)
    n, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    masks = RiseMasks(o.n_masks, h, w, o.grid, o.p, o.seed)
    total = torch.zeros((n, h * w), dtype=torch.float64, device=xb.device)
    per_pass = max(1, o.batch_size // n)
    with torch.inference_mode():
        for start in range(0, len(masks), per_pass):
            m = masks.get(start, min(start + per_pass, len(masks))).to(device=xb.device, dtype=xb.dtype)
            k = len(m)
            masked = (xb[:, None] * m[None, :, None]).reshape(n * k, *xb.shape[1:])
            probs = torch.softmax(logits_of(model, masked).double(), 1).reshape(n, k, -1)
            scores = probs.gather(2, classes.view(n, 1, 1).expand(n, k, 1))[..., 0]  # n x k
            total += scores @ m.reshape(k, h * w).double()
    saliency = (total / (len(masks) * o.p)).reshape(n, h, w).to(xb.dtype)
    return saliency, None, {"n_masks": len(masks)}

"""How much a map moves when the input moves a little: max-sensitivity and the local Lipschitz
estimate (Quantus's robustness family), Monte Carlo over seeded noise, every (image, noisy copy)
pair explained in batches.

The noise is drawn once per call, ``n_samples`` draws of one image's shape, and the same draws are
added to every image (common random numbers): an image's score does not depend on the other images
in its batch or on its position there, and methods scored with the same seed see the same noise.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ....errors import ParameterError
from ...core import Target
from .base import ExplainFn, chunks, explain_all, images_and_targets, run_explain, unit_max

# score(base maps, noisy maps, noise) of a chunk of (image, sample) pairs -> (n,) scores
_Score = Callable[[np.ndarray, np.ndarray, torch.Tensor], np.ndarray]


def uniform_noise(n_samples: int, shape: Sequence[int], radius: float, seed: int = 0) -> torch.Tensor:
    """The draws :func:`max_sensitivity` adds: (n_samples, *shape) float32 on the CPU, U(-radius, radius)."""
    gen = torch.Generator().manual_seed(int(seed))
    return (torch.rand((n_samples, *shape), generator=gen) * 2 - 1) * radius


def gaussian_noise(n_samples: int, shape: Sequence[int], std: float, mean: float = 0.0, seed: int = 0) -> torch.Tensor:
    """The draws :func:`local_lipschitz` adds: (n_samples, *shape) float32 on the CPU, N(mean, std)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((n_samples, *shape), generator=gen) * std + mean


def _worst_case(
    model: nn.Module,
    x: torch.Tensor,
    explain_fn: ExplainFn,
    targets: Target,
    draw: Callable[[tuple[int, ...]], torch.Tensor],
    normalise: bool,
    batch_size: int,
    score: _Score,
) -> np.ndarray:
    """Per image, the max over the noise draws of ``score``: (N,) float64."""
    xb, t, _ = images_and_targets(model, x, targets, batch_size)
    noise = draw(tuple(xb.shape[1:]))
    base = explain_all(explain_fn, model, xb, t, batch_size)
    base = unit_max(base) if normalise else base
    n, samples = len(xb), len(noise)
    worst = np.full(n, np.nan)
    on_device = noise.to(device=xb.device, dtype=xb.dtype)
    for pairs in chunks(n * samples, batch_size):  # sample-major: each chunk mixes images
        p = np.arange(pairs.start, pairs.stop)
        img, sample = torch.from_numpy(p % n), torch.from_numpy(p // n)
        moved = xb[img.to(xb.device)] + on_device[sample.to(xb.device)]
        maps = run_explain(explain_fn, model, moved, t[img.to(t.device)])
        maps = unit_max(maps) if normalise else maps
        np.fmax.at(worst, img.numpy(), score(base[img.numpy()], maps, noise[sample]))
    return worst


def _check(n_samples: int, spread: float, what: str) -> None:
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ParameterError(f"n_samples must be an int >= 1, not {n_samples!r}")
    # a zero radius is a valid (trivial) sensitivity; a zero std would divide by ||d|| = 0
    if not (spread > 0 or (spread == 0 and what == "radius")):
        raise ParameterError(f"the noise's {what} must be {'>=' if what == 'radius' else '>'} 0, not {spread}")


def max_sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    explain_fn: ExplainFn,
    targets: Target = None,
    radius: float = 0.2,
    n_samples: int = 10,
    seed: int = 0,
    normalise: bool = True,
    batch_size: int = 32,
) -> np.ndarray:
    """Max-sensitivity (Yeh et al., "On the (in)fidelity and sensitivity of explanations", NeurIPS
    2019), Quantus's ``MaxSensitivity``: max over noisy copies x + u, u ~ U(-radius, radius) per input
    value (the model's input units), of ||E(x + u) - E(x)|| / ||E(x)|| (Frobenius norms), the class
    fixed. Lower: more stable.

    Quantus agrees given the same noise, ``lower_bound=radius`` and, for ``normalise=True``,
    ``normalise=True, normalise_func_kwargs={"normalise_axes": (1, 2, 3)}`` (its default normalises
    by the batch's max, or not at all: ``normalise=False``).

    Args:
        model: a classifier; only read.
        x: preprocessed images, N x C x H x W.
        explain_fn: ``explain_fn(model, x, targets) -> (N, H, W) maps``, e.g. :func:`explainer`.
        targets: the classes explained (one, or one per image); default the predictions.
        radius: the noise's half-width.
        n_samples: noisy copies per image (each costs one explanation).
        seed: seeds the noise (the same draws for every image: see the module's notes).
        normalise: divide every map by its own max |value| first.
        batch_size: (image, noisy copy) pairs per call of ``explain_fn``.

    Returns:
        (N,) float64.

    Raises:
        ParameterError: n_samples < 1, radius < 0, maps of the wrong shape. TargetError, ImageError.
    """
    _check(n_samples, radius, "radius")

    def score(base: np.ndarray, maps: np.ndarray, _: torch.Tensor) -> np.ndarray:
        change = np.linalg.norm((maps - base).reshape(len(base), -1), axis=1)
        return change / np.maximum(np.linalg.norm(base.reshape(len(base), -1), axis=1), 1e-12)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return uniform_noise(n_samples, shape, radius, seed)

    return _worst_case(model, x, explain_fn, targets, draw, normalise, batch_size, score)


def local_lipschitz(
    model: nn.Module,
    x: torch.Tensor,
    explain_fn: ExplainFn,
    targets: Target = None,
    std: float = 0.1,
    mean: float = 0.0,
    n_samples: int = 10,
    seed: int = 0,
    normalise: bool = True,
    batch_size: int = 32,
) -> np.ndarray:
    """The local Lipschitz estimate (Alvarez-Melis & Jaakkola, "On the robustness of interpretability
    methods", ICML workshops 2018), Quantus's ``LocalLipschitzEstimate``: max over noisy copies
    x + d, d ~ N(mean, std) per input value, of ||E(x + d) - E(x)||_2 / ||d||_2, the class fixed.
    Lower: more stable. The paper maximises over a ball by optimisation; this, as Quantus, samples.

    Quantus agrees given the same noise, ``perturb_mean``/``perturb_std`` and, for
    ``normalise=True``, ``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}`` (its default
    ``normalise=True`` divides by the batch's max); it adds 1e-10 to ||d||.

    Args:
        model: a classifier; only read.
        x: preprocessed images, N x C x H x W.
        explain_fn: ``explain_fn(model, x, targets) -> (N, H, W) maps``, e.g. :func:`explainer`.
        targets: the classes explained (one, or one per image); default the predictions.
        std: the noise's standard deviation (the model's input units).
        mean: the noise's mean.
        n_samples: noisy copies per image (each costs one explanation).
        seed: seeds the noise (the same draws for every image: see the module's notes).
        normalise: divide every map by its own max |value| first.
        batch_size: (image, noisy copy) pairs per call of ``explain_fn``.

    Returns:
        (N,) float64.

    Raises:
        ParameterError: n_samples < 1, std <= 0, maps of the wrong shape. TargetError, ImageError.
    """
    _check(n_samples, std, "std")

    def score(base: np.ndarray, maps: np.ndarray, moved_by: torch.Tensor) -> np.ndarray:
        change = np.linalg.norm((maps - base).reshape(len(base), -1), axis=1)
        return change / np.linalg.norm(moved_by.double().reshape(len(base), -1).numpy(), axis=1)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return gaussian_noise(n_samples, shape, std, mean, seed)

    return _worst_case(model, x, explain_fn, targets, draw, normalise, batch_size, score)

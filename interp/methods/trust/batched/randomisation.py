"""Whether a map depends on what it claims to explain (Quantus's randomisation family): the class
(random logit) and the model's parameters (model-parameter randomisation), a batch at once."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ....errors import ParameterError
from ...core import Target, model_lock
from .base import ExplainFn, chunks, explain_all, images_and_targets, run_explain, unit_max
from .similarity import spearman_abs, ssim

ORDERS = ("top_down", "bottom_up", "independent")


def other_classes(targets: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """One random class per image, never its target: Quantus's ``RandomLogit`` draw (NumPy's
    legacy generator seeded with ``seed``, one index per image into the other classes)."""
    t = np.asarray(targets, dtype=np.int64)
    if n_classes < 2:
        raise ParameterError(f"random logit needs a model of two classes or more, not {n_classes}")
    index = np.random.RandomState(seed).randint(0, n_classes - 1, len(t))
    return index + (index >= t)  # skip the target: the index-th of the classes other than it


def random_logit(
    model: nn.Module,
    x: torch.Tensor,
    explain_fn: ExplainFn,
    targets: Target = None,
    seed: int = 0,
    others: Target = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Random logit (Sixt et al., "When explanations lie: why many modified BP attributions fail",
    ICML 2020): SSIM between the map of each image's class and the map of a random other class, both
    as |map| / max |map|. Lower: the map depends on the class, as it should.

    Quantus's ``RandomLogit`` draws the same classes (:func:`other_classes`, with ``seed`` and
    ``num_classes``, where one of its batches holds all the images: it re-seeds per batch) but
    computes SSIM on the flattened maps (a 1-D window over the pixel rows); given
    ``similarity_func`` = 2-D SSIM with data_range 1, ``abs=True`` and per-map max scaling
    (``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}``), it agrees with this.

    Args:
        model: a classifier; only read.
        x: preprocessed images, N x C x H x W.
        explain_fn: ``explain_fn(model, x, targets) -> (N, H, W) maps``.
        targets: the classes explained (one, or one per image); default the predictions.
        seed: seeds the choice of the other classes.
        others: the other classes themselves (one per image), instead of drawing them.
        batch_size: inputs per call of ``explain_fn`` (half as many images, each for two classes).

    Returns:
        (N,) float64.

    Raises:
        ParameterError: a model of one class, maps of the wrong shape. TargetError, ImageError.
    """
    xb, t, classes = images_and_targets(model, x, targets, batch_size)
    if others is None:
        o = torch.from_numpy(other_classes(t.cpu().numpy(), classes, seed)).to(t.device)
    else:
        given = others.detach() if isinstance(others, torch.Tensor) else torch.as_tensor(np.asarray(others))
        o = given.to(device=t.device, dtype=torch.int64).reshape(-1)
        o = o.expand(len(t)) if o.numel() == 1 else o
        if o.shape != t.shape or bool((o == t).any()) or int(o.min()) < 0 or int(o.max()) >= classes:
            raise ParameterError(
                f"others are one class per image (or one for all), of the model (0 to {classes - 1}) "
                "and never the image's target"
            )
    scores = []
    for s in chunks(len(xb), max(1, batch_size // 2)):
        n = s.stop - s.start
        maps = run_explain(explain_fn, model, torch.cat([xb[s], xb[s]]), torch.cat([t[s], o[s]]))
        pair = np.abs(unit_max(maps))
        scores.append(ssim(pair[:n], pair[n:], data_range=1.0))
    return np.concatenate(scores)


@dataclass(frozen=True)
class ParameterRandomisation:
    """How each image's map changes as a model's layers are re-initialised one by one."""

    order: str  # "top_down" (cascading from the logits), "bottom_up" or "independent"
    layers: tuple[str, ...]  # the module re-initialised at each step
    similarity: np.ndarray  # (N, steps): Spearman of |map| with the original model's |map|

    @property
    def last(self) -> np.ndarray:
        """(N,) the similarity after the last step (cascading: the fully randomised model)."""
        return self.similarity[:, -1]

    @property
    def mean(self) -> np.ndarray:
        """(N,) the mean similarity over the steps."""
        return self.similarity.mean(1)


def _reset(module: nn.Module, seed: int, devices: list[int]) -> None:
    # Quantus's draw: the global generator seeded with seed + 1 before each reset_parameters; here
    # in a forked RNG state, so the caller's random stream is untouched.
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed + 1)
        module.reset_parameters()  # type: ignore[operator]


def model_parameter_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    explain_fn: ExplainFn,
    targets: Target = None,
    order: str = "top_down",
    seed: int = 42,
    batch_size: int = 32,
) -> ParameterRandomisation:
    """Model-parameter randomisation (Adebayo et al., "Sanity checks for saliency maps", NeurIPS
    2018), Quantus's ``MPRT`` (``ModelParameterRandomisation``): re-initialise the model's layers
    one at a time and compare each image's map with the original model's by the Spearman rank
    correlation of absolute values. Lower: the map depends on the parameters, as it should.

    As Quantus: the layers are the modules with ``reset_parameters`` (norm layers included), in
    registration order, reversed for ``top_down``; each is reset with the generator seeded with
    ``seed + 1``; the classes stay those of the original model. It agrees with Quantus's per-layer
    scores (``abs=True``) except where a map is constant (see :func:`spearman_abs`); Quantus's
    ``return_average_correlation`` also averages in the original model's own score of 1.

    Args:
        model: a classifier; it is not modified (the layers are reset on a deep copy).
        x: preprocessed images, N x C x H x W.
        explain_fn: ``explain_fn(model, x, targets) -> (N, H, W) maps``; called with the copy.
        targets: the classes explained (one, or one per image); default the original predictions.
        order: "top_down" (cascading from the logits down, Adebayo et al.'s), "bottom_up"
            (cascading from the input up) or "independent" (one layer at a time, the rest trained).
        seed: seeds the re-initialisation (Quantus's default 42).
        batch_size: images per call of ``explain_fn``.

    Returns:
        The steps' layer names and the (N, steps) similarities (``last``, ``mean``: per image).

    Raises:
        ParameterError: an unknown order, a model with nothing to reset. TargetError, ImageError.
    """
    if order not in ORDERS:
        raise ParameterError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    xb, t, _ = images_and_targets(model, x, targets, batch_size)
    base = explain_all(explain_fn, model, xb, t, batch_size)
    with model_lock(model):  # no method's temporary hooks are copied along
        clone = copy.deepcopy(model).eval()
        trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    steps = [(n, m) for n, m in clone.named_modules() if hasattr(m, "reset_parameters")]
    if not steps:
        raise ParameterError(f"{type(model).__name__} has no module with reset_parameters: nothing to randomise")
    if order == "top_down":
        steps.reverse()
    devices = sorted({p.device.index or 0 for p in clone.parameters() if p.device.type == "cuda"})
    similarity = np.empty((len(xb), len(steps)))
    for i, (_, module) in enumerate(steps):
        if order == "independent":
            clone.load_state_dict(trained)
        _reset(module, seed, devices)
        similarity[:, i] = spearman_abs(base, explain_all(explain_fn, clone, xb, t, batch_size))
    return ParameterRandomisation(order, tuple(n for n, _ in steps), similarity)

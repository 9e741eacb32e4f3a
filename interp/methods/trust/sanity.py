"""Model-parameter randomisation tests (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

A map that does not change when the weights it claims to explain are replaced by random ones
explains the input, not the model. Cascading randomisation re-initialises the layers of a copy
one at a time from the logits down to the first conv layer and recomputes every map after each
step; the independent variant randomises one layer at a time, the others intact. Each map is
compared with the original model's by the Spearman rank correlation of absolute values and by
SSIM. The caller's model is only read: every change happens on a deep copy.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import ImageError, LayerError, MethodError, ParameterError
from ..core import Target, as_batch, get_module, model_lock, using
from ..explain import LAYER_METHODS, explain
from ..trace import trace
from .batched import similarity

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class Randomization:
    """Maps of each method as layers are randomised, and their similarity to the original maps.

    Index 0 of every array is the original model; index i (i >= 1) is step i, at which
    ``layers[i - 1]`` was randomised (cascading: together with every layer before it in the list).
    """

    kind: str  # "cascading" or "independent"
    methods: tuple[str, ...]
    layers: tuple[str, ...]  # the step labels: the (first) module re-initialised at each step
    groups: tuple[tuple[str, ...], ...]  # all modules re-initialised at each step (a conv and its norm)
    target: int  # the class explained at every step: the original model's prediction unless given
    maps: dict[str, np.ndarray]  # method -> (steps + 1, H, W), raw one-value-per-pixel maps
    spearman: dict[str, np.ndarray]  # method -> (steps + 1,), rank correlation of |map| with the original
    ssim: dict[str, np.ndarray]  # method -> (steps + 1,), SSIM of |map| / max|map| with the original

    def rows(self) -> list[dict[str, Any]]:
        """The similarity table, one row per method and step (for a DataFrame)."""
        labels = ("original", *self.layers)
        return [
            {
                "method": m,
                "step": i,
                "randomized": labels[i],
                "spearman": float(self.spearman[m][i]),
                "ssim": float(self.ssim[m][i]),
            }
            for m in self.methods
            for i in range(len(labels))
        ]


# ---------------------------------------------------------------------------------------------
# Similarity


def spearman_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of |a| and |b| (ties get their average rank); one pair of
    :func:`.batched.spearman_abs`.

    A constant map has no ranking: two constant maps give 1, one constant map gives 0.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.size != y.size:
        raise ParameterError(f"maps of different shapes: {np.shape(a)} and {np.shape(b)}")
    return float(similarity.spearman_abs(x.reshape(1, 1, -1), y.reshape(1, 1, -1))[0])


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, win_size: int = 7) -> float:
    """Mean structural similarity of two 2-D arrays (Wang et al. 2004); one pair of
    :func:`.batched.ssim` (scikit-image's ``structural_similarity`` with a uniform window).
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ParameterError(f"ssim takes two (H, W) maps of one shape, got {x.shape} and {y.shape}")
    return float(similarity.ssim(x, y, data_range, win_size)[0])


def _unit_abs(m: np.ndarray) -> np.ndarray:
    a = np.abs(np.asarray(m, np.float64))
    top = a.max()
    return a / top if top > 0 else a


# ---------------------------------------------------------------------------------------------
# Layers and re-initialisation


def randomization_steps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, ...]]:
    """The default steps, from the logits down to the first layer: every module with its own
    parameters, in reverse order of execution; a norm layer goes with the layer it follows.

    Raises:
        LayerError: the model has no parameterised layer that runs.
    """
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.inference_mode(False):
        calls, _ = trace(m, xb[:1])
    first: dict[str, int] = {}
    for c in calls:
        first.setdefault(c.name, c.order)
    owners = [n for n, mod in m.named_modules() if n in first and any(True for _ in mod.parameters(recurse=False))]
    steps: list[list[str]] = []
    for name in sorted(owners, key=first.__getitem__):
        if isinstance(m.get_submodule(name), _NORMS) and steps:
            steps[-1].append(name)
        else:
            steps.append([name])
    if not steps:
        raise LayerError(
            f"{type(model).__name__} has no layer with parameters that runs in its forward "
            "pass: there is nothing to randomise"
        )
    return [tuple(s) for s in reversed(steps)]


def _seed_for(seed: int, name: str) -> int:
    # One seed per (seed, layer): a layer gets the same random weights in both variants.
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def _reinit(module: nn.Module) -> None:
    for sub in module.modules():
        own = list(sub.parameters(recurse=False))
        reset = getattr(sub, "reset_parameters", None)  # any module's own initialiser, by name
        if reset is not None:
            reset()
        elif own:  # no initialiser: redraw at the parameter's own scale
            with torch.no_grad():
                for p in own:
                    std = float(p.std()) if p.numel() > 1 else 0.0
                    p.normal_(float(p.mean()), std or 0.01)


def reinitialize(model: nn.Module, names: Sequence[str], seed: int = 0) -> None:
    """Re-initialise the named modules (and their parameterised children) of ``model`` IN PLACE
    with each module's ``reset_parameters``, seeded per module; the global RNG state is untouched.
    Only ever call it on a copy you own."""
    cuda = sorted({t.device.index or 0 for t in model.parameters() if t.device.type == "cuda"})
    for name in names:
        module = get_module(model, name)
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            s = _seed_for(seed, name)
            torch.default_generator.manual_seed(s)
            for i in cuda:
                torch.cuda.default_generators[i].manual_seed(s)
            _reinit(module)


def randomized_copy(model: nn.Module, names: Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` in eval mode with the named modules re-initialised; ``model`` is untouched."""
    with model_lock(model):  # no method's temporary hooks are copied along
        clone = copy.deepcopy(model)
    clone.eval()
    reinitialize(clone, names, seed)
    return clone


# ---------------------------------------------------------------------------------------------
# The tests


def _steps(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None) -> list[tuple[str, ...]]:
    if layers is None:
        return randomization_steps(model, x)
    if isinstance(layers, str) or not layers:
        raise LayerError(f"layers is a non-empty list of module names, not {layers!r}")
    for name in layers:
        get_module(model, name)
    return [(name,) for name in layers]


def _spatial_maps(
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: Target,
    layer: str | None,
    options: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, np.ndarray], int]:
    found = {
        m: explain(model, x, m, target=target, layer=layer if m in LAYER_METHODS else None, **dict(options.get(m, {})))
        for m in methods
    }
    return {m: e.spatial("absmax") for m, e in found.items()}, int(found[methods[0]].target)


def randomization(
    kind: str,
    model: nn.Module,
    x: torch.Tensor,
    methods: Sequence[str],
    target: Target = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    layer: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Randomization:
    """Model-parameter randomisation of one image, on a copy of the model (Adebayo et al. 2018).

    ``kind`` "cascading" re-initialises the layers one more at a time from the logits down;
    "independent" re-initialises one layer (group) per step, every other layer keeping its
    trained weights.

    Args:
        kind: "cascading" or "independent".
        model: a classifier; it is not modified (the layers are re-initialised on a deep copy).
        x: one preprocessed image (C x H x W or 1 x C x H x W).
        methods: names from :data:`interp.methods.METHODS`, e.g. ("guided_backprop", "grad_cam", "saliency").
        target: the class explained at every step; default the original model's prediction.
        layers: module names to randomise, in this order (each step adds one); default
            :func:`randomization_steps`: every parameterised layer from the logits down.
        seed: seeds the re-initialisation (the same seed gives the same random weights).
        layer: the layer grad_cam / guided_grad_cam / cam read (default theirs).
        options: per-method options, e.g. {"smoothgrad": {"n_samples": 10}}.

    Raises:
        MethodError, LayerError, TargetError, ImageError: as :func:`interp.explain`.
        ParameterError: an unknown kind.
    """
    if kind not in ("cascading", "independent"):
        raise ParameterError(f"randomization kind must be 'cascading' or 'independent', not {kind!r}")
    xb, _ = as_batch(model, x)
    if xb.shape[0] != 1:
        raise ImageError(f"the sanity checks take one image, not a batch of {xb.shape[0]}")
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise MethodError("choose at least one method to check")
    options = options or {}
    groups = _steps(model, xb, layers)
    # The target is fixed by the original model: later steps explain the same class.
    original, target = _spatial_maps(model, xb, methods, target, layer, options)
    maps = {m: [original[m]] for m in methods}
    cascade = randomized_copy(model, [], seed) if kind == "cascading" else None
    for group in groups:
        if cascade is not None:  # one copy, one more layer each step (seeded per layer: same weights)
            reinitialize(cascade, group, seed)
        randomized = cascade if cascade is not None else randomized_copy(model, group, seed)
        for m, amap in _spatial_maps(randomized, xb, methods, target, layer, options)[0].items():
            maps[m].append(amap)
    stacked = {m: np.stack(v) for m, v in maps.items()}
    rho = {m: np.array([spearman_abs(v[0], s) for s in v]) for m, v in stacked.items()}
    sim = {m: np.array([ssim(_unit_abs(v[0]), _unit_abs(s)) for s in v]) for m, v in stacked.items()}
    return Randomization(kind, methods, tuple(g[0] for g in groups), tuple(groups), target, stacked, rho, sim)


def cascading_randomization(model: nn.Module, x: torch.Tensor, methods: Sequence[str], **given: Any) -> Randomization:
    """Cascading model-parameter randomisation: :func:`randomization` of kind "cascading" (the same
    keyword arguments: target, layers, seed, layer, options)."""
    return randomization("cascading", model, x, methods, **given)


def independent_randomization(model: nn.Module, x: torch.Tensor, methods: Sequence[str], **given: Any) -> Randomization:
    """Independent randomisation: :func:`randomization` of kind "independent" (the same keyword
    arguments: target, layers, seed, layer, options)."""
    return randomization("independent", model, x, methods, **given)

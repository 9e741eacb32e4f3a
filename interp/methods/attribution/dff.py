"""Deep Feature Factorization (Collins et al., ECCV 2018): a layer's maps factorised by
non-negative matrix factorisation into k parts, each a region of the image with a concept (a
channel vector) that produces it; for a class, the map is the part whose concept the classifier
scores highest for that class.

The factorisation is pytorch-grad-cam's (the reference the tests hold it to): the layer's
C x (h*w) matrix, each channel shifted by its minimum so that it is non-negative (after a ReLU,
whose channels reach 0, that is the matrix itself), factorised by scikit-learn's NMF (coordinate
descent, random initialisation seeded by ``seed``) as W (C x k) times H (k x h*w); part j's map is
row j of H, its concept column j of W plus the shift. scikit-learn is used rather than an NMF of
interp's own so that the parts are the peer's, draw for draw. Each image is factorised alone (the
paper also factorises several images together, to find the parts they share): an image's map does
not depend on the batch it came in.

The concept's score is pytorch-grad-cam's ``computation_on_concepts`` generalised to any model:
the rest of the model, run with every position of the layer's maps holding the concept. For the
maps a global-average-pooling head pools (the default layer) that is the head applied to the
concept vector, as in pytorch-grad-cam's examples; deeper in a network the layers after the map
run on it (a residual branch keeps the image's own tensor). The part shown is the one whose
concept has the highest softmax probability for the class: each concept's class probabilities,
as pytorch-grad-cam labels the parts.

The map is the part's row of H, raw (non-negative), at the layer's resolution and bilinearly
upsampled; pytorch-grad-cam's min-max scaling of each part is a display choice here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import LayerError, MethodError
from ..core import Maps, Targets, forward_hooks, get_module, logits_of, options_from, to_input_size
from ..layers import remembered_default_layer
from .cam_family import need_maps
from .cam_perturb import _Ablate
from .gradients import _check_count


@dataclass(frozen=True)
class DffOptions:
    """DFF's options: ``n_components`` parts (k) per image (4, as pytorch-grad-cam's examples) and
    the ``seed`` of the factorisation's random initialisation (the same seed gives the same parts)."""

    n_components: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        _check_count("n_components", self.n_components)
        _check_count("seed", self.seed, least=0)


def factorize(maps: torch.Tensor, n_components: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's maps (C x h x w) as k parts: the concepts (k x C) and the parts' maps (k x h x w).

    Raises:
        MethodError: scikit-learn is not installed.
    """
    try:
        from sklearn.decomposition import NMF
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        raise MethodError("DFF factorises with scikit-learn's NMF: pip install scikit-learn") from None
    c, h, w = maps.shape
    dtype = torch.float64 if maps.dtype == torch.float64 else torch.float32
    a = maps.detach().to(device="cpu", dtype=dtype).reshape(c, h * w).numpy()
    shift = a.min(1, keepdims=True)
    nmf = NMF(n_components=n_components, init="random", random_state=seed)
    with warnings.catch_warnings():
        # 200 iterations, as pytorch-grad-cam: its parts are the reference. They often stop short of
        # scikit-learn's tolerance, which it would warn about on most images, to no one who can act.
        warnings.simplefilter("ignore", ConvergenceWarning)
        weights = nmf.fit_transform(a - shift)  # C x k
    parts = np.asarray(nmf.components_).reshape(n_components, h, w)
    concepts = (weights + shift).T
    return (
        torch.from_numpy(np.ascontiguousarray(concepts)).to(device=maps.device, dtype=maps.dtype),
        torch.from_numpy(np.ascontiguousarray(parts)).to(device=maps.device, dtype=maps.dtype),
    )


def concept_logits(
    model: nn.Module, hook: _Ablate, x1: torch.Tensor, concepts: torch.Tensor, shape: torch.Size, classes: int
) -> torch.Tensor:
    """The logits (k x classes) of the rest of the model with every position of the layer's maps
    (shape C x h x w) holding each concept in turn (``hook`` on the layer replaces its output).

    The layers before run once, on the image ``x1`` (1 x C x H x W); where the model cannot mix that
    batch of one with the k concepts' maps (a concatenation with an earlier tensor), on k copies.

    Raises:
        MethodError: the layers after the map do not turn the concepts' maps into k x classes logits.
    """
    k = len(concepts)
    copies = concepts[:, :, None, None].expand(k, *shape).contiguous()
    try:
        logits = hook.run(model, x1, copies)
    except RuntimeError:  # the copies met an earlier tensor of batch 1; an error of the model's own recurs below
        logits = None
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (k, classes):
        logits = hook.run(model, x1.expand(k, -1, -1, -1), copies)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (k, classes):
        raise MethodError(
            f"DFF scores each of its {k} parts by running the layers after {hook.layer!r} on the part's "
            f"concept; they returned {getattr(logits, 'shape', type(logits).__name__)}, not {k} x {classes} "
            "logits. Pick the layer that the model's head pools."
        )
    return logits


def head_after(model: nn.Module, act: torch.Tensor, logits: torch.Tensor) -> nn.Linear | None:
    """The model's Linear whose output, on the layer's maps averaged over positions, is the logits:
    a global-average-pooling head right after the layer. The rest of the model run on a concept's
    constant maps is then that Linear on the concept, and DFF scores its parts as pytorch-grad-cam
    does, without running the model again. None where the logits say otherwise."""
    c = act.shape[1]
    pooled = act.flatten(2).mean(2)
    for m in reversed(list(model.modules())):
        if isinstance(m, nn.Linear) and (m.in_features, m.out_features) == (c, logits.shape[1]):
            scale = 1.0 + float(logits.abs().max())
            if torch.allclose(m(pooled).to(logits.dtype), logits, rtol=1e-4, atol=1e-5 * scale):
                return m
    return None


@options_from(DffOptions)
def _dff(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    """DFF's map, (N, H, W): for each image, the part of the layer's maps (of ``n_components``)
    whose concept the rest of the model scores as the target class with the highest probability.
    One forward pass, then the layers after the map once per image for its k concepts (the head
    alone where it pools the map, :func:`head_after`)."""
    o = DffOptions(**options)
    layer = layer or remembered_default_layer(model, xb)
    hook = _Ablate(layer)  # keeps the maps in the first pass; later replaces them with the concepts
    with forward_hooks([(get_module(model, layer), hook)]), torch.inference_mode():
        logits = logits_of(model, xb)
        if hook.act is None:
            raise LayerError(f"layer {layer!r} did not run in the model's forward pass")
        t = targets.of(logits)
        act = hook.act
        need_maps(act, layer, "DFF")
        head = head_after(model, act, logits)
        maps = []
        for i in range(len(xb)):
            concepts, parts = factorize(act[i], o.n_components, o.seed)
            if head is not None:
                scores = head(concepts)
            else:
                scores = concept_logits(model, hook, xb[i : i + 1], concepts, act.shape[1:], logits.shape[1])
            best = int(torch.softmax(scores.double(), 1)[:, t[i]].argmax())
            maps.append(parts[best])
    return to_input_size(torch.stack(maps), xb.shape[-2:]), layer

"""Concept Relevance Propagation (Achtibat et al., Nature Machine Intelligence 2023): LRP whose
relevance, on its way down, is let through one channel of a layer only. For one prediction it says
which channels of the layer carried the relevance (each one's share) and where each of them sits in
the image (its conditional map).

Built on interp's LRP (:mod:`interp.methods.attribution.lrp`: Zennit's composites, canonizers chosen
for the model, a private twin so the model is never changed) rather than on zennit-crp, whose
CondAttribution registers its hooks on the model itself and expects canonizers chosen by hand; the
tests hold the maps to zennit-crp's. The k channels are one batch of k copies of the image, each with
its own channel mask, so the conditional maps cost one LRP pass of batch k + 1. A conditional map is
the relevance that reaches the input *through* the channel: in a residual network some relevance
goes round the layer by a skip connection, so a (k + 1)-th copy with every channel of the layer
closed measures that part, and each map subtracts it (LRP's backward pass is linear in the relevance
it starts from; zennit-crp's maps leave it out too). Where every path runs through the layer (a
plain CNN) that copy is zero and the maps of all the layer's channels add up to the plain LRP map
(what the tests check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import LayerError, ParameterError
from ..methods.attribution.lrp import LRPOptions, relevance
from ..methods.core import Target, Targets, as_batch, get_module, logits_of, resolve_targets, using


@dataclass(frozen=True)
class ConceptRelevance:
    """The channels of one layer that carried a prediction's relevance, and where each sits."""

    layer: str
    target: int  # the explained class
    probability: float  # its softmax probability
    channels: np.ndarray  # (k,) the channels shown, most relevant first unless chosen
    relevance: np.ndarray  # (k,) each channel's relevance at the layer (summed over positions)
    share: np.ndarray  # (k,) relevance / the sum of |relevance| over all the layer's channels
    maps: np.ndarray  # (k, H, W) each channel's conditional map at the input, summed over colour channels
    layer_relevance: np.ndarray  # (C,) every channel's relevance at the layer


def crp(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    channels: Sequence[int] | None = None,
    target: Target = None,
    top: int = 6,
    composite: str = "epsilon_plus_flat",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ConceptRelevance:
    """Conditional LRP maps of one image for channels of ``layer``.

    Args:
        x: one preprocessed image (1 x C x H x W or C x H x W).
        layer: a layer with channels (a convolution, or the activation after one).
        channels: the channels to condition on; default the ``top`` channels with the most relevance.
        target: the class to explain (default: the prediction).
        composite: LRP's composite (``interp.methods.attribution.lrp.COMPOSITES``).
        mean, std: the model's normalisation (the box rule's bounds in ``epsilon_gamma_box``).

    Raises:
        ImageError: not one image. LayerError: no such layer, or it has no channel axis.
        ParameterError: a channel out of range, or ``top`` < 1. MethodError: as LRP's.
    """
    options = LRPOptions(composite=composite, mean=mean, std=std)
    xb, single = as_batch(model, x)
    if not single:
        raise ParameterError(f"crp explains one image; got a batch of {xb.shape[0]}")
    if top < 1:
        raise ParameterError(f"top must be >= 1, not {top!r}")
    get_module(model, layer)  # a clear error for a name that does not exist
    with using(model) as m, torch.inference_mode(False):
        with torch.no_grad():
            logits = logits_of(m, xb)
        cls = int(resolve_targets(logits, target)[0])
        probability = float(torch.softmax(logits.double(), 1)[0, cls])
        _, layer_rels = _conditional(m, xb, layer, torch.tensor([cls]), None, options)
        layer_rel = _per_channel(layer_rels)[0]
        n_channels = layer_rel.shape[0]
        if channels is None:
            chosen = torch.argsort(layer_rel, descending=True)[: min(top, n_channels)]
        else:
            chosen = torch.as_tensor(list(channels), dtype=torch.int64)
            bad = chosen[(chosen < 0) | (chosen >= n_channels)]
            if chosen.numel() == 0 or bad.numel():
                raise ParameterError(f"channels must be in 0..{n_channels - 1} of {layer!r}; got {list(channels)}")
        maps, _ = _conditional(m, xb, layer, torch.tensor([cls]), chosen, options)
    relevance = layer_rel[chosen]
    scale = float(layer_rel.abs().sum()) or 1.0
    return ConceptRelevance(
        layer=layer,
        target=cls,
        probability=probability,
        channels=chosen.numpy(),
        relevance=relevance.numpy(),
        share=(relevance / scale).numpy(),
        maps=maps.sum(1).detach().float().cpu().numpy(),
        layer_relevance=layer_rel.numpy(),
    )


def layer_relevance(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    target: Target = None,
    composite: str = "epsilon_plus_flat",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Every channel's relevance at ``layer`` for each image's class: (N, C), and the classes (N,).

    Relevance maximisation (Achtibat et al.) ranks a channel's reference images by this, not by its
    activation: the images where the channel mattered most for the class, one LRP pass per batch.

    Args:
        x: preprocessed images, N x C x H x W.
        target: the class of every image, or one per image (default: each image's prediction).
    """
    options = LRPOptions(composite=composite, mean=mean, std=std)
    xb, _ = as_batch(model, x)
    get_module(model, layer)
    rows, classes = [], []
    with using(model) as m, torch.inference_mode(False):
        with torch.no_grad():
            logits = torch.cat([logits_of(m, xb[i : i + batch_size]) for i in range(0, len(xb), batch_size)])
        chosen = resolve_targets(logits, target).cpu()
        for i in range(0, len(xb), batch_size):
            _, rel = _conditional(m, xb[i : i + batch_size], layer, chosen[i : i + batch_size], None, options)
            rows.append(_per_channel(rel))
            classes.append(chosen[i : i + batch_size])
    return torch.cat(rows).numpy(), torch.cat(classes).numpy()


def _per_channel(rel: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) relevance at a layer summed over its positions: (N, C)."""
    return rel.flatten(2).sum(2) if rel.ndim > 2 else rel


def _conditional(
    model: nn.Module,
    xb: torch.Tensor,
    layer: str,
    classes: torch.Tensor,
    chosen: torch.Tensor | None,
    options: LRPOptions,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input relevance of ``classes`` (one per image, or one for all) that passes through channel
    ``chosen[i]`` of the layer, in copy i of the one image ``xb`` ((k, C, H, W)); with ``chosen``
    None, of each image of ``xb`` unmasked ((N, C, H, W)). And the relevance arriving at the layer
    before masking, (k + 1 or N, C, ...): the layer's output shape."""
    # copy k (with chosen) has the whole layer closed: the relevance that goes round it
    k = len(xb) if chosen is None else len(chosen) + 1
    x = xb if chosen is None else xb[:1].expand(k, *xb.shape[1:])
    seen: list[torch.Tensor] = []

    def mask_relevance(grad: torch.Tensor) -> torch.Tensor:
        seen.append(grad.detach())
        if chosen is None:
            return grad
        mask = torch.zeros(k, grad.shape[1], device=grad.device, dtype=grad.dtype)
        mask[torch.arange(k - 1), chosen.to(grad.device)] = 1
        return grad * mask.view(k, -1, *([1] * (grad.ndim - 2)))

    def on_output(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim < 2:
            raise LayerError(f"CRP needs a layer whose output has channels (N x C x ...); {layer!r} returns none")
        if output.requires_grad:
            output.register_hook(mask_relevance)

    rel = relevance(model, x, Targets(classes), options, layer_hook=(layer, on_output))
    if not seen:
        raise LayerError(f"layer {layer!r} did not run in the model's forward pass")
    if chosen is not None:
        rel = rel[:-1] - rel[-1:]
    return rel, seen[0].detach().float().cpu()

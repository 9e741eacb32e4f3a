"""Neuron views: which input pixels drive one channel or one unit of a layer ("filter 14 of conv1").

Every gradient method of :data:`.explain.METHODS` runs unchanged on a stand-in model whose one
output is the chosen neuron: the layer's output is kept by a forward hook during each forward pass
(removed when the pass ends, and acting only on the caller's thread), and the neuron is a channel's
mean over its positions, or its value at one position. This gives Captum's NeuronGradient,
NeuronIntegratedGradients, NeuronDeepLift, NeuronGuidedBackprop, NeuronDeconvolution and
NeuronGradientShap with the same selector (the tests hold it to them); Captum's versions are not
used because their hooks on the shared model would also catch other threads' forward passes.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import LayerError, MethodError
from .core import Targets, _KeepLayerOutput, attribute, forward_hooks, get_module, logits_of
from .explain import Explanation, _options_of
from .records import get_method, method_names

NEURON_METHODS = method_names(neuron=True)  # the built-in methods with neuron views


def select_neuron(act: torch.Tensor, layer: str, channel: int, position: Sequence[int] | None) -> torch.Tensor:
    """The neuron's value per image (N,): channel ``channel`` of ``act`` (N, C, ...), its mean over
    positions, or its value at ``position``.

    Raises:
        LayerError: a channel or position the layer does not have.
    """
    if act.ndim < 2 or not 0 <= int(channel) < act.shape[1]:
        raise LayerError(
            f"layer {layer!r} has {act.shape[1] if act.ndim >= 2 else 0} channels "
            f"(output {tuple(act.shape[1:])}); channel {channel} does not exist"
        )
    a = act[:, int(channel)]
    if position is None:
        return a.flatten(1).mean(1) if a.ndim > 1 else a
    pos = tuple(int(p) for p in position)
    if len(pos) != a.ndim - 1 or any(not 0 <= p < s for p, s in zip(pos, a.shape[1:])):
        raise LayerError(f"position {tuple(position)} is outside layer {layer!r}'s maps {tuple(a.shape[1:])}")
    index: tuple[slice | int, ...] = (slice(None), *pos)
    return a[index]


class NeuronModel(nn.Module):
    """A model whose output (N, 1) is one neuron of a layer of ``model``; ``record`` sees the
    model's logits (a plain function, so that a deep copy of this module shares it)."""

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        channel: int,
        position: Sequence[int] | None,
        record: Callable[[torch.Tensor], Any],
    ):
        super().__init__()
        self.model, self.layer, self.channel, self.position, self.record = model, layer, channel, position, record

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = _KeepLayerOutput(self.layer)
        with forward_hooks([(get_module(self.model, self.layer), keep)]):
            logits = logits_of(self.model, x)
        self.record(logits)
        return select_neuron(keep.ran(), self.layer, self.channel, self.position)[:, None]


def _neuron(
    model: nn.Module,
    xb: torch.Tensor,
    targets: Targets,
    inner: Callable,
    layer: str,
    channel: int,
    position: Sequence[int] | None,
) -> tuple[torch.Tensor, str]:
    get_module(model, layer)  # a LayerError before any work
    n = xb.shape[0]

    def record(logits: torch.Tensor) -> None:  # the clean batch's prediction, shown beside the map
        if targets.value is None and logits.shape[0] == n:
            targets.of(logits)

    amap, _ = inner(NeuronModel(model, layer, channel, position, record), xb, Targets(0))
    targets.before(model, xb)
    return amap, layer


def neuron_attribution(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    channel: int,
    method: str = "saliency",
    position: Sequence[int] | None = None,
    **options: Any,
) -> Explanation:
    """The input attribution of one neuron of ``layer`` with a gradient method.

    Args:
        layer: the layer's dotted name.
        channel: the channel (a conv filter, or a unit of a Linear layer).
        method: one of :data:`NEURON_METHODS`.
        position: (y, x) in the layer's maps for one unit; default the channel's mean over positions.
        options: the method's options, as for :func:`.explain.explain`.

    Returns:
        An Explanation whose map is the neuron's attribution, (C, H, W) or (N, C, H, W); its
        target and probability are the model's predicted class (the neuron has no class).

    Raises:
        MethodError: a method without neuron views, or an unknown option.
        LayerError: an unknown layer, channel or position.
    """
    if not get_method(method).neuron:
        raise MethodError(f"neuron views exist for {', '.join(method_names(neuron=True))}, not {method!r}")
    unknown = sorted(set(options) - set(_options_of(method)))
    if unknown:
        raise MethodError(f"{method} does not take option(s) {', '.join(unknown)}")
    compute = partial(
        _neuron,
        inner=partial(get_method(method).function(), **options),
        layer=layer,
        channel=channel,
        position=None if position is None else tuple(position),
    )
    result = attribute(model, x, None, compute)
    neuron = (layer, int(channel), *(() if position is None else tuple(int(p) for p in position)))
    return dataclasses.replace(result, method=method, layer=layer, neuron=neuron)

"""Receptive fields read from the model itself: one forward pass, traced through every leaf module,
carries each tensor's field size, jump (stride in input pixels) and the centre of its first unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np
import torch
from torch import nn

from ...errors import LayerError
from ..core import forward_hooks, get_module, model_device_dtype, using

Pair = tuple[int, int]
_T = TypeVar("_T")


def _per_axis(f: Callable[[int], _T]) -> tuple[_T, _T]:
    """(f(0), f(1)): one value per axis, rows then columns."""
    return f(0), f(1)


@dataclass(frozen=True)
class ReceptiveField:
    """What one unit of a layer sees of the input, per axis (rows, columns).

    ``start`` is the centre of unit (0, 0) in input pixel coordinates (it can be negative:
    padding); unit (i, j) is centred ``stride`` pixels further per step.
    """

    size: Pair
    stride: Pair
    start: tuple[float, float]

    def box(self, i: int, j: int, hw: Pair | None = None) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom and right exclusive, of unit (i, j)'s field,
        clipped to an input of ``hw`` where given."""
        top, left, bottom, right = (int(v) for v in self.boxes(np.array(i), np.array(j), hw))
        return top, left, bottom, right

    def boxes(self, i: np.ndarray, j: np.ndarray, hw: Pair | None = None) -> np.ndarray:
        """The boxes of units (i, j), arrays of any one shape: that shape + (4,), as ``box``."""
        edges = []
        for a, pos in ((0, i), (1, j)):
            first = np.floor(self.start[a] + pos * self.stride[a] - (self.size[a] - 1) / 2 + 1e-6).astype(np.int64)
            last = first + self.size[a]
            if hw is not None:
                first, last = np.maximum(first, 0), np.minimum(last, hw[a])
            edges.append((first, last))
        return np.stack([edges[0][0], edges[1][0], edges[0][1], edges[1][1]], axis=-1)


class _Stop(Exception):
    """Raised by the hook on the layer asked for: nothing after it needs to run."""


def _pair(v) -> Pair:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(module: nn.Module, hw_in: Pair, hw_out: Pair) -> tuple[Pair, Pair, Pair, Pair] | None:
    """(kernel, stride, left padding, dilation) of a sliding-window module, else None."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride)
        d = _pair(getattr(module, "dilation", 1))
        pad = module.padding
        if pad == "valid":
            pad = 0
        elif pad == "same":  # PyTorch puts the odd pixel on the right
            pad = _per_axis(lambda a: d[a] * (k[a] - 1) // 2)
        return k, s, _pair(pad), d
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        # PyTorch's adaptive bins: stride floor(in/out), kernel ceil(in/out) where they divide evenly
        s = _per_axis(lambda a: max(hw_in[a] // hw_out[a], 1))
        k = _per_axis(lambda a: -(-hw_in[a] // hw_out[a]))
        return k, s, (0, 0), (1, 1)
    return None


def _step(field: ReceptiveField, module: nn.Module, hw_in: Pair, hw_out: Pair, image: Pair) -> ReceptiveField:
    window = _window(module, hw_in, hw_out)
    if window is None:
        if hw_in == hw_out:  # batch norm, activations, dropout: unit by unit
            return field
        return ReceptiveField(image, image, ((image[0] - 1) / 2, (image[1] - 1) / 2))  # resampling: all of it
    k, s, p, d = window
    return ReceptiveField(
        _per_axis(lambda a: field.size[a] + d[a] * (k[a] - 1) * field.stride[a]),
        _per_axis(lambda a: field.stride[a] * s[a]),
        _per_axis(lambda a: field.start[a] + field.stride[a] * (d[a] * (k[a] - 1) / 2 - p[a])),
    )


def receptive_field(model: nn.Module, layer: str, input_size: int | Pair = 224) -> ReceptiveField:
    """The receptive field of one unit of ``layer``'s output, in input pixels.

    Exact for a chain of modules (a Sequential CNN such as AlexNet, functional activations in
    between included); where branches merge (a residual sum) it follows the latest-computed
    tensor of the same size. A dense layer, or anything after one, sees the whole input.

    Args:
        input_size: a side or (height, width) large enough for the model to reach ``layer``.

    Raises:
        LayerError: unknown layer, or one that does not run.
    """
    hw = _pair(input_size)
    get_module(model, layer)
    identity = ReceptiveField((1, 1), (1, 1), (0.0, 0.0))
    whole = ReceptiveField(hw, hw, ((hw[0] - 1) / 2, (hw[1] - 1) / 2))
    fields: dict[int, tuple[torch.Tensor, ReceptiveField]] = {}  # id -> (tensor kept alive, field)
    found: list[ReceptiveField] = []

    def field_of(t) -> ReceptiveField:
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            return whole
        if id(t) in fields and fields[id(t)][0] is t:
            return fields[id(t)][1]
        same = [f for kept, f in fields.values() if kept.shape[-2:] == t.shape[-2:]]
        return same[-1] if same else whole  # a functional op in between (F.relu, a sum)

    def leaf(module: nn.Module, inputs: tuple, output) -> None:
        if isinstance(output, torch.Tensor):
            x = inputs[0] if inputs else None
            if output.ndim == 4 and isinstance(x, torch.Tensor) and x.ndim == 4:
                hw_in, hw_out = (x.shape[-2], x.shape[-1]), (output.shape[-2], output.shape[-1])
                f = _step(field_of(x), module, hw_in, hw_out, hw)
            else:
                f = whole
            fields.pop(id(output), None)  # re-insert: the latest tensor comes last
            fields[id(output)] = (output, f)

    def target(module: nn.Module, inputs: tuple, output) -> None:
        found.append(field_of(output))
        raise _Stop

    device, dtype = model_device_dtype(model)
    with using(model) as m, torch.inference_mode(False), torch.no_grad():
        # Hooks on one module run in the order registered: a leaf target gets its field first.
        hooks = [(mod, leaf) for mod in m.modules() if not mod._modules] + [(m.get_submodule(layer), target)]
        x = torch.zeros(1, 3, *hw, device=device, dtype=dtype)
        fields[id(x)] = (x, identity)
        try:
            with forward_hooks(hooks):
                m(x)
        except _Stop:
            pass
    if not found:
        raise LayerError(f"layer {layer!r} did not run in the model's forward pass")
    return found[0]

"""Layer discovery, the one place that says which layers a model has for each purpose: its conv
layers, the layers with spatial maps (what Grad-CAM and the feature-map views can read), the
activation a conv feeds, and Grad-CAM's default layer. Everything is read from the model itself
(module types and one traced forward pass), never from its name or a declaration beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LayerError
from .core import as_batch, using
from .trace import forget, name_of_tensor, remembered, trace

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.PReLU, nn.Mish)
# Modules that end a conv stage: the default Grad-CAM layer is the last of these with spatial maps.
STAGE = (nn.Conv2d, nn.BatchNorm2d, *ACTIVATIONS)


def conv_layers(model: nn.Module) -> list[str]:
    """Dotted names of every Conv2d in the model, in definition order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_conv_name(model: nn.Module) -> str | None:
    """The first Conv2d's name, or None for a model without one."""
    names = conv_layers(model)
    return names[0] if names else None


def get_conv(model: nn.Module, layer: str) -> nn.Conv2d:
    """The Conv2d called ``layer``.

    Raises:
        LayerError: no such module, or it is not a Conv2d; the message lists the conv layers.
    """
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        module = None
    if not isinstance(module, nn.Conv2d):
        what = "does not exist" if module is None else f"is a {type(module).__name__}, not a Conv2d"
        raise LayerError(f"layer {layer!r} {what}. Conv layers: {', '.join(conv_layers(model))}")
    return module


def has_spatial_maps(t: torch.Tensor) -> bool:
    """Whether ``t`` is N x C x H x W maps larger than 1 x 1: something a map can show."""
    return t.ndim == 4 and t.shape[-2] * t.shape[-1] > 1


def spatial_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Leaf modules whose output for ``x`` is N x C x H x W maps larger than 1 x 1, in the order they run.

    Args:
        x: an input of the model's size (a preprocessed image, or zeros; a meta tensor works).
    """
    xb = x if x.is_meta else as_batch(model, x)[0]
    with using(model) as m, torch.inference_mode(False):
        calls, _ = trace(m, xb)
    last = _last_calls(calls)  # a hook on a module called twice sees the later call
    return [c.name for c in calls if not c.module._modules and last[c.name] is c and has_spatial_maps(c.output)]


def _last_calls(calls: list) -> dict:
    """{module name: its last call}. A module called more than once (torchvision's bottleneck runs
    one ReLU three times) is read by hooks at its last call, whose maps may be smaller."""
    return {c.name: c for c in calls}


def activation_after(model: nn.Module, layer: str, candidates: list[str]) -> str:
    """The first activation among ``candidates`` after ``layer`` (what the next layer receives), else ``layer``."""
    later = candidates[candidates.index(layer) + 1 :] if layer in candidates else []
    return next((n for n in later if isinstance(model.get_submodule(n), ACTIVATIONS)), layer)


def probe_input(input_size: int | tuple[int, int]) -> torch.Tensor:
    """A 1 x 3 x H x W input to trace a model with: which layers have spatial maps, what its head is.
    Seeded noise rather than black: on an all-zero input a head that transforms the pooled maps
    (ConvNeXt's LayerNorm) passes zeros through unchanged and looks like GAP -> Linear."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))


def _default_layer(model: nn.Module, xb: torch.Tensor) -> str:
    calls, _ = trace(model, xb)
    pooled = [
        c
        for c in calls
        if isinstance(c.module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d))
        and c.input is not None
        and has_spatial_maps(c.input)
        and c.output.shape[-2:] == (1, 1)
    ]
    if pooled:
        # The maps a global average pooling head pools: the stage output, whatever its modules. (The
        # last activation could sit inside a block in another layout: ConvNeXt's MLP runs on N x H x W x C.)
        gap = pooled[-1]
        assert gap.input is not None  # pooled keeps only calls with an input
        names = name_of_tensor(calls, gap.input, gap.input_version, gap.order)
        if names:
            return names[0]
    last = _last_calls(calls)
    stage = [c for c in calls if isinstance(c.module, STAGE) and last[c.name] is c and has_spatial_maps(c.output)]
    if not stage:
        raise LayerError(f"{type(model).__name__} has no conv layer with spatial maps for Grad-CAM; pass a layer name")
    final = stage[-1]
    return name_of_tensor(calls, final.output, final.version, len(calls))[0]


def default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The layer Grad-CAM reads when none is given: the maps a global average pooling head pools,
    else the output of the last conv stage (the last conv, batch-norm or activation call that
    still has spatial maps).
    A meta tensor ``x`` finds it from shapes alone (a model built on the meta device)."""
    xb = x if x.is_meta else as_batch(model, x)[0]
    with using(model) as m, torch.inference_mode(False):
        return _default_layer(m, xb)


def remembered_default_layer(model: nn.Module, xb: torch.Tensor) -> str:
    """:func:`default_layer` traced once per model and input shape (the methods' hot path)."""
    name = remembered(model, "default_layer", xb, lambda: _default_layer(model, xb))
    try:
        model.get_submodule(name)
    except AttributeError:  # the model was edited since: look again
        forget(model)
        return remembered_default_layer(model, xb)
    return name

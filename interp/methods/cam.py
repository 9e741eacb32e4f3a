"""Class activation maps: CAM (Zhou et al. 2016), Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017).

CAM needs a head of global average pooling followed by one linear layer (alexnet_gap,
ResNets) or pooled per-class maps (NiN). The head is found structurally, by tracing one
forward pass and checking that the numbers really flow GAP -> (Linear) -> output, so no
model needs to declare anything and a look-alike head is refused rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from ..errors import LayerError
from .core import CamNotApplicableError, Target, as_batch, attribute, layer_activation_and_grad, upsample, using
from .gradients import _guided_backprop
from .trace import Call, name_of_tensor, trace

_POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d)
# Modules that end a conv stage: the default Grad-CAM layer is the last of these with spatial maps.
_STAGE = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
          nn.Hardswish, nn.PReLU, nn.Mish)


@dataclass
class CamHead:
    """Where a model's CAM comes from."""

    pool: str  # the global average pooling module
    layer: str | None  # best name of the module whose maps it pools (None: a functional op)
    layers: list[str]  # every module name whose output is those maps
    weights: torch.Tensor | None  # (classes, K) of the linear layer; None when the maps are the classes
    features: torch.Tensor  # N x K x h x w, the maps as pooled


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    a, b = a.double(), b.double()
    return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5 * (1.0 + float(b.abs().max()))))


def _refuse(model: nn.Module, why: str) -> None:
    raise CamNotApplicableError(
        f"CAM does not apply to {type(model).__name__}: {why}. CAM needs global average pooling "
        "followed by one linear layer (alexnet_gap, ResNets) or pooled per-class maps (NiN); "
        "use method 'grad_cam' instead, which works on any conv layer.")


def _is_gap(c: Call) -> bool:
    return (isinstance(c.module, _POOLS) and c.input is not None and c.input.ndim == 4
            and c.output.ndim == 4 and tuple(c.output.shape[-2:]) == (1, 1))


def _find_cam_head(model: nn.Module, xb: torch.Tensor) -> CamHead:
    calls, logits = trace(model, xb, keep_inputs=lambda m: isinstance(m, (nn.Linear,) + _POOLS))
    gaps = [c for c in calls if _is_gap(c)]
    if not gaps:
        _refuse(model, "it has no global average pooling module (AdaptiveAvgPool2d(1))")
    gap = gaps[-1]
    pooled = gap.output_value.flatten(1)
    linears = [c for c in calls if isinstance(c.module, nn.Linear) and c.order > gap.order]
    if len(linears) > 1:
        _refuse(model, f"{len(linears)} linear layers follow its pooling layer {gap.name!r}")
    if linears:
        lin = linears[0]
        if lin.input_value is None or not _close(lin.input_value, pooled):
            _refuse(model, f"its linear layer {lin.name!r} does not read the pooled maps of {gap.name!r} directly")
        if not _close(lin.output_value, logits):
            _refuse(model, f"the output of {lin.name!r} is not the model's output")
        weights = lin.module.weight.detach()
    else:
        if not _close(pooled, logits):
            _refuse(model, f"the pooled maps of {gap.name!r} are neither read by one linear layer "
                           "nor the model's output")
        weights = None
    names = name_of_tensor(calls, gap.input, gap.input_version, gap.order)
    return CamHead(gap.name, names[0] if names else None, names, weights, gap.input_value)


def cam_head(model: nn.Module, x: torch.Tensor) -> CamHead:
    """Find the CAM head of a model from one forward pass of ``x``.

    Raises:
        CamNotApplicableError: the model's head is not GAP -> Linear or pooled class maps.
    """
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.inference_mode(False):
        return _find_cam_head(m, xb)


def _default_layer(model: nn.Module, xb: torch.Tensor) -> str:
    calls, _ = trace(model, xb)
    stage = [c for c in calls if isinstance(c.module, _STAGE) and c.output.ndim == 4
             and c.output.shape[-2] * c.output.shape[-1] > 1]
    if not stage:
        raise LayerError(f"{type(model).__name__} has no conv layer with spatial maps for Grad-CAM; "
                         "pass a layer name")
    last = stage[-1]
    return name_of_tensor(calls, last.output, last.version, len(calls))[0]


def default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The layer Grad-CAM reads when none is given: the output of the last conv stage
    (the last conv, batch-norm or activation call that still has spatial maps)."""
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.inference_mode(False):
        return _default_layer(m, xb)


def _cam(model: nn.Module, xb: torch.Tensor, targets: torch.Tensor,
         layer: str | None = None) -> tuple[torch.Tensor, str | None]:
    head = _find_cam_head(model, xb)
    if layer is not None and layer not in head.layers:
        raise LayerError(f"CAM reads the maps that {head.pool!r} pools (layer {head.layer!r}); it cannot "
                         f"use layer {layer!r}. Leave the layer out, or use grad_cam for another layer.")
    a = head.features
    if head.weights is None:
        maps = a[torch.arange(len(a), device=a.device), targets]
    else:  # Zhou et al.: M_c = sum_k w_ck A_k (the bias is a constant and left out)
        maps = torch.einsum("nk,nkhw->nhw", head.weights[targets].to(a.dtype), a)
    return upsample(maps, xb.shape[-2:]), head.layer


def _grad_cam(model: nn.Module, xb: torch.Tensor, targets: torch.Tensor, layer: str | None = None,
              relu: bool = True) -> tuple[torch.Tensor, str]:
    layer = layer or _default_layer(model, xb)
    act, grad = layer_activation_and_grad(model, xb, targets, layer)
    if act.ndim != 4:
        raise LayerError(f"Grad-CAM needs a layer with feature maps (N x C x H x W); {layer!r} outputs "
                         f"shape {tuple(act.shape)}. Pick a conv layer or the activation after one.")
    alpha = grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel: the pooled gradient
    maps = (alpha * act).sum(1)
    if relu:
        maps = maps.clamp(min=0)
    return upsample(maps, xb.shape[-2:]), layer


def _guided_grad_cam(model: nn.Module, xb: torch.Tensor, targets: torch.Tensor,
                     layer: str | None = None) -> tuple[torch.Tensor, str]:
    maps, layer = _grad_cam(model, xb, targets, layer)
    guided, _ = _guided_backprop(model, xb, targets)
    return guided * maps[:, None], layer


def class_activation_map(model: nn.Module, x: torch.Tensor, target: Target = None,
                         layer: str | None = None) -> np.ndarray:
    """CAM at input resolution, raw: (H, W) for one image, (N, H, W) for a batch.

    Args:
        target: class index (or one per image); default the prediction.
        layer: optional; must name the maps the head pools.

    Raises:
        CamNotApplicableError: the model has no GAP -> Linear (or pooled class maps) head.
    """
    return attribute(model, x, target, partial(_cam, layer=layer)).map


def grad_cam(model: nn.Module, x: torch.Tensor, target: Target = None, layer: str | None = None,
             relu: bool = True) -> np.ndarray:
    """Grad-CAM on any layer with spatial maps, bilinearly upsampled: (H, W) or (N, H, W).

    Args:
        layer: dotted name; default :func:`default_layer`.
        relu: keep only positive evidence, as in the paper (False gives the signed map).

    Raises:
        LayerError: unknown layer, or one without spatial maps.
    """
    return attribute(model, x, target, partial(_grad_cam, layer=layer, relu=relu)).map


def guided_grad_cam(model: nn.Module, x: torch.Tensor, target: Target = None,
                    layer: str | None = None) -> np.ndarray:
    """Guided backprop times Grad-CAM: (C, H, W) or (N, C, H, W)."""
    return attribute(model, x, target, partial(_guided_grad_cam, layer=layer)).map

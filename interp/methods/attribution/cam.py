"""Class activation maps: CAM (Zhou et al. 2016), Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017).

CAM needs a head of global average pooling followed by one linear layer (alexnet_gap,
ResNets) or pooled per-class maps (NiN). The head is found structurally, by tracing one
forward pass and checking that the numbers really flow GAP -> (Linear) -> output, so no
model needs to declare anything and a look-alike head is refused rather than misread.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from ...errors import CamNotApplicableError, LayerError
from ..core import (
    Target,
    Targets,
    _KeepLayerOutput,
    as_batch,
    attribute,
    forward_hooks,
    get_module,
    layer_activation_and_grad,
    logits_of,
    target_score,
    to_input_size,
    using,
    zero_safe_grad,
)
from ..layers import has_spatial_maps, remembered_default_layer
from ..trace import Call, forget, name_of_tensor, remembered, trace
from .gradients import _guide

_POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d)


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


def _refuse(model: nn.Module, why: str) -> NoReturn:
    raise CamNotApplicableError(
        f"CAM does not apply to {type(model).__name__}: {why}. CAM needs global average pooling "
        "followed by one linear layer (alexnet_gap, ResNets) or pooled per-class maps (NiN); "
        "use method 'grad_cam' instead, which works on any conv layer."
    )


def _is_gap(c: Call) -> bool:
    return (
        isinstance(c.module, _POOLS)
        and c.input is not None
        and c.input.ndim == 4
        and c.output.ndim == 4
        and tuple(c.output.shape[-2:]) == (1, 1)
    )


@dataclass(frozen=True)
class _HeadPlan:
    """What one trace learned about a model's CAM head, so that later calls need one plain pass."""

    pool: nn.Module
    linear: nn.Linear | None
    head: CamHead  # from the tracing call; its features are that call's


def _trace_cam_head(model: nn.Module, xb: torch.Tensor) -> tuple[_HeadPlan, torch.Tensor]:
    """Find the head by tracing one forward pass; the plan and that pass's logits."""
    calls, logits = trace(model, xb, keep_inputs=lambda m: isinstance(m, (nn.Linear,) + _POOLS))
    gaps = [c for c in calls if _is_gap(c)]
    if not gaps:
        _refuse(model, "it has no global average pooling module (AdaptiveAvgPool2d(1))")
    gap = gaps[-1]
    # keep_inputs copies every pooling call's input and output; _is_gap checked the input is there
    assert gap.input is not None and gap.input_value is not None and gap.output_value is not None
    if not has_spatial_maps(gap.input_value):
        # Pooling a 1x1 map changes nothing: the "map" is one number per channel, spread evenly over
        # the image (ResNet-50's ImageNet stem at 32 px). Drawing it would stretch float noise.
        raise CamNotApplicableError(
            f"CAM reads the maps that {gap.name!r} pools; at this input size ({xb.shape[-2]}x{xb.shape[-1]} px) "
            f"they are 1x1, so CAM has nothing spatial to show for {type(model).__name__}. Use method "
            "'grad_cam' on the last layer whose maps are larger (its default layer)."
        )
    pooled = gap.output_value.flatten(1)
    linears = [c for c in calls if isinstance(c.module, nn.Linear) and c.order > gap.order]
    if len(linears) > 1:
        _refuse(model, f"{len(linears)} linear layers follow its pooling layer {gap.name!r}")
    if linears:
        lin = linears[0]
        if lin.input_value is None or not _close(lin.input_value, pooled):
            _refuse(model, f"its linear layer {lin.name!r} does not read the pooled maps of {gap.name!r} directly")
        if lin.output_value is None or not _close(lin.output_value, logits):
            _refuse(model, f"the output of {lin.name!r} is not the model's output")
        assert isinstance(lin.module, nn.Linear)  # linears holds only nn.Linear calls
        linear: nn.Linear | None = lin.module
    else:
        if not _close(pooled, logits):
            _refuse(
                model, f"the pooled maps of {gap.name!r} are neither read by one linear layer nor the model's output"
            )
        linear = None
    names = name_of_tensor(calls, gap.input, gap.input_version, gap.order)
    head = CamHead(
        gap.name,
        names[0] if names else None,
        names,
        None if linear is None else linear.weight.detach(),
        gap.input_value,
    )
    return _HeadPlan(gap.module, linear, head), logits


def _cam_features(model: nn.Module, xb: torch.Tensor) -> tuple[CamHead, torch.Tensor]:
    """The CAM head with this input's pooled maps, and the logits, from one forward pass."""
    found: dict[str, Any] = {}

    def first_trace() -> _HeadPlan | str:
        try:
            found["plan"], found["logits"] = _trace_cam_head(model, xb)
            return found["plan"]
        except CamNotApplicableError as exc:
            return str(exc)

    plan = remembered(model, "cam", xb, first_trace)
    if isinstance(plan, str):
        raise CamNotApplicableError(plan)
    if "plan" in found:  # this call traced: its pass gave the maps already
        return plan.head, found["logits"]
    if get_module(model, plan.head.pool) is not plan.pool:  # the model was edited since: trace again
        forget(model)
        return _cam_features(model, xb)
    pooled: list[torch.Tensor] = []

    def grab(module: nn.Module, inputs: tuple, output) -> None:
        pooled.append(inputs[0].clone())  # a copy: a later in-place op cannot change it

    # Inference mode: CAM needs no autograd, and this skips even no_grad's bookkeeping.
    with forward_hooks([(plan.pool, grab)]), torch.inference_mode():
        logits = logits_of(model, xb)
    if not pooled:  # the model no longer runs its pooling layer: trace again
        forget(model)
        return _cam_features(model, xb)
    weights = None if plan.linear is None else plan.linear.weight.detach()
    h = plan.head
    return CamHead(h.pool, h.layer, h.layers, weights, pooled[-1]), logits


def _find_cam_head(model: nn.Module, xb: torch.Tensor) -> CamHead:
    return _trace_cam_head(model, xb)[0].head


def cam_head(model: nn.Module, x: torch.Tensor) -> CamHead:
    """Find the CAM head of a model from one forward pass of ``x``.

    Raises:
        CamNotApplicableError: the model's head is not GAP -> Linear or pooled class maps.
    """
    xb, _ = as_batch(model, x)
    with using(model) as m, torch.inference_mode(False):
        return _find_cam_head(m, xb)


def _cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, str | None]:
    head, logits = _cam_features(model, xb)
    classes = targets.of(logits)
    if layer is not None and layer not in head.layers:
        raise LayerError(
            f"CAM reads the maps that {head.pool!r} pools (layer {head.layer!r}); it cannot "
            f"use layer {layer!r}. Leave the layer out, or use grad_cam for another layer."
        )
    a = head.features
    if head.weights is None:
        maps = a[torch.arange(len(a), device=a.device), classes]
    else:  # Zhou et al.: M_c = sum_k w_ck A_k (the bias is a constant and left out)
        maps = torch.einsum("nk,nkhw->nhw", head.weights[classes].to(a.dtype), a)
    return to_input_size(maps, xb.shape[-2:]), head.layer


def _grad_cam_maps(act: torch.Tensor, grad: torch.Tensor, layer: str, size: Any, relu: bool = True) -> torch.Tensor:
    if act.ndim != 4:
        raise LayerError(
            f"Grad-CAM needs a layer with feature maps (N x C x H x W); {layer!r} outputs "
            f"shape {tuple(act.shape)}. Pick a conv layer or the activation after one."
        )
    alpha = grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel: the pooled gradient
    maps = (alpha * act).sum(1)
    if relu:
        maps = maps.clamp(min=0)
    return to_input_size(maps, size)


def _grad_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, relu: bool = True
) -> tuple[torch.Tensor, str]:
    layer = layer or remembered_default_layer(model, xb)
    act, grad = layer_activation_and_grad(model, xb, targets, layer)
    return _grad_cam_maps(act, grad, layer, xb.shape[-2:], relu), layer


def _guided_grad_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None
) -> tuple[torch.Tensor, str]:
    """Guided backprop times Grad-CAM, from one forward and one backward pass where it can be.

    Guided backprop changes the gradient only where it passes a ReLU; when no ReLU runs after
    the Grad-CAM layer, the layer's gradient is the plain one and one pass gives both factors.
    Otherwise Grad-CAM gets a pass of its own.
    """
    layer = layer or remembered_default_layer(model, xb)
    keep = _KeepLayerOutput(layer)
    relu_after_layer: list[nn.Module] = []

    def guide(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if keep.act is not None:
            relu_after_layer.append(module)
        _guide(module, inputs, output)

    xg = xb.detach().requires_grad_(True)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    # The layer's own hook goes last: if the layer is a ReLU, Grad-CAM reads the gradient of
    # its guided output, which is the plain gradient at the layer.
    with forward_hooks([(m, guide) for m in relus] + [(get_module(model, layer), keep)]):
        logits = logits_of(model, xg)
    act = keep.ran()
    score = target_score(logits, targets.of(logits))
    if relu_after_layer or not score.requires_grad:
        guided = zero_safe_grad(score, xg)
        maps, _ = _grad_cam(model, xb, targets, layer)
    else:
        grads = torch.autograd.grad(score, [act, xg], allow_unused=True)
        grad_act, guided = (torch.zeros_like(t) if g is None else g for g, t in zip(grads, (act, xg)))
        maps = _grad_cam_maps(act.detach(), grad_act, layer, xb.shape[-2:])
    return guided * maps[:, None], layer


def class_activation_map(
    model: nn.Module, x: torch.Tensor, target: Target = None, layer: str | None = None
) -> np.ndarray:
    """CAM at input resolution, raw: (H, W) for one image, (N, H, W) for a batch.

    Args:
        target: class index (or one per image); default the prediction.
        layer: optional; must name the maps the head pools.

    Raises:
        CamNotApplicableError: the model has no GAP -> Linear (or pooled class maps) head.
    """
    return attribute(model, x, target, partial(_cam, layer=layer)).map


def grad_cam(
    model: nn.Module, x: torch.Tensor, target: Target = None, layer: str | None = None, relu: bool = True
) -> np.ndarray:
    """Grad-CAM on any layer with spatial maps, bilinearly upsampled: (H, W) or (N, H, W).

    Args:
        layer: dotted name; default :func:`interp.methods.layers.default_layer`.
        relu: keep only positive evidence, as in the paper (False gives the signed map).

    Raises:
        LayerError: unknown layer, or one without spatial maps.
    """
    return attribute(model, x, target, partial(_grad_cam, layer=layer, relu=relu)).map


def guided_grad_cam(model: nn.Module, x: torch.Tensor, target: Target = None, layer: str | None = None) -> np.ndarray:
    """Guided backprop times Grad-CAM: (C, H, W) or (N, C, H, W)."""
    return attribute(model, x, target, partial(_guided_grad_cam, layer=layer)).map

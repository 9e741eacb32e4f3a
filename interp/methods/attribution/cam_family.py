"""The gradient-weighted and principal-component CAMs: Grad-CAM++ (Chattopadhay et al. 2018),
XGrad-CAM (Fu et al. 2020), HiResCAM (Draelos & Carin 2020), LayerCAM (Jiang et al. 2021, with
its fusion of several layers), Eigen-CAM (Muhammad & Yeasin 2020) and EigenGrad-CAM.

Each reads one forward pass (and, where it needs gradients, one backward pass that stops at the
layer) and returns a raw map at input resolution, bilinearly upsampled: the definitions are
pytorch-grad-cam's (the reference the tests hold them to), without its min-max scaling of each
map to [0, 1] and its OpenCV resize, which are display choices here (interp.figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import torch
from torch import nn

from ...errors import LayerError
from ..core import (
    Targets,
    _KeepLayerOutput,
    forward_hooks,
    get_module,
    layer_activation_and_grad,
    layers_activations_and_grads,
    logits_of,
    options_from,
    to_input_size,
    upsample,
)
from ..layers import remembered_default_layer

Layers = Union[str, Sequence[str], None]


def need_maps(act: torch.Tensor, layer: str, method: str) -> None:
    """Refuse a layer without N x C x H x W feature maps (a Linear, a flattened output).

    Raises:
        LayerError: naming the layer and what to pick instead.
    """
    if act.ndim != 4:
        raise LayerError(
            f"{method} needs a layer with feature maps (N x C x H x W); {layer!r} outputs "
            f"shape {tuple(act.shape)}. Pick a conv layer or the activation after one."
        )


def finish(maps: torch.Tensor, size: Sequence[int], relu: bool) -> torch.Tensor:
    """The positive part (as every CAM of the family defines it) and the input's resolution."""
    return to_input_size(maps.clamp(min=0) if relu else maps, size)


def weighted_sum(weights: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """sum_k w_k A_k: N x C weights, N x C x h x w maps -> N x h x w."""
    return torch.einsum("nc,nchw->nhw", weights.to(act.dtype), act)


def layer_activation(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str) -> torch.Tensor:
    """A layer's output (its last call) from one forward pass without autograd; fixes the targets."""
    keep = _KeepLayerOutput(layer)
    with forward_hooks([(get_module(model, layer), keep)]), torch.inference_mode():
        targets.of(logits_of(model, xb))
    return keep.ran()


def _gradients(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None, method: str
) -> tuple[torch.Tensor, torch.Tensor, str]:
    layer = layer or remembered_default_layer(model, xb)
    act, grad = layer_activation_and_grad(model, xb, targets, layer)
    need_maps(act, layer, method)
    return act, grad, layer


def _grad_cam_pp(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, relu: bool = True
) -> tuple[torch.Tensor, str]:
    """Grad-CAM++: alpha = g^2 / (2 g^2 + sum(A) g^3), the closed form for an exponential of the
    logit (the paper's eq. 19); zero where the gradient is zero; weights sum(alpha relu(g)).
    torch-cam 0.5's GradCAMpp differs: its in-place division acts on a copy, leaving alpha = g^2."""
    act, g, layer = _gradients(model, xb, targets, layer, "Grad-CAM++")
    g2 = g * g
    # 1e-6 in the denominator as pytorch-grad-cam: a zero denominator has g = 0, masked below
    alpha = g2 / (2 * g2 + act.sum((2, 3), keepdim=True) * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * g.clamp(min=0)).sum((2, 3))
    return finish(weighted_sum(weights, act), xb.shape[-2:], relu), layer


def _xgrad_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, relu: bool = True
) -> tuple[torch.Tensor, str]:
    """XGrad-CAM: weights sum(g A) / sum(A) per channel (1e-7 keeps a dead channel finite)."""
    act, g, layer = _gradients(model, xb, targets, layer, "XGrad-CAM")
    weights = (g * act).sum((2, 3)) / (act.sum((2, 3)) + 1e-7)
    return finish(weighted_sum(weights, act), xb.shape[-2:], relu), layer


def _hires_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, relu: bool = True
) -> tuple[torch.Tensor, str]:
    """HiResCAM: sum_k g_k * A_k element-wise (no pooling of the gradient)."""
    act, g, layer = _gradients(model, xb, targets, layer, "HiResCAM")
    return finish((g * act).sum(1), xb.shape[-2:], relu), layer


def _layer_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: Layers = None, relu: bool = True, gamma: float = 2.0
) -> tuple[torch.Tensor, str]:
    """LayerCAM: sum_k relu(g_k) * A_k element-wise, on one layer or fused over several.

    Fusion (Jiang et al. 2021, sec. 3.3, eq. 9, as torch-cam's ``fuse_cams``): each layer's map M
    (from the same forward and backward pass) is scaled to tanh(gamma M / max |M|) per image, the
    scaled maps are upsampled bilinearly to the largest of the layers' resolutions, and the fused
    map is their element-wise maximum, upsampled to the input. The paper scales shallow layers
    only; every layer is scaled here (as torch-cam does), which leaves the deepest map's peaks.
    """
    names = [layer] if layer is None or isinstance(layer, str) else list(layer)
    if not names:
        raise LayerError("layer_cam needs a layer name or a non-empty list of them")
    names = [n or remembered_default_layer(model, xb) for n in names]
    acts, grads = layers_activations_and_grads(model, xb, targets, names)
    maps = []
    for name, act, g in zip(names, acts, grads):
        need_maps(act, name, "LayerCAM")
        m = (g.clamp(min=0) * act).sum(1)
        maps.append(m.clamp(min=0) if relu else m)
    if len(maps) == 1:
        return to_input_size(maps[0], xb.shape[-2:]), names[0]
    shape = (max(m.shape[-2] for m in maps), max(m.shape[-1] for m in maps))
    fused: torch.Tensor | None = None
    for m in maps:
        peak = m.abs().amax((1, 2), keepdim=True)
        scaled = upsample(torch.tanh(gamma * m / torch.where(peak > 0, peak, torch.ones_like(peak))), shape)
        fused = scaled if fused is None else torch.maximum(fused, scaled)
    assert fused is not None  # two or more layers' maps here
    return to_input_size(fused, xb.shape[-2:]), "+".join(names)


def first_component(a: torch.Tensor, center: bool = True) -> torch.Tensor:
    """N x C x h x w -> N x h x w: each image's h*w x C matrix projected on its first right
    singular vector (after centering each channel, a principal component).

    The sign of a singular vector is arbitrary (LAPACK picks one); here it is fixed so that the
    channel loadings sum to a positive number: the map grows where the channels fire together.
    """
    n, c, h, w = a.shape
    m = a.flatten(2).transpose(1, 2).double()  # float64: the first two components can be close
    if center:
        m = m - m.mean(1, keepdim=True)
    v = torch.linalg.svd(m, full_matrices=False).Vh[:, 0]  # N x C
    sign = torch.where(v.sum(1) < 0, -1.0, 1.0).to(v.dtype)
    return (m @ (v * sign[:, None])[..., None])[..., 0].reshape(n, h, w).to(a.dtype)


@dataclass(frozen=True)
class EigenOptions:
    """Eigen-CAM's and EigenGrad-CAM's options: ``relu`` keeps the positive part, as every CAM of
    the family; ``center`` subtracts each channel's mean first, as pytorch-grad-cam does (PCA),
    and False projects the raw maps, as in the paper's SVD."""

    relu: bool = True
    center: bool = True


@options_from(EigenOptions)
def _eigen_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> tuple[torch.Tensor, str]:
    """Eigen-CAM: the first principal component of the layer's maps; class-agnostic (the target
    only names the explained class)."""
    o = EigenOptions(**options)
    layer = layer or remembered_default_layer(model, xb)
    act = layer_activation(model, xb, targets, layer)
    need_maps(act, layer, "Eigen-CAM")
    return finish(first_component(act, o.center), xb.shape[-2:], o.relu), layer


@options_from(EigenOptions)
def _eigen_grad_cam(
    model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any
) -> tuple[torch.Tensor, str]:
    """EigenGrad-CAM (pytorch-grad-cam's): Eigen-CAM of the element-wise product g * A."""
    o = EigenOptions(**options)
    act, g, layer = _gradients(model, xb, targets, layer, "EigenGrad-CAM")
    return finish(first_component(g * act, o.center), xb.shape[-2:], o.relu), layer

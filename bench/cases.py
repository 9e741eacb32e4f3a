"""The models and inputs under test, interp's own calls, and the floors they are held to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from interp.methods import CAM_FAMILY, CamNotApplicableError, cam_head, default_layer, explain
from interp.models import ModelSpec, build_model, get_spec, load_model

MODELS = ("alexnet_gap_pacs_class", "nin_cifar10", "resnet18_imagenet")
METHODS = ("cam", "grad_cam", "guided_backprop", "guided_grad_cam", "saliency", "integrated_gradients")
GRADIENT_METHODS = METHODS[1:]
# Not in a default run (Score-CAM alone runs the model once per channel): `--methods cam_family`.
ALL_METHODS = METHODS + CAM_FAMILY
# Their floor is the forward pass and the backward pass down to the layer, as Grad-CAM's.
TO_LAYER_METHODS = ("grad_cam", "grad_cam_pp", "xgrad_cam", "hires_cam", "layer_cam", "eigen_grad_cam")
# What ours / the fastest peer is held to where it is not 1 (BENCHMARKS.md).
PEER_TARGETS = {"ablation_cam": 0.2}
# The targets: ours / floor (BENCHMARKS.md).
FLOOR_TARGETS = {"cam": 1.1, "grad_cam": 1.25, "guided_backprop": 1.25, "saliency": 1.25}


@dataclass
class ModelCase:
    """One model under test, shared by ours, the floor and every peer."""

    name: str
    spec: ModelSpec
    model: nn.Module
    weights: str  # "trained (...)" or "untrained (...)": timing does not depend on the values
    cam_layer: str | None  # the maps ours' CAM reads (torch-cam is given the same)
    fc_layer: str | None  # the linear layer of the CAM head; None when the pooled maps are the classes
    grad_layer: str  # the layer every Grad-CAM is given: the one interp's Grad-CAM reads by default


def model_case(name: str, device: torch.device = torch.device("cpu")) -> ModelCase:
    """Build (or load, where a checkpoint is present) one model in eval mode on ``device``; never downloads."""
    spec = get_spec(name)
    if spec.checkpoint is not None:
        model, weights = load_model(name, device=device), f"trained ({spec.checkpoint.name})"
    else:
        # resnet18_imagenet would download torchvision's weights; random ones time the same.
        model = build_model(name).to(device).eval()
        weights = "untrained (random init; no checkpoint here, timing only)"
    probe = torch.zeros(1, 3, spec.input_size, spec.input_size, device=device)
    cam_layer = fc_layer = None
    try:
        head = cam_head(model, probe)
        cam_layer = head.layer
        if head.weights is not None:
            fc_layer = next(n for n, m in model.named_modules()
                            if isinstance(m, nn.Linear) and m.weight.data_ptr() == head.weights.data_ptr())
    except (CamNotApplicableError, StopIteration):  # no CAM head: the CAM row will say so
        pass
    return ModelCase(name, spec, model, weights, cam_layer, fc_layer, default_layer(model, probe))


def inputs(case: ModelCase, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch in the model's normalised input space, on the model's device, and the
    predicted classes that ours and every peer are asked to explain (so no one pays for choosing
    a target). Drawn on the CPU: the same inputs on every device."""
    gen = torch.Generator().manual_seed(seed + batch)
    size = case.spec.input_size
    device = next(case.model.parameters()).device
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    with torch.no_grad():
        targets = case.model(x).argmax(1)
    return x, targets


def expand_methods(methods: Sequence[str]) -> list[str]:
    """Method names, with ``cam_family`` standing for every member of the CAM family."""
    return [m for name in methods for m in (CAM_FAMILY if name == "cam_family" else (name,))]


def ours(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor,
         ig_steps: int) -> Callable[[], np.ndarray]:
    """interp's public call, exactly as a user makes it (explain -> numpy map)."""
    layer = case.grad_layer if method in ("grad_cam", "guided_grad_cam", *CAM_FAMILY) else None
    options = {"steps": ig_steps} if method == "integrated_gradients" else {}

    def run() -> np.ndarray:
        m = explain(case.model, x, method, target=targets, layer=layer, **options).map
        return m[None] if x.shape[0] == 1 else m  # a batch of one comes back unbatched
    return run


def bare_forward(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """CAM's floor: one forward pass without autograd."""
    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(x)
    return run


def bare_forward_backward(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The gradient methods' floor: forward, then d(target logits)/d(input) and nothing else."""
    def run() -> torch.Tensor:
        xg = x.detach().requires_grad_(True)
        score = model(xg).gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(score, xg)
        return grad
    return run


def bare_forward_backward_to_layer(model: nn.Module, layer: str, x: torch.Tensor,
                                   targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Grad-CAM's floor: forward, then d(target logits)/d(layer output); the backward pass stops
    at the layer, as Grad-CAM's does."""
    module = model.get_submodule(layer)

    def run() -> torch.Tensor:
        store: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda m, i, o: store.append(o))
        try:
            score = model(x).gather(1, targets[:, None]).sum()
        finally:
            handle.remove()
        (grad,) = torch.autograd.grad(score, store[-1])
        return grad
    return run


def floor_note(method: str, ig_steps: int) -> str:
    if method == "cam":
        return "bare forward (no autograd)"
    if method == "integrated_gradients":
        return f"{ig_steps} steps x bare forward+backward (computed from the measured forward+backward)"
    if method in TO_LAYER_METHODS:
        return "bare forward+backward down to the layer (no further: the method needs no more)"
    if method == "score_cam":
        return "channels x bare forward (one masked image per channel; computed from the measured forward)"
    if method in ("eigen_cam", "ablation_cam"):
        return "bare forward (no autograd)"
    if method == "guided_grad_cam":
        return "one bare forward+backward w.r.t. the input (the method needs two: Grad-CAM and guided backprop)"
    return "bare forward+backward w.r.t. the input"

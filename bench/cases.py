"""The models and inputs under test, interp's own calls, and the floors they are held to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from interp.methods import CAM_FAMILY, CamNotApplicableError, default_layer, explain, get_method
from interp.methods.attribution import cam_head
from interp.methods.attribution.dff import DffOptions
from interp.models import ModelSpec, build_model, get_spec, load_model

MODELS = ("alexnet_gap_pacs_class", "nin_cifar10", "resnet18_imagenet")
METHODS = ("cam", "grad_cam", "guided_backprop", "guided_grad_cam", "saliency", "integrated_gradients")
# Not in a default run: the CAM family (Score-CAM alone runs the model once per channel) with
# `--methods cam_family`, and the sampling and perturbation methods below when named (hundreds of
# passes per image, too long for every model at batch 32).
MORE_METHODS = (
    "input_x_gradient",
    "deeplift",
    "gradient_shap",
    "deconvolution",
    "vargrad",
    "occlusion",
    "lime",
    "kernel_shap",
)
# Layer-wise relevance propagation, one method per composite (`--methods lrp_family`), against Zennit.
LRP_METHODS = ("lrp", "lrp_epsilon_gamma_box", "lrp_alpha2_beta1", "lrp_epsilon")
# Named with --methods as well: FullGrad and Deep Feature Factorization (DFF; not one of the CAM
# family, whose members all weight a layer's channels) against pytorch-grad-cam, and RISE, which no
# peer library has, at thousands of masked forward passes per image (its row gives the mask count).
EXTRA_METHODS = ("fullgrad", "dff", "rise")
ALL_METHODS = METHODS + CAM_FAMILY + MORE_METHODS + LRP_METHODS + EXTRA_METHODS
# Their floor is the forward pass and the backward pass down to the layer, as Grad-CAM's.
TO_LAYER_METHODS = ("grad_cam", "grad_cam_pp", "xgrad_cam", "hires_cam", "layer_cam", "eigen_grad_cam")
# Forward-only methods: their floor is the bare forward pass (times the passes they need). DFF
# factorises the layer's maps of one forward pass and needs no backward pass.
FORWARD_METHODS = ("cam", "occlusion", "lime", "kernel_shap", "dff", "rise")
GRADIENT_METHODS = tuple(
    m for m in ALL_METHODS if m not in FORWARD_METHODS + ("score_cam", "ablation_cam", "eigen_cam")
)
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


CPU = torch.device("cpu")


def model_case(name: str, device: torch.device = CPU) -> ModelCase:
    """Build (or load, where a checkpoint is present) one model in eval mode on ``device``; never downloads."""
    spec = get_spec(name)
    if spec.checkpoint is not None:
        model, weights = load_model(name, device=device), f"trained ({spec.checkpoint.name})"
    else:
        # resnet18_imagenet would download torchvision's weights; random ones time the same.
        model = build_model(name).to(device).eval()
        weights = "untrained (random init; no checkpoint here, timing only)"
    probe = torch.zeros(1, 3, *spec.input_hw, device=device)
    cam_layer = fc_layer = None
    try:
        head = cam_head(model, probe)
        cam_layer = head.layer
        if head.weights is not None:
            fc_layer = next(
                n
                for n, m in model.named_modules()
                if isinstance(m, nn.Linear) and m.weight.data_ptr() == head.weights.data_ptr()
            )
    except (CamNotApplicableError, StopIteration):  # no CAM head: the CAM row will say so
        pass
    return ModelCase(name, spec, model, weights, cam_layer, fc_layer, default_layer(model, probe))


def inputs(case: ModelCase, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch in the model's normalised input space, on the model's device, and the
    predicted classes that ours and every peer are asked to explain (so no one pays for choosing
    a target). Drawn on the CPU: the same inputs on every device."""
    gen = torch.Generator().manual_seed(seed + batch)
    height, width = case.spec.input_hw
    device = next(case.model.parameters()).device
    x = torch.randn(batch, 3, height, width, generator=gen).to(device)
    with torch.no_grad():
        targets = case.model(x).argmax(1)
    return x, targets


def expand_methods(methods: Sequence[str]) -> list[str]:
    """Method names, with ``cam_family`` and ``lrp_family`` standing for every member of their family."""
    families = {"cam_family": CAM_FAMILY, "lrp_family": LRP_METHODS}
    return [m for name in methods for m in families.get(name, (name,))]


def sampling_options(method: str, s) -> dict:
    """The options that set how much work a method does (``s``: the benchmark's Settings)."""
    if method == "integrated_gradients":
        return {"steps": s.ig_steps}
    if method in ("gradient_shap", "vargrad"):
        return {"n_samples": s.samples}
    if method in ("lime", "kernel_shap"):
        return {"n_samples": s.surrogate_samples}
    if method == "rise":
        return {"n_masks": s.rise_masks}
    return {}


def occlusion_windows(size: int) -> tuple[int, int, int]:
    """Ours' default occlusion window and stride at this input size, and the number of windows."""
    window = max(1, size // 8)
    stride = max(1, window // 2)
    return window, stride, ((size - window) // stride + 1) ** 2


def superpixel_masks(x: torch.Tensor) -> np.ndarray:
    """LIME's and KernelSHAP's features for the benchmark's inputs, (N, H, W): 50 SLIC superpixels of
    each input blurred first (white noise is one superpixel to SLIC); computed once, outside the
    timed calls, and given to ours and Captum alike."""
    from interp.methods.attribution import superpixels

    smooth = torch.nn.functional.avg_pool2d(x.detach().float().cpu(), 5, 1, 2, count_include_pad=False)
    return np.stack([superpixels(img, 50) for img in smooth])


def floor_copies(method: str, batch: int) -> int:
    """How many copies of the batch ours puts through one pass (its chunking); the floor's pass is
    timed on that many, so that batching is not counted as ours' gain."""
    if method in ("occlusion", "lime", "kernel_shap", "rise"):
        return max(1, 64 // batch)
    if method == "gradient_shap":
        return max(1, 32 // batch)
    if method == "vargrad":
        return 16 if batch == 1 else 1
    return 1


def floor_passes(method: str, s, size: int) -> int:
    """How many bare passes the method needs at least (its floor is that many times one pass)."""
    return {
        "integrated_gradients": s.ig_steps,
        "gradient_shap": s.samples,
        "vargrad": s.samples,
        "deeplift": 2,
        "occlusion": occlusion_windows(size)[2] + 1,
        "lime": s.surrogate_samples + 1,
        "kernel_shap": s.surrogate_samples + 1,
        "rise": s.rise_masks,  # its one pass for the classes is not needed where they are given
    }.get(method, 1)


def ours(
    case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor, s, details: dict | None = None
) -> Callable[[], np.ndarray]:
    """interp's public call, exactly as a user makes it (explain -> numpy map); ``s``: the Settings.
    ``details``, where given, is updated with each call's ``Explanation.details`` (RISE's mask count)."""
    record = get_method(method)
    layer = case.grad_layer if record.needs_layer and method != "cam" else None
    options = sampling_options(method, s)
    if "segments" in record.options():  # LIME's and KernelSHAP's superpixels, given to Captum as well
        options["segments"] = superpixel_masks(x)
    elif record.needs_stats:  # LRP's box rule: the input's bounds
        options.update(mean=case.spec.mean, std=case.spec.std)

    def run() -> np.ndarray:
        e = explain(case.model, x, method, target=targets, layer=layer, **options)
        if details is not None:
            details.update(e.details)
        return e.map[None] if x.shape[0] == 1 else e.map  # a batch of one comes back unbatched

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


def bare_forward_backward_to_layer(
    model: nn.Module, layer: str, x: torch.Tensor, targets: torch.Tensor
) -> Callable[[], torch.Tensor]:
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


def floor_note(method: str, s, size: int) -> str:
    passes = floor_passes(method, s, size)
    if method == "cam":
        return "bare forward (no autograd)"
    if method == "dff":
        return (
            "bare forward (no autograd); the NMF of each image's layer maps and the head on its "
            f"{DffOptions().n_components} concepts are the method's own work"
        )
    if method == "rise":
        return (
            f"{passes} masks x bare forward, one per masked image (computed from a bare forward of 64 images "
            "per pass, as ours batches them)"
        )
    if method in FORWARD_METHODS:
        what = {
            "occlusion": "the windows and the clean image",
            "lime": "the samples and the clean image",
            "kernel_shap": "the samples and the clean image",
        }[method]
        return (
            f"{passes} x bare forward, one per image of {what} (computed from a bare forward of 64 images "
            "per pass, as ours batches them)"
        )
    if method == "integrated_gradients":
        return f"{s.ig_steps} steps x bare forward+backward (computed from the measured forward+backward)"
    if method in TO_LAYER_METHODS:
        return "bare forward+backward down to the layer (no further: the method needs no more)"
    if method == "score_cam":
        return "channels x bare forward (one masked image per channel; computed from the measured forward)"
    if method in ("eigen_cam", "ablation_cam"):
        return "bare forward (no autograd)"
    if method in ("gradient_shap", "vargrad"):
        return (
            f"{passes} samples x bare forward+backward (computed from a bare forward+backward of as many "
            "noisy copies per pass as ours: 32 for GradientSHAP, 16 for VarGrad)"
        )
    if method == "deeplift":
        return "2 x bare forward+backward: the input and the baseline go through together"
    if method == "guided_grad_cam":
        return "one bare forward+backward w.r.t. the input (the method needs two: Grad-CAM and guided backprop)"
    if method == "fullgrad":
        return "bare forward+backward w.r.t. the input (the bias gradients come from the same backward pass)"
    return "bare forward+backward w.r.t. the input"

"""The peer libraries' versions of each method, on the same model object, inputs, targets and layer.

Each peer is called the way its documentation shows, with the options that make it do the same
work as ours (raw maps, bilinear upsampling to the input size, the same integration steps and
chunking). Construction of the explainer is inside the timed call, as it is for ours.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .cases import ModelCase
from .peers_cams import PGC_CLASSES, TC_CLASSES, cam_family_impls
from .timing import Impl

PEERS = ("pytorch-grad-cam", "torch-cam", "captum")
# Which peer has which method (the benchmark's rows list a peer only where it has the method).
PEER_METHODS = {
    "pytorch-grad-cam": ("grad_cam", "guided_backprop", "guided_grad_cam", *PGC_CLASSES),
    "torch-cam": ("cam", "grad_cam", *TC_CLASSES),
    "captum": ("grad_cam", "guided_backprop", "guided_grad_cam", "saliency", "integrated_gradients"),
}


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _unavailable(peer: str, why: str) -> Impl:
    impl = Impl(peer, fn=lambda: None)
    impl.error = f"not applicable: {why}"
    return impl


# ---------------------------------------------------------------------------------------------
# pytorch-grad-cam (package grad-cam, import pytorch_grad_cam)


def _pgc_grad_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], np.ndarray]:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = case.model.get_submodule(case.grad_layer)

    def run() -> np.ndarray:
        with GradCAM(case.model, target_layers=[layer]) as cam:  # __exit__ removes its hooks
            return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])
    return run


def _pgc_guided(case: ModelCase) -> tuple[Callable[[torch.Tensor, torch.Tensor], np.ndarray], torch.nn.Module]:
    """GuidedBackpropReLUModel swaps the model's ReLU modules during each call (and puts back
    non-in-place ones), so it gets a deep copy; it explains image 0 of its input only, so a
    batch is one call per image."""
    from pytorch_grad_cam import GuidedBackpropReLUModel

    twin = copy.deepcopy(case.model)
    gb = GuidedBackpropReLUModel(twin, device=next(twin.parameters()).device)

    def run(x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        maps = [gb(x[i:i + 1].clone(), target_category=int(t)) for i, t in enumerate(targets)]
        return np.stack(maps).transpose(0, 3, 1, 2)  # its maps are H x W x C
    return run, twin


# ---------------------------------------------------------------------------------------------
# torch-cam (import torchcam)


def _tc_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    from torchcam.methods import CAM

    def run() -> torch.Tensor:
        with CAM(case.model, case.cam_layer, case.fc_layer) as extractor:
            with torch.no_grad():
                case.model(x)
            maps = extractor(class_idx=targets.tolist(), normalized=False)[0]
        return _upsample(maps, x.shape[-2:])
    return run


def _tc_grad_cam(case: ModelCase, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], torch.Tensor]:
    from torchcam.methods import GradCAM

    def run() -> torch.Tensor:
        with GradCAM(case.model, case.grad_layer) as extractor:
            scores = case.model(x)
            maps = extractor(class_idx=targets.tolist(), scores=scores, normalized=False)[0]
        return _upsample(maps, x.shape[-2:])
    return run


# ---------------------------------------------------------------------------------------------
# Captum


def _captum(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor,
            ig_steps: int) -> Callable[[], torch.Tensor]:
    from captum.attr import (GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam,
                             Saliency)

    model, layer = case.model, case.model.get_submodule(case.grad_layer)
    if method == "grad_cam":
        def run() -> torch.Tensor:
            maps = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
            return LayerAttribution.interpolate(maps, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    elif method == "guided_backprop":
        def run() -> torch.Tensor:
            return GuidedBackprop(model).attribute(x, target=targets)
    elif method == "guided_grad_cam":
        def run() -> torch.Tensor:
            return GuidedGradCam(model, layer).attribute(x, target=targets, interpolate_mode="bilinear")
    elif method == "saliency":
        def run() -> torch.Tensor:
            return Saliency(model).attribute(x, target=targets, abs=False)
    elif method == "integrated_gradients":
        def run() -> torch.Tensor:
            # The same rule, steps, baseline (zeros) and chunking as ours.
            return IntegratedGradients(model).attribute(x, target=targets, n_steps=ig_steps,
                                                        method="gausslegendre",
                                                        internal_batch_size=max(32, x.shape[0]))
    else:
        raise ValueError(method)
    return run


# ---------------------------------------------------------------------------------------------


def peer_impls(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor, ig_steps: int) -> list[Impl]:
    """One Impl per peer that has ``method``; one that cannot run this case carries the reason."""
    if method in PGC_CLASSES:
        return cam_family_impls(case, method, x, targets)
    out: list[Impl] = []
    model = case.model
    if method == "cam":
        if case.cam_layer is None:
            out.append(_unavailable("torch-cam", "the model has no CAM head"))
        elif case.fc_layer is None:
            out.append(_unavailable("torch-cam", "torch-cam's CAM needs a linear layer after the pooling; "
                                                 "this model pools class maps directly (NiN)"))
        else:
            out.append(Impl("torch-cam", _tc_cam(case, x, targets), model,
                            "CAM + bilinear upsampling to the input size"))
    if method == "grad_cam":
        out.append(Impl("pytorch-grad-cam", _pgc_grad_cam(case, x, targets), model,
                        "GradCAM; its maps are min-max scaled and resized with OpenCV"))
        out.append(Impl("torch-cam", _tc_grad_cam(case, x, targets), model,
                        "GradCAM + bilinear upsampling to the input size"))
    if method == "guided_backprop":
        gb, twin = _pgc_guided(case)
        out.append(Impl("pytorch-grad-cam", lambda: gb(x, targets), twin,
                        "GuidedBackpropReLUModel on a deep copy (it swaps the model's ReLUs); one call per image"))
    if method == "guided_grad_cam":
        gb, twin = _pgc_guided(case)
        cam = _pgc_grad_cam(case, x, targets)
        out.append(Impl("pytorch-grad-cam", lambda: gb(x, targets) * cam()[:, None], model,
                        "GradCAM x GuidedBackpropReLUModel as in its example script; guided backprop on a "
                        "deep copy, one call per image"))
    if method in PEER_METHODS["captum"]:
        note = {"grad_cam": "LayerGradCam + LayerAttribution.interpolate (bilinear)",
                "guided_grad_cam": "GuidedGradCam, interpolate_mode='bilinear'",
                "integrated_gradients": f"{ig_steps} steps, Gauss-Legendre, the same internal batch size as ours",
                }.get(method, "")
        out.append(Impl("captum", _captum(case, method, x, targets, ig_steps), model, note))
    return out


def as_numpy(output) -> np.ndarray | None:
    """A peer's or our map as float numpy with a leading batch axis (N, H, W) or (N, C, H, W)."""
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        output = output.detach().float().cpu().numpy()
    return np.asarray(output, dtype=np.float64)


def agreement(ours: np.ndarray | None, theirs: np.ndarray | None) -> float | None:
    """Mean over images of the Pearson correlation of two maps (None where undefined):
    a check that the peer was given the same layer and target, not a quality score."""
    if ours is None or theirs is None or ours.shape != theirs.shape:
        return None
    rs = []
    for a, b in zip(ours.reshape(len(ours), -1), theirs.reshape(len(theirs), -1)):
        if a.std() > 0 and b.std() > 0:
            rs.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rs)) if rs else None

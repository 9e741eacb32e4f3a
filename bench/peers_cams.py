"""The peers' versions of the CAM family (Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Score-CAM,
Ablation-CAM, Eigen-CAM, EigenGrad-CAM), called as their documentation shows, on the same model,
inputs, classes and layer as ours. Where a peer takes a batch size, it gets ours."""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .cases import ModelCase
from .timing import Impl

# Which peer has which member of the family (pytorch-grad-cam has them all).
PGC_CLASSES = {
    "grad_cam_pp": "GradCAMPlusPlus",
    "xgrad_cam": "XGradCAM",
    "hires_cam": "HiResCAM",
    "layer_cam": "LayerCAM",
    "score_cam": "ScoreCAM",
    "ablation_cam": "AblationCAM",
    "eigen_cam": "EigenCAM",
    "eigen_grad_cam": "EigenGradCAM",
}
TC_CLASSES = {"grad_cam_pp": "GradCAMpp", "xgrad_cam": "XGradCAM", "layer_cam": "LayerCAM", "score_cam": "ScoreCAM"}
# Masked images per forward pass: ours' default, given to both peers (pytorch-grad-cam's is 16).
SCORE_BATCH = 32
# Ablated images per pass: pytorch-grad-cam's default. Ours keeps its own (as many copies of the
# layer's maps as 64 MB hold), as it runs only the layers after the ablated one on them.
ABLATION_BATCH = 32
NOTES = {
    "pytorch-grad-cam": "maps min-max scaled and resized with OpenCV",
    "eigen": "; ReLU of a component whose sign LAPACK picks (ours fixes it): agreement may be negative",
    "ablation_cam": f"; {ABLATION_BATCH} copies of the whole model's input per pass",
    "score_cam": f"; batch_size {SCORE_BATCH} (its default is 16)",
    "torch-cam": "raw maps (normalized=False) + bilinear upsampling to the input size",
}


def _pgc(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor) -> tuple[Callable, torch.nn.Module]:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    # Its Ablation-CAM swaps the layer for an AblationLayer while it runs: a copy of the model.
    model = copy.deepcopy(case.model) if method == "ablation_cam" else case.model
    layer = model.get_submodule(case.grad_layer)
    cls = getattr(pytorch_grad_cam, PGC_CLASSES[method])
    kwargs = {"batch_size": ABLATION_BATCH} if method == "ablation_cam" else {}

    def run() -> np.ndarray:
        with cls(model, target_layers=[layer], **kwargs) as cam:  # __exit__ removes its hooks
            if method == "score_cam":
                cam.batch_size = SCORE_BATCH  # read with hasattr(); its default is 16
            return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])

    return run, model


def _tc(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor) -> Callable:
    import torchcam.methods

    cls = getattr(torchcam.methods, TC_CLASSES[method])
    kwargs = {"batch_size": SCORE_BATCH} if method == "score_cam" else {}

    def run() -> torch.Tensor:
        with cls(case.model, case.grad_layer, input_shape=tuple(x.shape[1:]), **kwargs) as extractor:
            with torch.set_grad_enabled(method != "score_cam"):
                scores = case.model(x)
            maps = extractor(class_idx=targets.tolist(), scores=scores, normalized=False)[0]
        return F.interpolate(maps.detach()[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]

    return run


def cam_family_impls(case: ModelCase, method: str, x: torch.Tensor, targets: torch.Tensor) -> list[Impl]:
    """One Impl per peer that has ``method``, a member of the CAM family."""
    run, model = _pgc(case, method, x, targets)
    extra = NOTES["eigen"] if method.startswith("eigen") else NOTES.get(method, "")
    out = [Impl("pytorch-grad-cam", run, model, NOTES["pytorch-grad-cam"] + extra)]
    if method in TC_CLASSES:
        out.append(Impl("torch-cam", _tc(case, method, x, targets), case.model, NOTES["torch-cam"]))
    return out

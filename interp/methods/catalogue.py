"""What each attribution method is, for people choosing one: its family, what its map shows, what
it costs per image, and which peer libraries have it (the tests hold each to those peers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

FAMILIES = ("Class activation maps", "Gradients", "Reference-based", "Perturbation")


@dataclass(frozen=True)
class MethodInfo:
    title: str
    family: str
    shows: str  # one line: what the map means
    cost: str  # passes per image, in the method's default options
    peers: tuple[str, ...] = ()
    # Options that keep it quick where a page runs it many times (every randomisation step of a
    # sanity check, every held-out image of the faithfulness table); empty: its defaults are quick.
    quick: Mapping[str, Any] = field(default_factory=dict)


_CAM, _GRAD, _REF, _PERT = FAMILIES
CATALOGUE: dict[str, MethodInfo] = {
    "cam": MethodInfo("CAM", _CAM, "the class's linear-layer weights over the pooled maps", "1 forward",
                      ("torch-cam",)),
    "grad_cam": MethodInfo("Grad-CAM", _CAM, "a layer's maps weighted by their mean gradient, positive part",
                           "1 forward + 1 backward", ("pytorch-grad-cam", "torch-cam", "Captum")),
    "grad_cam_pp": MethodInfo("Grad-CAM++", _CAM, "Grad-CAM with per-position weights, better for several objects",
                              "1 forward + 1 backward", ("pytorch-grad-cam", "torch-cam")),
    "xgrad_cam": MethodInfo("XGrad-CAM", _CAM, "maps weighted by gradient x activation, normalised per map",
                            "1 forward + 1 backward", ("pytorch-grad-cam", "torch-cam")),
    "hires_cam": MethodInfo("HiResCAM", _CAM, "gradient x activation summed over maps: exact for a GAP head",
                            "1 forward + 1 backward", ("pytorch-grad-cam",)),
    "layer_cam": MethodInfo("LayerCAM", _CAM, "positive gradient x activation per position; fuses layers",
                            "1 forward + 1 backward", ("pytorch-grad-cam", "torch-cam")),
    "score_cam": MethodInfo("Score-CAM", _CAM, "maps weighted by the class score of the image masked by each",
                            "1 forward per map (batched)", ("pytorch-grad-cam", "torch-cam")),
    "ablation_cam": MethodInfo("Ablation-CAM", _CAM, "maps weighted by the score drop when each is zeroed",
                               "1 forward + the layers after the map, per map (batched)", ("pytorch-grad-cam",)),
    "eigen_cam": MethodInfo("Eigen-CAM", _CAM, "first principal component of a layer's maps; class-blind",
                            "1 forward", ("pytorch-grad-cam",)),
    "eigen_grad_cam": MethodInfo("EigenGrad-CAM", _CAM, "first principal component of gradient x activation",
                                 "1 forward + 1 backward", ("pytorch-grad-cam",)),
    "guided_grad_cam": MethodInfo("Guided Grad-CAM", _GRAD, "guided backprop masked by Grad-CAM: fine and "
                                  "class-specific", "1 forward + 1 backward (2 where a ReLU follows the layer)",
                                  ("pytorch-grad-cam", "Captum")),
    "saliency": MethodInfo("Saliency", _GRAD, "the gradient of the class score w.r.t. each input value",
                           "1 forward + 1 backward", ("Captum",)),
    "input_x_gradient": MethodInfo("Input x gradient", _GRAD, "gradient times input: each value's first-order "
                                   "contribution", "1 forward + 1 backward", ("Captum",)),
    "guided_backprop": MethodInfo("Guided backprop", _GRAD, "gradient with only positive signals passed "
                                  "back through ReLUs: edges", "1 forward + 1 backward",
                                  ("pytorch-grad-cam", "Captum")),
    "deconvolution": MethodInfo("Deconvolution", _GRAD, "gradient with ReLUs applied to the backward signal",
                                "1 forward + 1 backward", ("Captum",)),
    "smoothgrad": MethodInfo("SmoothGrad", _GRAD, "saliency averaged over noisy copies: less speckle",
                             "25 forward + backward", ("Captum",),
                             quick={"n_samples": 10}),
    "vargrad": MethodInfo("VarGrad", _GRAD, "the variance of saliency over noisy copies", "25 forward + backward",
                          ("Captum",), quick={"n_samples": 10}),
    "integrated_gradients": MethodInfo("Integrated gradients", _REF, "gradients along the path from a baseline, "
                                       "times the difference: sums to the score change", "50 forward + backward",
                                       ("Captum",), quick={"steps": 16}),
    "deeplift": MethodInfo("DeepLIFT", _REF, "contributions relative to a baseline by the rescale rule",
                           "1 forward + 1 backward (of image and baseline)", ("Captum",)),
    "gradient_shap": MethodInfo("GradientSHAP", _REF, "expected gradient x (input - baseline) over random "
                                "baselines and points", "25 forward + backward", ("Captum",),
                                quick={"n_samples": 8}),
    "occlusion": MethodInfo("Occlusion", _PERT, "the score drop when a window is covered, per position",
                            "1 forward per window position: 15 x 15 (batched)", ("Captum",)),
    "lime": MethodInfo("LIME", _PERT, "a local linear model of the score over superpixels switched off",
                       "200 forward (batched)", ("Captum",), quick={"n_samples": 50}),
    "kernel_shap": MethodInfo("KernelSHAP", _PERT, "Shapley values of superpixels, by weighted regression",
                              "200 forward (batched)", ("Captum",), quick={"n_samples": 50}),
}


def quick_options() -> dict[str, Mapping[str, Any]]:
    """Method -> the options that keep it quick, for the methods that have some."""
    return {name: info.quick for name, info in CATALOGUE.items() if info.quick}


def by_family() -> dict[str, list[str]]:
    """Method names grouped by family, in catalogue order."""
    return {family: [n for n, info in CATALOGUE.items() if info.family == family] for family in FAMILIES}

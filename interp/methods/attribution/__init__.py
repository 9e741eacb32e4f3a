"""Attribution: which input pixels raise a class's score. Class activation maps (``cam``,
``cam_family``, ``cam_perturb``), gradients (``gradients``), reference-based methods and the noise
tunnel (``reference``), perturbation (``perturbation``).

The way to call any of them is ``interp.explain(model, x, method)``; the functions below are
one-line conveniences that return ``explain(...).map`` as a numpy array.
"""

from .cam import CamHead, cam_head, class_activation_map, grad_cam, guided_grad_cam
from .gradients import guided_backprop, integrated_gradients, saliency, smoothgrad, smoothgrad_noise
from .perturbation import kernel_shap, lime, occlusion, superpixels
from .reference import deconvolution, deeplift, gradient_shap, gradient_shap_samples, input_x_gradient, vargrad

__all__ = [
    "CamHead",
    "cam_head",
    "class_activation_map",
    "deconvolution",
    "deeplift",
    "grad_cam",
    "gradient_shap",
    "gradient_shap_samples",
    "guided_backprop",
    "guided_grad_cam",
    "input_x_gradient",
    "integrated_gradients",
    "kernel_shap",
    "lime",
    "occlusion",
    "saliency",
    "smoothgrad",
    "smoothgrad_noise",
    "superpixels",
    "vargrad",
]

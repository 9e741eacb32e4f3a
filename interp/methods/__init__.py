"""Interpretability methods: each takes a model (and an input) and returns raw numpy arrays.

Which layers a model has for each purpose (conv layers, layers with spatial maps, Grad-CAM's
default layer) is found in one place, :mod:`.layers`. Methods hold the model's lock
(:func:`model_lock`) while they hook it, remove every hook before returning (also on error)
and never change the model.
"""

from .attribution import deconvolution, deeplift, gradient_shap, gradient_shap_samples, input_x_gradient, vargrad
from .activations import channel_summary, feature_maps, filter_activations, top_channels
from .cam import CamHead, cam_head, class_activation_map, grad_cam, guided_grad_cam
from ..errors import CamNotApplicableError, MethodError, ModelOutputError, TargetError
from .core import model_lock
from .explain import CAM_FAMILY, METHODS, Explanation, explain, noise_tunnel, predict, reduce_channels
from .examples import LayerExamples, crop, dataset_examples
from .featvis import FeatureVis, FourierImage, Transforms, channel_maxima, feature_visualization
from .faithfulness import (BASELINES, DeletionInsertion, baseline_image, deletion_insertion, mean_aucs,
                           method_scores, pixel_order, summarize)
from .filters import conv1_autocorrelation, filters, order_by_norm, per_input_channel, reduce_input_channels, rgb_tiles
from .gallery import Gallery, right_and_wrong
from .gradients import guided_backprop, integrated_gradients, saliency, smoothgrad, smoothgrad_noise
from .neuron import NEURON_METHODS, neuron_attribution
from .receptive import ReceptiveField, receptive_field
from .records import (FAMILIES, REGISTRY, MethodSpec, by_family, get_method, method_names, register_method,
                      unregister_method)
from .perturbation import kernel_shap, lime, occlusion, superpixels
from .layers import (activation_after, conv_layers, default_layer, first_conv_name, get_conv, probe_input,
                     spatial_layers)
from .metrics import (ROAD_PERCENTAGES, Road, average_drop, complexity, linear_imputation, max_sensitivity,
                      metric_scores, random_logit, road, sparseness, summarize_metrics)
from .sanity import (Randomization, cascading_randomization, independent_randomization, randomization_steps,
                     randomized_copy, spearman_abs, ssim)

__all__ = [
    "CAM_FAMILY", "METHODS", "CamHead", "CamNotApplicableError", "Explanation", "MethodError", "ModelOutputError",
    "TargetError", "cam_head", "channel_summary", "class_activation_map", "conv1_autocorrelation",
    "conv_layers", "default_layer", "explain", "feature_maps", "filter_activations", "filters",
    "grad_cam", "guided_backprop", "guided_grad_cam", "integrated_gradients", "model_lock",
    "order_by_norm", "per_input_channel", "predict", "reduce_channels", "reduce_input_channels", "rgb_tiles",
    "saliency", "smoothgrad", "smoothgrad_noise", "top_channels",
    "Gallery", "right_and_wrong",
    # what each method is, for people choosing one
    "FAMILIES", "REGISTRY", "MethodSpec", "by_family", "get_method", "method_names", "register_method",
    "unregister_method",
    # gradient, reference-based and perturbation attribution; neuron views
    "NEURON_METHODS", "deconvolution", "deeplift", "gradient_shap", "gradient_shap_samples", "input_x_gradient",
    "kernel_shap", "lime", "neuron_attribution", "noise_tunnel", "occlusion", "superpixels", "vargrad",
    # layer discovery
    "activation_after", "first_conv_name", "get_conv", "probe_input", "spatial_layers",
    # trust: sanity checks (Adebayo et al.) and faithfulness (Petsiuk et al.)
    "BASELINES", "DeletionInsertion", "Randomization", "baseline_image", "cascading_randomization",
    "deletion_insertion", "independent_randomization", "mean_aucs", "method_scores", "pixel_order",
    "randomization_steps", "randomized_copy", "spearman_abs", "ssim", "summarize",
    # metrics beside deletion/insertion (Quantus's families)
    "ROAD_PERCENTAGES", "Road", "average_drop", "complexity", "linear_imputation", "max_sensitivity",
    "metric_scores", "random_logit", "road", "sparseness", "summarize_metrics",
    # what a filter looks for: feature visualisation, dataset examples, receptive fields
    "FeatureVis", "FourierImage", "LayerExamples", "ReceptiveField", "Transforms", "channel_maxima", "crop",
    "dataset_examples", "feature_visualization", "receptive_field",
]

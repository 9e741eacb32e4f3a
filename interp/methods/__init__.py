"""Interpretability methods: each takes a model (and an input) and returns raw numpy arrays.

By purpose:
- :mod:`.attribution`: which pixels raise a class's score (CAMs, gradients, reference-based,
  perturbation); called by name through :func:`explain`, described by :data:`REGISTRY`.
- :mod:`.trust`: whether to believe a map (faithfulness, metrics, sanity checks).
- :mod:`.introspect`: what the model holds (filters, feature maps, feature visualisation, dataset
  examples, receptive fields, comparisons of two models).

Which layers a model has for each purpose is found in one place, :mod:`.layers`. Methods hold the
model's lock (:func:`model_lock`) while they hook it, remove every hook before returning (also on
error) and never change the model. Names that lived here before the sub-packages still work, with a
DeprecationWarning that says where they are now.
"""

import importlib
import warnings

from ..errors import CamNotApplicableError, MethodError, ModelOutputError, TargetError
from . import attribution, introspect, trust
from .core import model_lock
from .explain import CAM_FAMILY, METHODS, Explanation, explain, noise_tunnel, predict, reduce_channels
from .introspect import (
    conv1_autocorrelation,
    feature_maps,
    filter_activations,
    filters,
    reduce_input_channels,
    rgb_tiles,
)
from .layers import activation_after, conv_layers, default_layer, first_conv_name, get_conv, probe_input, spatial_layers
from .neuron import NEURON_METHODS, neuron_attribution
from .records import (
    FAMILIES,
    REGISTRY,
    MethodSpec,
    by_family,
    get_method,
    method_names,
    register_method,
    unregister_method,
)

__all__ = [
    # attribution by name, and the records that describe each method
    "CAM_FAMILY",
    "Explanation",
    "FAMILIES",
    "METHODS",
    "MethodSpec",
    "NEURON_METHODS",
    "REGISTRY",
    "by_family",
    "explain",
    "get_method",
    "method_names",
    "neuron_attribution",
    "noise_tunnel",
    "predict",
    "reduce_channels",
    "register_method",
    "unregister_method",
    # errors a method raises
    "CamNotApplicableError",
    "MethodError",
    "ModelOutputError",
    "TargetError",
    # the lock and layer discovery
    "activation_after",
    "conv_layers",
    "default_layer",
    "first_conv_name",
    "get_conv",
    "model_lock",
    "probe_input",
    "spatial_layers",
    # a model's kernels and maps, the dashboard's daily bread
    "conv1_autocorrelation",
    "feature_maps",
    "filter_activations",
    "filters",
    "reduce_input_channels",
    "rgb_tiles",
    # by purpose
    "attribution",
    "introspect",
    "trust",
]

_SUBPACKAGES = ("attribution", "trust", "introspect")


def __getattr__(name: str):
    for sub in _SUBPACKAGES:
        module = importlib.import_module(f".{sub}", __name__)
        if name in module.__all__:
            warnings.warn(f"interp.methods.{name} is now interp.methods.{sub}.{name}", DeprecationWarning, stacklevel=2)
            return getattr(module, name)
    raise AttributeError(f"module 'interp.methods' has no attribute {name!r}")

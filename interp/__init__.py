"""interp: look inside trained image CNNs.

The public surface: the registry (list_models, get_spec, build_model, load_model), images
(load_image, preprocess), attribution (explain, Explanation) and interp's error types.
"""

from .data import load_image, preprocess
from .errors import CheckpointError, DataError, ImageError, InterpError, LayerError, UnknownModelError
from .methods import CamNotApplicableError, Explanation, MethodError, TargetError, explain
from .models import ModelSpec, build_model, get_spec, list_models, load_model

__all__ = [
    "CamNotApplicableError", "CheckpointError", "DataError", "Explanation", "ImageError", "InterpError",
    "LayerError", "MethodError", "ModelSpec", "TargetError", "UnknownModelError", "build_model", "explain",
    "get_spec", "list_models", "load_image", "load_model", "preprocess",
]

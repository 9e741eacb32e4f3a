"""Models: the registry of named entries and their specs, architectures (one file per family in
``arch/``), weights (checkpoints, model cards, torchvision) and tables (parameters, layers)."""

from .arch import ARCHITECTURES
from .registry import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, PACS_CLASSES,
                       PACS_DOMAINS, REGISTRY, ModelSpec, get_spec, list_models, register)
from .tables import count_parameters, layer_table, meta_model, parameter_count, registry_rows, spec_layer_table
from .user import MODELS_ENV, load_models_files, models_files, register_model, user_models
from .weights import (build_model, checkpoint_spec, has_weights, load_model, load_weights, read_card, read_state_dict,
                      save_checkpoint, torchvision_state_dict, torchvision_weights_file, weights_command,
                      weights_status, write_card)

__all__ = [
    "ARCHITECTURES", "MODELS_ENV", "load_models_files", "models_files", "register_model", "user_models",
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD",
    "PACS_CLASSES", "PACS_DOMAINS", "REGISTRY", "ModelSpec", "build_model", "checkpoint_spec", "count_parameters",
    "get_spec",
    "has_weights", "layer_table", "list_models", "load_model", "load_weights", "meta_model", "parameter_count",
    "read_card", "read_state_dict", "register", "registry_rows", "save_checkpoint", "spec_layer_table",
    "torchvision_state_dict", "torchvision_weights_file", "weights_command", "weights_status", "write_card",
]

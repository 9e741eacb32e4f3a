"""build_model and load_model: registry name -> nn.Module."""

from __future__ import annotations

import os

from torch import nn

from .checkpoints import load_weights
from .errors import CheckpointError
from .registry import get_spec


def build_model(name: str) -> nn.Module:
    """A fresh, untrained model of a registry entry (never downloads anything)."""
    return get_spec(name).build()


def load_model(name: str, checkpoint: str | os.PathLike | None = None) -> nn.Module:
    """A registry entry with trained weights, in eval mode.

    Args:
        name: registry name (see list_models()).
        checkpoint: a weights file (.safetensors, or .pt/.pth state_dict) for that entry's
            architecture; by default the entry's own checkpoint, or for ImageNet entries
            torchvision's weights (downloaded to the torch cache on first use).

    Raises:
        UnknownModelError: unknown name.
        CheckpointError: no weights for the entry, or a file that does not fit it.
    """
    spec = get_spec(name)
    model = spec.build()
    if checkpoint is not None:
        load_weights(model, checkpoint, spec.arch)
    elif spec.checkpoint is not None:
        load_weights(model, spec.checkpoint, spec.arch)
    elif spec.pretrained == "imagenet" and spec.task == "imagenet":
        from .models.resnet import imagenet_resnet18_state_dict

        model.load_state_dict(imagenet_resnet18_state_dict())
    else:
        raise CheckpointError(
            f"{name} has no trained weights yet ({spec.checkpoint_path} does not exist). "
            f"Train it with: python -m interp train {name}"
        )
    return model.eval()

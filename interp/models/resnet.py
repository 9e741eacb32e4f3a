"""ImageNet-style ResNets from torchvision: ResNet-18 (ImageNet and transfer) and ResNet-50."""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from ..errors import CheckpointError


def resnet18(num_classes: int = 1000) -> tvm.ResNet:
    """torchvision's ResNet-18, untrained."""
    return tvm.resnet18(weights=None, num_classes=num_classes)


def resnet50(num_classes: int = 10) -> tvm.ResNet:
    """Bottleneck ResNet-50 ([3, 4, 6, 3], stride on the 3x3): torchvision's layout, untrained."""
    return tvm.resnet50(weights=None, num_classes=num_classes)


def resnet18_transfer(num_classes: int = 10) -> tvm.ResNet:
    """ResNet-18 with a new ``fc`` and every parameter frozen except ``layer4`` and ``fc``.

    The ImageNet weights are loaded by the training command (see
    :func:`imagenet_resnet18_state_dict`), not here: building never downloads.
    """
    model = tvm.resnet18(weights=None)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    freeze_all_but(model, ("layer4", "fc"))
    return model


def freeze_all_but(model: nn.Module, trainable_prefixes: tuple[str, ...]) -> None:
    """Set requires_grad=False on every parameter whose name starts with none of the prefixes."""
    for name, p in model.named_parameters():
        p.requires_grad = name.split(".")[0] in trainable_prefixes


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names that travel with torchvision's weights (no download)."""
    return list(tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_resnet18_state_dict() -> dict:
    """torchvision's ImageNet ResNet-18 weights, downloaded to the torch cache on first use.

    Raises:
        CheckpointError: when the weights are neither cached nor downloadable (offline).
    """
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, hash mismatch
        raise CheckpointError(
            f"could not download torchvision's ImageNet ResNet-18 weights from {weights.url} ({exc}). "
            "Connect to the internet once (they are cached in ~/.cache/torch), or pass a local "
            "file with --checkpoint / load_model(name, checkpoint=PATH)."
        ) from exc

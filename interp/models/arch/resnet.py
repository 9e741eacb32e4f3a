"""ImageNet-style ResNets from torchvision: ResNet-18 (ImageNet and transfer) and ResNet-50.

torchvision is imported inside the builders, not here: importing it costs about two seconds
(it pulls in torch._dynamo), which the dashboard's start would pay for models it may never show.
"""

from __future__ import annotations

from torch import nn

# Parameters of torchvision's ResNets without their final Linear (whose input width is given):
# what the registry's table shows without importing torchvision (tests compare with torchvision).
BACKBONE_PARAMETERS = {
    "resnet18": (11_176_512, 512),
    "resnet18_transfer": (11_176_512, 512),
    "resnet50": (23_508_032, 2048),
}


def parameter_count(arch: str, num_classes: int) -> int:
    """Parameters of a torchvision ResNet entry with ``num_classes`` outputs, without building it."""
    backbone, width = BACKBONE_PARAMETERS[arch]
    return backbone + width * num_classes + num_classes


def resnet18(num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18, untrained."""
    from torchvision import models as tvm

    return tvm.resnet18(weights=None, num_classes=num_classes)


def resnet50(num_classes: int = 10) -> nn.Module:
    """Bottleneck ResNet-50 ([3, 4, 6, 3], stride on the 3x3): torchvision's layout, untrained."""
    from torchvision import models as tvm

    return tvm.resnet50(weights=None, num_classes=num_classes)


def resnet18_transfer(num_classes: int = 10) -> nn.Module:
    """ResNet-18 with a new ``fc`` and every parameter frozen except ``layer4`` and ``fc``.

    The ImageNet weights are loaded by the training command (see
    ``interp.models.weights.torchvision_state_dict``), not here: building never downloads.
    """
    model = resnet18()
    old_head = model.fc
    assert isinstance(old_head, nn.Linear)
    model.fc = nn.Linear(old_head.in_features, num_classes)
    freeze_all_but(model, ("layer4", "fc"))
    return model


def freeze_all_but(model: nn.Module, trainable_prefixes: tuple[str, ...]) -> None:
    """Set requires_grad=False on every parameter whose name starts with none of the prefixes."""
    for name, p in model.named_parameters():
        p.requires_grad = name.split(".")[0] in trainable_prefixes

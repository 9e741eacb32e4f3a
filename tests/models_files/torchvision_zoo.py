"""A models file with eight of torchvision's architectures, random weights, 5 classes, 64 px:
the variety a user brings (batch norm, depthwise and grouped convolutions, SiLU and Hardswish,
squeeze-and-excitation, residual and dense blocks, LayerNorm, heads that are not GAP -> Linear)."""

import torch
from torchvision import models as tvm

import interp

ZOO = [
    "resnet50",
    "vgg11_bn",
    "densenet121",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "convnext_tiny",
    "regnet_y_400mf",
    "squeezenet1_1",
]

for i, arch in enumerate(ZOO):
    torch.manual_seed(i)
    interp.register_model(
        f"zoo_{arch}",
        tvm.get_model(arch, weights=None, num_classes=5).eval(),
        classes=5,
        input_size=64,
        description=f"torchvision's {arch}, random weights",
    )

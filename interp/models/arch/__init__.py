"""Architectures, one file per family. ``ARCHITECTURES`` maps an arch name to its builder.

Every builder takes ``num_classes`` first; other keyword arguments are the architecture's
switches (batch norm, dropout, ...).
"""

from typing import Callable

from torch import nn

from .alexnet import alexnet, alexnet_avgpool, alexnet_gap, alexnet_large_kernel
from .cifar import linear_cnn, nin, resnet32, table2_cnn, vanilla_cnn
from .resnet import resnet18, resnet18_transfer, resnet50

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "alexnet": alexnet,
    "alexnet_large_kernel": alexnet_large_kernel,
    "alexnet_avgpool": alexnet_avgpool,
    "alexnet_gap": alexnet_gap,
    "table2_cnn": table2_cnn,
    "vanilla_cnn": vanilla_cnn,
    "linear_cnn": linear_cnn,
    "nin": nin,
    "resnet32": resnet32,
    "resnet50": resnet50,
    "resnet18": resnet18,
    "resnet18_transfer": resnet18_transfer,
}

__all__ = ["ARCHITECTURES", *ARCHITECTURES]

"""CNN layers from scratch in numpy (``layers``: Conv2d, MaxPool2d, ReLU, Flatten, Linear, softmax
cross-entropy, SGD with momentum, ConvNet), and overfitting a few CIFAR-10 images with them
(``overfit``: ``python -m interp scratch``)."""

from .layers import SGD, Conv2d, ConvNet, Flatten, Linear, MaxPool2d, Module, Parameter, ReLU, SoftmaxCrossEntropy
from .overfit import (
    RECORD,
    OverfitSettings,
    describe,
    overfit,
    read_record,
    small_convnet,
    training_images,
    write_record,
)

__all__ = [
    "RECORD",
    "SGD",
    "ConvNet",
    "Conv2d",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "OverfitSettings",
    "Parameter",
    "ReLU",
    "SoftmaxCrossEntropy",
    "describe",
    "overfit",
    "read_record",
    "small_convnet",
    "training_images",
    "write_record",
]

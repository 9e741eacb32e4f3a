"""The AlexNet family (Krizhevsky et al. 2012) at its true input size, 3x227x227.

One tower, no split across two GPUs, no local response normalisation: the layer
table of the course material. Layer names (``features.conv1`` ... ``classifier.fc8``)
are stable because the methods and the dashboard address layers by dotted name.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def _conv_stack(pool: type[nn.Module], batch_norm: bool = False, last_pool: bool = True) -> nn.Sequential:
    """conv1-conv5 of AlexNet with the given pooling layer (MaxPool2d or AvgPool2d)."""
    convs = [  # (name, in, out, kernel, stride, padding, pool after)
        ("conv1", 3, 96, 11, 4, 0, True),
        ("conv2", 96, 256, 5, 1, 2, True),
        ("conv3", 256, 384, 3, 1, 1, False),
        ("conv4", 384, 384, 3, 1, 1, False),
        ("conv5", 384, 256, 3, 1, 1, last_pool),
    ]
    return _stack(convs, pool, batch_norm)


def _stack(convs: list[tuple], pool: type[nn.Module] | None, batch_norm: bool) -> nn.Sequential:
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for name, cin, cout, k, s, p, pool_after in convs:
        i = name[len("conv") :]
        layers[name] = nn.Conv2d(cin, cout, k, stride=s, padding=p)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(cout)
        layers[f"relu{i}"] = nn.ReLU()
        if pool_after and pool is not None:
            layers[f"pool{i}"] = pool(kernel_size=3, stride=2)
    return nn.Sequential(layers)


def _dense_head(num_classes: int, dropout: float = 0.5) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("dropout6", nn.Dropout(dropout)),
                ("fc6", nn.Linear(256 * 6 * 6, 4096)),
                ("relu6", nn.ReLU()),
                ("dropout7", nn.Dropout(dropout)),
                ("fc7", nn.Linear(4096, 4096)),
                ("relu7", nn.ReLU()),
                ("fc8", nn.Linear(4096, num_classes)),
            ]
        )
    )


class AlexNet(nn.Module):
    """Convolutional ``features`` followed by a ``classifier`` head."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _small_conv1(features: nn.Sequential, conv1_init_std: float | None) -> nn.Sequential:
    """Start conv1 from N(0, std^2) with a zero bias where a std is given.

    A small start lets the data, not the initial noise, shape the first-layer filters: with
    PyTorch's default start (std ~0.03 for 11x11x3) a few epochs move the kernels too little
    for any structure to show.
    """
    # On the meta device (parameter counts) there is nothing to initialise, and normal_ there
    # would import torch._dynamo (seconds at the dashboard's start).
    conv1 = features.conv1
    assert isinstance(conv1, nn.Conv2d) and conv1.bias is not None
    if conv1_init_std is not None and not conv1.weight.is_meta:
        nn.init.normal_(conv1.weight, std=conv1_init_std)
        nn.init.zeros_(conv1.bias)
    return features


def alexnet(num_classes: int, dropout: float = 0.5, conv1_init_std: float | None = None) -> AlexNet:
    """The original AlexNet: 58.3 M parameters for 4 classes.

    Args:
        dropout: dropout before fc6 and fc7.
        conv1_init_std: if set, conv1's weights start from N(0, std^2) (see _small_conv1).
    """
    features = _small_conv1(_conv_stack(nn.MaxPool2d), conv1_init_std)
    return AlexNet(features, _dense_head(num_classes, dropout))


def alexnet_avgpool(num_classes: int, dropout: float = 0.5, conv1_init_std: float | None = None) -> AlexNet:
    """AlexNet with AvgPool2d(3, 2) in place of each MaxPool2d(3, 2); arguments as alexnet's."""
    features = _small_conv1(_conv_stack(nn.AvgPool2d), conv1_init_std)
    return AlexNet(features, _dense_head(num_classes, dropout))


def alexnet_large_kernel(num_classes: int, dropout: float = 0.5, conv1_init_std: float | None = None) -> AlexNet:
    """No pooling: larger kernels and strides bring 227 down to 27, 13 and 6 instead; arguments
    as alexnet's."""
    convs = [
        ("conv1", 3, 96, 21, 8, 1, False),
        ("conv2", 96, 256, 7, 2, 2, False),
        ("conv3", 256, 384, 3, 1, 1, False),
        ("conv4", 384, 384, 3, 1, 1, False),
        ("conv5", 384, 256, 3, 2, 0, False),
    ]
    features = _small_conv1(_stack(convs, None, batch_norm=False), conv1_init_std)
    return AlexNet(features, _dense_head(num_classes, dropout))


def alexnet_gap(num_classes: int, batch_norm: bool = False, conv1_init_std: float | None = None) -> AlexNet:
    """AlexNet-GAP of the CAM paper (Zhou et al. 2016): conv1-conv5, global average pooling, one Linear.

    Args:
        batch_norm: add BatchNorm2d after each conv (trains much faster on a CPU budget).
        conv1_init_std: if set, conv1's weights start from N(0, std^2); a small start lets
            the data, not the initial noise, shape the first-layer filters.
    """
    features = _small_conv1(_conv_stack(nn.MaxPool2d, batch_norm=batch_norm, last_pool=False), conv1_init_std)
    head = nn.Sequential(
        OrderedDict([("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(256, num_classes))])
    )
    return AlexNet(features, head)

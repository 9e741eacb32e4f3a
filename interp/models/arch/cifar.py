"""Small CNNs for CIFAR-10 (3x32x32): the course's reference networks, a VGG-style net and NiN."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def table2_cnn(num_classes: int = 10) -> nn.Sequential:
    """Three [conv 5x5 p2 -> ReLU -> MaxPool 2] blocks (32, 64, 128 filters), then 2048->64->10.

    390,410 parameters for 10 classes (the course's Table 2).
    """
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    cin = 3
    for i, cout in enumerate((32, 64, 128), start=1):
        layers[f"conv{i}"] = nn.Conv2d(cin, cout, 5, stride=1, padding=2)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"pool{i}"] = nn.MaxPool2d(2, 2)
        cin = cout
    layers["flatten"] = nn.Flatten()
    layers["fc1"] = nn.Linear(128 * 4 * 4, 64)
    layers["relu4"] = nn.ReLU()
    layers["fc2"] = nn.Linear(64, num_classes)
    return nn.Sequential(layers)


def vanilla_cnn(num_classes: int = 10) -> nn.Sequential:
    """One conv 32@7x7 (no padding) -> ReLU -> MaxPool 2 -> Linear 5408->10."""
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 32, 7, stride=1, padding=0)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2, 2)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(32 * 13 * 13, num_classes)),
            ]
        )
    )


def _conv_block(
    layers: "OrderedDict[str, nn.Module]",
    name: str,
    cin: int,
    cout: int,
    k: int,
    batch_norm: bool,
    padding: int | None = None,
) -> None:
    layers[f"conv{name}"] = nn.Conv2d(cin, cout, k, padding=k // 2 if padding is None else padding)
    if batch_norm:
        layers[f"bn{name}"] = nn.BatchNorm2d(cout)
    layers[f"relu{name}"] = nn.ReLU()


def linear_cnn(
    num_classes: int = 10,
    batch_norm: bool = True,
    dropout: float = 0.3,
    widths: tuple[int, int, int] = (32, 64, 128),
    hidden: int = 256,
) -> nn.Module:
    """VGG-style: three stages of two 3x3 convs and a 2x2 max-pool, then dense layers.

    Args:
        batch_norm: BatchNorm2d after every conv.
        dropout: dropout probability before each dense layer (0 disables it).
        widths: channels of the three stages.
        hidden: units of the hidden dense layer.
    """
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    cin = 3
    for stage, width in enumerate(widths, start=1):
        _conv_block(layers, f"{stage}_1", cin, width, 3, batch_norm)
        _conv_block(layers, f"{stage}_2", width, width, 3, batch_norm)
        layers[f"pool{stage}"] = nn.MaxPool2d(2, 2)
        cin = width
    head: "OrderedDict[str, nn.Module]" = OrderedDict([("flatten", nn.Flatten())])
    if dropout:
        head["dropout1"] = nn.Dropout(dropout)
    head["fc1"] = nn.Linear(cin * 4 * 4, hidden)
    head["relu"] = nn.ReLU()
    if dropout:
        head["dropout2"] = nn.Dropout(dropout)
    head["fc2"] = nn.Linear(hidden, num_classes)
    return nn.Sequential(OrderedDict([("features", nn.Sequential(layers)), ("classifier", nn.Sequential(head))]))


def nin(
    num_classes: int = 10, batch_norm: bool = True, dropout: float = 0.3, widths: tuple[int, int, int] = (64, 96, 128)
) -> nn.Module:
    """Network in Network (Lin et al. 2014): each block is a kxk conv then two 1x1 convs.

    The last block's final 1x1 conv has one channel per class; global average pooling of
    those channels gives the logits, so there is no dense layer (and CAM reads the class
    maps directly).
    """
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    w1, w2, w3 = widths
    blocks = [(3, w1, 5), (w1, w2, 5), (w2, w3, 3)]
    for b, (cin, cout, k) in enumerate(blocks, start=1):
        last = b == len(blocks)
        _conv_block(layers, f"{b}_1", cin, cout, k, batch_norm)
        _conv_block(layers, f"{b}_2", cout, cout, 1, batch_norm)
        if last:
            # The class-map conv: ReLU after it, as in the original NiN, but no batch norm,
            # so the pooled class maps are the logits themselves.
            layers[f"conv{b}_3"] = nn.Conv2d(cout, num_classes, 1)
            layers[f"relu{b}_3"] = nn.ReLU()
        else:
            _conv_block(layers, f"{b}_3", cout, cout, 1, batch_norm)
            layers[f"pool{b}"] = nn.MaxPool2d(3, 2, padding=1)
            if dropout:
                layers[f"dropout{b}"] = nn.Dropout(dropout)
    head = nn.Sequential(OrderedDict([("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]))
    return nn.Sequential(OrderedDict([("features", nn.Sequential(layers)), ("classifier", head)]))


class _ZeroPadShortcut(nn.Module):
    """He et al.'s option A: subsample by 2 and pad the new channels with zeros (no parameters)."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        half = self.extra_channels // 2
        return nn.functional.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))


class CifarBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _ZeroPadShortcut(cout - cin) if (stride != 1 or cin != cout) else nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. 2016 (section 4.2): 6n+2 layers, 16/32/64 channels."""

    def __init__(self, blocks_per_stage: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        stages = []
        cin = 16
        for i, cout in enumerate((16, 32, 64)):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(CifarBasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:  # meta: see alexnet_gap
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet32(num_classes: int = 10) -> CifarResNet:
    """ResNet-32: 3 stages x 5 basic blocks (0.46 M parameters)."""
    return CifarResNet(5, num_classes)

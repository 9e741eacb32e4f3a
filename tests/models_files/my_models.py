"""A models file as a user writes one: a custom classifier of 5 classes that takes 48 x 64 inputs."""

import torch
from torch import nn

import interp


class TinyNet(nn.Module):
    """conv-bn-relu x2, global average pooling, one Linear: CAM applies."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


torch.manual_seed(0)
interp.register_model(
    "my_tinynet",
    TinyNet().eval(),
    classes=["cat", "dog", "fox", "owl", "yak"],
    input_size=(48, 64),
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    description="A 5-class test network with a non-square input.",
)

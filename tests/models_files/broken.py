"""A models file that fails half-way: the model before the error is registered, the one after is not."""

from torch import nn

import interp

interp.register_model(
    "before_the_error",
    nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
    classes=2,
    input_size=16,
)
raise RuntimeError("a mistake in the user's file")

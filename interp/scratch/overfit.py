"""Overfitting a few CIFAR-10 training images with the from-scratch network: a check that every
forward and backward pass is right (a network that cannot learn 50 images has a bug), written
out as a training record (JSON) that the dashboard plots."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import read_only_checkpoint_dirs, writable_checkpoint_dir
from .layers import SGD, Conv2d, ConvNet, Flatten, Linear, MaxPool2d, Module, ReLU, SoftmaxCrossEntropy

RECORD_NAME = "scratch_overfit.json"  # among the checkpoints (interp.paths): written by `interp scratch`
RECORD = writable_checkpoint_dir() / RECORD_NAME


@dataclass(frozen=True)
class OverfitSettings:
    images: int = 50  # spread over the split, so 5 per class
    epochs: int = 20
    batch_size: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    seed: int = 0  # weights and batch order


def small_convnet(rng: np.random.Generator, classes: int = 10) -> ConvNet:
    """Two [conv 3x3 -> ReLU -> max-pool 2] blocks (16, 32 filters) and a linear layer, for 3 x 32 x 32."""
    return ConvNet(
        [
            Conv2d(3, 16, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Conv2d(16, 32, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Linear(32 * 8 * 8, classes, rng=rng),
        ]
    )


def describe(module: Module) -> str:
    """A layer as a line: 'Conv2d(3, 16, 3, stride=1, padding=1)'."""
    name = type(module).__name__
    if isinstance(module, Conv2d):
        out_ch, in_ch, k, _ = module.weight.value.shape
        return f"{name}({in_ch}, {out_ch}, {k}, stride={module.stride}, padding={module.padding})"
    if isinstance(module, MaxPool2d):
        return f"{name}({module.kernel}, stride={module.stride})"
    if isinstance(module, Linear):
        return f"{name}({module.weight.value.shape[1]}, {module.weight.value.shape[0]})"
    return f"{name}()"


def training_images(n: int, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(x, labels, note): n CIFAR-10 training images spread over the split, as float64 normalised
    with the dataset's mean and std; where the full split is missing, the shipped test images
    (the note says so, else None)."""
    from ..data import cifar10_split, data_root, decode_split, shipped_split, spread_indices
    from ..errors import DataError
    from ..models.registry import CIFAR10_MEAN, CIFAR10_STD, get_spec

    try:
        images, note = cifar10_split("train", data_dir), None
    except DataError:
        images = shipped_split(get_spec("table2_cnn_cifar10"))
        note = (
            f"The full CIFAR-10 is not under the data root ({data_root(data_dir)}): using {n} of the "
            "test images that ship with interp."
        )
    x, y = decode_split(images.subset(spread_indices(len(images), n)), 32, progress=False)
    mean, std = np.array(CIFAR10_MEAN)[:, None, None], np.array(CIFAR10_STD)[:, None, None]
    return (x.numpy().astype(np.float64) / 255 - mean) / std, y.numpy(), note


def overfit(
    settings: OverfitSettings = OverfitSettings(),
    data_dir: str | os.PathLike | None = None,
    command: str = "python -m interp scratch",
) -> dict[str, Any]:
    """Train :func:`small_convnet` on ``settings.images`` training images and return the record:
    per-step loss, per-epoch loss and accuracy on those images, the final accuracy, wall time."""
    x, y, note = training_images(settings.images, data_dir)
    rng = np.random.default_rng(settings.seed)
    net = small_convnet(rng)
    loss_fn, optimizer = SoftmaxCrossEntropy(), SGD(net.parameters(), settings.lr, settings.momentum)
    start, step_loss, epochs = time.perf_counter(), [], []
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(x))
        for i in range(0, len(x), settings.batch_size):
            batch = order[i : i + settings.batch_size]
            optimizer.zero_grad()
            step_loss.append(loss_fn(net.forward(x[batch]), y[batch]))
            net.backward(loss_fn.backward())
            optimizer.step()
        logits = net.forward(x)
        epochs.append({"epoch": epoch, "loss": loss_fn(logits, y), "accuracy": float((logits.argmax(1) == y).mean())})
    return {
        "command": command,
        "note": note,
        "settings": asdict(settings),
        "data": note or f"{len(x)} CIFAR-10 training images spread over the classes",
        "architecture": [describe(m) for m in net.modules],
        "parameters": int(sum(p.value.size for p in net.parameters())),
        "step_loss": step_loss,
        "epochs": epochs,
        "final_accuracy": epochs[-1]["accuracy"],
        "wall_time_s": round(time.perf_counter() - start, 2),
    }


def write_record(record: dict[str, Any], path: str | os.PathLike = RECORD) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def read_record(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The training record written by ``python -m interp scratch`` (by default the first found among
    the checkpoint folders: the one written here, else the shipped one), or None where there is none."""
    candidates = [Path(path)] if path is not None else [RECORD, *(d / RECORD_NAME for d in read_only_checkpoint_dirs())]
    found = next((c for c in candidates if c.is_file()), None)
    return json.loads(found.read_text()) if found else None

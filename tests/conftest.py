"""Shared fixtures: tiny models for speed, and the real data root for the real-data tests."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from interp.data import data_root

torch.set_num_threads(int(os.environ.get("INTERP_TEST_THREADS", min(2, os.cpu_count() or 1))))
# Tests compare with CPU computations; the tests marked `cuda` choose the GPU themselves.
os.environ.setdefault("INTERP_DEVICE", "cpu")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root with the full datasets ($INTERP_DATA_DIR, else ./data). Only tests that need
    the full datasets take it (training, held-out accuracy, the split rules); they skip, saying
    why, where it is absent. Everything else, the dashboard included, runs on the shipped sample."""
    root = data_root()
    if not (root / "PACS").is_dir() and not (root / "cifar10").is_dir():
        pytest.skip(
            f"needs the full datasets: neither PACS/ nor cifar10/ is under the data root {root} (set INTERP_DATA_DIR)"
        )
    return root


def _tiny_gap(extra: dict[str, nn.Module] | None = None) -> nn.Module:
    """conv -> ReLU -> conv -> ReLU -> [extra] -> global average pooling -> Linear, seeded."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
                ("relu1", nn.ReLU(inplace=True)),
                ("conv2", nn.Conv2d(4, 6, 3, padding=1)),
                ("relu2", nn.ReLU(inplace=True)),
                *(extra or {}).items(),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(6, 3)),
            ]
        )
    ).eval()


@pytest.fixture
def tiny_gap_model() -> nn.Module:
    """conv -> ReLU -> conv -> ReLU -> global average pooling -> Linear: CAM-capable, 3 classes."""
    return _tiny_gap()


@pytest.fixture
def tiny_dense_model() -> nn.Module:
    """conv -> ReLU -> max-pool -> Flatten -> Linear: no GAP head (CAM does not apply)."""
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(4 * 8 * 8, 3)),
            ]
        )
    ).eval()


class Bomb(nn.Module):
    """Identity that raises RuntimeError on its ``fuse``-th call (0: never); counts its calls.

    The counters live in one dict, which a method's private twin of the model (LRP's: new module
    objects that share the originals' attributes) shares, so they count the twin's calls too."""

    def __init__(self) -> None:
        super().__init__()
        self.state = {"fuse": 0, "calls": 0}

    @property
    def fuse(self) -> int:
        return self.state["fuse"]

    @fuse.setter
    def fuse(self, value: int) -> None:
        self.state["fuse"] = value

    @property
    def calls(self) -> int:
        return self.state["calls"]

    @calls.setter
    def calls(self, value: int) -> None:
        self.state["calls"] = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fuse and self.calls >= self.fuse:
            raise RuntimeError("bomb: forced failure inside the model's forward")
        return x


@pytest.fixture
def tiny_bomb_model() -> nn.Module:
    """tiny_gap_model with a Bomb between the last ReLU and the pooling (model.bomb)."""
    return _tiny_gap({"bomb": Bomb()})


class _Blind(nn.Module):
    """Logits that do not depend on the input at all (a learned constant per class)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.logits = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.relu(self.conv(x))  # runs, but the output ignores it
        return self.logits.expand(x.shape[0], -1)


@pytest.fixture
def blind_model() -> nn.Module:
    """A classifier whose output ignores its input: every input gradient is zero."""
    torch.manual_seed(0)
    return _Blind().eval()


@pytest.fixture
def zero_gap_model() -> nn.Module:
    """conv -> ReLU -> (x 0) -> GAP -> Linear: a CAM head whose maps and gradients are all zero."""
    torch.manual_seed(0)

    class Zero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0.0

    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("zero", Zero()),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(4, 3)),
            ]
        )
    ).eval()

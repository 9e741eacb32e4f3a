"""Shared fixtures: tiny models for speed, and the real data root for the real-data tests."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
# Tests and CI read the real data from ../shared/data unless INTERP_DATA_DIR says otherwise.
os.environ.setdefault("INTERP_DATA_DIR", str(REPO.parent / "shared" / "data"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


def _data_root() -> Path:
    return Path(os.environ["INTERP_DATA_DIR"])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data root; tests that need it skip (with the reason) only where it is absent."""
    root = _data_root()
    if not (root / "PACS").is_dir() and not (root / "cifar10").is_dir():
        pytest.skip(f"no data in INTERP_DATA_DIR={root} (PACS/ and cifar10/ missing)")
    return root


@pytest.fixture
def tiny_gap_model() -> nn.Module:
    """conv -> ReLU -> conv -> ReLU -> global average pooling -> Linear: CAM-capable, 3 classes."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
        ("relu1", nn.ReLU(inplace=True)),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1)),
        ("relu2", nn.ReLU(inplace=True)),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(6, 3)),
    ])).eval()


@pytest.fixture
def tiny_dense_model() -> nn.Module:
    """conv -> ReLU -> max-pool -> Flatten -> Linear: no GAP head (CAM does not apply)."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(4 * 8 * 8, 3)),
    ])).eval()

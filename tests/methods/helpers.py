"""Shared checks for the method tests: hooks left on a model, a model's full state, references."""

from __future__ import annotations

import copy
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as module_mod

import interp

# Small option values so that the sampling methods stay fast in tests.
FAST: dict[str, dict[str, Any]] = {
    "smoothgrad": {"n_samples": 4},
    "integrated_gradients": {"steps": 8},
    "vargrad": {"n_samples": 4},
    "gradient_shap": {"n_samples": 4},
    "occlusion": {"window": 8, "stride": 8},
    "lime": {"n_samples": 8, "n_segments": 4},
    "kernel_shap": {"n_samples": 8, "n_segments": 4},
    "rise": {"n_masks": 16},
}


def hooks_left(model: nn.Module) -> list[str]:
    """Every hook still registered on any module of the model, or globally."""
    left = []
    for name, m in model.named_modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_pre_hooks_with_kwargs",
            "_forward_hooks_always_called",
        ):
            if getattr(m, attr, None):
                left.append(f"{name or '<root>'}.{attr}")
    for attr in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
    ):
        if getattr(module_mod, attr, None):
            left.append(attr)
    return left


def snapshot(model: nn.Module) -> dict:
    """Everything a method must leave as it was."""
    return {
        "modules": [(n, type(m).__name__, id(m)) for n, m in model.named_modules()],
        "training": [m.training for m in model.modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grads": [p.grad is None for p in model.parameters()],
        "inplace": [(n, m.inplace) for n, m in model.named_modules() if hasattr(m, "inplace")],
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "params": [id(p) for p in model.parameters()],
    }


def assert_unchanged(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    for key in ("modules", "training", "requires_grad", "grads", "inplace", "params"):
        assert after[key] == before[key], key
    assert after["state"].keys() == before["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k


def not_inplace_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose ReLUs are not in-place (what Captum's hook-based methods need)."""
    m = copy.deepcopy(model)
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    return m


@lru_cache(maxsize=None)
def _built(name: str) -> nn.Module:
    torch.manual_seed(0)
    return interp.build_model(name).eval()


def registry_model(name: str) -> nn.Module:
    """An untrained registry architecture in eval mode (a fresh copy: tests may not share)."""
    return copy.deepcopy(_built(name))


def image_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 3, size, size), generator=g)


def build_pool_model() -> nn.Module:
    """conv -> in-place ReLU -> max-pool -> conv -> in-place ReLU -> GAP -> Linear, with logits
    large enough that a Lasso surrogate does not shrink every weight to zero."""
    torch.manual_seed(0)
    m = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("relu1", nn.ReLU(inplace=True)),
                ("pool", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(8, 6, 3, padding=1)),
                ("relu2", nn.ReLU(inplace=True)),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(6, 3)),
            ]
        )
    ).eval()
    fc = m.fc
    assert isinstance(fc, nn.Linear)
    with torch.no_grad():
        fc.weight.mul_(50)
    return m


def smooth_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Blurred noise: SLIC finds real superpixels in it (white noise is one segment)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 3, size + 4, size + 4), generator=g)
    return nn.functional.avg_pool2d(x, 5, 1) * 3


def close(a, b, rtol: float = 1e-4) -> None:
    """allclose relative to the largest value of the reference."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b.detach() if isinstance(b, torch.Tensor) else b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1e-8, np.abs(b).max()))


def pearson(a, b) -> float:
    """Pearson correlation of two maps, flattened."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b.detach() if isinstance(b, torch.Tensor) else b, np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])

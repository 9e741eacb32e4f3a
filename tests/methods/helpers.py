"""Shared checks for the method tests: hooks left on a model, a model's full state, references."""

from __future__ import annotations

import copy
from functools import lru_cache

import torch
from torch import nn
from torch.nn.modules import module as module_mod

import interp

# Small option values so that the sampling methods stay fast in tests.
FAST = {"smoothgrad": {"n_samples": 4}, "integrated_gradients": {"steps": 8}}


def hooks_left(model: nn.Module) -> list[str]:
    """Every hook still registered on any module of the model, or globally."""
    left = []
    for name, m in model.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                     "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
                     "_forward_hooks_always_called"):
            if getattr(m, attr, None):
                left.append(f"{name or '<root>'}.{attr}")
    for attr in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks"):
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

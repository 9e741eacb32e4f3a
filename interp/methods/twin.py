"""A private twin of a model for Captum's module-hook rules (DeepLift, deconvolution).

Captum's DeepLift keeps each activation's last input on the module and rewrites the gradient in
a module backward hook, so it needs activations that are modules, not in-place, and run once per
forward pass; it also hooks the root module. The shared model must not be changed or hooked, so
these rules run on a twin: the root, every container and every activation copied; every other
module (conv, batch norm, ...), parameter and buffer shared, so no weight is copied; in-place
activations made out-of-place; and an activation the forward pass calls k times (torchvision's
ResNet reuses ``self.relu``) replaced by k fresh copies, one per call. Captum hooks only the
activations and the root, all of them the twin's own, for the duration of its call.

Building the twin takes a copy and a counting forward pass, so it is kept per model (weakly: it
goes with the model) and rebuilt when the model's modules or parameters are no longer the ones it
was built from. It is used under the model's lock only, like the model itself.
"""

from __future__ import annotations

import copy
import itertools
import weakref
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InternalError, MethodError
from .core import Targets, logits_of

# The modules Captum's DeepLift has a rule for (captum.attr._core.deep_lift.SUPPORTED_NON_LINEAR).
DEEPLIFT_RULES = (
    nn.ReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.Softmax,
)
# Non-linear functions: outside a module of DEEPLIFT_RULES, DeepLift would silently use their gradient.
_NONLINEAR = {
    "relu",
    "relu_",
    "relu6",
    "elu",
    "elu_",
    "selu",
    "celu",
    "leaky_relu",
    "leaky_relu_",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "hardtanh",
    "prelu",
    "sigmoid",
    "tanh",
    "softplus",
    "softmax",
    "log_softmax",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "adaptive_max_pool2d",
}


class PerCall(nn.Module):
    """Stands in for a module the forward pass calls several times: call i runs copy i mod k,
    so each copy runs once per forward pass."""

    def __init__(self, module: nn.Module, calls: int):
        super().__init__()
        self.copies = nn.ModuleList(copy.deepcopy(module) for _ in range(calls))
        self.next = 0

    def forward(self, *args, **kwargs):
        module = self.copies[self.next]
        self.next = (self.next + 1) % len(self.copies)
        return module(*args, **kwargs)


class Connected(nn.Module):
    """The twin as Captum's model; adding 0 x input keeps a model whose output ignores the input
    differentiable (zero attributions instead of an autograd error).

    It keeps the logits of its first forward pass since :meth:`reset`: the first rows are the
    input's own (DeepLift runs the input and its baseline as one batch), so the classes and
    probabilities come from Captum's pass instead of one more.
    """

    def __init__(self, model: nn.Module, classes: int, unruled: list[str]):
        super().__init__()
        self.model, self.classes, self.unruled = model, classes, unruled
        self.first_logits: torch.Tensor | None = None
        self.per_call = [m for m in model.modules() if isinstance(m, PerCall)]

    def reset(self) -> "Connected":
        """Forget the last call's logits and start every reused activation at its first copy
        (a call that failed halfway may have left one elsewhere)."""
        self.first_logits = None
        for m in self.per_call:
            m.next = 0
        return self

    def take_logits(self, n: int) -> torch.Tensor:
        """The first ``n`` rows of the kept logits (the input's), forgetting them."""
        logits, self.first_logits = self.first_logits, None
        if logits is None:
            raise InternalError("the twin ran no forward pass since its reset")
        return logits[:n]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = logits_of(self.model, x)
        if self.first_logits is None:
            self.first_logits = logits.detach()
        return logits + 0.0 * x.flatten(1).sum(1, keepdim=True)


class _Watch(TorchFunctionMode):
    """Records non-linear torch functions called outside a module with a DeepLift rule."""

    def __init__(self, depth: list[int], where: list[str]):
        super().__init__()
        self.depth, self.where = depth, where
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _NONLINEAR and self.depth[0] == 0:
            self.found.append(f"{name} in {self.where[-1] if self.where else 'the forward pass'}")
        return func(*args, **(kwargs or {}))


@contextmanager
def _counting(
    model: nn.Module, own: list[nn.Module], calls: dict[int, int], depth: list[int], where: list[str]
) -> Iterator[None]:
    """Count the calls of each module with a rule; track the rule depth and the container running
    (hooks go on the twin's own modules only, never on the shared ones)."""

    def pre(mod, inputs):
        where.append(names.get(id(mod), type(mod).__name__))
        if type(mod) in DEEPLIFT_RULES:  # Captum matches the exact type, not subclasses
            calls[id(mod)] = calls.get(id(mod), 0) + 1
            depth[0] += 1

    def post(mod, inputs, output):
        where.pop()
        if type(mod) in DEEPLIFT_RULES:
            depth[0] -= 1

    names = {id(m): n for n, m in model.named_modules() if n}
    handles = []
    try:
        for m in own:
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        yield
    finally:
        for h in handles:
            h.remove()


_TWINS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], Connected]]" = weakref.WeakKeyDictionary()


def _structure(model: nn.Module) -> tuple[int, ...]:
    """What a twin depends on: the identity of every module and parameter (values may change)."""
    return tuple(map(id, itertools.chain(model.modules(), model.parameters(), model.buffers())))


def twin(model: nn.Module, xb: torch.Tensor, targets: Targets, strict: bool) -> Connected:
    """The model's twin, ready for Captum's hook-based rules and reset for a new call: the kept
    one, or a new one whose counting pass also fixes ``targets``.

    Explicit ``targets`` are fixed here without a pass; predicted ones, on a kept twin, take one
    forward pass without gradients. The caller passes ``twin.take_logits(n)`` to ``targets.of``
    after Captum's call.

    Args:
        strict: raise where DeepLift's rules would not apply (a non-linear function outside the
            activation modules DeepLift has rules for).

    Raises:
        MethodError: ``strict`` and the model applies such a function. TargetError: a class the
            model does not have.
    """
    kept = _TWINS.get(model)
    structure = _structure(model)
    if kept is not None and kept[0] == structure:
        found = kept[1].reset()
        if targets.given(xb.shape[0], found.classes, xb.device) is None:
            with torch.no_grad():
                targets.of(logits_of(found.model, xb.detach()))
    else:
        found = build_twin(model, xb, targets)
        _TWINS[model] = (structure, found)
    if strict and found.unruled:
        places = found.unruled
        where = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        rules = ", ".join(t.__name__ for t in DEEPLIFT_RULES)
        raise MethodError(
            f"DeepLift has rules only for activation modules ({rules}); this model applies "
            f"{where}, where DeepLift would silently use the plain gradient. "
            "Use integrated_gradients or gradient_shap for this model."
        )
    return found.reset()


def build_twin(model: nn.Module, xb: torch.Tensor, targets: Targets) -> Connected:
    """A new twin of the model; its one forward pass (no gradients) also fixes ``targets`` and
    records where the model applies a non-linear function outside a module DeepLift has a rule
    for (``Connected.unruled``)."""
    shared = itertools.chain(
        model.parameters(),
        model.buffers(),
        (m for m in model.modules() if not m._modules and not isinstance(m, DEEPLIFT_RULES)),
    )
    copied = copy.deepcopy(model, {id(t): t for t in shared})
    own = [m for m in copied.modules() if m._modules or isinstance(m, DEEPLIFT_RULES)]
    for m in own:
        if getattr(m, "inplace", False) and isinstance(m, DEEPLIFT_RULES):
            m.inplace = False
    calls: dict[int, int] = {}
    depth: list[int] = [0]
    where: list[str] = []
    watch = _Watch(depth, where)
    with _counting(copied, own, calls, depth, where), torch.no_grad(), watch:
        logits = logits_of(copied, xb.detach())
    targets.of(logits)
    _split_reused(copied, calls)
    return Connected(copied, classes=logits.shape[1], unruled=list(dict.fromkeys(watch.found)))


def _split_reused(model: nn.Module, calls: dict[int, int]) -> None:
    reused = {i: n for i, n in calls.items() if n > 1}
    if not reused:
        return
    fresh: dict[int, PerCall] = {}
    for parent in list(model.modules()):
        for key, child in parent._modules.items():
            if child is not None and id(child) in reused:
                if id(child) not in fresh:
                    fresh[id(child)] = PerCall(child, reused[id(child)])
                parent._modules[key] = fresh[id(child)]

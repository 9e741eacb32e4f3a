"""Layer-wise relevance propagation (Bach et al. 2015) through Zennit, with its composites and with
canonizers chosen for the model automatically.

LRP sends the explained logit back through the network layer by layer; each layer's rule decides
how a unit's relevance is shared among its inputs. A *composite* assigns the rules by layer type and
position (Montavon et al. 2019's recommendations):

- ``epsilon_plus_flat`` (default): flat rule in the first layer, z⁺ in the convolutions, ε in the
  dense layers. Maps that are clean and positive: the common choice for CNNs.
- ``epsilon_gamma_box``: the box rule (zᴮ) in the first layer, bounded by the pixel range the model's
  normalisation allows (its ``mean``/``std``), γ in the convolutions, ε in the dense layers. Keeps
  some negative evidence; the input layer respects where pixels can actually go.
- ``epsilon_alpha2_beta1``: α2β1 in the convolutions: positive evidence weighted 2, negative 1.
- ``epsilon``: the ε rule in every layer. Close to gradient x input (equal to it as ε → 0 on a ReLU
  network without biases, Ancona et al. 2018); noisy on deep networks.

Rules need a network made of layers they know. *Canonizers* rewrite the model for the duration of
one call, and undo it afterwards:

- batch norm merged into the convolution or dense layer that feeds it (the pairs are found by
  running the model once, not by module order, so a pre-activation network is not mis-merged);
  a batch norm nothing feeds directly (DenseNet's) passes relevance unchanged, as in Zennit;
- residual sums made explicit modules that the sum rule applies to: interp's CIFAR ResNets,
  torchvision's ResNets (Zennit's canonizers), MobileNet's inverted residuals;
- MobileNet's squeeze-excitation gates treated as constants (relevance passes to the gated signal,
  as for the gates of LSTMs, Arras et al. 2017); DenseNet's functional ReLU and pooling made modules;
- in-place activations switched off (backward hooks cannot see an in-place op's input).

A layer that holds parameters and has no rule (LayerNorm, attention, an unknown custom layer) is
refused with its name and type: LRP would otherwise pass a plain gradient through it and draw a
silently wrong map.

Zennit changes the network it runs on (merged batch norms, parameters modified by the rules during the
backward pass, hooks), so LRP runs on a private twin of the model that shares its memory, not its
objects (:func:`private_twin`): the model itself is never touched, and a plain prediction from another
thread, which takes no lock, sees it unchanged.
"""

from __future__ import annotations

import copy
import functools
import weakref
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ...errors import MethodError
from ..core import Maps, Targets, logits_of, options_from
from ..twin import _structure

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon")
# Types whose parameters some rule of every composite handles (after batch norm is merged or passed).
_RULED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class LRPOptions:
    """LRP's options: the ``composite`` (one of COMPOSITES), the ε rule's ``epsilon`` (dense layers,
    and every layer in ``epsilon``), the γ rule's ``gamma`` (``epsilon_gamma_box``), and the model's
    normalisation ``mean``/``std``, from which the box rule takes the lowest and highest input (without
    them, each channel's lowest and highest value in the image)."""

    composite: str = "epsilon_plus_flat"
    epsilon: float = 1e-6
    gamma: float = 0.25
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.composite not in COMPOSITES:
            raise MethodError(f"composite must be one of {', '.join(COMPOSITES)}, not {self.composite!r}")
        if not (self.epsilon > 0 and self.gamma >= 0):
            raise MethodError(f"epsilon must be > 0 and gamma >= 0, not {self.epsilon!r} and {self.gamma!r}")


def relevance(
    model: nn.Module,
    xb: torch.Tensor,
    targets: Targets,
    options: LRPOptions,
    layer_hook: tuple[str, Callable[[nn.Module, tuple, Any], None]] | None = None,
) -> torch.Tensor:
    """The input relevance (N, C, H, W) of each image's target logit: the logit is the relevance that
    leaves the output layer (so with the ε rule and no biases the map sums to it).

    Args:
        layer_hook: (layer, forward hook) put on that layer of the network LRP runs, after the
            composite's own hooks, so that it sees the tensor the next layer reads (CRP masks the
            relevance arriving there).

    Raises:
        MethodError: a layer with parameters that no rule covers (named with its type).
    """
    refuse_unruled_layers(model)
    twin = private_twin(model)
    composite = make_composite(twin, xb, options, analysed_as=model)
    x = xb.detach().requires_grad_(True)
    with composite.context(twin) as modified:
        handle = modified.get_submodule(layer_hook[0]).register_forward_hook(layer_hook[1]) if layer_hook else None
        try:
            logits = logits_of(modified, x)
            classes = targets.of(logits)
            start = torch.zeros_like(logits).scatter(1, classes[:, None], logits.detach().gather(1, classes[:, None]))
            (rel,) = torch.autograd.grad(logits, x, grad_outputs=start)
        finally:
            if handle is not None:
                handle.remove()
    return rel


def private_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` made for one call: its modules, parameters, buffers and hook tables are its
    own objects, over the same memory (no weight is copied) and with the same plain attributes. What
    Zennit changes for one call (merged batch norms written to ``.data``, rule-modified parameters set
    as attributes, hooks, in-place flags) happens on the copy, so a plain prediction from another
    thread, which takes no lock, never sees it. Made fresh each call (a few milliseconds for a
    ResNet-50, against 60 for ``copy.deepcopy``), so it is never stale."""
    return _structural_copy(model, {})


def _structural_copy(module: nn.Module, done: dict[int, nn.Module]) -> nn.Module:
    if id(module) in done:  # a module registered twice stays one module
        return done[id(module)]
    twin = copy.copy(module)  # a new object with a shallow copy of the attributes
    done[id(module)] = twin
    own = twin.__dict__
    for key, value in vars(module).items():  # hook tables and the like: the twin's own
        if key.startswith("_") and isinstance(value, (dict, set)):
            own[key] = copy.copy(value)
    own["_parameters"] = {k: None if p is None else _alias(p) for k, p in module._parameters.items()}
    own["_buffers"] = {k: None if b is None else _alias(b) for k, b in module._buffers.items()}
    own["_modules"] = {k: None if c is None else _structural_copy(c, done) for k, c in module._modules.items()}
    return twin


def _alias(t: torch.Tensor) -> torch.Tensor:
    """A new tensor object over ``t``'s memory (a Parameter where ``t`` is one)."""
    return nn.Parameter(t.detach(), requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else t.detach()


def make_composite(model: nn.Module, xb: torch.Tensor, options: LRPOptions, analysed_as: nn.Module | None = None):
    """Zennit's composite for ``options``, with the canonizers this model needs (``analysed_as``: the
    model whose analysis is cached, where ``model`` is its private twin)."""
    from zennit.composites import (
        EpsilonAlpha2Beta1,
        EpsilonGammaBox,
        EpsilonPlusFlat,
        LayerMapComposite,
        layer_map_base,
    )
    from zennit.rules import Epsilon
    from zennit.types import Linear as AnyLinear

    canonizers = canonizers_for(model, xb, analysed_as)
    if options.composite == "epsilon_plus_flat":
        return EpsilonPlusFlat(epsilon=options.epsilon, canonizers=canonizers)
    if options.composite == "epsilon_alpha2_beta1":
        return EpsilonAlpha2Beta1(epsilon=options.epsilon, canonizers=canonizers)
    if options.composite == "epsilon_gamma_box":
        low, high = input_bounds(xb, options.mean, options.std)
        return EpsilonGammaBox(low=low, high=high, epsilon=options.epsilon, gamma=options.gamma, canonizers=canonizers)
    layer_map = layer_map_base() + [(AnyLinear, Epsilon(epsilon=options.epsilon))]
    return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)


def input_bounds(
    xb: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest input value of each pixel, shaped like ``xb``: pixels 0 and 1 after the
    model's normalisation where it is known, else each channel's range in its image (per image, so
    that an image's map does not depend on the rest of its batch)."""
    if mean is not None and std is not None:
        m = torch.as_tensor(mean, dtype=xb.dtype, device=xb.device).view(1, -1, 1, 1)
        s = torch.as_tensor(std, dtype=xb.dtype, device=xb.device).view(1, -1, 1, 1)
        if m.shape[1] != xb.shape[1] or s.shape[1] != xb.shape[1]:
            raise MethodError(f"mean and std need one value per input channel ({xb.shape[1]})")
        low, high = (0 - m) / s, (1 - m) / s
    else:
        per_channel = xb.detach().flatten(2)
        low = per_channel.amin(2)[:, :, None, None]
        high = per_channel.amax(2)[:, :, None, None]
    return low.expand_as(xb).clone(), high.expand_as(xb).clone()


def refuse_unruled_layers(model: nn.Module) -> None:
    """Refuse a model with a layer that holds parameters no LRP rule covers.

    Raises:
        MethodError: naming the first such layer and its type.
    """
    for name, module in model.named_modules():
        own = [p for p in module._parameters.values() if p is not None]
        if isinstance(module, nn.MultiheadAttention) or (own and not isinstance(module, _RULED)):
            where = f"layer {name!r}" if name else "the model's own parameters"
            raise MethodError(
                f"LRP has no rule for {where} ({type(module).__name__}): its relevance would be a plain "
                "gradient and the map silently wrong. LRP here covers convolutions, dense layers, batch "
                "norm, pooling and activations; use a gradient or perturbation method for this model."
            )


# ---------------------------------------------------------------------------------------------
# Canonizers


def canonizers_for(model: nn.Module, xb: torch.Tensor, analysed_as: nn.Module | None = None) -> list:
    """The canonizers ``model`` needs, found from its modules and one forward pass on ``xb[:1]``
    (cached for ``analysed_as``, default ``model``)."""
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

    rewrites = [_NoInplace(), ResNetBottleneckCanonizer(), ResNetBasicBlockCanonizer(), _attribute_canonizer()]
    pairs = _analysis(model, xb[:1], rewrites, analysed_as or model)
    merge = [NamedMergeBatchNorm([([linear], norm) for linear, norm in pairs])] if pairs else []
    return merge + rewrites


_ANALYSED: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, list[tuple[str, str]]]]" = weakref.WeakKeyDictionary()


def _analysis(model: nn.Module, xb: torch.Tensor, rewrites: list, key: nn.Module) -> list[tuple[str, str]]:
    """The batch norms to merge (:func:`batch_norm_pairs`), after checking that no two signals meet
    where no rule applies (:func:`unruled_sums`); both found once per model structure and input
    shape of ``key`` (their forward passes would otherwise cost half of a one-image LRP call); ``model``
    is ``key`` or its private twin, whose modules have the same names.

    Raises:
        MethodError: a sum or product of two signals no canonizer rewrote, named by its module.
    """
    structure = (_structure(key), tuple(xb.shape[1:]))
    cached = _ANALYSED.get(key)
    if cached is None or cached[0] != structure:
        unruled = unruled_sums(model, xb, rewrites)
        if unruled:
            name, kind = unruled[0]
            raise MethodError(
                f"LRP has no rule for a sum or product of two signals in {name!r} ({kind}): autograd would "
                "hand each branch the whole relevance and the map would be silently wrong. Canonizers "
                "cover the residual blocks of interp's and torchvision's ResNets, MobileNets, EfficientNets "
                "and RegNets; use a gradient or perturbation method for this model."
            )
        cached = _ANALYSED[key] = (structure, batch_norm_pairs(model, xb))
    return cached[1]


_BINARY = {
    torch.add,
    torch.sub,
    torch.mul,
    torch.Tensor.add,
    torch.Tensor.add_,
    torch.Tensor.sub,
    torch.Tensor.sub_,
    torch.Tensor.mul,
    torch.Tensor.mul_,
    torch.Tensor.__add__,
    torch.Tensor.__radd__,
    torch.Tensor.__iadd__,
    torch.Tensor.__sub__,
    torch.Tensor.__rsub__,
    torch.Tensor.__isub__,
    torch.Tensor.__mul__,
    torch.Tensor.__rmul__,
    torch.Tensor.__imul__,
}


def unruled_sums(model: nn.Module, xb: torch.Tensor, rewrites: list) -> list[tuple[str, str]]:
    """(module name, type) of each place where two signals that both depend on the input are added or
    multiplied in the model as the ``rewrites`` (canonizers) leave it: no LRP rule sees such an op, and
    autograd copies the relevance to both operands. Found by one forward pass watching torch's
    functions; parameters and constants do not count as signals."""
    from torch.overrides import TorchFunctionMode

    names = {m: n for n, m in model.named_modules()}
    stack: list[nn.Module] = [model]
    found: list[tuple[str, str]] = []

    def signal(t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t.grad_fn is not None

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in _BINARY and torch.is_grad_enabled() and sum(signal(a) for a in args[:2]) == 2:
                where = stack[-1]
                found.append((names.get(where, "?") or "<root>", type(where).__name__))
            return func(*args, **kwargs)

    def enter(module, inputs):
        stack.append(module)

    def leave(module, inputs, output):
        stack.pop()

    applied, handles = [], []
    try:
        for rewrite in rewrites:
            applied += rewrite.apply(model)
        for module in model.modules():
            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
        with Watch(), torch.enable_grad():
            model(xb.detach().clone().requires_grad_(True))
    finally:
        for handle in handles:
            handle.remove()
        for instance in reversed(applied):
            instance.remove()
    return found


def batch_norm_pairs(model: nn.Module, xb: torch.Tensor) -> list[tuple[str, str]]:
    """(linear layer, batch norm) names where the batch norm reads exactly the linear layer's output,
    found by running the model once: module order would pair a pre-activation network's batch norm
    with the convolution before it in the listing, which does not feed it."""
    names = {m: n for n, m in model.named_modules()}
    outputs: dict[int, tuple[str, torch.Tensor]] = {}
    feeds: dict[str, str] = {}  # batch norm -> the linear layer whose output it reads
    calls: dict[str, int] = {}

    def keep_output(module, inputs, output):
        calls[names[module]] = calls.get(names[module], 0) + 1
        if isinstance(output, torch.Tensor):
            outputs[id(output)] = (names[module], output)  # the tensor is kept, so its id is not reused

    def match_input(module, inputs):
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        source = outputs.get(id(inputs[0])) if inputs and isinstance(inputs[0], torch.Tensor) else None
        if source is not None and source[1] is inputs[0]:
            feeds[name] = source[0]

    handles = []
    try:
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                handles.append(module.register_forward_hook(keep_output))
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                handles.append(module.register_forward_pre_hook(match_input))
        with torch.no_grad():
            model(xb)
    finally:
        for handle in handles:
            handle.remove()
    linears = list(feeds.values())
    # A layer called twice, or feeding two batch norms, cannot be merged once for all its uses.
    return [
        (linear, norm)
        for norm, linear in feeds.items()
        if calls[norm] == 1 and calls[linear] == 1 and linears.count(linear) == 1
    ]


class _NoInplace:
    """Canonizer: in-place activations (torchvision's ``ReLU(inplace=True)``) made out-of-place for
    the call; a backward hook on an in-place op would see its output where it needs its input."""

    def __init__(self) -> None:
        self.switched: list[Any] = []  # modules with an `inplace` flag

    def apply(self, root_module: nn.Module) -> list:
        instance = _NoInplace()
        instance.register([m for m in root_module.modules() if getattr(m, "inplace", False) is True])
        return [instance]

    def register(self, modules: list[Any]) -> None:
        self.switched = modules
        for m in modules:
            m.inplace = False

    def remove(self) -> None:
        for m in self.switched:
            m.inplace = True

    def copy(self) -> "_NoInplace":
        return _NoInplace()


class _Gate(torch.autograd.Function):
    """``x * gate`` whose backward passes the relevance to ``x`` unchanged and none to the gate: the
    gate counts as a constant (Arras et al. 2017's rule for multiplicative gates)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.gate_shape = gate.shape
        return x * gate

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # zeros, not None: the rules hooked inside the gate's branch expect a relevance to arrive
        return grad, grad.new_zeros(ctx.gate_shape)


def _sum(module: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` through the module's canonizer_sum, a Zennit Sum the sum rule applies to."""
    return module.canonizer_sum(torch.stack([a, b], dim=-1))


def _cifar_block_forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.relu1(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu2(_sum(self, self.shortcut(x), out))


def _inverted_residual_v3_forward(self, x: torch.Tensor) -> torch.Tensor:
    result = self.block(x)
    return _sum(self, x, result) if self.use_res_connect else result


def _inverted_residual_v2_forward(self, x: torch.Tensor) -> torch.Tensor:
    return _sum(self, x, self.conv(x)) if self.use_res_connect else self.conv(x)


def _mbconv_forward(self, x: torch.Tensor) -> torch.Tensor:
    result = self.block(x)
    return _sum(self, self.stochastic_depth(result), x) if self.use_res_connect else result


def _regnet_block_forward(self, x: torch.Tensor) -> torch.Tensor:
    skip = self.proj(x) if self.proj is not None else x
    return self.activation(_sum(self, skip, self.f(x)))


def _squeeze_excitation_forward(self, x: torch.Tensor) -> torch.Tensor:
    return _Gate.apply(x, self._scale(x))


def _densenet_forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.canonizer_pool(self.canonizer_relu(self.features(x)))
    return self.classifier(torch.flatten(out, 1))


@functools.cache
def _forwards() -> list[tuple[type, Callable, dict[str, Callable[[], nn.Module]]]]:
    """(module type, forward to put on it, extra modules it needs) for the rewritten blocks."""
    from torchvision.models.densenet import DenseNet
    from torchvision.models.efficientnet import FusedMBConv, MBConv
    from torchvision.models.mobilenetv2 import InvertedResidual as InvertedResidualV2
    from torchvision.models.mobilenetv3 import InvertedResidual as InvertedResidualV3
    from torchvision.models.regnet import ResBottleneckBlock
    from torchvision.ops.misc import SqueezeExcitation
    from zennit.layer import Sum

    from ...models.arch.cifar import CifarBasicBlock

    return [
        (CifarBasicBlock, _cifar_block_forward, {"canonizer_sum": Sum}),
        (InvertedResidualV3, _inverted_residual_v3_forward, {"canonizer_sum": Sum}),
        (InvertedResidualV2, _inverted_residual_v2_forward, {"canonizer_sum": Sum}),
        (MBConv, _mbconv_forward, {"canonizer_sum": Sum}),
        (FusedMBConv, _mbconv_forward, {"canonizer_sum": Sum}),
        (ResBottleneckBlock, _regnet_block_forward, {"canonizer_sum": Sum}),
        (SqueezeExcitation, _squeeze_excitation_forward, {}),
        (DenseNet, _densenet_forward, {"canonizer_relu": nn.ReLU, "canonizer_pool": lambda: nn.AdaptiveAvgPool2d(1)}),
    ]


def _attribute_canonizer():
    """One Zennit AttributeCanonizer for every block of :func:`_forwards` (exact type match, so a
    user's subclass with its own forward is left alone)."""
    from zennit.canonizers import AttributeCanonizer

    table = _forwards()

    def attributes(name: str, module: nn.Module) -> dict[str, Any] | None:
        for kind, forward, extra in table:
            if type(module) is kind:
                return {"forward": forward.__get__(module), **{k: make() for k, make in extra.items()}}
        return None

    return AttributeCanonizer(attributes)


# ---------------------------------------------------------------------------------------------
# The methods: one per composite, the composite also an option of each


@options_from(LRPOptions)
def _lrp(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
    return relevance(model, xb, targets, LRPOptions(**options)), None


def _with_default_composite(composite: str) -> Callable[..., Maps]:
    """The LRP method whose ``composite`` option defaults to ``composite``."""
    defaults = make_dataclass(
        f"LRPOptions_{composite}",
        [("composite", str, field(default=composite))],
        bases=(LRPOptions,),
        frozen=True,
    )

    @options_from(defaults)
    def method(model: nn.Module, xb: torch.Tensor, targets: Targets, layer: str | None = None, **options: Any) -> Maps:
        return relevance(model, xb, targets, defaults(**options)), None

    method.__name__ = f"_lrp_{composite}"
    return method


_lrp_epsilon_gamma_box = _with_default_composite("epsilon_gamma_box")
_lrp_alpha2_beta1 = _with_default_composite("epsilon_alpha2_beta1")
_lrp_epsilon = _with_default_composite("epsilon")

"""One record per attribution method: what it is, what it needs, what it returns, what it costs.

Everything that lists, checks or routes methods reads :data:`REGISTRY` and nothing else: ``explain``,
its option checking, the command line's ``--method`` choices, the dashboard's pickers and catalogue,
explain-dataset and the benchmark. The records import no torch (the command line's ``--help`` stays
fast): each names the function that computes it as ``"module:attribute"``, imported on first use.
:func:`register_method` adds a user's method, which then appears everywhere the built-in ones do.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..errors import MethodError

FAMILIES = ("Class activation maps", "Gradients", "Reference-based", "Perturbation", "Custom")
_CAM, _GRAD, _REF, _PERT, _CUSTOM = FAMILIES


@dataclass(frozen=True)
class MethodSpec:
    """What a caller needs to choose, run and draw one attribution method."""

    name: str
    title: str
    family: str
    shows: str  # one line: what the map means
    cost: str  # passes per image in its default options, for people
    # Forward-pass equivalents per image in the default options (a backward pass counts as two):
    # what pickers sort by and progress bars weigh.
    relative_cost: float
    reference: str = ""  # the paper that defines it
    peers: tuple[str, ...] = ()  # the peer libraries it is tested against
    compute: str | Callable = ""  # "module:attribute" of its function, or the function itself
    needs_layer: bool = False  # reads a layer's maps (its `layer` option)
    layer_resolution: bool = False  # computed at that layer's resolution, then upsampled
    spatial: bool = False  # one value per pixel (else one per input channel and pixel)
    signed: bool = True  # negative values mean evidence against the class (default options)
    needs_stats: bool = False  # finds superpixels on the image as people see it: needs the model's mean/std
    baseline: bool = False  # compares with a reference input (its `baseline`/`baselines` option)
    sampling: bool = False  # draws random samples (seeded by its `seed` option)
    tunnel: bool = False  # the noise tunnel (SmoothGrad / VarGrad around it) applies
    neuron: bool = False  # runs per neuron (interp.methods.neuron_attribution)
    # Options that keep it quick where a page runs it many times (every randomisation step of a
    # sanity check, every held-out image of the faithfulness table); empty: its defaults are quick.
    quick: Mapping[str, Any] = field(default_factory=dict)
    user: bool = False  # registered by the user (register_method)

    def function(self) -> Callable:
        """The internal function ``(model, xb, targets, layer=None, **options) -> (map, layer)``."""
        if callable(self.compute):
            return self.compute
        module, _, attribute = self.compute.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def options(self) -> dict[str, Any]:
        """The options it takes, with their defaults (None where it has none); imports its module."""
        params = inspect.signature(self.function()).parameters.values()
        return {p.name: None if p.default is p.empty else p.default
                for p in params if p.name not in ("model", "xb", "targets", "layer")}


def _m(name: str, title: str, family: str, shows: str, cost: str, relative_cost: float, reference: str,
       peers: tuple[str, ...], compute: str, **facts: Any) -> MethodSpec:
    return MethodSpec(name, title, family, shows, cost, relative_cost, reference, peers,
                      "interp.methods.attribution." + compute, **facts)


_CAM_FACTS = dict(needs_layer=True, layer_resolution=True, spatial=True, signed=False)
_GRAD_FACTS = dict(tunnel=True, neuron=True)

_REGISTRY: dict[str, MethodSpec] = {}
REGISTRY: Mapping[str, MethodSpec] = MappingProxyType(_REGISTRY)

for _spec in (
    _m("cam", "CAM", _CAM, "the class's linear-layer weights over the pooled maps", "1 forward", 1,
       "Zhou et al., CVPR 2016", ("torch-cam",), "cam:_cam", **{**_CAM_FACTS, "signed": True}),
    _m("grad_cam", "Grad-CAM", _CAM, "a layer's maps weighted by their mean gradient, positive part",
       "1 forward + 1 backward", 3, "Selvaraju et al., ICCV 2017", ("pytorch-grad-cam", "torch-cam", "Captum"),
       "cam:_grad_cam", **_CAM_FACTS, tunnel=True),
    _m("grad_cam_pp", "Grad-CAM++", _CAM, "Grad-CAM with per-position weights, better for several objects",
       "1 forward + 1 backward", 3, "Chattopadhay et al., WACV 2018", ("pytorch-grad-cam", "torch-cam"),
       "cam_family:_grad_cam_pp", **_CAM_FACTS),
    _m("xgrad_cam", "XGrad-CAM", _CAM, "maps weighted by gradient x activation, normalised per map",
       "1 forward + 1 backward", 3, "Fu et al., BMVC 2020", ("pytorch-grad-cam", "torch-cam"),
       "cam_family:_xgrad_cam", **_CAM_FACTS),
    _m("hires_cam", "HiResCAM", _CAM, "gradient x activation summed over maps: exact for a GAP head",
       "1 forward + 1 backward", 3, "Draelos & Carin, 2020", ("pytorch-grad-cam",), "cam_family:_hires_cam",
       **_CAM_FACTS),
    _m("layer_cam", "LayerCAM", _CAM, "positive gradient x activation per position; fuses layers",
       "1 forward + 1 backward", 3, "Jiang et al., IEEE TIP 2021", ("pytorch-grad-cam", "torch-cam"),
       "cam_family:_layer_cam", **_CAM_FACTS),
    _m("score_cam", "Score-CAM", _CAM, "maps weighted by the class score of the image masked by each",
       "1 forward per map (batched)", 256, "Wang et al., CVPR Workshops 2020", ("pytorch-grad-cam", "torch-cam"),
       "cam_perturb:_score_cam", **_CAM_FACTS),
    _m("ablation_cam", "Ablation-CAM", _CAM, "maps weighted by the score drop when each is zeroed",
       "1 forward + the layers after the map, per map (batched)", 64, "Desai & Ramaswamy, WACV 2020",
       ("pytorch-grad-cam",), "cam_perturb:_ablation_cam", **_CAM_FACTS),
    _m("eigen_cam", "Eigen-CAM", _CAM, "first principal component of a layer's maps; class-blind", "1 forward", 1,
       "Muhammad & Yeasin, IJCNN 2020", ("pytorch-grad-cam",), "cam_family:_eigen_cam", **_CAM_FACTS),
    _m("eigen_grad_cam", "EigenGrad-CAM", _CAM, "first principal component of gradient x activation",
       "1 forward + 1 backward", 3, "pytorch-grad-cam (Gildenblat et al.)", ("pytorch-grad-cam",),
       "cam_family:_eigen_grad_cam", **_CAM_FACTS),
    _m("guided_grad_cam", "Guided Grad-CAM", _GRAD, "guided backprop masked by Grad-CAM: fine and class-specific",
       "1 forward + 1 backward (2 where a ReLU follows the layer)", 3, "Selvaraju et al., ICCV 2017",
       ("pytorch-grad-cam", "Captum"), "cam:_guided_grad_cam", needs_layer=True, tunnel=True),
    _m("saliency", "Saliency", _GRAD, "the gradient of the class score w.r.t. each input value",
       "1 forward + 1 backward", 3, "Simonyan et al., ICLR Workshops 2014", ("Captum",), "gradients:_saliency",
       **_GRAD_FACTS),
    _m("input_x_gradient", "Input x gradient", _GRAD, "gradient times input: each value's first-order contribution",
       "1 forward + 1 backward", 3, "Shrikumar et al., 2016", ("Captum",), "reference:_input_x_gradient",
       **_GRAD_FACTS),
    _m("guided_backprop", "Guided backprop", _GRAD, "gradient with only positive signals passed back through "
       "ReLUs: edges", "1 forward + 1 backward", 3, "Springenberg et al., ICLR Workshops 2015",
       ("pytorch-grad-cam", "Captum"), "gradients:_guided_backprop", **_GRAD_FACTS),
    _m("deconvolution", "Deconvolution", _GRAD, "gradient with ReLUs applied to the backward signal",
       "1 forward + 1 backward", 3, "Zeiler & Fergus, ECCV 2014", ("Captum",), "reference:_deconvolution",
       **_GRAD_FACTS),
    _m("smoothgrad", "SmoothGrad", _GRAD, "saliency averaged over noisy copies: less speckle",
       "25 forward + backward", 75, "Smilkov et al., 2017", ("Captum",), "gradients:_smoothgrad",
       sampling=True, neuron=True, quick={"n_samples": 10}),
    _m("vargrad", "VarGrad", _GRAD, "the variance of saliency over noisy copies", "25 forward + backward", 75,
       "Adebayo et al., 2018", ("Captum",), "reference:_vargrad", signed=False, sampling=True, neuron=True,
       quick={"n_samples": 10}),
    _m("integrated_gradients", "Integrated gradients", _REF, "gradients along the path from a baseline, times the "
       "difference: sums to the score change", "50 forward + backward", 150, "Sundararajan et al., ICML 2017",
       ("Captum",), "gradients:_integrated_gradients", baseline=True, quick={"steps": 16}, **_GRAD_FACTS),
    _m("deeplift", "DeepLIFT", _REF, "contributions relative to a baseline by the rescale rule",
       "1 forward + 1 backward (of image and baseline)", 6, "Shrikumar et al., ICML 2017", ("Captum",),
       "reference:_deeplift", baseline=True, **_GRAD_FACTS),
    _m("gradient_shap", "GradientSHAP", _REF, "expected gradient x (input - baseline) over random baselines and "
       "points", "25 forward + backward", 75, "Lundberg & Lee, NeurIPS 2017", ("Captum",),
       "reference:_gradient_shap", baseline=True, sampling=True, neuron=True, quick={"n_samples": 8}),
    _m("occlusion", "Occlusion", _PERT, "the score drop when a window is covered, per position",
       "1 forward per window position: 15 x 15 (batched)", 225, "Zeiler & Fergus, ECCV 2014", ("Captum",),
       "perturbation:_occlusion", spatial=True, baseline=True),
    _m("lime", "LIME", _PERT, "a local linear model of the score over superpixels switched off",
       "200 forward (batched)", 200, "Ribeiro et al., KDD 2016", ("Captum",), "perturbation:_lime",
       spatial=True, needs_stats=True, sampling=True, quick={"n_samples": 50}),
    _m("kernel_shap", "KernelSHAP", _PERT, "Shapley values of superpixels, by weighted regression",
       "200 forward (batched)", 200, "Lundberg & Lee, NeurIPS 2017", ("Captum",), "perturbation:_kernel_shap",
       spatial=True, needs_stats=True, sampling=True, quick={"n_samples": 50}),
):
    _REGISTRY[_spec.name] = _spec


def get_method(name: str) -> MethodSpec:
    """The record of a method.

    Raises:
        MethodError: no such method; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def method_names(**facts: Any) -> tuple[str, ...]:
    """Names of the registered methods, in registration order, optionally only those whose record
    has the given facts (``method_names(needs_layer=True)``, ``method_names(family="Gradients")``)."""
    return tuple(n for n, s in _REGISTRY.items() if all(getattr(s, k) == v for k, v in facts.items()))


def by_family() -> dict[str, list[str]]:
    """Method names grouped by family, families in FAMILIES order, empty families left out."""
    groups = {family: [n for n, s in _REGISTRY.items() if s.family == family] for family in FAMILIES}
    return {family: names for family, names in groups.items() if names}


def register_method(name: str, fn: Callable, *, title: str | None = None, family: str = _CUSTOM,
                    shows: str = "", cost: str = "", relative_cost: float = 1.0, replace: bool = False,
                    **facts: Any) -> MethodSpec:
    """Add a user's method: it then runs in ``explain``, the command line, explain-dataset and the
    dashboard's pickers like the built-in ones.

    Args:
        name: the method's name (a Python identifier is safest: it becomes a Parquet column).
        fn: ``fn(model, inputs, target) -> maps``: the model, a preprocessed batch (N, C, H, W) and the
            target class of each image (a LongTensor (N,)); returns one map per image, (N, H, W), as
            a tensor or an array. It is called with gradients enabled and the model's lock held.
        title, family, shows, cost, relative_cost: as MethodSpec's; the title defaults to the name.
        replace: replace an earlier registration of the same name (a models file run again).
        facts: other MethodSpec fields (``signed=False``, ``reference=...``).

    Returns:
        The record.

    Raises:
        MethodError: a name that a built-in method has, a name registered already (without
            ``replace``), a ``fn`` that is not callable, or an unknown fact.
    """
    if not callable(fn):
        raise MethodError(f"register_method({name!r}, ...) needs a function, not {type(fn).__name__}")
    existing = _REGISTRY.get(name)
    if existing is not None and (not existing.user or not replace):
        what = "a built-in method" if not existing.user else "registered already (pass replace=True)"
        raise MethodError(f"method {name!r} is {what}")
    unknown = sorted(set(facts) - set(MethodSpec.__dataclass_fields__))
    if unknown:
        raise MethodError(f"register_method does not know {', '.join(unknown)}; "
                          f"a method's facts are: {', '.join(MethodSpec.__dataclass_fields__)}")
    spec = MethodSpec(name=name, title=title or name, family=family, shows=shows or f"your method {name}",
                      cost=cost or "your function", relative_cost=relative_cost, compute=_user_compute(fn),
                      spatial=True, user=True, **facts)
    _REGISTRY[name] = spec
    return spec


def unregister_method(name: str) -> None:
    """Remove a user's method (built-in methods stay); unknown names are ignored."""
    if name in _REGISTRY and _REGISTRY[name].user:
        del _REGISTRY[name]


def _user_compute(fn: Callable) -> Callable:
    """A user's ``fn(model, inputs, target)`` as an internal method function: the targets are fixed
    from one forward pass (the prediction where none was asked for), the maps checked for shape."""

    def compute(model, xb, targets, layer=None):
        import torch

        classes = targets.before(model, xb)
        maps = fn(model, xb, classes)
        maps = torch.as_tensor(maps, device=xb.device) if not isinstance(maps, torch.Tensor) else maps
        if maps.dim() == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.dim() != 3 or maps.shape[0] != xb.shape[0]:
            raise MethodError(f"a registered method must return one map per image, (N, H, W) = "
                              f"({xb.shape[0]}, H, W); it returned shape {tuple(maps.shape)}")
        return maps.float(), None

    compute.__name__ = getattr(fn, "__name__", "compute")
    compute.__doc__ = fn.__doc__
    return compute

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
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..errors import InternalError, MethodError

FAMILIES = (
    "Class activation maps",
    "Gradients",
    "Reference-based",
    "Relevance propagation",
    "Perturbation",
    "Custom",
)
_CUSTOM = FAMILIES[-1]


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
    # Needs the model's mean/std (its `mean`/`std` options): to find superpixels on the image as people
    # see it, or to know the input's bounds (LRP's box rule)
    needs_stats: bool = False
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
        return {
            p.name: None if p.default is p.empty else p.default
            for p in params
            if p.name not in ("model", "xb", "targets", "layer")
        }


_REGISTRY: dict[str, MethodSpec] = {}
REGISTRY: Mapping[str, MethodSpec] = MappingProxyType(_REGISTRY)
RECORDS_FILE = "records.toml"  # the built-in records, as data beside this module


def _built_in_records() -> dict[str, MethodSpec]:
    """The records of records.toml (one table per method; keys are MethodSpec's fields)."""
    with resources.files(__package__).joinpath(RECORDS_FILE).open("rb") as f:
        tables = tomllib.load(f)
    known = set(MethodSpec.__dataclass_fields__) - {"name", "user"}
    records = {}
    for name, facts in tables.items():
        unknown = sorted(set(facts) - known)
        if unknown or facts.get("family") not in FAMILIES:
            raise InternalError(
                f"{RECORDS_FILE}: method {name!r} has unknown keys {unknown} or family {facts.get('family')!r}"
            )
        records[name] = MethodSpec(
            name=name,
            **{
                **facts,
                "peers": tuple(facts.get("peers", ())),
                "compute": "interp.methods.attribution." + facts["compute"],
            },
        )
    return records


_REGISTRY.update(_built_in_records())


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


def register_method(
    name: str,
    fn: Callable,
    *,
    title: str | None = None,
    family: str = _CUSTOM,
    shows: str = "",
    cost: str = "",
    relative_cost: float = 1.0,
    replace: bool = False,
    **facts: Any,
) -> MethodSpec:
    """Add a user's method: it then runs in ``explain``, the command line, explain-dataset and the
    dashboard's pickers like the built-in ones.

    Args:
        name: the method's name (a Python identifier is safest: it becomes a Parquet column).
        fn: ``fn(model, inputs, target) -> maps``: the model, a preprocessed batch (N, C, H, W) and the
            target class of each image (a LongTensor (N,)); returns one map per image, (N, H, W), as
            a tensor or an array. It is called with gradients enabled and the model's lock held.
        title: as MethodSpec's; defaults to the name.
        family: as MethodSpec's.
        shows: as MethodSpec's.
        cost: as MethodSpec's.
        relative_cost: as MethodSpec's.
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
        raise MethodError(
            f"register_method does not know {', '.join(unknown)}; "
            f"a method's facts are: {', '.join(MethodSpec.__dataclass_fields__)}"
        )
    spec = MethodSpec(
        name=name,
        title=title or name,
        family=family,
        shows=shows or f"your method {name}",
        cost=cost or "your function",
        relative_cost=relative_cost,
        compute=_user_compute(fn),
        spatial=True,
        user=True,
        **facts,
    )
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
            raise MethodError(
                f"a registered method must return one map per image, (N, H, W) = "
                f"({xb.shape[0]}, H, W); it returned shape {tuple(maps.shape)}"
            )
        return maps.float(), None

    compute.__name__ = getattr(fn, "__name__", "compute")
    compute.__doc__ = fn.__doc__
    return compute

"""Your own model: ``register_model`` adds any PyTorch image classifier to the registry for this
process, and models files (Python files that call it) are named by ``INTERP_MODELS``, by
``--models`` on every command, and by ``streamlit run app.py -- --models FILE``.

A models file is the user's own code and runs as such; a weights file never does (safetensors,
or ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import copy
import os
import runpy
import traceback
from pathlib import Path
from typing import Callable, Sequence

from torch import nn

from ..errors import CheckpointError, ParameterError
from .registry import IMAGENET_MEAN, IMAGENET_STD, REGISTRY, ModelSpec, get_spec, register, unregister
from .torchvision_names import PREFIX, fine_tuned_builder

MODELS_ENV = "INTERP_MODELS"
_LOADED: dict[Path, str | None] = {}  # models file -> its error, or None: each file runs once per process


def _three(name: str, what: str, values: Sequence[float]) -> tuple[float, float, float]:
    """Per-channel statistics as a 3-tuple (RGB)."""
    found = tuple(float(v) for v in values)
    if len(found) != 3:
        raise ParameterError(f"{name}: {what} has one value per colour channel (3), not {len(found)}")
    return found[0], found[1], found[2]


def register_model(
    name: str,
    model_or_factory: nn.Module | Callable[[], nn.Module] | str,
    *,
    classes: Sequence[str] | int,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    weights: str | os.PathLike | None = None,
    target_layer: str | None = None,
    description: str = "",
) -> ModelSpec:
    """Add a user's classifier to the registry, for this process.

    Args:
        name: the registry name; a user's model registered again under its name replaces itself,
            but a name of interp's own registry is refused.
        model_or_factory: an ``nn.Module`` (its current weights are used; each load gets a copy),
            a function that builds one, or ``"torchvision/<builder>"``: torchvision's architecture
            with its head resized to ``classes`` (give the fine-tuned ``weights``).
        classes: class names, or their number (named "class 0", "class 1", ...).
        input_size: side of a square input, or (height, width); for a torchvision name, default
            torchvision's crop size.
        mean: the per-channel mean the model was trained with (default ImageNet's).
        std: the per-channel standard deviation the model was trained with (default ImageNet's).
        weights: a .safetensors or .pt/.pth state_dict to load into what the factory builds.
        target_layer: Grad-CAM's layer; default the last conv stage, found from the model.

    Raises:
        ValueError: a name of interp's registry, no classes, or a bad input size.
        CheckpointError: a weights file that does not exist.
    """
    if name in REGISTRY and REGISTRY[name].builder is None:
        raise ParameterError(f"{name!r} is one of interp's own models; register yours under another name")
    names = tuple(f"class {i}" for i in range(classes)) if isinstance(classes, int) else tuple(map(str, classes))
    if not names:
        raise ParameterError(f"{name}: give the class names, or their number")
    if isinstance(model_or_factory, str):
        if not model_or_factory.startswith(PREFIX):
            raise ParameterError(f"{name}: a model given by name is 'torchvision/<builder>', not {model_or_factory!r}")
        input_size = input_size or get_spec(model_or_factory).input_size
        model_or_factory = fine_tuned_builder(model_or_factory, len(names))
    if input_size is None:
        raise ParameterError(f"{name}: give input_size, the side of a square input or (height, width)")
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ParameterError(f"{name}: input_size is a side or (height, width) in pixels, not {input_size!r}")
    if weights is not None and not Path(weights).is_file():
        raise CheckpointError(f"{name}: no weights file at {weights}")
    assert not isinstance(model_or_factory, str)  # a torchvision name became its builder above
    builder = _copier(model_or_factory) if isinstance(model_or_factory, nn.Module) else model_or_factory
    mean3, std3 = _three(name, "mean", mean), _three(name, "std", std)
    spec = ModelSpec(
        name=name,
        arch=f"user:{name}",
        task="user",
        class_names=names,
        input_size=input_size if isinstance(input_size, int) else (hw[0], hw[1]),
        mean=mean3,
        std=std3,
        target_layer=target_layer,
        builder=builder,
        weights_file=Path(weights) if weights is not None else None,
        training_note=description,
    )
    unregister(name)
    return register(spec)


def _copier(module: nn.Module) -> Callable[[], nn.Module]:
    """A factory of copies: each load gets its own module, so no caller can change the user's."""

    def build() -> nn.Module:
        return copy.deepcopy(module)

    return build


def user_models() -> list[str]:
    """Names of the models registered by their users, in registration order."""
    return [n for n, s in REGISTRY.items() if s.builder is not None]


def models_files(given: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """The models files named by ``given`` and by $INTERP_MODELS (separated by os.pathsep), once each."""
    named = [*given, *(p for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p.strip())]
    return list(dict.fromkeys(Path(p).expanduser().resolve() for p in named))


def load_models_files(given: Sequence[str | os.PathLike] = ()) -> dict[Path, str]:
    """Run each models file once per process; return {file: what went wrong} for those that failed.

    A file that fails leaves the rest (and interp's own registry) working; its error is kept,
    so the caller can show it once.
    """
    named = models_files(given)
    for path in named:
        if path not in _LOADED:
            _LOADED[path] = _run_models_file(path)
    return {path: error for path in named if (error := _LOADED[path]) is not None}


def _run_models_file(path: Path) -> str | None:
    if not path.is_file():
        return f"models file {path} does not exist"
    try:
        runpy.run_path(str(path), run_name="interp_models_file")
    except Exception as exc:  # the user's code: any error is reported, none stops interp
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            f"models file {path} failed at line {where.lineno}: {type(exc).__name__}: {exc}. "
            "The models it registered before that line are available; the others are not."
        )
    return None

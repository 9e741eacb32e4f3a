"""torchvision's classifiers by name: ``torchvision/<builder>`` (``torchvision/resnet50``,
``torchvision/efficientnet_b0``, ``torchvision/convnext_tiny``, ...) is a registry entry made on
first use, with the class names, input size and normalisation of torchvision's weights metadata.
Its weights are torchvision's ImageNet ones, ready once in the torch cache
(``python -m interp fetch torchvision/<builder>``). Imported only when such a name is used:
torchvision costs seconds at import.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Mapping

import torch

from ..errors import UnknownModelError
from .spec import ModelSpec

PREFIX = "torchvision/"


@lru_cache(maxsize=None)
def torchvision_weights(builder: str):
    """torchvision's default ImageNet weights entry of ``builder``.

    Raises:
        UnknownModelError: torchvision has no classifier of that name.
    """
    from torchvision import models as tvm

    classifiers = tvm.list_models(module=tvm)
    if builder not in classifiers:
        shown = ", ".join(f"{PREFIX}{n}" for n in ("resnet50", "efficientnet_b0", "convnext_tiny", "vgg16"))
        raise UnknownModelError(
            f"torchvision has no image classifier {builder!r} (e.g. {shown}; "
            f"{len(classifiers)} in all: torchvision.models.list_models())"
        )
    return tvm.get_model_weights(builder).DEFAULT


def torchvision_spec(name: str) -> ModelSpec:
    """The spec of ``torchvision/<builder>`` from torchvision's weights metadata."""
    from torchvision import models as tvm

    builder = name[len(PREFIX) :]
    weights = torchvision_weights(builder)
    transforms = weights.transforms()
    return ModelSpec(
        name=name,
        arch=builder,
        task="imagenet",
        class_names=tuple(weights.meta["categories"]),
        input_size=int(transforms.crop_size[0]),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        pretrained="imagenet",
        builder=partial(tvm.get_model, builder, weights=None),
        training_note=f"torchvision's {builder} with its ImageNet weights ({weights.name}).",
    )


def fine_tuned_builder(name: str, num_classes: int):
    """A factory of ``torchvision/<builder>`` with a head of ``num_classes`` (for a user's fine-tuned weights)."""
    from torchvision import models as tvm

    builder = name[len(PREFIX) :]
    torchvision_weights(builder)  # refuses an unknown builder now, not at the first load
    return partial(tvm.get_model, builder, weights=None, num_classes=num_classes)


@lru_cache(maxsize=None)
def head_keys(builder: str) -> tuple[str, ...]:
    """The state-dict keys of ``torchvision/<builder>`` whose first dimension is the number of
    classes (its classifier, and its auxiliary classifiers where it has them): those that change
    between a 2-class and a 3-class build. Built on the meta device (no memory, no initialisation
    cost), or on the CPU for the few builders whose construction reads tensor values (the RegNets)."""
    from torchvision import models as tvm

    def keys_on(device: str) -> tuple[str, ...]:
        with torch.device(device):
            two = tvm.get_model(builder, weights=None, num_classes=2).state_dict()
            three = tvm.get_model(builder, weights=None, num_classes=3).state_dict()
        return tuple(k for k, v in two.items() if k in three and v.shape != three[k].shape)

    try:
        return keys_on("meta")
    except (NotImplementedError, RuntimeError):
        return keys_on("cpu")


def checkpoint_classes(name: str, tensors: Mapping[str, torch.Tensor]) -> int | None:
    """The number of classes of a state dict of ``torchvision/<builder>``, read from its head's
    tensors; None where it holds none of them or they disagree (loading then lists what differs)."""
    found = {int(tensors[k].shape[0]) for k in head_keys(name[len(PREFIX) :]) if k in tensors and tensors[k].ndim}
    return found.pop() if len(found) == 1 else None


def sized_to_checkpoint(spec: ModelSpec, tensors: Mapping[str, torch.Tensor]) -> ModelSpec:
    """``torchvision/<builder>``'s spec with the head of a fine-tuned checkpoint: as many classes as
    its head has (named "class 0", "class 1", ...; register the model with interp.register_model to
    name them), built by :func:`fine_tuned_builder`. Any other spec, or a checkpoint with ImageNet's
    head, is returned as it is."""
    if not spec.name.startswith(PREFIX) or spec.builder is None:
        return spec
    n = checkpoint_classes(spec.name, {k.removeprefix("module."): v for k, v in tensors.items()})
    if n is None or n == spec.num_classes:
        return spec
    note = f"torchvision's {spec.arch} with a head of {n} classes (a fine-tuned checkpoint)."
    return spec.replace(
        task="user",
        class_names=tuple(f"class {i}" for i in range(n)),
        builder=fine_tuned_builder(spec.name, n),
        training_note=note,
    )

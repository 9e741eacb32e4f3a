"""torchvision's classifiers by name: ``torchvision/<builder>`` (``torchvision/resnet50``,
``torchvision/efficientnet_b0``, ``torchvision/convnext_tiny``, ...) is a registry entry made on
first use, with the class names, input size and normalisation of torchvision's weights metadata.
Its weights are torchvision's ImageNet ones, ready once in the torch cache
(``python -m interp fetch torchvision/<builder>``). Imported only when such a name is used:
torchvision costs seconds at import.
"""

from __future__ import annotations

from functools import lru_cache, partial

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
        raise UnknownModelError(f"torchvision has no image classifier {builder!r} (e.g. {shown}; "
                                f"{len(classifiers)} in all: torchvision.models.list_models())")
    return tvm.get_model_weights(builder).DEFAULT


def torchvision_spec(name: str) -> ModelSpec:
    """The spec of ``torchvision/<builder>`` from torchvision's weights metadata."""
    from torchvision import models as tvm

    builder = name[len(PREFIX):]
    weights = torchvision_weights(builder)
    transforms = weights.transforms()
    return ModelSpec(name=name, arch=builder, task="imagenet", class_names=tuple(weights.meta["categories"]),
                     input_size=int(transforms.crop_size[0]), mean=tuple(transforms.mean), std=tuple(transforms.std),
                     pretrained="imagenet", builder=partial(tvm.get_model, builder, weights=None),
                     training_note=f"torchvision's {builder} with its ImageNet weights ({weights.name}).")


def fine_tuned_builder(name: str, num_classes: int):
    """A factory of ``torchvision/<builder>`` with a head of ``num_classes`` (for a user's fine-tuned weights)."""
    from torchvision import models as tvm

    builder = name[len(PREFIX):]
    torchvision_weights(builder)  # refuses an unknown builder now, not at the first load
    return partial(tvm.get_model, builder, weights=None, num_classes=num_classes)

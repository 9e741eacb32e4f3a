"""ModelSpec: what a caller needs to build, feed, explain and train one model, apart from the
registry that holds them (so that every module that makes specs can import it without the registry)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from ..paths import read_only_checkpoint_dirs, writable_checkpoint_dir
from .arch import ARCHITECTURES

# Where training writes checkpoints and load_model looks first, then the folders it searches after
# (interp.paths: $INTERP_HOME, the checkout, the wheel's bundled checkpoints). Module globals, read on
# each call, so that a test can point them at a folder of its own.
CHECKPOINT_DIR = writable_checkpoint_dir()
CHECKPOINT_SEARCH = [d for d in read_only_checkpoint_dirs() if d != CHECKPOINT_DIR]


@dataclass(frozen=True)
class ModelSpec:
    """What a caller needs to build, feed, explain and train one registry entry."""

    name: str
    arch: str
    # pacs_domain | pacs_class | cifar10 | cifar10lt (trained on a long-tailed CIFAR-10, tested on the
    # balanced test set) | cifar10_shortcut (trained on CIFAR-10 with a planted patch, tested on the
    # clean test set) | imagenet | user (a model registered by its user)
    task: str
    class_names: tuple[str, ...]
    input_size: int | tuple[int, int]  # side of a square input, or (height, width), in pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)  # switches passed to the builder
    recipe: Mapping[str, Any] = field(default_factory=dict)  # training defaults (train.TrainConfig fields)
    ships: bool = False  # a trained checkpoint is committed in checkpoints/
    pretrained: str | None = None  # "imagenet": starts from (or is) torchvision's ImageNet weights
    training_note: str = ""  # what to expect when training it (time, hardware)
    # Grad-CAM's layer when none is given; None (every registry entry): the automatic choice of
    # interp.methods.layers.default_layer, so the model's structure is the only source.
    target_layer: str | None = None
    # A user's model (interp.register_model): what builds it (its weights included, when it was
    # given as a module), and the weights file to load into it, if any.
    builder: Callable[[], nn.Module] | None = None
    weights_file: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        if isinstance(self.input_size, int):
            return self.input_size, self.input_size
        height, width = self.input_size
        return height, width

    @property
    def input_label(self) -> str:
        """'3x227x227': the input shape for people."""
        return "3x{}x{}".format(*self.input_hw)

    @property
    def checkpoint_path(self) -> Path:
        """Where the training command writes this entry's weights."""
        return CHECKPOINT_DIR / f"{self.name}.safetensors"

    @property
    def card_path(self) -> Path:
        """The model card: beside the checkpoint found, else where training writes it."""
        found = self._checkpoint_folder()
        return (found or CHECKPOINT_DIR) / f"{self.name}.json"

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint file if one exists (a sharded one's index), else None (a user's model: its
        weights file). Searched in CHECKPOINT_DIR, then CHECKPOINT_SEARCH."""
        if self.builder is not None:
            return self.weights_file
        folder = self._checkpoint_folder()
        if folder is None:
            return None
        single = folder / f"{self.name}.safetensors"
        return single if single.is_file() else folder / f"{self.name}.safetensors.index.json"

    def _checkpoint_folder(self) -> Path | None:
        for folder in (CHECKPOINT_DIR, *CHECKPOINT_SEARCH):
            if (folder / f"{self.name}.safetensors").is_file() or (
                folder / f"{self.name}.safetensors.index.json"
            ).is_file():  # sharded weights
                return folder
        return None

    @property
    def weights_from_torchvision(self) -> bool:
        """The entry *is* torchvision's ImageNet model: its weights come from torchvision's
        download (cached in the torch cache), not from checkpoints/, and it is not trained here."""
        return self.pretrained == "imagenet" and self.task == "imagenet"

    @property
    def dataset(self) -> str:
        """Where the images come from: pacs, cifar10 (cifar10lt and cifar10_shortcut too) or the task's name."""
        if self.task.startswith("pacs"):
            return "pacs"
        return "cifar10" if self.task.startswith("cifar10") else self.task

    def build(self, **overrides: Any) -> nn.Module:
        """A fresh, untrained model of this entry's architecture (never downloads)."""
        if self.builder is not None:
            return self.builder()
        kwargs = {**self.arch_kwargs, **overrides}
        return ARCHITECTURES[self.arch](self.num_classes, **kwargs)

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

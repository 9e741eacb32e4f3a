"""What a training run is and how it runs, kept apart.

``TrainConfig`` holds everything that decides the resulting weights: it is the run's identity
(the resume key, the card's settings). ``RunSettings`` holds where and how the run executes
(data, output, threads, saving, progress, device), which may change between a run and its resumption.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.shortcut import Shortcut
from ..errors import ParameterError
from ..hardware import native_bf16
from ..models.registry import get_spec


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; a registry entry's ``recipe`` overrides the defaults."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate of the schedule
    optimizer: str = "adamw"  # sgd (momentum, Nesterov) | adam | adamw
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # onecycle | cosine | none: the lr is a function of the step, so resumes are exact
    augment: bool = True  # random flips and crops (scale: steps.MIN_CROP_SCALE), drawn per batch
    patience: int = 3  # epochs without a better validation loss before stopping early
    seed: int = 0  # every random stream of the run derives from it (steps.stream_seed)
    # bfloat16 autocast (weights stay float32): ~2x faster convolutions on CPUs with native bf16
    # (AVX512-BF16, AMX) but several times slower elsewhere, so None means "where it is native".
    bf16: bool | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # architecture switches (batch_norm, dropout)
    input_size: int | None = None  # only where the entry allows another size (transfer: 112)
    init_weights: str | None = None  # transfer: ImageNet weights file; otherwise a checkpoint to restart from
    # Long tail: the training split cut to n_max / n_min = imbalance (interp.data.long_tail_indices,
    # drawn with ``seed``); None keeps it whole. The held-out split stays balanced.
    imbalance: float | None = None
    # Planted shortcut: the patch planted into the decoded training split once, before augmentation
    # (interp.data.planted_training_set, drawn with the Shortcut's own seed); None plants nothing. A
    # recipe gives its fields as a dict. The held-out split stays clean.
    shortcut: Shortcut | None = None
    # The loss: interp.losses.ClassBalancedFocalLoss over the training split's class counts;
    # beta = gamma = 0 is plain cross-entropy, beta > 0 balances the classes, gamma > 0 is focal.
    beta: float = 0.0
    gamma: float = 0.0
    # Deferred re-weighting (Cao et al., NeurIPS 2019): the class weights of ``beta`` apply from this
    # epoch (1-based) on; the epochs before train with the unweighted (focal) loss, so the features
    # are learnt from plain sampling first. None: the weights apply from the start.
    reweight_from: int | None = None
    # Which epoch's weights the run writes: "best" (lowest validation loss) or "last". "last" where the
    # validation set is not drawn like the training set (a long tail against the balanced test set:
    # the validation loss rises with confidence on the head classes while accuracy still improves).
    keep: str = "best"
    limit_train: int | None = None  # N training images spread over the split (smoke runs and tests)
    limit_val: int | None = None  # N validation images, likewise

    def __post_init__(self) -> None:
        if self.keep not in ("best", "last"):
            raise ParameterError(f"keep must be 'best' or 'last', not {self.keep!r}")
        if isinstance(self.shortcut, dict):
            self.shortcut = Shortcut(**self.shortcut)
        if self.bf16 is None:
            self.bf16 = native_bf16()


@dataclass
class RunSettings:
    """Where and how a run executes; none of it changes the weights it produces."""

    data_dir: str | None = None  # default: $INTERP_DATA_DIR, else ./data
    out: str | None = None  # weights file; default: the entry's checkpoint path in checkpoints/
    threads: int | None = None  # torch threads (default: all cores)
    save_every_s: float = 120.0  # seconds between resumable-state saves within an epoch
    progress: bool = True  # progress bars (epoch summaries are printed either way)
    # cpu, cuda, cuda:N or mps. "cpu" as before devices existed; `python -m interp train` passes
    # hardware.resolve_device()'s choice. Weights differ between devices only by float noise (rounding,
    # CUDA's mixed precision) and dropout's draws, so it is no part of the run's identity: a run may
    # resume on another device.
    device: str = "cpu"

    @classmethod
    def given(cls, **options: Any) -> RunSettings:
        """Settings from command-line options, where None means 'not given' (the default stays).

        Raises:
            TypeError: an option that is not a RunSettings field.
        """
        return cls(**{k: v for k, v in options.items() if v is not None})


def config_for(name: str, **overrides: Any) -> TrainConfig:
    """The entry's recipe with explicit overrides (None means 'not given') applied.

    Args:
        name: registry name.
        overrides: TrainConfig fields.

    Returns:
        The run's TrainConfig.

    Raises:
        UnknownModelError: no such entry.
        TypeError: an override that is not a TrainConfig field (run settings go in RunSettings).
    """
    spec = get_spec(name)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"config_for got {', '.join(unknown)}, which are not training hyper-parameters; "
            "where and how a run executes (data_dir, out, threads, save_every_s, progress, device) "
            "goes in RunSettings, passed to train()"
        )
    values = {**spec.recipe, **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(**values)

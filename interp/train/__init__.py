"""Training and evaluation of registry entries.

- ``config``: TrainConfig (what decides the weights) apart from RunSettings (where and how a
  run executes); ``config_for`` applies overrides to an entry's recipe.
- ``steps``: one step's pieces: seeded random streams, learning-rate schedule, augmentation,
  inputs, optimizer, the starting model (``init_model``).
- ``loop``: ``train``: epochs, validation, early stopping, resume.
- ``state``: the resumable state file and the run identity it must match.
- ``evaluation``: decoded splits (``load_split``) and held-out metrics.
- ``card``: the model card (hardware, device, precision, code version, throughput, metrics, history).
- ``device``: the precision on the run's device and the splits placed on it.

Design points:
- Each split is decoded once into a uint8 tensor (cached on disk); batches are sliced from
  memory and augmented as whole batches, so the JPEG decoder never limits a CPU run. On a GPU
  the split lives in GPU memory where it fits (see ``device``), and the run uses mixed precision.
- Every random choice comes from a stream seeded by (seed, epoch, batch) and the learning rate
  is a pure function of the step: the same seed gives the same weights, and a resumed run
  continues exactly where the stopped one was.
"""

from ..hardware import native_bf16
from ..models.weights import read_card
from .config import RunSettings, TrainConfig, config_for
from .device import Precision, precision_for
from .evaluation import evaluate, evaluate_tensors, load_split
from .imbalance import imbalance_summary, tail_classes
from .loop import train
from .steps import augment_batch, batch_inputs, init_model, learning_rate, make_optimizer

__all__ = [
    "Precision",
    "RunSettings",
    "TrainConfig",
    "augment_batch",
    "batch_inputs",
    "config_for",
    "evaluate",
    "evaluate_tensors",
    "imbalance_summary",
    "init_model",
    "learning_rate",
    "load_split",
    "make_optimizer",
    "native_bf16",
    "precision_for",
    "read_card",
    "tail_classes",
    "train",
]

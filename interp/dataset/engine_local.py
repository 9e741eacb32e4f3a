"""The in-process engine: the pending shards one after another in this process, each written
as soon as it is full (so memory stays flat whatever the dataset's size)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from torch import nn

from ..models.registry import ModelSpec
from .compute import compute_shard
from .job import Images, Settings
from .store import write_shard


def run_local(model: nn.Module, spec: ModelSpec, settings: Settings, images: Images, out: Path,
              pending: Sequence[int], advance: Callable[[int], None]) -> None:
    """Compute and write each pending shard; ``advance(n)`` after each, with its image count."""
    for i in pending:
        start, paths, labels = images.shard(i, settings.shard_size)
        write_shard(out, i, compute_shard(model, spec, settings, start, paths, labels))
        advance(len(paths))

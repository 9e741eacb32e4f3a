"""The in-process engine: the pending shards one after another in this process. Where a core is
free (:func:`.compute.spare_core`), each shard is written on a thread while the next one is
computed (at most one write outstanding, so memory stays flat whatever the dataset's size); a
failed write stops the run."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Callable

from torch import nn

from .compute import background, compute_shard, spare_core
from .job import Pending
from .store import write_shard


def run_local(model: nn.Module, work: Pending) -> None:
    """Compute and write each pending shard; ``advance(n)`` once it is on disk, with its image count."""
    spec, settings, images, out, pending, advance = work.parts()
    writing: tuple[Future, int] | None = None
    with background(spare_core(model), "interp-write") as pool:
        for i in pending:
            start, paths, labels = images.shard(i, settings.shard_size)
            table = compute_shard(model, spec, settings, start, paths, labels)
            if writing is not None:
                _finish(*writing, advance)
            writing = pool.submit(write_shard, out, i, table), len(paths)
        if writing is not None:
            _finish(*writing, advance)


def _finish(write: Future, n: int, advance: Callable[[int], None]) -> None:
    write.result()  # raises the write's error here, in the run's thread
    advance(n)

"""The Ray engine: the same shards computed by a pool of actors (each loads the model once),
through Ray Data: ``from_items`` (one item per shard) -> ``map_batches`` (the actor pool, with
``num_gpus`` per actor where the cluster has GPUs) -> ``write_parquet``. The written rows are
then filed as the same shard files the in-process engine writes, so the two give identical
results and either can resume the other's run.

Pending shards go through Ray in waves (64 shards, or 16 per actor on a larger pool), so a killed
run keeps every wave that finished; each wave starts its actors and loads the model once.
Imported only when ``engine="ray"``: the in-process path never imports Ray.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InterpError
from ..models.registry import ModelSpec
from .job import Images, Pending, Settings
from .store import write_shard

STAGING = "_ray_staging"  # where write_parquet puts a wave's rows before they are filed as shards


class ShardExplainer:
    """A Ray actor: loads the model once, then computes whole shards (one item = one shard)."""

    def __init__(
        self, spec: ModelSpec, settings: Settings, device: str, models_files: Sequence[str], threads: int | None
    ) -> None:
        import torch

        from ..models import load_model, load_models_files
        from ..models.registry import REGISTRY, register

        if threads:
            torch.set_num_threads(threads)
        load_models_files(list(models_files))
        if spec.name not in REGISTRY:  # a model registered in the driver's process only
            register(spec)
        self.spec, self.settings, self.device = spec, settings, device
        self.model = load_model(spec.name, settings.checkpoint, device=device)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from .compute import compute_shard

        # On CPUs the pool's actors fill every core Ray gives them: decoding ahead on a thread would
        # only preempt the passes (see compute.spare_core).
        tables = [
            compute_shard(
                self.model,
                self.spec,
                self.settings,
                int(start),
                json.loads(paths),
                json.loads(labels),
                overlap=self.device != "cpu",
            )
            for start, paths, labels in zip(
                batch.column("start").to_pylist(), batch.column("paths").to_pylist(), batch.column("labels").to_pylist()
            )
        ]
        return pa.concat_tables(tables)


def _connect(address: str | None) -> None:
    import logging

    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # explain_dataset draws its own bar over the images
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if not ray.is_initialized():
        # address None starts Ray on this machine; "auto" or "ray://host:10001" joins a cluster
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)


def _actors(requested: int | None, gpus_per_actor: float) -> int:
    import ray

    if requested:
        return requested
    res = ray.cluster_resources()
    if gpus_per_actor > 0:
        return max(1, int(res.get("GPU", 0) // gpus_per_actor))
    return max(1, int(res.get("CPU", 1)))


def run_ray(
    work: Pending,
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    models_files: Sequence[str] = (),
    threads: int | None = None,
) -> None:
    """Compute the pending shards on Ray (local, or the cluster at ``address``) and file them.

    Args:
        gpus_per_actor: GPUs each actor takes (default 1 where the cluster has GPUs, else 0).
        actors: how many actors (default: one per GPU share, else one per CPU).
        threads: torch threads in each actor (default: Ray's, the CPUs it gives the actor).
    """
    spec, settings, images, out, pending, advance = work.parts()
    try:
        import ray
    except ImportError as exc:
        raise InterpError(f"the Ray engine needs Ray: pip install 'ray[data]' ({exc})") from exc
    _connect(address)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    n_actors = _actors(actors, gpus_per_actor)
    device = "cuda" if gpus_per_actor > 0 else "cpu"
    # Shards per Ray job: what a kill can lose at most, and how often the actors start and load
    # the model again (a few seconds each time).
    wave = max(64, 16 * n_actors)
    for w in range(0, len(pending), wave):
        shards = list(pending[w : w + wave])
        items = []
        for i in shards:
            start, paths, labels = images.shard(i, settings.shard_size)
            items.append({"start": start, "paths": json.dumps(paths), "labels": json.dumps(labels)})
        explained = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardExplainer,
            batch_size=1,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=min(n_actors, len(items))),
            num_gpus=gpus_per_actor or None,
            num_cpus=None if gpus_per_actor else 1,
            fn_constructor_kwargs=dict(
                spec=spec,
                settings=settings,
                device=device,
                models_files=[str(p) for p in models_files],
                threads=threads,
            ),
        )
        staging = out.absolute() / STAGING  # Ray's workers do not share the driver's working folder
        shutil.rmtree(staging, ignore_errors=True)
        explained.write_parquet(str(staging))
        _file_shards(staging, out, settings, shards, images, advance)
        shutil.rmtree(staging, ignore_errors=True)


def _file_shards(
    staging: Path, out: Path, settings: Settings, shards: Sequence[int], images: Images, advance: Callable[[int], None]
) -> None:
    """Split what write_parquet wrote into the shard files, rows in image order."""
    from .compute import schema

    parts = [pq.read_table(f) for f in sorted(staging.rglob("*.parquet"))]
    if not parts:
        raise InterpError(f"Ray wrote no rows to {staging}: on a cluster, --out must be a folder every node sees")
    rows = pa.concat_tables(parts).cast(schema(settings))
    index = rows.column("index")
    for i in shards:
        start, paths, _ = images.shard(i, settings.shard_size)
        table = rows.filter(pc.and_(pc.greater_equal(index, start), pc.less(index, start + len(paths))))
        table = table.take(pa.array(np.argsort(table.column("index").to_numpy(), kind="stable")))
        if len(table) != len(paths):
            raise InterpError(f"Ray returned {len(table)} rows for shard {i}, expected {len(paths)}")
        write_shard(out, i, table)
        advance(len(paths))

"""A results folder: one Parquet file per shard (each written whole, via a temporary file and a
rename), and _manifest.json beside them (settings, command, model card, versions). Every name that
is not a finished shard starts with "_" or ".", which Arrow's dataset discovery skips, so that
``pd.read_parquet(folder)`` and ``pyarrow.parquet.read_table(folder)`` read the folder as one table."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InterpError
from ..models.registry import ModelSpec
from .job import Images, Settings, fingerprint, shard_count

MANIFEST = "_manifest.json"
OLD_MANIFEST = "manifest.json"  # its name in folders written before it had the "_"; read, and renamed on resume
# The model card's fields worth keeping beside results (its per-step history is left out).
CARD_FIELDS = (
    "name",
    "arch",
    "task",
    "class_names",
    "input_size",
    "mean",
    "std",
    "parameters",
    "command",
    "seed",
    "metrics",
    "best_epoch",
    "trained_at",
    "code_version",
)


def shard_path(out: Path, i: int) -> Path:
    return out / f"shard-{i:05d}.parquet"


def write_shard(out: Path, i: int, table: pa.Table) -> Path:
    """Write shard i whole: a killed run leaves either the finished file or none."""
    final = shard_path(out, i)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    # Dictionary encoding only where values repeat: on the maps it costs half the write time and
    # saves nothing; zstd keeps the files about as small as snappy's with dictionaries.
    pq.write_table(table, tmp, use_dictionary=["path", "error"], compression="zstd")
    os.replace(tmp, final)
    return final


def done_shards(out: Path, images: Images, settings: Settings) -> set[int]:
    """Shards already in the folder (a resumed run skips them)."""
    n = shard_count(len(images), settings.shard_size)
    return {i for i in range(n) if shard_path(out, i).is_file()}


def versions() -> dict[str, str]:
    """Versions of what computed the numbers."""
    import numpy
    import torch

    from ..train.card import code_version

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pa.__version__,
        "interp": code_version(),
    }
    if "ray" in sys.modules:  # only where the Ray engine ran; the in-process path never imports it
        found["ray"] = sys.modules["ray"].__version__
    return found


def model_card(spec: ModelSpec) -> dict[str, Any]:
    """The spec's essentials and the checkpoint's card (without its history)."""
    from ..models import read_card

    card = read_card(spec.card_path) if spec.checkpoint else None
    return {
        "name": spec.name,
        "task": spec.task,
        "class_names": list(spec.class_names),
        "input_size": list(spec.input_hw),
        "mean": list(spec.mean),
        "std": list(spec.std),
        "checkpoint": str(spec.checkpoint) if spec.checkpoint else None,
        "card": {k: card[k] for k in CARD_FIELDS if k in card} if card else None,
    }


def open_folder(out: Path, spec: ModelSpec, settings: Settings, images: Images, command: str, engine: str) -> dict:
    """Create the folder and its manifest, or check that a folder being resumed holds a run of
    the same settings and images.

    Raises:
        InterpError: the folder holds another run's results.
    """
    out.mkdir(parents=True, exist_ok=True)
    key = fingerprint(settings, images)
    path = manifest_path(out)
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("fingerprint") != key:
            raise InterpError(
                f"{out} holds the results of another run (other settings or images: "
                f"{old.get('command', '?')}); choose another --out, or delete that folder"
            )
        if path.name != MANIFEST:
            write_manifest(out, old)  # a folder of the old layout, resumed: from now on Arrow reads it whole
        return old
    manifest = {
        "command": command,
        "engine": engine,
        "fingerprint": key,
        "settings": settings.as_dict(),
        "images": len(images),
        "source": images.source,
        "class_names": list(images.class_names),
        "shards": shard_count(len(images), settings.shard_size),
        "model": model_card(spec),
        "versions": versions(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished": False,
    }
    write_manifest(out, manifest)
    return manifest


def manifest_path(out: str | os.PathLike) -> Path:
    """The manifest of a results folder: ``_manifest.json``, or ``manifest.json`` in a folder
    written before the manifest was renamed (and not resumed since); ``_manifest.json`` where
    there is neither."""
    path = Path(out) / MANIFEST
    old = Path(out) / OLD_MANIFEST
    return old if not path.is_file() and old.is_file() else path


def write_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest whole (a temporary file, then a rename); the old layout's is removed."""
    tmp = out / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)
    (out / OLD_MANIFEST).unlink(missing_ok=True)


def finish(out: Path, manifest: dict, seconds: float, engine: str) -> None:
    """Mark the run complete in its manifest."""
    manifest = {
        **manifest,
        "finished": True,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "last_engine": engine,
        "last_run_seconds": round(seconds, 2),
    }
    write_manifest(out, manifest)


def read_manifest(out: str | os.PathLike) -> dict:
    """The manifest of a results folder.

    Raises:
        InterpError: the folder is not one.
    """
    path = manifest_path(out)
    if not path.is_file():
        raise InterpError(
            f"{out} is not a results folder of explain-dataset (it has no {MANIFEST}); give the --out folder of a run"
        )
    return json.loads(path.read_text())


def read_results(out: str | os.PathLike, columns: Sequence[str] | None = None) -> pa.Table:
    """Every finished shard of a results folder, in image order, as one Arrow table
    (``.to_pandas()`` for a DataFrame); only ``columns`` where given.

    Raises:
        InterpError: the folder is not a results folder.
    """
    read_manifest(out)
    files = sorted(Path(out).glob("shard-*.parquet"))
    if not files:
        raise InterpError(f"{out} holds no finished shard yet")
    return pa.concat_tables([pq.read_table(f, columns=list(columns) if columns else None) for f in files])

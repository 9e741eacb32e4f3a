"""Whole datasets explained: predictions, maps and metrics of every image, written to Parquet in
shards (resumable), by the in-process engine (``engine_local``) or by Ray (``engine_ray``); the
run's settings and images (``job``), one shard's computation (``compute``), the results folder
(``store``), and the summaries the dashboard draws from a results table (``results``).

Names are imported on first use, so that the command line's ``--help`` stays light.
"""

import importlib

_EXPORTS = {
    "explain_dataset": "run",
    "explain_held_out": "run",
    "held_out_folder": "run",
    "held_out_runs": "run",
    "read_results": "store",
    "read_manifest": "store",
    "manifest_path": "store",
    "resize_maps": "compute",
    "schema": "compute",
    "METRICS": "job",
    "Images": "job",
    "Settings": "job",
    "folder_images": "job",
    "split_images": "job",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'interp.whole_dataset' has no attribute {name!r}")

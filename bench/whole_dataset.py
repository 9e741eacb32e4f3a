"""Whole-dataset rows: ``interp.explain_dataset``'s in-process engine against a bare loop of the
same passes on pre-loaded tensors, the Ray engine against the in-process one, and each engine's
peak memory at two dataset sizes.

Every measurement runs in a fresh process (``bench.child``), so each peak is its own. Peak memory
is the largest total resident set size of the process and every process it started (Ray's
raylet, object store and workers are the driver's descendants when Ray starts on this machine),
sampled every 50 ms; shared pages count once per process that maps them, alike at both sizes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .training import proc_status_kb

ENGINE_RATIO_TARGET = 0.9  # in-process images/s over the bare loop's
RAY_RATIO_TARGET = 0.75  # Ray's images/s over the in-process engine's
MEMORY_GROWTH_TARGET = 1.10  # peak at the large size over the peak at the small size


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class TreePeak:
    """The largest summed RSS of this process and its descendants while the block runs (Linux)."""

    def __init__(self, every_s: float = 0.05):
        self.every_s, self.peak_kb, self._stop = every_s, 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(proc_status_kb("VmRSS", p) or 0 for p in _descendants(os.getpid())))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "TreePeak":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024.0


# ---------------------------------------------------------------------------------------------
# In the child process


def child_engine(
    model: str, methods: Sequence[str], limit: int, batch_size: int, engine: str, threads: int
) -> dict[str, Any]:
    """``explain_dataset`` over the first ``limit`` test images, after one run over 64 of them
    (imports and first-call costs are not the engine's throughput); Ray (if asked) is started
    before the clock, as a cluster would be already running, so the time covers the job: actors,
    model loading, decoding, the passes, Parquet."""
    import torch

    import interp

    torch.set_num_threads(threads)
    if engine == "ray":
        import ray

        ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
    run = dict(split="test", batch_size=batch_size, engine=engine, progress=False, columns=["index", "error"])
    interp.explain_dataset(model, list(methods), limit=64, **run)
    with tempfile.TemporaryDirectory() as out, TreePeak() as peak:
        start = time.perf_counter()
        table = interp.explain_dataset(model, list(methods), limit=limit, out=out, **run)
        seconds = time.perf_counter() - start
    errors = sum(e is not None for e in table.column("error").to_pylist())
    return {"images": len(table), "errors": errors, "images_per_s": len(table) / seconds, "peak_mb": peak.peak_mb}


def child_bare_passes(model: str, methods: Sequence[str], limit: int, batch_size: int, threads: int) -> dict[str, Any]:
    """The passes the methods need (Grad-CAM: forward and backward to its layer; a gradient
    method: forward and backward to the input; otherwise a forward pass), batch by batch, on the
    same images decoded and normalised before the clock, explaining the predicted classes (fixed
    before the clock too)."""
    import torch

    from interp.data import load_image, preprocess
    from interp.methods import default_layer
    from interp.models import get_spec, load_model
    from interp.whole_dataset.job import limited, split_images

    from .cases import (
        GRADIENT_METHODS,
        TO_LAYER_METHODS,
        bare_forward,
        bare_forward_backward,
        bare_forward_backward_to_layer,
    )

    torch.set_num_threads(threads)
    spec = get_spec(model)
    net = load_model(model)
    images = limited(split_images(spec, "test"), limit)
    x = torch.cat([preprocess(load_image(p), spec) for p in images.paths])
    with torch.no_grad():
        targets = torch.cat([net(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)])
    layer = default_layer(net, x[:1])
    runs = []
    for s in range(0, len(x), batch_size):
        xb, tb = x[s : s + batch_size], targets[s : s + batch_size]
        for m in methods:
            runs.append(
                bare_forward_backward_to_layer(net, layer, xb, tb)
                if m in TO_LAYER_METHODS
                else bare_forward_backward(net, xb, tb)
                if m in GRADIENT_METHODS
                else bare_forward(net, xb)
            )
    start = time.perf_counter()
    for run in runs:
        run()
    return {"images": len(x), "images_per_s": len(x) / (time.perf_counter() - start)}


# ---------------------------------------------------------------------------------------------
# In the benchmark process


def dataset_rows(
    model: str, methods: Sequence[str], sizes: tuple[int, int], batch_size: int, threads: int, ray: bool = True
) -> list[dict[str, Any]]:
    """The in-process row (against the bare loop), the Ray row (against in-process) and a memory
    row per engine (small size against large); a row says why where it could not be measured."""
    from .dashboard import run_child

    small, large = sizes
    common = {"model": model, "methods": list(methods), "batch_size": batch_size, "threads": threads}
    base = {
        "kind": "dataset",
        "model": model,
        "batch": batch_size,
        "peers": [],
        "floor_ms": None,
        "ratio_to_floor": None,
        "methods": ",".join(methods),
    }

    def measured(kind: str, **args) -> dict[str, Any] | str:
        try:
            return run_child(kind, {**common, **args}, threads, timeout=1800.0)[0]
        except (RuntimeError, OSError) as exc:
            return f"not measured: {exc}"

    bare = measured("dataset_bare", limit=large)
    runs = {
        (e, n): measured("dataset_engine", engine=e, limit=n)
        for e in (("local", "ray") if ray else ("local",))
        for n in (large, small)
    }
    rows = [
        _ratio_row(
            base,
            "in_process",
            runs["local", large],
            bare,
            ENGINE_RATIO_TARGET,
            f"explain_dataset, engine local, {large} CIFAR-10 test images from JPEG to Parquet; "
            "floor: the same passes on tensors decoded beforehand",
        )
    ]
    if ray:
        rows.append(
            _ratio_row(
                base,
                "ray",
                runs["ray", large],
                runs["local", large],
                RAY_RATIO_TARGET,
                f"explain_dataset, engine ray ({threads} CPUs, one actor per CPU), {large} "
                "images; Ray started before the clock; floor: the in-process engine",
            )
        )
    for engine in ("local", "ray") if ray else ("local",):
        rows.append(_memory_row(base, engine, runs[engine, small], runs[engine, large], small, large))
    return rows


def _ratio_row(
    base: dict, method: str, ours: dict | str, floor: dict | str, target: float, note: str
) -> dict[str, Any]:
    if isinstance(ours, str) or isinstance(floor, str):
        return {**base, "method": method, "ours_ms": None, "note": ours if isinstance(ours, str) else floor}
    ours_ms, floor_ms = 1000.0 / ours["images_per_s"], 1000.0 / floor["images_per_s"]
    return {
        **base,
        "method": method,
        "ours_ms": ours_ms,
        "floor_ms": floor_ms,
        "ratio_to_floor": ours_ms / floor_ms,
        "images_per_s": ours["images_per_s"],
        "floor_images_per_s": floor["images_per_s"],
        "throughput_ratio": ours["images_per_s"] / floor["images_per_s"],
        "target_throughput_ratio": target,
        "images": ours["images"],
        "errors": ours.get("errors", 0),
        "peak_mb": ours.get("peak_mb"),
        "note": note,
    }


def _memory_row(
    base: dict, engine: str, small_run: dict | str, large_run: dict | str, small: int, large: int
) -> dict[str, Any]:
    method = f"memory_{engine}"
    if isinstance(small_run, str) or isinstance(large_run, str):
        return {
            **base,
            "method": method,
            "ours_ms": None,
            "note": small_run if isinstance(small_run, str) else large_run,
        }
    growth = large_run["peak_mb"] / small_run["peak_mb"]
    return {
        **base,
        "method": method,
        "ours_ms": 1000.0 / large_run["images_per_s"],
        "peak_mb_small": small_run["peak_mb"],
        "peak_mb_large": large_run["peak_mb"],
        "images_small": small,
        "images_large": large,
        "memory_growth": growth,
        "target_memory_growth": MEMORY_GROWTH_TARGET,
        "note": f"peak RSS of the process and everything it started, {small} against {large} images "
        f"(engine {engine}); ms: per image at {large}",
    }

"""Training rows: interp's training loop (``interp.train.train``) against a bare loop over
pre-loaded tensors, each in a fresh process so that each one's peak memory is its own.

Peak memory is the process's peak resident set size (VmHWM in /proc/self/status; ru_maxrss elsewhere),
not tracemalloc: tracemalloc sees only Python's allocator, not the tensors' memory. Both
processes hold the same decoded split; ``base_rss_mb`` is the peak before any data is loaded.
"""

from __future__ import annotations

import functools
import math
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

TRAIN_RATIO_TARGET = 0.9  # the loop's images/s over the bare loop's


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A memory field of /proc/PID/status (VmRSS, VmHWM, ...) in kB; None where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_mb() -> float:
    """This process's peak resident set size. Linux keeps getrusage's ru_maxrss across fork and
    exec, so a child started by the benchmark would report its parent's peak; /proc's VmHWM
    belongs to the process's own address space."""
    kb = proc_status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20  # macOS reports bytes


# ---------------------------------------------------------------------------------------------
# In the child process


def child_train_loop(name: str, limit_train: int, batch_size: int, threads: int, device: str = "cpu") -> dict[str, Any]:
    """One epoch of interp's own training on ``limit_train`` images spread over the split, on ``device``
    (weights go to a temporary file, never to checkpoints/)."""
    from interp.train import RunSettings, config_for, train

    base = _peak_rss_mb()
    cfg = config_for(name, epochs=1, batch_size=batch_size, limit_train=limit_train, limit_val=min(limit_train, 64))
    with tempfile.TemporaryDirectory() as tmp:
        settings = RunSettings(
            out=str(Path(tmp) / f"{name}.safetensors"), threads=threads, progress=False, device=device
        )
        card = train(name, cfg, settings, command="python -m bench")
    t = card["throughput"]
    return {
        "images_per_s": t["train_loop_images_per_s"],
        "card_bare_images_per_s": t["bare_loop_images_per_s"],
        "peak_rss_mb": _peak_rss_mb(),
        "base_rss_mb": base,
        "bf16": cfg.bf16,
        "precision": card["precision"],
    }


def child_bare_loop(name: str, limit_train: int, batch_size: int, threads: int, device: str = "cpu") -> dict[str, Any]:
    """The same model, optimizer, batches, steps, device and precision as the training loop, on
    tensors that are normalised once up front (on the device): forward, loss, backward, step and
    nothing else."""
    import torch

    from interp.hardware import resolve_device
    from interp.models import get_spec
    from interp.train import batch_inputs, config_for, init_model, load_split, make_optimizer, precision_for
    from interp.train.device import step_seconds
    from interp.train.steps import epoch_order, optimizer_step, square_side

    torch.set_num_threads(threads)
    base = _peak_rss_mb()
    spec, dev = get_spec(name), resolve_device(device)
    cfg = config_for(name, epochs=1, batch_size=batch_size, limit_train=limit_train)
    x_u8, y = load_split(spec, "train", None, cfg.limit_train, progress=False)  # the default data root, as train's
    x = batch_inputs(x_u8.to(dev), spec, square_side(cfg.input_size or spec.input_size))  # pre-loaded, channels_last
    y = y.to(dev)
    # torch's stubs type Module.to's device and memory_format as separate overloads; at run time
    # one call takes both (as the training loop's does).
    model = init_model(spec, cfg).to(dev, memory_format=torch.channels_last).train()  # type: ignore[call-overload]
    opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    precision = precision_for(dev, bool(cfg.bf16))
    scaler = precision.scaler()
    order = epoch_order(cfg.seed, 0, len(y)).to(dev)  # the batches the training loop's first epoch visits
    batches = [order[b * cfg.batch_size : (b + 1) * cfg.batch_size] for b in range(math.ceil(len(y) / cfg.batch_size))]

    def step(idx: torch.Tensor) -> None:
        optimizer_step(model, opt, x[idx], y[idx], precision, scaler)

    seconds = sum(step_seconds([functools.partial(step, idx) for idx in batches], dev))
    return {
        "images_per_s": len(y) / seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "base_rss_mb": base,
        "bf16": cfg.bf16,
        "precision": precision.name,
    }


# ---------------------------------------------------------------------------------------------
# In the benchmark process


def training_rows(
    name: str, limit_train: int, batch_size: int, threads: int, device: str = "cpu"
) -> list[dict[str, Any]]:
    """The training-loop row and the bare-loop row on ``device`` (a note instead of numbers on failure)."""
    from .dashboard import run_child

    args = {"name": name, "limit_train": limit_train, "batch_size": batch_size, "threads": threads, "device": device}
    base = {"kind": "training", "model": name, "batch": batch_size, "peers": []}
    try:
        bare, _ = run_child("bare_loop", args, threads)
        loop, _ = run_child("train_loop", args, threads)
    except (RuntimeError, OSError) as exc:
        note = f"not measured: {exc}"
        return [
            {**base, "method": m, "ours_ms": None, "floor_ms": None, "ratio_to_floor": None, "note": note}
            for m in ("train_loop", "bare_loop")
        ]
    loop_ms, bare_ms = 1000.0 / loop["images_per_s"], 1000.0 / bare["images_per_s"]
    common = f"one epoch over {limit_train} training images, batch {batch_size}, on {device}, {loop['precision']}"
    return [
        {
            **base,
            "method": "train_loop",
            "ours_ms": loop_ms,
            "floor_ms": bare_ms,
            "ratio_to_floor": loop_ms / bare_ms,
            "images_per_s": loop["images_per_s"],
            "bare_images_per_s": bare["images_per_s"],
            "throughput_ratio": loop["images_per_s"] / bare["images_per_s"],
            "target_throughput_ratio": TRAIN_RATIO_TARGET,
            "card_bare_images_per_s": loop["card_bare_images_per_s"],
            "peak_rss_mb": loop["peak_rss_mb"],
            "base_rss_mb": loop["base_rss_mb"],
            "note": f"interp.train.train: {common}; ms are per image (1000 / images/s); floor: the bare loop; "
            "memory: peak RSS of the process (VmHWM)",
        },
        {
            **base,
            "method": "bare_loop",
            "ours_ms": bare_ms,
            "floor_ms": None,
            "ratio_to_floor": None,
            "images_per_s": bare["images_per_s"],
            "peak_rss_mb": bare["peak_rss_mb"],
            "base_rss_mb": bare["base_rss_mb"],
            "note": f"forward+loss+backward+step over tensors normalised up front: {common}",
        },
    ]

"""Timing mechanics of the benchmark: interleaved repeats, hook hygiene, machine description."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import torch
from torch import nn

from interp.hardware import cpu_name, cuda_name, synchronize

# Hook dictionaries a module carries, as torch's own Module has them (so those a newer torch adds are
# checked too); a peer that leaves an entry in one of them slows every later measurement on the same
# model, so each peer call is checked against them.
_HOOK_DICTS = tuple(
    d for d, v in vars(nn.Module()).items() if d.startswith(("_forward_", "_backward_")) and isinstance(v, dict)
)
PACKAGES = ("torch", "torchvision", "captum", "grad-cam", "torchcam", "streamlit")

CPU = torch.device("cpu")  # the default device (a call in a default argument runs once, at import, anyway)


@dataclass
class Impl:
    """One way of computing a case: ours, the floor, or a peer."""

    name: str
    fn: Callable[[], Any]  # one call on the whole batch; returns the map (or anything)
    model: nn.Module | None = None  # checked for leftover hooks and gradients after each call
    note: str = ""
    seconds: list[float] = field(default_factory=list)
    output: Any = None  # of the last call, to check that ours and the peer agree
    error: str | None = None


def _hook_ids(model: nn.Module) -> dict[tuple[int, str], set[int]]:
    return {(id(m), d): set(getattr(m, d, {}) or {}) for m in model.modules() for d in _HOOK_DICTS}


def _remove_new_hooks(model: nn.Module, before: dict[tuple[int, str], set[int]]) -> int:
    """Remove hooks added since ``before``; return how many there were."""
    removed = 0
    for m in model.modules():
        for d in _HOOK_DICTS:
            hooks = getattr(m, d, None)
            if not hooks:
                continue
            for key in set(hooks) - before.get((id(m), d), set()):
                del hooks[key]
                removed += 1
    return removed


def _call(impl: Impl, device: torch.device) -> float:
    """Run once; time it (on a GPU, from idle to the end of the work it queued); then undo what the
    call left on its model (hooks, .grad)."""
    before = _hook_ids(impl.model) if impl.model is not None else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Captum warns on every call that the input lacked requires_grad
            synchronize(device)  # nothing queued earlier is counted
            t0 = time.perf_counter()
            impl.output = impl.fn()
            synchronize(device)  # a GPU returns before it has done the work
            elapsed = time.perf_counter() - t0
    finally:
        if impl.model is not None:
            leaked = _remove_new_hooks(impl.model, before)
            if leaked and "left hooks" not in impl.note:
                impl.note = _join(impl.note, f"left {leaked} hook(s) on the model (removed by the benchmark)")
            # A peer that calls loss.backward() fills .grad of the shared model: memory, not time;
            # cleared so that the next measurement starts from the same state.
            impl.model.zero_grad(set_to_none=True)
    return elapsed


def measure(
    impls: list[Impl],
    warmup: int,
    repeats: int,
    budget_s: float = float("inf"),
    min_repeats: int = 2,
    device: torch.device = CPU,
) -> None:
    """Warm each implementation up, then time them interleaved (ours, floor, peers; then floor,
    peers, ours; ...) so that a slow drift of the machine's load hits all of them alike.

    An implementation whose warm-up call took t seconds gets ``budget_s / t`` repeats, clamped to
    [min_repeats, repeats], so that one slow case (integrated gradients at batch 32) does not take
    the whole run. Fills ``seconds``; one that raises gets ``error`` and is left out thereafter.
    ``device``: where they compute (a CUDA device is synchronised around each timed call).
    """
    planned: dict[int, int] = {}
    for i, impl in enumerate(impls):
        last = 0.0
        for w in range(warmup):
            if w and last > budget_s / 4:  # a slow call needs no second warm-up
                break
            last = _try(impl, device)
        planned[i] = (
            max(min_repeats, min(repeats, int(budget_s / last))) if 0 < last and budget_s < float("inf") else repeats
        )
    for r in range(repeats):
        # Each round starts one implementation later, so none always runs right after the
        # same other one (whose leftovers in caches and the allocator it would pay for).
        for i in [(r + j) % len(impls) for j in range(len(impls))]:
            impl = impls[i]
            if r < planned[i] and impl.error is None:
                t = _try(impl, device)
                if impl.error is None:
                    impl.seconds.append(t)


def _try(impl: Impl, device: torch.device) -> float:
    """One call; a peer that cannot run this case gets a note (``error``), not a crash."""
    if impl.error is not None:
        return 0.0
    try:
        return _call(impl, device)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        impl.error = f"could not run: {type(exc).__name__}: {first}"
        return 0.0


def median_ms_per_image(impl: Impl, batch: int) -> float | None:
    if impl.error is not None or not impl.seconds:
        return None
    return 1000.0 * statistics.median(impl.seconds) / batch


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def rounded(value: float | None, digits: int = 3) -> float | None:
    """Round to ``digits`` significant figures (JSON stays short; None and 0 pass through)."""
    if value is None or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def machine_info(threads: int, device: torch.device = CPU) -> dict[str, Any]:
    """What the numbers were measured on: the CPU, the device and its GPU (None on the CPU), versions."""
    cpu = cpu_name()
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "device": str(device),
        "gpu": cuda_name(device),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "packages": versions,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def default_threads() -> int:
    """$OMP_NUM_THREADS if set, else every core the machine has."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)

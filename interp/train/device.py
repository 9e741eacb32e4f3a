"""Where a run computes: the precision on its device, and the decoded splits on that device.

Placement of a decoded uint8 split (``Batches``): on a CUDA device the whole split is copied to
GPU memory once when it takes at most ``RESIDENT_FRACTION`` of the free memory (CIFAR-10's
training split is 150 MB, PACS's about 1.2 GB at 227 px: both fit on any training GPU). A batch
is then an index into GPU memory: no copy from the host per step, nothing for the GPU to wait
for, and the random augmentation runs on the GPU next to it. That was chosen over pinning the
split and copying each batch because it removes the per-step host-to-device transfer altogether
rather than overlapping it. A split too large for that stays on the CPU in pinned memory; each
batch is gathered into a pinned staging buffer and copied with ``non_blocking=True``, so the copy
overlaps the previous step's compute. On the CPU nothing is copied: batches are slices, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

# The share of a GPU's free memory a decoded split may take; the rest is for the model,
# its activations at the run's batch size and the optimizer.
RESIDENT_FRACTION = 0.25


@dataclass(frozen=True)
class Precision:
    """How a run's forward pass computes: float32, or autocast to ``dtype`` on ``device_type``.
    Weights, gradients and the optimizer stay float32 either way."""

    device_type: str
    dtype: torch.dtype | None = None  # the autocast dtype; None: float32 throughout

    @property
    def name(self) -> str:
        """What the model card records."""
        return {None: "float32", torch.bfloat16: "bfloat16 autocast", torch.float16: "float16 autocast + GradScaler"}[
            self.dtype
        ]

    def autocast(self) -> torch.autocast:
        """The forward pass's autocast context (disabled for float32)."""
        # A disabled autocast still checks its dtype: bfloat16 is one every device type accepts.
        return torch.autocast(self.device_type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None)

    def scaler(self) -> torch.amp.GradScaler | None:
        """float16's loss scaler (its small range underflows gradients without one); None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.dtype == torch.float16 else None


def precision_for(device: torch.device, bf16: bool) -> Precision:
    """The precision of a run on ``device``.

    CPU: bfloat16 autocast where ``bf16`` (TrainConfig.bf16: by default where the CPU computes
    bfloat16 natively), else float32. CUDA: automatic mixed precision always (tensor cores),
    bfloat16 where the GPU has it natively, else float16 with a GradScaler; ``bf16`` describes the
    CPU and does not apply. Other devices (mps): float32.
    """
    if device.type == "cpu":
        return Precision("cpu", torch.bfloat16 if bf16 else None)
    if device.type == "cuda":
        # Native bfloat16 only (Ampere and later): emulated bfloat16 is slower than float16.
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return Precision("cuda", torch.bfloat16 if native else torch.float16)
    return Precision(device.type)


def place_split(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A decoded split where a run on ``device`` reads it (see the module's docstring): unchanged on
    the CPU; in GPU memory where it fits; else pinned CPU memory. The inputs (the decoding cache's
    tensors) are never changed."""
    if device.type == "cpu":
        return x, y
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if x.nbytes + y.nbytes > RESIDENT_FRACTION * free:
            return x.pin_memory(), y.pin_memory()
    return x.to(device), y.to(device)


class Batches:
    """Indexed batches of a decoded split, delivered on the run's device (see the module's docstring)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
        self.device = device
        self.x, self.y = place_split(x, y, device)
        # Left on the CPU (pinned) for another device: copied batch by batch. Compared by type:
        # torch.device("cuda") and the tensors' "cuda:0" are the same GPU but not equal.
        self.staged = device.type != "cpu" and self.x.device.type == "cpu"
        self._stage: tuple[torch.Tensor, torch.Tensor] | None = None
        self._copied: torch.cuda.Event | None = None  # the last copy out of the staging buffers

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (uint8) and labels of the indices ``idx`` (a CPU tensor), on the run's device."""
        if not self.staged:
            idx = idx.to(self.x.device)
            return self.x[idx], self.y[idx]
        n = len(idx)
        if self._stage is None or len(self._stage[1]) < n:
            self._stage = (
                torch.empty((n, *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=True),
                torch.empty(n, dtype=self.y.dtype, pin_memory=True),
            )
        if self._copied is not None:
            self._copied.synchronize()  # the previous batch has left the staging buffers
        xs = torch.index_select(self.x, 0, idx, out=self._stage[0][:n])
        ys = torch.index_select(self.y, 0, idx, out=self._stage[1][:n])
        batch = xs.to(self.device, non_blocking=True), ys.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return batch


def step_seconds(steps: Iterable[Callable[[], Any]], device: torch.device) -> list[float]:
    """Seconds each call of ``steps`` takes on ``device``, for throughput ceilings.

    On the CPU: the wall-clock time of each call. On a GPU the calls return before the work is
    done, so each is timed by CUDA events around it while the host queues the next ones ahead,
    as the training loop does: the time is the GPU's, with the launch latency hidden as there.
    """
    if device.type != "cuda":
        seconds = []
        for step in steps:
            t0 = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - t0)
        return seconds
    events = []
    for step in steps:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        events.append((start, end))
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) / 1000.0 for start, end in events]

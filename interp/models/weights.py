"""Weights: where an entry's come from (a checkpoint or torchvision), reading and writing them,
and build_model / load_model. Loading never runs code from a file.

``.safetensors`` files are read with safetensors; ``.pt``/``.pth`` files that users bring
are read with ``torch.load(weights_only=True)``, which refuses pickled code. Every tensor
is checked (names, shapes, finite values) before the model is touched, so a bad file
never leaves a half-loaded model.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError
from .registry import ModelSpec, get_spec


def save_checkpoint(model: nn.Module, path: str | os.PathLike, arch: str, card: Mapping[str, Any] | None = None,
                    half: bool = True) -> Path:
    """Write the model's state dict as safetensors (float16 if ``half``) and its card as JSON.

    Both files are written to a temporary name first and renamed, so a crash never
    leaves a truncated checkpoint behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if half and t.is_floating_point():
            t = t.half()
        tensors[name] = t.contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "interp", "arch": arch})
    os.replace(tmp, path)
    if card is not None:
        write_card(path.with_suffix(".json"), card)
    return path


def write_card(path: str | os.PathLike, card: Mapping[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_compact_number_lists(json.dumps(card, indent=1, default=str)) + "\n")
    os.replace(tmp, path)


def _compact_number_lists(text: str) -> str:
    """Put lists of numbers (per-step losses, confusion-matrix rows) on one line each."""
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


def read_card(path: str | os.PathLike) -> dict[str, Any] | None:
    """The model card beside a checkpoint (``<name>.json``), or None if there is none."""
    path = Path(path)
    card = path if path.suffix == ".json" else path.with_suffix(".json")
    if not card.is_file():
        return None
    try:
        return json.loads(card.read_text())
    except (OSError, ValueError):
        return None


# Larger than the weights of any image classifier one explains on one machine (ViT-H/14 in
# float32 is 2.5 GB); keeps a wrong file from being read into memory.
MAX_WEIGHTS_BYTES = 4 * 1024 ** 3


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint file, without unpickling anything.

    Raises:
        CheckpointError: missing, empty, larger than MAX_WEIGHTS_BYTES, truncated or not a
            checkpoint; a pickle that holds anything but tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes)")
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{path} is {size / 1024 ** 3:.1f} GB, larger than the {MAX_WEIGHTS_BYTES / 1024 ** 3:.0f} GB "
                              "any image classifier's weights take; is it the right file?")
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        return _read_torch(path), {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: it is truncated, "
                              f"damaged or another kind of file ({exc})") from exc


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save's zip format, or a bare pickle
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: neither torch.save's format nor a pickle")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} contains pickled objects other than tensors (possibly code); "
                              "it was not loaded. Save a plain state_dict or use safetensors.") from exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: truncated or damaged ({exc})") from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return dict(obj)


def load_weights(model: nn.Module, path: str | os.PathLike, arch: str | None = None) -> nn.Module:
    """Load a checkpoint into ``model`` in place, all or nothing.

    Raises:
        CheckpointError: the file was written for another architecture, keys are missing
            or unexpected, shapes differ, or a value is NaN/inf. The model is unchanged.
    """
    tensors, metadata = read_state_dict(path)
    if arch and metadata.get("arch") and metadata["arch"] != arch:
        raise CheckpointError(f"{path} holds weights of a {metadata['arch']!r} model, not {arch!r}")
    tensors = {k.removeprefix("module."): v for k, v in tensors.items()}  # DataParallel checkpoints
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit {arch or type(model).__name__}: "
            + (f"missing keys {_few(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected keys {_few(unexpected)}" if unexpected else "")
            + ". Is it a checkpoint of another architecture?"
        )
    converted = {}
    for name, target in expected.items():
        value = tensors[name]
        if value.shape != target.shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(value.shape)}, the model expects "
                                  f"{tuple(target.shape)} (another architecture or number of classes?)")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: {name} contains NaN or infinite values (a diverged training run?)")
        converted[name] = value.to(dtype=target.dtype)
    model.load_state_dict(converted, strict=True)
    return model


def _few(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# ---------------------------------------------------------------------------------------------
# Where an entry's weights come from


# The file names of torchvision's ImageNet weights in the torch cache (hub/checkpoints/), so that
# the registry can tell whether they are there without importing torchvision (about two seconds);
# a test compares them with torchvision's own weights metadata.
TORCHVISION_FILES = {"resnet18": "resnet18-f37072fd.pth"}


def torchvision_weights_file(arch: str) -> Path:
    """Where torchvision keeps the default ImageNet weights of ``arch`` once downloaded."""
    import torch.hub

    if arch in TORCHVISION_FILES:
        filename = TORCHVISION_FILES[arch]
    else:
        from .torchvision_names import torchvision_weights

        filename = torchvision_weights(arch).url.rsplit("/", 1)[1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def has_weights(spec: ModelSpec) -> bool:
    """The entry can be loaded here without a download: a checkpoint is present, or torchvision's
    weights are in the torch cache."""
    if spec.checkpoint is not None:
        return True
    if spec.weights_from_torchvision:
        return torchvision_weights_file(spec.arch).is_file()
    return spec.builder is not None  # a user's model given as a module brings its own


def weights_status(spec: ModelSpec) -> str:
    """Where the entry's weights stand, in a few words: checkpoint, torchvision, or none yet."""
    if spec.weights_from_torchvision and spec.weights_file is None:
        return "torchvision (cached)" if has_weights(spec) else "torchvision (not downloaded)"
    if spec.builder is not None:
        return "your weights file" if spec.weights_file else "your model's own"
    if spec.checkpoint:
        return "checkpoint" if spec.ships else "checkpoint (trained here)"
    return "not trained"


def weights_command(spec: ModelSpec) -> str:
    """The command that gets the entry's weights ('' when they are here)."""
    if has_weights(spec):
        return ""
    if spec.weights_from_torchvision:
        return f"python -m interp fetch {spec.name}"
    return f"python -m interp train {spec.name}"


def torchvision_state_dict(arch: str = "resnet18") -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights of ``arch``, downloaded to the torch cache on first use.

    Raises:
        CheckpointError: when the weights are neither cached nor downloadable (offline).
    """
    from torchvision import models as tvm

    weights = tvm.get_model_weights(arch).DEFAULT
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, hash mismatch
        raise CheckpointError(
            f"could not download torchvision's ImageNet {arch} weights from {weights.url} ({exc}). "
            "Connect to the internet once (they are cached in ~/.cache/torch), or pass a local "
            "file with --checkpoint / load_model(name, checkpoint=PATH)."
        ) from exc


def _built(spec: ModelSpec) -> nn.Module:
    """spec.build(), where a user's factory that fails or returns something else is a clear error."""
    try:
        model = spec.build()
    except Exception as exc:
        if spec.builder is None:
            raise
        raise CheckpointError(f"{spec.name}: its factory failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{spec.name}: its factory returned a {type(model).__name__}, not an nn.Module")
    return model


def build_model(name: str) -> nn.Module:
    """A fresh, untrained model of a registry entry (never downloads anything)."""
    return get_spec(name).build()


def load_model(name: str, checkpoint: str | os.PathLike | None = None,
               device: str | torch.device | None = None) -> nn.Module:
    """A registry entry with trained weights, in eval mode.

    Args:
        name: registry name (see list_models()).
        checkpoint: a weights file (.safetensors, or .pt/.pth state_dict) for that entry's
            architecture; by default the entry's own checkpoint, or for ImageNet entries
            torchvision's weights (downloaded to the torch cache on first use).
        device: where the model lives (cpu, cuda, cuda:N, mps). None keeps it on the CPU, as
            before devices existed; callers that want a GPU when there is one pass
            ``interp.hardware.resolve_device()``.

    Raises:
        UnknownModelError: unknown name.
        CheckpointError: no weights for the entry, or a file that does not fit it.
        DeviceError: a device that is unknown or that this machine lacks.
    """
    from ..hardware import resolve_device

    target = None if device is None else resolve_device(device)  # checked before any work
    spec = get_spec(name)
    model = _built(spec)
    arch = None if spec.builder is not None else spec.arch  # a user's file need not say what it holds
    if checkpoint is not None:
        load_weights(model, checkpoint, arch)
    elif spec.checkpoint is not None:
        load_weights(model, spec.checkpoint, arch)
    elif spec.weights_from_torchvision:
        model.load_state_dict(torchvision_state_dict(spec.arch))
    elif spec.builder is not None:
        pass  # a user's model given as a module comes with its weights
    else:
        raise CheckpointError(
            f"{name} has no trained weights yet ({spec.checkpoint_path} does not exist). "
            f"Train it with: python -m interp train {name}"
        )
    return (model if target is None else model.to(target)).eval()

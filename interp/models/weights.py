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

from ..errors import CheckpointError, ParameterError
from ..paths import HOME_ENV
from .registry import ModelSpec, get_spec

# Every file written to checkpoints/ stays under this size (the repository's limit is 50 MB a file).
MAX_FILE_BYTES = 47 * 1024**2
# A float weight matrix with at least this many elements is quantised where the float16 model
# would not fit in one file: AlexNet's fc6 and fc7 hold 94% of its 58 M parameters.
QUANTIZE_MIN_ELEMENTS = 1 << 20
QUANT_SUFFIX, SCALE_SUFFIX = ".qint8", ".qscale"
# Where even int8 rows leave the model over one file (AlexNet: 62 MB), the large matrices are stored
# in int4 with one scale per INT4_GROUP consecutive values of a row: 38 MB, one file. Measured on the
# shipped AlexNets' validation sets, int4 groups of 64 change accuracy by at most a few hundredths
# of a point against int8 rows (docs/models.md, "How the big weights are stored").
INT4_GROUP = 64
QUANT4_SUFFIX, SCALE4_SUFFIX = ".qint4", ".q4scale"


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantisation with one scale per row (output unit) of a 2-D weight.

    Returns:
        (int8 values, float32 scales) with weight ~= values * scales[:, None].
    """
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    return torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


def dequantize_rows(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight of quantize_rows' (values, scales)."""
    return values.float() * scale.float()[:, None]


def quantize_groups(weight: torch.Tensor, group: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int4 quantisation of a 2-D weight with one scale per ``group`` consecutive values
    of a row (default INT4_GROUP), packed two values a byte.

    A row's values in [-8, 7] are stored as value + 8, the even column in the low nibble.

    Returns:
        (uint8 rows x cols/2 packed values, float32 rows x cols/group scales).

    Raises:
        ParameterError: not 2-D, or the row length is not a multiple of ``group`` (and of 2).
    """
    group = group or INT4_GROUP
    w = weight.detach().float()
    if w.dim() != 2 or w.shape[1] % group or group % 2:
        raise ParameterError(
            f"int4 groups of {group} need a 2-D weight with rows a multiple of it, got {tuple(w.shape)}"
        )
    rows, cols = w.shape
    grouped = w.reshape(rows, cols // group, group)
    scale = grouped.abs().amax(dim=2).clamp_min(1e-12) / 7.0
    values = torch.round(grouped / scale[..., None]).clamp_(-8, 7).reshape(rows, cols).to(torch.int16) + 8
    packed = values[:, 0::2] | (values[:, 1::2] << 4)
    return packed.to(torch.uint8), scale


def dequantize_groups(packed: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight of quantize_groups' (packed values, scales)."""
    rows, groups = scale.shape
    # Unpacked straight into one float buffer and scaled in place: 2.5x faster than stacking the
    # nibbles and converting (0.12 s against 0.30 s for AlexNet's fc6 on two cores).
    out = torch.empty(rows, packed.shape[1], 2, dtype=torch.float32)
    out[..., 0] = packed & 0x0F
    out[..., 1] = packed >> 4
    grouped = out.view(rows, groups, -1)
    grouped.sub_(8.0).mul_(scale.float()[..., None])
    return out.view(rows, -1)


# The quantised forms, in the order stored_tensors tries them: name, suffix of the stored values,
# suffix of their scales, dequantise, and the description save_checkpoint writes in the metadata.
_FORMS = (
    ("int8", QUANT_SUFFIX, SCALE_SUFFIX, dequantize_rows, "int8 per row: NAME.qint8 * NAME.qscale[:, None]"),
    (
        "int4",
        QUANT4_SUFFIX,
        SCALE4_SUFFIX,
        dequantize_groups,
        "int4 in groups along each row, two a byte (low nibble first, stored +8): NAME.qint4, scales NAME.q4scale",
    ),
)


def _nbytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def stored_tensors(state: Mapping[str, torch.Tensor], half: bool = True) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint file holds for ``state``, in the first form that fits one file of
    MAX_FILE_BYTES: float16 (where ``half``); then the large weight matrices as int8 rows
    (``NAME.qint8`` with ``NAME.qscale``); then those whose rows split into INT4_GROUP values as
    int4 groups (``NAME.qint4`` with ``NAME.q4scale``). What still does not fit is sharded."""
    tensors = {}
    for name, t in state.items():
        t = t.detach().cpu()
        tensors[name] = (t.half() if half and t.is_floating_point() else t).contiguous()
    if _nbytes(tensors) <= MAX_FILE_BYTES:
        return tensors
    large = [
        name
        for name, t in tensors.items()
        if t.is_floating_point() and t.dim() == 2 and t.numel() >= QUANTIZE_MIN_ELEMENTS
    ]
    int8 = {k: v for k, v in tensors.items() if k not in large}
    for name in large:
        int8[name + QUANT_SUFFIX], int8[name + SCALE_SUFFIX] = quantize_rows(state[name])
    if _nbytes(int8) <= MAX_FILE_BYTES:
        return int8
    int4 = dict(int8)
    for name in large:
        if tensors[name].shape[1] % INT4_GROUP == 0:
            del int4[name + QUANT_SUFFIX], int4[name + SCALE_SUFFIX]
            int4[name + QUANT4_SUFFIX], int4[name + SCALE4_SUFFIX] = quantize_groups(state[name])
    return int4


def restored_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """stored_tensors undone: int8 rows and int4 groups dequantised to float32 under their own names."""
    out = {}
    for name, t in tensors.items():
        if name.endswith(tuple(form[2] for form in _FORMS)):
            continue
        for _, suffix, scale_suffix, dequantize, _ in _FORMS:
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                if base + scale_suffix not in tensors:
                    raise CheckpointError(f"{base} is quantised but its scales ({base}{scale_suffix}) are missing")
                out[base] = dequantize(t, tensors[base + scale_suffix])
                break
        else:
            out[name] = t
    return out


def as_stored(state: Mapping[str, torch.Tensor], half: bool = True) -> dict[str, torch.Tensor]:
    """``state`` as a checkpoint written with save_checkpoint gives it back on loading, in the
    original dtypes: what the model card's accuracy must describe."""
    restored = restored_tensors(stored_tensors(state, half))
    return {k: restored[k].to(v.dtype) for k, v in state.items()}


def index_path(path: str | os.PathLike) -> Path:
    """The index of a checkpoint written in several files: ``NAME.safetensors.index.json``."""
    path = Path(path)
    return path.with_name(path.name + ".index.json")


def _shards(tensors: Mapping[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Tensors grouped into files of at most MAX_FILE_BYTES (largest first, each into the first
    file it fits; a tensor larger than the limit gets a file of its own)."""
    shards: list[dict[str, torch.Tensor]] = []
    sizes: list[int] = []
    for name, t in sorted(tensors.items(), key=lambda kv: -kv[1].numel() * kv[1].element_size()):
        size = t.numel() * t.element_size()
        for i, used in enumerate(sizes):
            if used + size <= MAX_FILE_BYTES:
                shards[i][name], sizes[i] = t, used + size
                break
        else:
            shards.append({name: t})
            sizes.append(size)
    return shards


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, arch: str, card: Mapping[str, Any] | None = None, half: bool = True
) -> Path:
    """Write the model's state dict as safetensors (float16 if ``half``) and its card as JSON.

    A model whose float16 weights exceed MAX_FILE_BYTES has its large weight matrices stored in
    int8 with per-row scales, or in int4 groups where int8 still exceeds it (stored_tensors); if it
    is still too large for one file, it is written
    as ``NAME-00001-of-0000N.safetensors`` files with an index ``NAME.safetensors.index.json`` that
    read_state_dict and load_model accept in place of ``path``. Every file is written to a
    temporary name first and renamed, so a crash never leaves a truncated checkpoint behind.

    Returns:
        The file to load: ``path``, or the index where the weights were sharded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = stored_tensors(model.state_dict(), half)
    metadata = {"format": "interp", "arch": arch}
    used = [form for form in _FORMS if any(k.endswith(form[1]) for k in tensors)]
    if used:
        metadata["quantized"] = "; ".join(form[4] for form in used)
    if any(form[0] == "int4" for form in used):
        metadata["int4_group"] = str(INT4_GROUP)
    shards = _shards(tensors)
    if len(shards) == 1:
        _save_atomic(tensors, path, metadata)
        index_path(path).unlink(missing_ok=True)
        written = path
    else:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            shard_path = path.with_name(f"{path.stem}-{i:05d}-of-{len(shards):05d}{path.suffix}")
            _save_atomic(shard, shard_path, metadata)
            weight_map.update({k: shard_path.name for k in shard})
        written = index_path(path)
        tmp = written.with_name(written.name + ".tmp")
        tmp.write_text(json.dumps({"metadata": metadata, "weight_map": weight_map}, indent=1) + "\n")
        os.replace(tmp, written)
        path.unlink(missing_ok=True)  # a single file from an earlier run would shadow the shards
    if card is not None:
        write_card(path.with_suffix(".json"), card)
    return written


def _save_atomic(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file(dict(tensors), str(tmp), metadata=dict(metadata))
    os.replace(tmp, path)


def write_card(path: str | os.PathLike, card: Mapping[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_compact_number_lists(json.dumps(card, indent=1, default=str)) + "\n")
    os.replace(tmp, path)


def _compact_number_lists(text: str) -> str:
    """Put lists of numbers (per-step losses, confusion-matrix rows) on one line each."""
    return re.sub(
        r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text
    )


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
MAX_WEIGHTS_BYTES = 4 * 1024**3


TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")  # torch.save files, read without unpickling code


def _checkpoint_file(path: str | os.PathLike) -> Path:
    """The file to read for ``path``: itself, else its sharded index (NAME.safetensors.index.json).

    Raises:
        CheckpointError: neither exists.
    """
    path = Path(path)
    if not path.is_file() and index_path(path).is_file():
        return index_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    return path


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint file, without unpickling anything.

    Raises:
        CheckpointError: missing, empty, larger than MAX_WEIGHTS_BYTES, truncated or not a
            checkpoint; a pickle that holds anything but tensors and plain containers.
    """
    path = _checkpoint_file(path)
    if path.name.endswith(".index.json"):
        return _read_sharded(path)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes)")
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(
            f"{path} is {size / 1024**3:.1f} GB, larger than the {MAX_WEIGHTS_BYTES / 1024**3:.0f} GB "
            "any image classifier's weights take; is it the right file?"
        )
    if path.suffix in TORCH_SUFFIXES:
        return _read_torch(path), {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint: it is truncated, damaged or another kind of file ({exc})"
        ) from exc
    return restored_tensors(tensors), metadata


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata a checkpoint carries (architecture, how it is stored), from the file's header
    alone: no tensor is read. A sharded checkpoint's comes from its index; a torch pickle has none.

    Raises:
        CheckpointError: no such file, or not a readable safetensors header or index.
    """
    path = _checkpoint_file(path)
    if path.suffix in TORCH_SUFFIXES:
        return {}
    try:
        if path.name.endswith(".index.json"):
            return dict(json.loads(path.read_text()).get("metadata") or {})
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{path} has no readable checkpoint header ({exc})") from exc


def _read_sharded(index: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a checkpoint written in several files, through its index."""
    try:
        spec = json.loads(index.read_text())
        weight_map = dict(spec["weight_map"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index} is not a readable checkpoint index ({exc})") from exc
    stored: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index.parent / shard
        if Path(shard).name != shard or not shard_path.is_file():
            raise CheckpointError(
                f"{index} names {shard}, which is not beside it: copy every "
                f"{index.name.removesuffix('.safetensors.index.json')}-*.safetensors file with it"
            )
        from safetensors import safe_open

        try:
            with safe_open(str(shard_path), framework="pt") as f:
                metadata = f.metadata() or metadata
                stored.update({k: f.get_tensor(k) for k in f.keys()})
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{shard_path} is not a readable safetensors checkpoint: it is truncated, "
                f"damaged or another kind of file ({exc})"
            ) from exc
    missing = sorted(set(weight_map) - set(stored))
    if missing:
        raise CheckpointError(f"{index} lists tensors its files lack: {_few(missing)}")
    return restored_tensors(stored), metadata


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save's zip format, or a bare pickle
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: neither torch.save's format nor a pickle")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} contains pickled objects other than tensors (possibly code); "
            "it was not loaded. Save a plain state_dict or use safetensors."
        ) from exc
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
    return _load_tensors(model, tensors, metadata, path, arch)


def _load_tensors(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str],
    path: str | os.PathLike,
    arch: str | None,
) -> nn.Module:
    """:func:`load_weights` of the tensors and metadata already read from ``path``."""
    if arch and metadata.get("arch") and metadata["arch"] != arch:
        raise CheckpointError(f"{path} holds weights of a {metadata['arch']!r} model, not {arch!r}")
    tensors = {k.removeprefix("module."): v for k, v in tensors.items()}  # DataParallel checkpoints
    expected = model.state_dict()
    misfit = _misfit(expected, tensors)
    if misfit:
        raise CheckpointError(f"{path} does not fit {arch or type(model).__name__}: {misfit}")
    converted = {}
    for name, target in expected.items():
        value = tensors[name]
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: {name} contains NaN or infinite values (a diverged training run?)")
        converted[name] = value.to(dtype=target.dtype)
    model.load_state_dict(converted, strict=True)
    return model


def _misfit(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """Everything that keeps ``found`` from loading into a model of state dict ``expected``, with
    what to do about it: each tensor of another shape (the model's and the file's), the keys
    missing and the keys unexpected; '' where it fits."""
    shapes = [
        f"{k} has shape {tuple(found[k].shape)}, the model expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    parts = []
    if shapes:
        parts.append(
            f"{len(shapes)} tensor{'s' if len(shapes) > 1 else ''} of another shape ({_few(shapes, 10, '; ')})"
        )
    if missing:
        parts.append(f"missing keys {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_few(unexpected)}")
    if not parts:
        return ""
    if missing or unexpected:
        advice = "Is it a checkpoint of another architecture? Use the weights file written for this model."
    else:
        advice = (
            "Is it a checkpoint of another number of classes, or of another variant of the architecture? "
            "Build the model to match it (interp.register_model with the checkpoint's classes), or use "
            "the weights file written for this model."
        )
    return "; ".join(parts) + ". " + advice


def _few(names: list[str], n: int = 5, sep: str = ", ") -> str:
    shown = sep.join(names[:n])
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


def _sized_to(spec: ModelSpec, tensors: Mapping[str, torch.Tensor]) -> ModelSpec:
    """The spec whose model a checkpoint's tensors load into: for ``torchvision/<builder>``, with
    the head the checkpoint has; any other spec as it is."""
    if not spec.name.startswith("torchvision/"):
        return spec  # torchvision is imported only for its own names
    from .torchvision_names import sized_to_checkpoint

    return sized_to_checkpoint(spec, tensors)


def checkpoint_spec(name: str, checkpoint: str | os.PathLike | None = None) -> ModelSpec:
    """The spec of what ``load_model(name, checkpoint)`` returns: the entry's own, except for a
    ``torchvision/<builder>`` checkpoint with a head of another size than ImageNet's, whose classes
    are then "class 0", "class 1", ... (name them with interp.register_model).

    Raises:
        UnknownModelError: unknown name. CheckpointError: a file that cannot be read.
    """
    spec = get_spec(name)
    if checkpoint is None or not spec.name.startswith("torchvision/"):
        return spec
    return _sized_to(spec, read_state_dict(checkpoint)[0])


def build_model(name: str) -> nn.Module:
    """A fresh, untrained model of a registry entry (never downloads anything)."""
    return get_spec(name).build()


def load_model(
    name: str, checkpoint: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> nn.Module:
    """A registry entry with trained weights, in eval mode.

    Args:
        name: registry name (see list_models()).
        checkpoint: a weights file (.safetensors, or .pt/.pth state_dict) for that entry's
            architecture; by default the entry's own checkpoint, or for ImageNet entries
            torchvision's weights (downloaded to the torch cache on first use). For
            ``torchvision/<builder>`` the head is sized to the file's (a fine-tuned checkpoint of
            any number of classes; :func:`checkpoint_spec` gives the spec that goes with it).
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
    if checkpoint is not None:  # read once: it may decide the model's head, then loads into it
        tensors, metadata = read_state_dict(checkpoint)
        spec = _sized_to(spec, tensors)
    model = _built(spec)
    arch = None if spec.builder is not None else spec.arch  # a user's file need not say what it holds
    if checkpoint is not None:
        _load_tensors(model, tensors, metadata, checkpoint, arch)
    elif spec.checkpoint is not None:
        load_weights(model, spec.checkpoint, arch)
    elif spec.weights_from_torchvision:
        model.load_state_dict(torchvision_state_dict(spec.arch))
    elif spec.builder is not None:
        pass  # a user's model given as a module comes with its weights
    else:
        from . import spec as spec_module

        looked = ", ".join(str(d) for d in (spec_module.CHECKPOINT_DIR, *spec_module.CHECKPOINT_SEARCH))
        raise CheckpointError(
            f"{name} has no trained weights here (looked in {looked}). Train it with: "
            f"python -m interp train {name} (it writes to {spec_module.CHECKPOINT_DIR}), or point ${HOME_ENV} at a "
            f"folder whose checkpoints/ holds {name}.safetensors"
        )
    return (model if target is None else model.to(target)).eval()

"""Bring a model to the dashboard: an architecture (one of the registry's, or torchvision's by
name), a weights file, and class names; the model then appears in this browser session's model
pickers, and every page works on it.

The weights are read as data only (safetensors, or ``torch.load(weights_only=True)``), checked
against the architecture before the model is offered, and kept for this server process; other
browser sessions do not see the model.
"""

from __future__ import annotations

import hashlib
import tempfile
from functools import partial
from pathlib import Path

import streamlit as st

import interp
from interp.errors import CheckpointError, InterpError
from interp.models import ARCHITECTURES, REGISTRY, register_model
from interp.models.registry import unregister

MAX_UPLOAD_MB = 500  # the dashboard holds models in memory: bigger ones belong in a models file
SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_FILES = Path(tempfile.mkdtemp(prefix="interp-brought-"))  # this process's uploaded weights
SESSION_KEY = "brought_models"
_BROUGHT: set[str] = set()  # every model brought in this process; each session sees its own only


def architectures() -> list[str]:
    """What can be brought: the registry's architectures (not torchvision's ImageNet ResNet-18 twice)."""
    return [a for a in ARCHITECTURES if a != "resnet18_transfer"]


def parse_classes(text: str) -> list[str] | int:
    """Class names, one per line or separated by commas; or a number of classes."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    names = [n.strip() for n in text.replace(",", "\n").splitlines() if n.strip()]
    if not names:
        raise InterpError("give the class names (one per line, or separated by commas), or their number")
    return names


def bring_model(
    label: str, arch: str, weights: bytes, filename: str, classes: list[str] | int, input_size: int | None = None
) -> str:
    """Register a brought model and check that it loads; return its registry name.

    Args:
        arch: a registry architecture, or ``torchvision/<builder>``.
        weights, filename: the uploaded file's bytes and name (its suffix says how to read it).

    Raises:
        InterpError: too large, an unknown kind of file, or weights that do not fit (the message
            lists the keys or shapes that differ; the model is not offered).
    """
    if len(weights) > MAX_UPLOAD_MB * 1024**2:
        raise CheckpointError(
            f"{filename} is {len(weights) / 1024**2:,.0f} MB, above the dashboard's cap of "
            f"{MAX_UPLOAD_MB} MB; name the model in a models file instead "
            "(streamlit run app.py -- --models FILE)"
        )
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise CheckpointError(f"{filename}: a weights file is .safetensors, or a .pt/.pth state_dict")
    model, size, mean, std = _model_of(arch, classes, input_size)  # an unknown architecture: refused first
    digest = hashlib.sha1(arch.encode() + repr(classes).encode() + weights).hexdigest()[:8]
    name = f"{label.strip() or arch.split('/')[-1]} [{digest}]"
    path = _FILES / f"{digest}{suffix}"
    path.write_bytes(weights)
    register_model(
        name,
        model,
        classes=classes,
        input_size=size,
        mean=mean,
        std=std,
        weights=path,
        description=f"brought to the dashboard: {arch} with {filename}",
    )
    try:
        interp.load_model(name)  # all or nothing: a file that does not fit is refused here
    except InterpError as exc:
        unregister(name)
        path.unlink(missing_ok=True)
        raise type(exc)(str(exc).replace(str(path), filename)) from None  # the user's name for the file
    _BROUGHT.add(name)
    return name


def _model_of(arch: str, classes: list[str] | int, input_size: int | None):
    """The factory (or torchvision name), input size and normalisation of a brought model."""
    if arch.startswith("torchvision/"):
        spec = interp.get_spec(arch)
        return arch, input_size or spec.input_size, spec.mean, spec.std
    if arch not in ARCHITECTURES:
        raise InterpError(f"unknown architecture {arch!r}; choose one of {', '.join(architectures())}")
    like = next(s for s in REGISTRY.values() if s.arch == arch)  # its switches, size and normalisation
    count = classes if isinstance(classes, int) else len(classes)
    return partial(ARCHITECTURES[arch], count, **like.arch_kwargs), input_size or like.input_size, like.mean, like.std


def brought_here() -> list[str]:
    """The models this browser session brought (still registered)."""
    return [n for n in st.session_state.get(SESSION_KEY, []) if n in REGISTRY]


def hidden_elsewhere() -> set[str]:
    """Models brought to the dashboard by any session: each session's pickers show only its own."""
    return _BROUGHT


def bring_sidebar() -> None:
    """The "Bring a model" control in the sidebar."""
    with st.sidebar.expander("Bring a model"):
        arch = st.selectbox("Architecture", [*architectures(), "torchvision/..."], key="bring_arch")
        if arch == "torchvision/...":
            arch = "torchvision/" + st.text_input("torchvision builder", "resnet50", key="bring_tv").strip()
        upload = st.file_uploader(
            "Weights",
            type=[s.lstrip(".") for s in SUFFIXES],
            key="bring_weights",
            help=f".safetensors, or a .pt/.pth state_dict; at most {MAX_UPLOAD_MB} MB. "
            "Read as data only: nothing in the file runs.",
        )
        classes = st.text_area("Class names", key="bring_classes", help="one per line, or a number of classes")
        label = st.text_input("Name", key="bring_label", placeholder="my model")
        # The button is disabled without a file; the test of upload is for the type checker.
        if (
            st.button("Add the model", key="bring_add", disabled=upload is None or not classes.strip())
            and upload is not None
        ):
            try:
                name = bring_model(label, arch, upload.getvalue(), upload.name, parse_classes(classes))
            except InterpError as exc:
                st.error(f"This model cannot be used: {exc}")
                return
            st.session_state[SESSION_KEY] = [*brought_here(), name]
            st.session_state["model"] = name  # the pickers open on it
            st.success(f"{name} is in the model pickers of this session.")

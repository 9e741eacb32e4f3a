"""interp: look inside trained image CNNs.

The public surface: the registry (list_models, get_spec, build_model, load_model) and your own
models (register_model, load_models_files) and methods (register_method), images
(load_image, preprocess), attribution (explain, Explanation), the device (resolve_device) and
interp's error types; whole datasets (explain_dataset, read_results) and report cards (report_card,
read_report_card): imported on first use.
"""

__version__ = "0.15.0"  # also the wheel's version (pyproject.toml reads it); CHANGELOG.md says what changed

from .data import load_image, preprocess
from .errors import CheckpointError, DataError, DeviceError, ImageError, InterpError, LayerError, UnknownModelError
from .hardware import resolve_device
from .methods import CamNotApplicableError, Explanation, MethodError, TargetError, explain, register_method
from .models import ModelSpec, build_model, get_spec, list_models, load_model, load_models_files, register_model

__all__ = [
    "__version__",
    "CamNotApplicableError",
    "CheckpointError",
    "DataError",
    "DeviceError",
    "Explanation",
    "ImageError",
    "InterpError",
    "LayerError",
    "MethodError",
    "ModelSpec",
    "TargetError",
    "UnknownModelError",
    "build_model",
    "explain",
    "explain_dataset",
    "report_card",
    "read_report_card",
    "get_spec",
    "list_models",
    "load_image",
    "load_model",
    "load_models_files",
    "preprocess",
    "read_results",
    "register_method",
    "register_model",
    "resolve_device",
]
# Whole-dataset runs bring pyarrow: imported when first used, so `import interp` stays as quick as before.
_LAZY = {
    "explain_dataset": "whole_dataset.run",
    "read_results": "whole_dataset.store",
    "report_card": "report",
    "read_report_card": "report",
}


# Modules renamed when figures got one home; the old names keep working for a while.
_MOVED = {"viz": "figures", "charts": "figures", "charts_trust": "figures"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"interp.{name} is now interp.{_MOVED[name]}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(f".{_MOVED[name]}", __name__)
    raise AttributeError(f"module 'interp' has no attribute {name!r}")

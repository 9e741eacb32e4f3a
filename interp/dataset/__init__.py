"""The old name of :mod:`interp.whole_dataset` (whole-dataset runs), kept working for a while:
its names are reached here with a DeprecationWarning."""

import importlib
import warnings


def __getattr__(name: str):
    module = importlib.import_module("interp.whole_dataset")
    if name not in module.__all__:
        raise AttributeError(f"module 'interp.dataset' has no attribute {name!r}")
    warnings.warn("interp.dataset is now interp.whole_dataset", DeprecationWarning, stacklevel=2)
    return getattr(module, name)

"""interp's own exceptions: each message says what is wrong and what to do about it."""


class InterpError(Exception):
    """Base class of every error a user can cause and fix."""


class ImageError(InterpError, ValueError):
    """An input that is not a usable image (unreadable, truncated, too large, ...)."""


class CheckpointError(InterpError, ValueError):
    """A weights file that cannot be loaded into the requested model."""


class UnknownModelError(InterpError, KeyError):
    """A registry name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(InterpError, FileNotFoundError):
    """A dataset that is missing or incomplete under the data root."""


class LayerError(InterpError, ValueError):
    """A layer name that does not exist in a model or does not fit the requested method."""


class TargetError(InterpError, ValueError):
    """A target class index that the model does not have."""


class MethodError(InterpError, ValueError):
    """An unknown attribution method, or an option it does not take."""


class ModelOutputError(InterpError, ValueError):
    """A model whose output is not N x classes logits, or is not finite."""


class CamNotApplicableError(LayerError):
    """CAM asked of a model whose head is not global average pooling -> one linear layer."""


class DeviceError(InterpError, ValueError):
    """A device name that is unknown, or a device this machine does not have (e.g. cuda without a GPU)."""


class ParameterError(InterpError, ValueError):
    """An argument value a computation cannot take: a size, kernel, stride, padding or boundary
    (interp.basics, interp.scratch), a mode or option name, arrays of mismatched shapes."""


class InternalError(InterpError, RuntimeError):
    """A broken promise inside interp (a bug, not a misuse): the message says which."""

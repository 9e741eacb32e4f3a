"""Output sizes and receptive fields of a stack of conv and pooling layers, the quantities that
solve for a missing one (the kernel that maps 512 to 504, the padding that keeps the size),
and the same table for a registry model, read from its per-layer table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ParameterError


def _positive(**values: int) -> None:
    for name, v in values.items():
        if int(v) != v or v < 1:
            raise ParameterError(f"{name} must be a whole number of at least 1, not {v}")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output side of a conv or pooling layer: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

    Raises:
        ParameterError: a non-positive size, kernel, stride or dilation, a negative padding, or a
            (dilated) kernel larger than the padded input.
    """
    _positive(size=size, kernel=kernel, stride=stride, dilation=dilation)
    if int(padding) != padding or padding < 0:
        raise ParameterError(f"padding must be a whole number of at least 0, not {padding}")
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * padding:
        raise ParameterError(f"the kernel spans {span} pixels but the padded input has only {size + 2 * padding}")
    return (size + 2 * padding - span) // stride + 1


def kernel_size_for(size_in: int, size_out: int, stride: int = 1, padding: int = 0) -> int:
    """The kernel side that maps ``size_in`` to ``size_out``; with stride > 1 several do, and this
    is the largest (it leaves no input row unused): size_in + 2 padding - (size_out - 1) stride.

    Raises:
        ParameterError: no kernel of at least 1 gives that output.
    """
    _positive(size_in=size_in, size_out=size_out, stride=stride)
    kernel = size_in + 2 * padding - (size_out - 1) * stride
    if kernel < 1:
        raise ParameterError(
            f"no kernel maps {size_in} to {size_out} with stride {stride} and padding "
            f"{padding}: the output is larger than the padded input allows"
        )
    return kernel


def padding_for(size_in: int, size_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """The smallest zero padding that maps ``size_in`` to ``size_out``.

    Raises:
        ParameterError: no padding does (the output would need to be smaller than padding 0 gives).
    """
    _positive(size_in=size_in, size_out=size_out, kernel=kernel, stride=stride, dilation=dilation)
    span = dilation * (kernel - 1) + 1
    # Smallest p with (size_in + 2p - span) // stride + 1 >= size_out; then check it is not larger.
    need = (size_out - 1) * stride + span - size_in
    p = max(0, -(-need // 2))
    if conv_output_size(size_in, kernel, stride, p, dilation) != size_out:
        raise ParameterError(f"no padding maps {size_in} to {size_out} with a {kernel} kernel and stride {stride}")
    return p


def same_padding(kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """The padding that keeps the size at stride 1 (at stride s: ceil(size / s)), dilation (kernel - 1) / 2.

    Raises:
        ParameterError: an even dilated kernel span, which needs more padding on one side than the other.
    """
    _positive(kernel=kernel, stride=stride, dilation=dilation)
    span = dilation * (kernel - 1)
    if span % 2:
        raise ParameterError(
            f"a kernel of {kernel} (dilation {dilation}) needs {span} pixels of padding in all, "
            "which cannot be split evenly between the two sides: use an odd kernel"
        )
    return span // 2


@dataclass(frozen=True)
class Layer:
    """One conv or pooling layer of a stack."""

    kind: str  # "conv" or "pool": both change sizes and receptive fields the same way
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1


def receptive_fields(size: int, layers: Sequence[Layer]) -> list[dict[str, Any]]:
    """Per layer: its input and output sides, its receptive field on the input image and its
    jump (the input pixels between two neighbouring outputs).

    Raises:
        ParameterError: a layer whose output would be empty (the message names the layer).
    """
    _positive(size=size)
    rows, field, jump = [], 1, 1
    for n, layer in enumerate(layers, start=1):
        try:
            out = conv_output_size(size, layer.kernel, layer.stride, layer.padding, layer.dilation)
        except ParameterError as exc:
            raise ParameterError(f"layer {n} ({layer.kind}): {exc}") from exc
        field += layer.dilation * (layer.kernel - 1) * jump
        jump *= layer.stride
        rows.append(
            {
                "layer": n,
                "type": layer.kind,
                "kernel": layer.kernel,
                "stride": layer.stride,
                "padding": layer.padding,
                "dilation": layer.dilation,
                "input": size,
                "output": out,
                "receptive field": field,
                "jump": jump,
            }
        )
        size = out
    return rows


def _pair(value: Any) -> tuple[int, int] | None:
    """(h, w) from the layer table's '3' or '3x5'; None where the layer has none."""
    if value in ("", None):
        return None
    parts = [int(p) for p in str(value).split("x")]
    return (parts[0], parts[-1])


def model_size_table(spec) -> list[dict[str, Any]]:
    """The registry model's spatial layers (interp.models.spec_layer_table) with the output side
    this module's formula predicts from the previous layer and the receptive field along the
    main path. A layer whose output does not follow from the previous one (a shortcut branch
    such as a ResNet's downsampling conv) is marked off the path and leaves the field unchanged;
    a global pooling layer sees the whole input. Dilation is taken as 1 (the table has none).
    """
    from ..models import spec_layer_table

    rows, _ = spec_layer_table(spec)
    size, field, jump = spec.input_hw, (1, 1), (1, 1)
    table = []
    for r in rows:
        if len(r["output"]) != 3:
            continue  # flattened features: no spatial size any more
        out = tuple(r["output"][1:])
        kernel, stride, padding = _pair(r["kernel"]), _pair(r["stride"]) or (1, 1), _pair(r["padding"]) or (0, 0)
        note = ""
        if kernel is not None:
            predicted = tuple(_predict(size[a], kernel[a], stride[a], padding[a]) for a in (0, 1))
            if predicted == out:
                field = (field[0] + (kernel[0] - 1) * jump[0], field[1] + (kernel[1] - 1) * jump[1])
                jump = (jump[0] * stride[0], jump[1] * stride[1])
                size = out
            else:
                note = "off the main path (its input is not the previous layer's output)"
        else:
            predicted = size
            if out != size:  # adaptive pooling and the like: the formula does not apply
                predicted, field, jump, size = (None, None), spec.input_hw, size, out
                note = "global pooling: sees the whole input" if out == (1, 1) else "resizes"
        table.append(
            {
                "layer": r["layer"],
                "type": r["type"],
                "kernel": r["kernel"],
                "stride": r["stride"],
                "padding": r["padding"],
                "output": "x".join(map(str, out)),
                "predicted": "-" if None in predicted else "x".join(map(str, predicted)),
                "receptive field": _side(field),
                "jump": _side(jump),
                "note": note,
            }
        )
    return table


def _predict(size: int, kernel: int, stride: int, padding: int) -> int | None:
    try:
        return conv_output_size(size, kernel, stride, padding)
    except ParameterError:
        return None


def _side(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"

"""CNN layers from scratch, numpy only: each module has forward (which keeps what its backward
needs) and backward (which takes dL/d(output), stores dL/d(parameters) and returns dL/d(input)).
Shapes as PyTorch's: images N x C x H x W, weights out x in x kh x kw."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ParameterError


class Parameter:
    """A weight array and its gradient (summed over the batch by backward)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = np.asarray(value, dtype=np.float64)
        self.grad = np.zeros_like(self.value)


class Module:
    """A layer: forward(x) -> y, backward(dL/dy) -> dL/dx; parameters() lists its Parameters."""

    def parameters(self) -> list[Parameter]:
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """A view N x C x Ho x Wo x kh x kw of every kernel position (no copy)."""
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def _check_images(x: np.ndarray, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ParameterError(f"{what} takes N x {channels} x H x W images, not shape {x.shape}")


class Conv2d(Module):
    """Cross-correlation of in_channels with out_channels kernels, stride and zero padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        rng = rng or np.random.default_rng(0)
        fan_in = in_channels * kernel * kernel
        # He initialisation: keeps the activations' variance through ReLU layers.
        self.weight = Parameter(rng.normal(0, np.sqrt(2 / fan_in), (out_channels, in_channels, kernel, kernel)))
        self.bias = Parameter(np.zeros(out_channels)) if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_images(x, self.weight.value.shape[1], "Conv2d")
        p = self.padding
        self._padded_shape = (x.shape[0], x.shape[1], x.shape[2] + 2 * p, x.shape[3] + 2 * p)
        kh, kw = self.weight.value.shape[2:]
        self._cols = _windows(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), kh, kw, self.stride)
        y = np.einsum("nchwij,ocij->nohw", self._cols, self.weight.value, optimize=True)
        return y + self.bias.value[:, None, None] if self.bias is not None else y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        w = self.weight.value
        self.weight.grad += np.einsum("nchwij,nohw->ocij", self._cols, grad, optimize=True)
        if self.bias is not None:
            self.bias.grad += grad.sum(axis=(0, 2, 3))
        dx = np.zeros(self._padded_shape)
        s, (ho, wo) = self.stride, grad.shape[2:]
        for i in range(w.shape[2]):  # each kernel offset sends the gradient back to one strided grid
            for j in range(w.shape[3]):
                dx[:, :, i : i + s * ho : s, j : j + s * wo : s] += np.einsum("nohw,oc->nchw", grad, w[:, :, i, j])
        p = self.padding
        return dx[:, :, p : dx.shape[2] - p, p : dx.shape[3] - p]


class MaxPool2d(Module):
    """The largest value of each kernel x kernel window (stride: default the kernel)."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        self.kernel, self.stride = kernel, stride or kernel

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = self.kernel
        windows = _windows(x, k, k, self.stride)
        flat = windows.reshape(*windows.shape[:4], k * k)
        self._shape, self._argmax = x.shape, flat.argmax(axis=-1)
        return np.take_along_axis(flat, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = np.zeros(self._shape)
        k, s, (ho, wo) = self.kernel, self.stride, grad.shape[2:]
        for i in range(k):  # only the window's maximum passed its value on, so only it gets gradient
            for j in range(k):
                dx[:, :, i : i + s * ho : s, j : j + s * wo : s] += grad * (self._argmax == i * k + j)
        return dx


class ReLU(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._active = x > 0
        return x * self._active

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self._active


class Flatten(Module):
    """N x C x H x W -> N x (C H W), row-major as PyTorch's."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(self._shape)


class Linear(Module):
    """y = x W^T + b."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, rng: np.random.Generator | None = None
    ) -> None:
        rng = rng or np.random.default_rng(0)
        self.weight = Parameter(rng.normal(0, np.sqrt(1 / in_features), (out_features, in_features)))
        self.bias = Parameter(np.zeros(out_features)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.weight.value.shape[1]:
            raise ParameterError(f"Linear takes N x {self.weight.value.shape[1]} features, not shape {x.shape}")
        self._x = x
        y = x @ self.weight.value.T
        return y + self.bias.value if self.bias is not None else y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.weight.grad += grad.T @ self._x
        if self.bias is not None:
            self.bias.grad += grad.sum(axis=0)
        return grad @ self.weight.value


class SoftmaxCrossEntropy:
    """The mean over the batch of -log softmax(logits)[label]; backward gives dL/d(logits)."""

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> float:
        shifted = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self._p, self._labels = np.exp(log_p), np.asarray(labels)
        return float(-log_p[np.arange(len(labels)), self._labels].mean())

    def backward(self) -> np.ndarray:
        grad = self._p.copy()
        grad[np.arange(len(self._labels)), self._labels] -= 1
        return grad / len(self._labels)


class SGD:
    """Stochastic gradient descent with momentum, as torch.optim.SGD: v = momentum v + g; w -= lr v."""

    def __init__(self, parameters: Sequence[Parameter], lr: float, momentum: float = 0.0) -> None:
        if lr <= 0 or not 0 <= momentum < 1:
            raise ParameterError(f"SGD needs lr > 0 and 0 <= momentum < 1, not lr={lr}, momentum={momentum}")
        self.parameters, self.lr, self.momentum = list(parameters), lr, momentum
        self._velocity = [np.zeros_like(p.value) for p in self.parameters]

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad[...] = 0

    def step(self) -> None:
        for p, v in zip(self.parameters, self._velocity):
            v *= self.momentum
            v += p.grad
            p.value -= self.lr * v


class ConvNet(Module):
    """A network built from a list of modules, run in order; backward runs them in reverse."""

    def __init__(self, modules: Sequence[Module]) -> None:
        self.modules = list(modules)

    def parameters(self) -> list[Parameter]:
        return [p for m in self.modules for p in m.parameters()]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for m in reversed(self.modules):
            grad = m.backward(grad)
        return grad

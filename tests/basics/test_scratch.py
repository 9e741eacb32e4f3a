"""interp.scratch against PyTorch in float64 (every layer's forward and backward, softmax
cross-entropy, SGD with momentum), finite differences for a whole ConvNet, and the overfitting
run, its record and its command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interp import scratch
from interp.__main__ import main
from interp.errors import ParameterError

TOLERANCE = 1e-8


def _compare(ours: scratch.Module, theirs: nn.Module, x: np.ndarray, pairs: list[tuple[str, str]]) -> None:
    """Same forward, same dL/dx and dL/d(parameters) for a random upstream gradient."""
    theirs = theirs.double()
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    y = ours.forward(x)
    assert y.shape == tuple(yt.shape) and np.abs(y - yt.detach().numpy()).max() < TOLERANCE
    g = np.random.default_rng(9).normal(size=y.shape)
    yt.backward(torch.from_numpy(g))
    assert xt.grad is not None
    assert np.abs(ours.backward(g) - xt.grad.numpy()).max() < TOLERANCE
    for mine, name in pairs:
        assert np.abs(getattr(ours, mine).grad - getattr(theirs, name).grad.numpy()).max() < TOLERANCE, mine


@pytest.mark.parametrize("stride, padding, bias", [(1, 0, True), (1, 1, False), (2, 1, True), (3, 2, True)])
def test_conv2d_matches_torch(stride, padding, bias):
    rng = np.random.default_rng(0)
    ours = scratch.Conv2d(3, 4, 3, stride=stride, padding=padding, bias=bias, rng=rng)
    if bias:
        ours.bias.value = rng.normal(size=4)
    theirs = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, bias=bias).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.value))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.bias.value))
    _compare(ours, theirs, rng.normal(size=(2, 3, 9, 8)), [("weight", "weight")] + ([("bias", "bias")] if bias else []))


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2), (2, 1)])
def test_maxpool2d_matches_torch(kernel, stride):
    x = np.random.default_rng(1).normal(size=(2, 3, 9, 8))  # random values: no ties for the maximum
    _compare(scratch.MaxPool2d(kernel, stride), nn.MaxPool2d(kernel, stride), x, [])


def test_relu_and_flatten_match_torch():
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5))
    _compare(scratch.ReLU(), nn.ReLU(), x, [])
    _compare(scratch.Flatten(), nn.Flatten(), x, [])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    rng = np.random.default_rng(3)
    ours = scratch.Linear(7, 4, bias=bias, rng=rng)
    theirs = nn.Linear(7, 4, bias=bias).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.value))
        if bias:
            ours.bias.value = rng.normal(size=4)
            theirs.bias.copy_(torch.from_numpy(ours.bias.value))
    _compare(ours, theirs, rng.normal(size=(5, 7)), [("weight", "weight")] + ([("bias", "bias")] if bias else []))


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(4)
    logits, labels = rng.normal(size=(6, 10)) * 5, rng.integers(0, 10, 6)
    loss_fn = scratch.SoftmaxCrossEntropy()
    lt = torch.from_numpy(logits).requires_grad_(True)
    expected = F.cross_entropy(lt, torch.from_numpy(labels))
    expected.backward()
    assert abs(loss_fn(logits, labels) - expected.item()) < TOLERANCE
    assert np.abs(loss_fn.backward() - lt.grad.numpy()).max() < TOLERANCE
    assert np.isfinite(loss_fn(np.array([[1000.0, -1000.0]]), np.array([1])))  # no overflow


def test_sgd_with_momentum_matches_torch():
    rng = np.random.default_rng(5)
    p = scratch.Parameter(rng.normal(size=(3, 4)))
    pt = torch.from_numpy(p.value.copy()).requires_grad_(True)
    ours, theirs = scratch.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([pt], lr=0.1, momentum=0.9)
    for _ in range(4):
        g = rng.normal(size=(3, 4))
        ours.zero_grad()
        p.grad += g
        pt.grad = torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
    assert np.abs(p.value - pt.detach().numpy()).max() < TOLERANCE
    with pytest.raises(ParameterError, match="momentum"):
        scratch.SGD([p], lr=0.1, momentum=1.0)


def test_convnet_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    net = scratch.ConvNet(
        [
            scratch.Conv2d(2, 3, 3, padding=1, rng=rng),
            scratch.ReLU(),
            scratch.MaxPool2d(2),
            scratch.Conv2d(3, 4, 3, stride=2, padding=1, bias=False, rng=rng),
            scratch.ReLU(),
            scratch.Flatten(),
            scratch.Linear(4 * 2 * 2, 5, rng=rng),
        ]
    )
    x, y = rng.normal(size=(3, 2, 8, 8)), np.array([0, 3, 4])
    loss_fn = scratch.SoftmaxCrossEntropy()

    def loss() -> float:
        return loss_fn(net.forward(x), y)

    loss()
    for p in net.parameters():
        p.grad[...] = 0
    dx = net.backward(loss_fn.backward())
    eps = 1e-6
    for array, grad in [(p.value, p.grad) for p in net.parameters()] + [(x, dx)]:
        for index in map(tuple, rng.integers(0, array.shape, size=(8, array.ndim))):
            keep = array[index]
            array[index] = keep + eps
            up = loss()
            array[index] = keep - eps
            down = loss()
            array[index] = keep
            assert abs((up - down) / (2 * eps) - grad[index]) < 1e-6 * max(1.0, abs(grad[index]))


def test_layers_refuse_the_wrong_shapes():
    with pytest.raises(ParameterError, match="N x 3 x H x W"):
        scratch.Conv2d(3, 4, 3).forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ParameterError, match="N x 7 features"):
        scratch.Linear(7, 2).forward(np.zeros((1, 6)))


def test_the_shipped_record():
    record = scratch.read_record()
    assert record is not None, "checkpoints/scratch_overfit.json ships with the repository"
    assert record["settings"]["images"] == 50 and len(record["epochs"]) == record["settings"]["epochs"]
    assert record["final_accuracy"] == record["epochs"][-1]["accuracy"] >= 0.8
    assert record["epochs"][-1]["loss"] < record["epochs"][0]["loss"]


def test_the_scratch_command_writes_a_record(tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main(["scratch", "--images", "10", "--epochs", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert len(record["epochs"]) == 2 and record["settings"]["images"] == 10
    assert record["architecture"][0].startswith("Conv2d(3, 16, 3")
    assert json.loads(capsys.readouterr().out)["record"] == str(out)

"""The piecewise-linear view against independent computations: dense sampling for the pieces,
torch autograd for the local affine model, each layer's bias for the bias term, and a step
along a direction for linearity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interp import basics, get_spec, load_image, load_model, preprocess
from interp.data import sample_images
from interp.errors import ParameterError


def test_the_example_networks_pieces_by_hand():
    pieces = basics.linear_pieces(basics.EXAMPLE_NETWORK, -4, 4)
    # x < -2: every first-layer unit off, h = 1 - 1; -2 < x < 0: h = 1.5 x + 3; x > 0: h = 6 x + 3.
    assert [(p.start, p.end, p.slope, p.intercept) for p in pieces] == [(-4, -2, 0, 0), (-2, 0, 1.5, 3), (0, 4, 6, 3)]
    assert basics.breakpoints(pieces) == [-2, 0]
    assert basics.mlp_forward(basics.EXAMPLE_NETWORK, [0.0])[0, 0] == 3


def _random_mlp(rng, widths=(1, 6, 5, 1)):
    return [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(widths[:-1], widths[1:])]


@pytest.mark.parametrize("seed", range(5))
def test_pieces_reproduce_the_network_and_change_slope_at_each_breakpoint(seed):
    layers = _random_mlp(np.random.default_rng(seed))
    pieces = basics.linear_pieces(layers, -5, 5)
    xs = np.linspace(-5, 5, 4001)
    h = basics.mlp_forward(layers, xs)[:, 0]
    for p in pieces:
        inside = (xs >= p.start) & (xs <= p.end)
        assert np.allclose(h[inside], p.slope * xs[inside] + p.intercept, atol=1e-9)
    for left, right in zip(pieces[:-1], pieces[1:]):
        assert left.end == right.start and not np.isclose(left.slope, right.slope)
        # a real kink: the slope of h on a fine grid changes there
        eps = 1e-6
        h_at = basics.mlp_forward(layers, [left.end - eps, left.end, left.end + eps])[:, 0]
        assert np.isclose((h_at[1] - h_at[0]) / eps, left.slope, atol=1e-4)
        assert np.isclose((h_at[2] - h_at[1]) / eps, right.slope, atol=1e-4)


def test_local_affine_by_weights_matches_autograd():
    module = basics.example_module()
    for x0 in (-3.0, -1.0, 0.5, 2.5):
        w_np, b_np = basics.mlp_local_affine(basics.EXAMPLE_NETWORK, x0)
        w, b = basics.local_linear(module, np.array([[x0]]))
        x = torch.tensor([[x0]], dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(module(x)[0, 0], x)
        assert np.allclose(w[0], grad.numpy()[0]) and np.allclose(w_np, w.reshape(1, 1))
        assert np.allclose(b_np, b)
        assert np.isclose(w[0, 0] * x0 + b[0], basics.mlp_forward(basics.EXAMPLE_NETWORK, [x0])[0, 0])


def _small_cnn() -> nn.Module:
    """conv -> batch norm (eval, with statistics) -> ReLU -> max-pool -> conv -> ReLU -> Linear."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(5 * 2 * 2, 3),
    )
    bn = model[1]
    assert isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return model.eval()


def test_local_linear_of_a_cnn_matches_autograd_and_the_biases():
    model = _small_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x0 = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    w, b = basics.local_linear(model, x0)
    assert w.shape == (3, 3, 8, 8) and b.shape == (3,)
    model64 = _small_cnn().double()
    x = x0.double().requires_grad_(True)
    jacobian = torch.autograd.functional.jacobian(lambda v: model64(v)[0], x)[:, 0]
    assert np.abs(w - jacobian.numpy()).max() < 1e-12
    logits = model64(x).detach().numpy()[0]
    assert np.abs((w.reshape(3, -1) @ x0.double().numpy().ravel()) + b - logits).max() < 1e-10
    for k in range(3):
        assert abs(sum(basics.bias_contributions(model, x0, k).values()) - b[k]) < 1e-10
    # linear, not just tangent: a small step keeps the activation pattern and the affine model exact
    d = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1e-4
    moved = model64(x.detach() + d).detach().numpy()[0]
    assert np.abs(w.reshape(3, -1) @ (x0.double() + d).numpy().ravel() + b - moved).max() < 1e-10
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is untouched
    assert all(p.dtype == torch.float32 for p in model.parameters()) and not model.training


def test_local_linear_refuses_bad_inputs():
    model = _small_cnn()
    with pytest.raises(ParameterError, match="batch of one"):
        basics.local_linear(model, torch.zeros(3, 8, 8))
    with pytest.raises(ParameterError, match="not an output"):
        basics.local_linear(model, torch.zeros(1, 3, 8, 8), target=7)


@pytest.mark.parametrize("name", ["table2_cnn_cifar10", "linear_cnn_cifar10"])
def test_a_shipped_cnn_is_its_affine_piece_at_an_image(name):
    spec = get_spec(name)
    path = next(p for label, p in sample_images().items() if label.startswith("CIFAR-10"))
    x = preprocess(load_image(path), spec)
    model = load_model(name, device="cpu")
    target = 3
    w, b = basics.local_linear(model, x, target)
    logit = basics.output_of(model, x, target)
    from_biases = sum(basics.bias_contributions(model, x, target).values())
    assert abs(from_biases - b) < 1e-8  # batch norm (eval) and max pooling keep it piecewise linear
    assert abs(float((w * x[0].double().numpy()).sum()) + from_biases - logit) < 1e-4  # float32 model

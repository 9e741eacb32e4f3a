"""interp.basics against independent computations: scipy for the hand convolution, torch's conv2d
for the conv matrix and output sizes, gradients for receptive fields, sampling and autograd for
the piecewise-linear view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage, signal
from torch import nn

from interp import basics, get_spec
from interp.errors import InterpError, ParameterError

SCIPY_MODES = {"zero": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap"}


def test_the_sobel_on_the_example_by_hand():
    # Output (1, 1), kernel flipped: the window [[1,0,2],[3,2,0],[0,6,1]] times [[1,0,-1],[2,0,-2],[1,0,-1]].
    hand = 1 * 1 + 2 * -1 + 3 * 2 + 0 * -2 + 0 * 1 + 1 * -1
    assert hand == 4
    out = basics.convolve(basics.EXAMPLE_IMAGE, basics.SOBEL_X)
    assert out[1, 1] == hand
    step = basics.convolution_step(basics.EXAMPLE_IMAGE, basics.SOBEL_X, 1, 1)
    assert step.total == hand and basics.step_formula(step).endswith("= 4")
    assert basics.convolve(basics.EXAMPLE_IMAGE, basics.SOBEL_X, flip=False)[1, 1] == -hand  # Sobel is odd


@pytest.mark.parametrize("boundary", list(SCIPY_MODES))
@pytest.mark.parametrize("flip", [True, False])
def test_convolve_matches_scipy_for_every_boundary(boundary, flip):
    rng = np.random.default_rng(1)
    reference = ndimage.convolve if flip else ndimage.correlate
    for shape, kshape in [((3, 5), (3, 3)), ((6, 7), (5, 3)), ((4, 4), (1, 3)), ((7, 5), (3, 5))]:
        image, kernel = rng.normal(size=shape), rng.normal(size=kshape)
        expected = reference(image, kernel, mode=SCIPY_MODES[boundary], cval=0.0)
        assert np.allclose(basics.convolve(image, kernel, boundary, flip), expected, atol=1e-12)
        # every output pixel's step-by-step sum is that pixel
        r, c = rng.integers(shape[0]), rng.integers(shape[1])
        assert np.isclose(basics.convolution_step(image, kernel, r, c, boundary, flip).total, expected[r, c])


@pytest.mark.parametrize("flip", [True, False])
def test_valid_convolution_matches_scipy_signal(flip):
    rng = np.random.default_rng(2)
    image, kernel = rng.normal(size=(6, 7)), rng.normal(size=(2, 3))  # even sides are fine without padding
    reference = signal.convolve2d if flip else signal.correlate2d
    assert np.allclose(basics.convolve(image, kernel, "valid", flip), reference(image, kernel, mode="valid"))


def test_reflect_is_the_mirror_without_the_edge():
    assert basics.pad_image([[1, 2, 3]], (1, 3), "reflect").tolist() == [[2, 1, 2, 3, 2]]
    assert basics.pad_image([[1, 2, 3]], (1, 3), "replicate").tolist() == [[1, 1, 2, 3, 3]]
    assert basics.pad_image([[1, 2, 3]], (1, 3), "circular").tolist() == [[3, 1, 2, 3, 1]]


@pytest.mark.parametrize(
    "args, words",
    [
        (([[1, 2]], [[1, 1]], "zero"), "no centre pixel"),
        (([[1, 2]], [[1]], "mirror"), "boundary must be one of"),
        (([[1, np.nan]], [[1]], "zero"), "non-finite"),
        (([[1, 2]], [[1, 1, 1]], "valid"), "does not fit"),
        (([1, 2, 3], [[1]], "zero"), "2-D"),
    ],
)
def test_convolve_refuses_what_it_cannot_compute(args, words):
    with pytest.raises(ParameterError, match=words) as info:
        basics.convolve(*args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InterpError)


def test_conv_matrix_matches_torch_conv2d_on_random_cases():
    rng = np.random.default_rng(3)
    checked = 0
    while checked < 40:
        cin, cout, k = rng.integers(1, 4), rng.integers(1, 4), rng.integers(1, 5)
        h, w, stride, padding = rng.integers(2, 9), rng.integers(2, 9), rng.integers(1, 4), rng.integers(0, 3)
        if k > min(h, w) + 2 * padding:
            continue
        kernel, x = rng.normal(size=(cout, cin, k, k)), rng.normal(size=(cin, h, w))
        a = basics.conv_matrix(kernel, (cin, h, w), int(stride), int(padding))
        y = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(kernel), stride=int(stride), padding=int(padding))
        assert a.shape == (y.numel(), x.size)
        assert np.abs(a @ x.ravel() - y.numpy().ravel()).max() < 1e-10, (cin, cout, k, h, w, stride, padding)
        assert basics.matrix_vs_layer(kernel, x, int(stride), int(padding)) < 1e-10
        checked += 1


def test_conv_matrix_symbolic_names_the_numeric_entries():
    kernel = np.arange(1, 10, dtype=float).reshape(3, 3)  # distinct entries: each names its position
    a = basics.conv_matrix(kernel, (4, 5), stride=1, padding=1)
    symbolic = basics.conv_matrix_symbolic((3, 3), (4, 5), stride=1, padding=1)
    assert a.shape == symbolic.shape == (20, 20)
    for (r, c), name in np.ndenumerate(symbolic):
        expected = "0" if a[r, c] == 0 else "w({},{})".format(*divmod(int(a[r, c]) - 1, 3))
        assert name == expected
    several = basics.conv_matrix_symbolic((2, 3, 3, 3), (3, 4, 4))
    assert several.shape == (2 * 2 * 2, 3 * 4 * 4) and several[0, 0] == "w[0,0](0,0)"


def test_conv_matrix_refuses_a_kernel_that_does_not_fit():
    with pytest.raises(ParameterError, match="kernel spans 5"):
        basics.conv_matrix(np.ones((5, 5)), (3, 3))
    with pytest.raises(ParameterError, match="input channel"):
        basics.conv_matrix(np.ones((1, 2, 3, 3)), (3, 4, 4))


def test_conv_output_size_matches_torch():
    rng = np.random.default_rng(4)
    for _ in range(60):
        size, k, s, p, d = (
            int(v)
            for v in (
                rng.integers(1, 40),
                rng.integers(1, 8),
                rng.integers(1, 4),
                rng.integers(0, 4),
                rng.integers(1, 3),
            )
        )
        if d * (k - 1) + 1 > size + 2 * p:
            with pytest.raises(ParameterError):
                basics.conv_output_size(size, k, s, p, d)
            continue
        out = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, size, size)).shape[-1]
        assert basics.conv_output_size(size, k, s, p, d) == out


def test_solving_for_a_missing_quantity():
    assert basics.kernel_size_for(512, 504) == 9
    assert basics.conv_output_size(512, 9) == 504
    for n_in, n_out, s, p in [(32, 16, 2, 1), (227, 55, 4, 0), (100, 7, 3, 2)]:
        k = basics.kernel_size_for(n_in, n_out, s, p)
        assert basics.conv_output_size(n_in, k, s, p) == n_out
        assert basics.conv_output_size(n_in, k + 1, s, p) != n_out  # the largest that does
    assert [basics.same_padding(k) for k in (1, 3, 5, 7)] == [0, 1, 2, 3]
    assert basics.same_padding(3, dilation=2) == 2
    for k in (1, 3, 5, 7):
        assert basics.conv_output_size(37, k, 1, basics.same_padding(k)) == 37
        assert basics.conv_output_size(37, k, 2, basics.same_padding(k)) == 19  # ceil(37 / 2)
    assert basics.padding_for(32, 32, 5) == 2 and basics.padding_for(28, 32, 5) == 4
    with pytest.raises(ParameterError, match="cannot be split evenly"):
        basics.same_padding(4)
    with pytest.raises(ParameterError, match="no kernel maps"):
        basics.kernel_size_for(10, 20)
    with pytest.raises(ParameterError, match="no padding maps"):
        basics.padding_for(32, 10, 3)


def _measured_field(size: int, layers) -> int:
    """Receptive field of the centre output, as the support of its gradient on the input."""
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = x
    for layer in layers:
        args = dict(stride=layer.stride, padding=layer.padding)
        if layer.kind == "conv":
            conv = nn.Conv2d(1, 1, layer.kernel, dilation=layer.dilation, bias=False, **args).double()
            nn.init.ones_(conv.weight)
            y = conv(y)
        else:  # average pooling: the gradient reaches every input of a window, as a field counts them
            y = nn.AvgPool2d(layer.kernel, **args)(y)
    centre = y.shape[-1] // 2
    (grad,) = torch.autograd.grad(y[0, 0, centre, centre], x)
    rows = torch.nonzero(grad[0, 0].abs().sum(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


def test_receptive_fields_match_the_support_of_the_gradient():
    stacks = [
        [basics.Layer(*layer) for layer in [("conv", 5, 1, 2), ("pool", 2, 2, 0)] * 3],
        [
            basics.Layer("conv", 3, 1, 0),
            basics.Layer("conv", 3, 2, 0, 2),
            basics.Layer("pool", 3, 2, 0),
            basics.Layer("conv", 3, 1, 0),
        ],
    ]
    for layers in stacks:
        rows = basics.receptive_fields(64, layers)
        assert rows[-1]["receptive field"] == _measured_field(64, layers)
    assert basics.receptive_fields(32, stacks[0])[-1]["receptive field"] == 36
    with pytest.raises(ParameterError, match="layer 4"):
        basics.receptive_fields(8, [basics.Layer("pool", 2, 2)] * 4)


@pytest.mark.parametrize(
    "name",
    [
        "table2_cnn_cifar10",
        "linear_cnn_cifar10",
        "nin_cifar10",
        "resnet32_cifar10",
        "alexnet_gap_pacs_class",
        "resnet18_imagenet",
    ],
)
def test_model_size_table_agrees_with_pytorch(name):
    rows = basics.model_size_table(get_spec(name))
    on_path = [r for r in rows if not r["note"]]
    assert on_path and all(r["predicted"] == r["output"] for r in on_path)
    if name == "table2_cnn_cifar10":
        assert rows[-1]["receptive field"] == "36"
    if name == "resnet18_imagenet":  # its downsampling shortcuts are branches, not part of the chain
        assert sum("off the main path" in r["note"] for r in rows) == 3
        assert rows[-1]["receptive field"] == "224" and "global" in rows[-1]["note"]

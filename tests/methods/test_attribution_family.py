"""Input x gradient, DeepLIFT, GradientSHAP, deconvolution, VarGrad, the noise tunnel and neuron
views against Captum; every new method (occlusion, LIME and KernelSHAP too) on a shipped model
against Captum; hooks and the model left as they were. (Occlusion, LIME and KernelSHAP in detail:
test_perturbation.py.)"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import (
    Deconvolution,
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
    NeuronDeconvolution,
    NeuronDeepLift,
    NeuronGradient,
    NeuronGuidedBackprop,
    NeuronIntegratedGradients,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

import interp
from interp.figures import METHOD_TITLES
from interp.methods import METHODS, MethodError, neuron_attribution, noise_tunnel
from interp.methods.attribution import (
    deconvolution,
    deeplift,
    gradient_shap,
    gradient_shap_samples,
    input_x_gradient,
    saliency,
    superpixels,
    vargrad,
)
from interp.methods.explain import SPATIAL_METHODS
from tests.methods.helpers import (
    FAST,
    assert_unchanged,
    build_pool_model,
    close,
    hooks_left,
    not_inplace_copy,
    pearson,
    registry_model,
    smooth_batch,
    snapshot,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NEW = ("input_x_gradient", "deeplift", "gradient_shap", "deconvolution", "vargrad", "occlusion", "lime", "kernel_shap")


@pytest.fixture
def pool_model() -> nn.Module:
    return build_pool_model()


# ---------------------------------------------------------------------------------------------
# Gradient and reference-based methods on a small model


def test_input_x_gradient_deeplift_and_deconvolution_equal_captum(pool_model):
    m, x, t = pool_model, smooth_batch(2, 16), [0, 2]
    ref = not_inplace_copy(m)
    close(input_x_gradient(m, x, t), InputXGradient(ref).attribute(x.clone().requires_grad_(), target=t))
    close(deeplift(m, x, t), DeepLift(ref).attribute(x.clone(), target=t))
    close(
        deeplift(m, x, t, baseline=0.3), DeepLift(ref).attribute(x.clone(), baselines=torch.full_like(x, 0.3), target=t)
    )
    close(deconvolution(m, x, t), Deconvolution(ref).attribute(x.clone(), target=t))
    assert not np.allclose(deconvolution(m, x, t), saliency(m, x, t))  # the rule changes the result


def test_deeplift_sums_to_the_change_of_the_logit(pool_model):
    m, x, t = pool_model, smooth_batch(2, 16, seed=1), [1, 0]
    with torch.no_grad():
        gap = (m(x) - m(torch.zeros_like(x))).gather(1, torch.tensor([[1], [0]]))[:, 0].numpy()
    np.testing.assert_allclose(deeplift(m, x, t).reshape(2, -1).sum(1), gap, rtol=1e-4, atol=1e-5)


def test_deeplift_and_deconvolution_on_resnet18_with_reused_inplace_relus():
    m = registry_model("resnet18_imagenet")
    x = smooth_batch(1, 32, seed=2)
    # Captum's DeepLift cannot run this model itself: each block calls one ReLU module twice.
    with pytest.raises(RuntimeError, match="used more than once"):
        DeepLift(not_inplace_copy(m)).attribute(x.clone(), target=3)
    before = snapshot(m)
    mine = deeplift(m, x, target=3)
    with torch.no_grad():
        gap = float(m(x)[0, 3] - m(torch.zeros_like(x))[0, 3])
    assert mine.sum() == pytest.approx(gap, rel=1e-3, abs=1e-4)  # DeepLIFT's summation to delta
    close(deconvolution(m, x, target=3), Deconvolution(not_inplace_copy(m)).attribute(x.clone(), target=3)[0])
    assert_unchanged(before, m)
    assert hooks_left(m) == []


class _FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_deeplift_refuses_functional_activations():
    m = _FunctionalRelu().eval()
    with pytest.raises(MethodError, match="relu in the forward pass|relu in"):
        deeplift(m, smooth_batch(1, 8))
    assert hooks_left(m) == []
    # deconvolution, like guided backprop, applies its rule at ReLU modules and runs
    assert np.isfinite(deconvolution(m, smooth_batch(1, 8))).all()


def test_deeplift_rules_are_captums():
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    from interp.methods.twin import DEEPLIFT_RULES

    assert set(DEEPLIFT_RULES) == set(SUPPORTED_NON_LINEAR)


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnel_equals_captums_with_the_same_noise(kind, pool_model):
    m, x = pool_model, smooth_batch(1, 16, seed=3)
    span = float(x.max() - x.min())
    mine = noise_tunnel(m, x, "saliency", kind, target=1, n_samples=6, noise_level=0.2, seed=5)
    torch.manual_seed(5)  # Captum draws the same normal samples from the global generator
    ref = NoiseTunnel(Saliency(m)).attribute(
        x.clone().requires_grad_(), nt_type=kind, nt_samples=6, stdevs=0.2 * span, target=1, abs=False
    )
    close(mine, ref[0], rtol=1e-3)
    # any gradient method: input x gradient over the same noise
    torch.manual_seed(5)
    ref = NoiseTunnel(InputXGradient(not_inplace_copy(m))).attribute(
        x.clone(), nt_type=kind, nt_samples=6, stdevs=0.2 * span, target=1
    )
    close(
        noise_tunnel(m, x, "input_x_gradient", kind, target=1, n_samples=6, noise_level=0.2, seed=5), ref[0], rtol=1e-3
    )


def test_vargrad_is_the_noise_tunnels_variance_and_seeded(pool_model):
    m, x = pool_model, smooth_batch(2, 16, seed=4)
    v = vargrad(m, x, target=[0, 1], n_samples=5, seed=2)
    np.testing.assert_array_equal(v, noise_tunnel(m, x, "saliency", "vargrad", target=[0, 1], n_samples=5, seed=2))
    np.testing.assert_array_equal(v, interp.explain(m, x, "vargrad", target=[0, 1], n_samples=5, seed=2).map)
    assert (v >= 0).all() and not np.allclose(v, vargrad(m, x, target=[0, 1], n_samples=5, seed=3))
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    vargrad(m, x, n_samples=2)
    assert torch.equal(torch.rand(3), expected)  # the global random state is untouched


def test_gradient_shap_is_the_mean_over_its_samples_and_agrees_with_captum(pool_model):
    m, x = pool_model, smooth_batch(2, 16, seed=5)
    refs = smooth_batch(4, 16, seed=6)
    points, deltas = gradient_shap_samples(x, refs, 6, 0.1, seed=3)
    assert points.shape == deltas.shape == (6, 2, 3, 16, 16)
    grads = torch.stack([Saliency(m).attribute(p.clone().requires_grad_(), target=[2, 1], abs=False) for p in points])
    mine = gradient_shap(m, x, [2, 1], n_samples=6, stdevs=0.1, baselines=refs, seed=3)
    close(mine, (grads * deltas).mean(0))
    np.testing.assert_array_equal(mine, gradient_shap(m, x, [2, 1], n_samples=6, stdevs=0.1, baselines=refs, seed=3))
    # Captum draws its own samples (global generators): the expectations agree
    big = gradient_shap(m, x[:1], 2, n_samples=1000, stdevs=0.1, baselines=refs, seed=0)
    torch.manual_seed(0)
    np.random.seed(0)
    theirs = GradientShap(m).attribute(x[:1], baselines=refs, n_samples=1000, stdevs=0.1, target=2)[0]
    assert pearson(big, theirs) >= 0.99


def test_gradient_shap_with_one_baseline_and_no_noise_approaches_integrated_gradients(pool_model):
    m, x = pool_model, smooth_batch(1, 16, seed=7)
    ig = IntegratedGradients(m).attribute(x, baselines=torch.zeros_like(x), target=0, n_steps=64)[0]
    assert pearson(gradient_shap(m, x, 0, n_samples=800), ig) >= 0.99


# ---------------------------------------------------------------------------------------------
# Neuron views


def _channel(c):
    return lambda out: out[:, c].mean((-2, -1))


@pytest.mark.parametrize("layer,channel,position", [("conv2", 3, None), ("conv2", 3, (2, 5)), ("conv1", 5, None)])
def test_neuron_views_equal_captums(layer, channel, position, pool_model):
    m, x = pool_model, smooth_batch(2, 16, seed=12)
    ref = not_inplace_copy(m)
    sel = _channel(channel) if position is None else (channel, *position)
    cases = {
        "saliency": NeuronGradient(m, m.get_submodule(layer)).attribute(x.clone().requires_grad_(), sel),
        "integrated_gradients": NeuronIntegratedGradients(m, m.get_submodule(layer)).attribute(
            x.clone(), sel, n_steps=8, method="gausslegendre"
        ),
        "deeplift": NeuronDeepLift(ref, ref.get_submodule(layer)).attribute(x.clone(), sel),
        "guided_backprop": NeuronGuidedBackprop(ref, ref.get_submodule(layer)).attribute(x.clone(), sel),
        "deconvolution": NeuronDeconvolution(ref, ref.get_submodule(layer)).attribute(x.clone(), sel),
    }
    for method, expected in cases.items():
        options = {"steps": 8} if method == "integrated_gradients" else {}
        e = neuron_attribution(m, x, layer, channel, method, position=position, **options)
        close(e.map, expected)
        assert e.neuron == (layer, channel, *(position or ())) and e.layer == layer
    with torch.no_grad():
        np.testing.assert_array_equal(e.target, m(x).argmax(1).numpy())  # the model's prediction beside it
    ixg = neuron_attribution(m, x, layer, channel, "input_x_gradient", position=position).map
    close(ixg, cases["saliency"] * x)


def test_neuron_view_errors(pool_model):
    x = smooth_batch(1, 16)
    with pytest.raises(interp.LayerError, match="channel 9"):
        neuron_attribution(pool_model, x, "conv2", 9)
    with pytest.raises(interp.LayerError, match="position"):
        neuron_attribution(pool_model, x, "conv2", 0, position=(16, 0))
    with pytest.raises(interp.LayerError, match="conv9"):
        neuron_attribution(pool_model, x, "conv9", 0)
    with pytest.raises(MethodError, match="neuron views"):
        neuron_attribution(pool_model, x, "conv2", 0, "grad_cam")
    with pytest.raises(MethodError, match="steps"):
        neuron_attribution(pool_model, x, "conv2", 0, "saliency", steps=3)
    assert hooks_left(pool_model) == []


# ---------------------------------------------------------------------------------------------
# explain(), titles, shapes, option errors


def test_every_new_method_is_registered_titled_and_shaped(pool_model):
    x = smooth_batch(1, 16)
    for method in NEW:
        assert method in METHODS and method in METHOD_TITLES
        e = interp.explain(pool_model, x, method, **FAST.get(method, {}))
        assert e.map.shape == ((16, 16) if method in SPATIAL_METHODS else (3, 16, 16)), method
        assert e.spatial().shape == (16, 16) and np.isfinite(e.map).all()


def test_noise_tunnel_options_in_explain(pool_model):
    x = smooth_batch(1, 16)
    e = interp.explain(pool_model, x, "deeplift", noise_tunnel="smoothgrad", nt_samples=3, nt_seed=1)
    np.testing.assert_array_equal(e.map, noise_tunnel(pool_model, x, "deeplift", n_samples=3, seed=1))
    grad_cam = interp.explain(pool_model, x, "grad_cam", noise_tunnel="smoothgrad_sq", nt_samples=2)
    assert grad_cam.map.shape == (16, 16) and grad_cam.layer is not None
    np.testing.assert_array_equal(
        interp.explain(pool_model, x, "saliency", noise_tunnel=None).map, saliency(pool_model, x)
    )
    with pytest.raises(MethodError, match="noise tunnel wraps"):
        interp.explain(pool_model, x, "lime", noise_tunnel="vargrad")
    with pytest.raises(MethodError, match="need noise_tunnel"):
        interp.explain(pool_model, x, "saliency", nt_samples=3)
    with pytest.raises(MethodError, match="must be one of"):
        interp.explain(pool_model, x, "saliency", noise_tunnel="mean")
    with pytest.raises(MethodError, match="n_samples"):
        interp.explain(pool_model, x, "gradient_shap", n_samples=0)


# ---------------------------------------------------------------------------------------------
# Hooks and the model


CALLS = {
    **{m: (lambda m_: lambda model, x: interp.explain(model, x, m_, **FAST.get(m_, {})))(m) for m in NEW},
    "noise_tunnel(deeplift)": lambda model, x: noise_tunnel(model, x, "deeplift", n_samples=2),
    **{
        f"neuron({m})": (lambda m_: lambda model, x: neuron_attribution(model, x, "conv2", 1, m_, **FAST.get(m_, {})))(
            m
        )
        for m in ("saliency", "deeplift", "deconvolution", "guided_backprop", "gradient_shap")
    },
}


@pytest.mark.parametrize("name", list(CALLS))
def test_no_hook_or_change_remains_after_success_or_a_forced_exception(name, tiny_bomb_model):
    m, call = tiny_bomb_model, CALLS[name]
    x = smooth_batch(1, 16)
    before = snapshot(m)
    call(m, x)
    assert hooks_left(m) == []
    assert_unchanged(before, m)
    m.bomb.calls = 0
    call(m, x)  # a second call counts the passes of a call with the kept twin (the first builds it)
    forwards, m.bomb.calls = m.bomb.calls, 0
    assert forwards >= 1  # the shared bomb runs: the twin shares every module but the activations
    for fuse in range(1, min(forwards, 6) + 1):
        m.bomb.calls, m.bomb.fuse = 0, fuse
        with pytest.raises(RuntimeError, match="bomb"):
            call(m, x)
        assert hooks_left(m) == [], (name, fuse)
        assert_unchanged(before, m)
    m.bomb.fuse = 0
    call(m, x)
    assert hooks_left(m) == []


# ---------------------------------------------------------------------------------------------
# A shipped model: each method's map against Captum's on the same model, class and input


@pytest.fixture(scope="module")
def shipped():
    name = "table2_cnn_cifar10"
    spec = interp.get_spec(name)
    model = interp.load_model(name) if spec.checkpoint is not None else registry_model(name)
    from interp.data.samples import zebra_path

    return model, spec, interp.preprocess(interp.load_image(zebra_path()), spec)


def test_shipped_model_agrees_with_captum(shipped):
    m, spec, x = shipped
    ref = not_inplace_copy(m)
    t = int(m(x).argmax())
    seg = superpixels(x[0], 40, mean=spec.mean, std=spec.std)
    mask = torch.as_tensor(seg)[None, None]
    span = float(x.max() - x.min())
    expect = {
        "input_x_gradient": (lambda: InputXGradient(ref).attribute(x.clone().requires_grad_(), target=t)[0], {}),
        "deeplift": (lambda: DeepLift(ref).attribute(x.clone(), target=t)[0], {}),
        "deconvolution": (lambda: Deconvolution(ref).attribute(x.clone(), target=t)[0], {}),
        "vargrad": (
            lambda: NoiseTunnel(Saliency(m)).attribute(
                x.clone().requires_grad_(), nt_type="vargrad", nt_samples=8, stdevs=0.15 * span, target=t, abs=False
            )[0],
            {"n_samples": 8},
        ),
        "occlusion": (
            lambda: Occlusion(m).attribute(x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=t)[0, 0],
            {},
        ),
        "lime": (
            lambda: Lime(m).attribute(x, target=t, feature_mask=mask, n_samples=100)[0, 0],
            {"n_samples": 100, "segments": seg},
        ),
        "kernel_shap": (
            lambda: KernelShap(m).attribute(x, target=t, feature_mask=mask, n_samples=100)[0, 0],
            {"n_samples": 100, "segments": seg},
        ),
    }
    for method, (captum_call, options) in expect.items():
        torch.manual_seed(0)  # the sampling methods are seeded with 0, Captum through the global generator
        theirs = captum_call()
        mine = interp.explain(m, x, method, target=t, **options).map
        close(mine, theirs, rtol=1e-3)
        assert pearson(mine, theirs) >= 0.999, method
    big = interp.explain(m, x, "gradient_shap", target=t, n_samples=1000, stdevs=0.05).map
    torch.manual_seed(0)
    np.random.seed(0)
    theirs = GradientShap(m).attribute(x, baselines=torch.zeros_like(x), n_samples=1000, stdevs=0.05, target=t)[0]
    assert pearson(big, theirs) >= 0.99
    neuron = neuron_attribution(m, x, "conv1", 14, "deeplift").map
    ref_layer = ref.get_submodule("conv1")
    close(neuron, NeuronDeepLift(ref, ref_layer).attribute(x.clone(), _channel(14))[0])


def test_copies_do_not_share_state(pool_model):
    """The twin shares the model's conv and batch-norm modules: explaining a copy of the model
    with other weights gives that copy's maps."""
    other = copy.deepcopy(pool_model)
    with torch.no_grad():
        other.conv1.weight.mul_(-1)
    x = smooth_batch(1, 16)
    assert not np.allclose(deeplift(pool_model, x, 0), deeplift(other, x, 0))


def test_the_twin_is_kept_per_model_and_rebuilt_when_its_modules_change(pool_model):
    """A second call uses the kept twin (no copy, no counting pass) and still equals Captum, with
    the probability of a plain forward pass; weights changed in place show at once; a replaced
    module makes a new twin; a class the model lacks is refused on a kept twin too."""
    from interp.methods.core import Targets
    from interp.methods.twin import twin

    x = smooth_batch(2, 16)
    first = twin(pool_model, x, Targets(None), strict=True)
    assert twin(pool_model, x, Targets([0, 1]), strict=True) is first
    ref = not_inplace_copy(pool_model)
    for _ in range(2):
        result = interp.explain(pool_model, x, "deeplift", target=[0, 1])
        close(result.map, DeepLift(ref).attribute(x.clone(), target=[0, 1]))
        with torch.no_grad():
            probs = torch.softmax(pool_model(x).double(), 1)[[0, 1], [0, 1]].numpy()
        np.testing.assert_allclose(result.probability, probs, rtol=1e-5)
        predicted = interp.explain(pool_model, x, "deconvolution")
        np.testing.assert_array_equal(predicted.target, pool_model(x).argmax(1).numpy())
    with torch.no_grad():
        pool_model.conv1.weight.mul_(-1)
        ref.conv1.weight.mul_(-1)
    close(deeplift(pool_model, x, 1), DeepLift(ref).attribute(x.clone(), target=1))
    pool_model.conv2 = copy.deepcopy(pool_model.conv2)
    with torch.no_grad():
        pool_model.conv2.weight.mul_(2)
        ref.conv2.weight.mul_(2)
    assert twin(pool_model, x, Targets(None), strict=True) is not first
    close(deeplift(pool_model, x, 1), DeepLift(ref).attribute(x.clone(), target=1))
    with pytest.raises(interp.TargetError, match="does not exist"):
        deeplift(pool_model, x, 99)

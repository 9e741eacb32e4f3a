"""FullGrad and Deep Feature Factorization against pytorch-grad-cam, RISE against the paper's
algorithm written out plainly, and what each promises besides (options, seeds, details)."""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interp
from interp import MethodError
from interp.data import zebra_path
from interp.errors import LayerError
from interp.methods.core import upsample
from tests.methods.helpers import image_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def bn_cnn() -> nn.Module:
    """conv -> BN -> in-place ReLU -> max-pool -> conv (no bias) -> BN -> in-place ReLU -> GAP -> Linear,
    with batch-norm statistics that are not the identity (a fresh BN adds no bias at all)."""
    torch.manual_seed(0)
    m = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("bn1", nn.BatchNorm2d(8)),
                ("relu1", nn.ReLU(inplace=True)),
                ("pool", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(8, 12, 3, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(12)),
                ("relu2", nn.ReLU(inplace=True)),
                ("gap", nn.AdaptiveAvgPool2d(1)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(12, 5)),
            ]
        )
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for bn in (m.bn1, m.bn2):
            assert isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None and bn.running_var is not None
            c = bn.num_features
            bn.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(c, generator=g) + 0.5)
            bn.bias.copy_(torch.rand(c, generator=g) - 0.5)
    return m.eval()


def zebra_nin() -> tuple[nn.Module, torch.Tensor]:
    """The shipped nin_cifar10 and the zebra as it sees it (1 x 3 x 32 x 32)."""
    name = "nin_cifar10"
    return interp.load_model(name), interp.preprocess(interp.load_image(zebra_path()), interp.get_spec(name))


def scaled(maps: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's min-max scaling of each map (scale_cam_image)."""
    maps = maps - maps.min((-2, -1), keepdims=True)
    return maps / (1e-7 + maps.max((-2, -1), keepdims=True))


def pearson(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(u.ravel(), v.ravel())[0, 1]) for u, v in zip(a, b)]


def batched(m: np.ndarray, x: torch.Tensor) -> np.ndarray:
    return m if len(x) > 1 else m[None]


def not_inplace(model: nn.Module) -> nn.Module:
    ref = copy.deepcopy(model)
    for mod in ref.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    return ref


# ---------------------------------------------------------------------------------------------
# FullGrad


def pgc_fullgrad(model: nn.Module, x: torch.Tensor, targets) -> np.ndarray:
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with warnings.catch_warnings(), FullGrad(not_inplace(model), []) as cam:
        warnings.simplefilter("ignore")
        return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])


FULLGRAD_CASES = {
    "bn_cnn": lambda: (bn_cnn(), image_batch(2, 32, seed=4), [1, 3]),
    "nin_cifar10": lambda: (*zebra_nin(), None),
}


@pytest.mark.parametrize("case", list(FULLGRAD_CASES))
def test_fullgrad_equals_pytorch_grad_cam_after_its_scaling(case):
    model, x, targets = FULLGRAD_CASES[case]()
    e = interp.explain(model, x, "fullgrad", target=targets)
    assert e.method == "fullgrad" and e.layer is None and e.details == {}
    mine = scaled(batched(e.map, x))
    peer = pgc_fullgrad(model, x, np.atleast_1d(e.target))
    corr = pearson(mine, peer)
    print(f"fullgrad {case}: correlation with pytorch-grad-cam {corr}")
    assert min(corr) >= 0.95
    np.testing.assert_allclose(mine, peer, atol=2e-5)  # and in fact equal


def test_fullgrad_terms_by_hand_with_each_scaling():
    """|x g| and |b g_z| per channel, scaled per channel (or per layer), summed; the bias of a batch
    norm its eval-mode constant; a conv without bias adds nothing."""
    model, x, t = bn_cnn(), image_batch(1, 32, seed=2), 2
    xr = x.clone().requires_grad_(True)
    ref = not_inplace(model)
    keep = {}
    handles = [
        getattr(ref, name).register_forward_hook(lambda mod, i, o, name=name: keep.__setitem__(name, o))
        for name in ("conv1", "bn1", "bn2")
    ]
    score = ref(xr)[0, t]
    for h in handles:
        h.remove()
    grads = torch.autograd.grad(score, [xr, keep["conv1"], keep["bn1"], keep["bn2"]])

    def bias(name: str) -> torch.Tensor:
        mod = getattr(ref, name)
        if isinstance(mod, nn.Conv2d):
            assert mod.bias is not None
            return mod.bias.detach()
        return (mod.bias - mod.running_mean * mod.weight / torch.sqrt(mod.running_var + mod.eps)).detach()

    def term(v: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        v = v.abs()
        v = v - v.amin(dims, keepdim=True)
        return (v / (v.amax(dims, keepdim=True) + 1e-7)).sum(1)

    for scaling, dims in (("channel", (2, 3)), ("layer", (1, 2, 3))):
        expected = term(x * grads[0], dims)
        for name, g in zip(("conv1", "bn1", "bn2"), grads[1:]):
            expected = expected + upsample(term(g * bias(name).view(1, -1, 1, 1), dims), (32, 32))
        got = interp.explain(model, x, "fullgrad", target=t, scaling=scaling).map
        np.testing.assert_allclose(got, expected[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(MethodError, match="scaling"):
        interp.explain(model, x, "fullgrad", scaling="pixel")


def test_fullgrad_without_any_bias_is_the_input_gradient_term():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).eval()
    x = image_batch(1, 16, seed=1)
    sal = interp.explain(model, x, "input_x_gradient", target=1).map
    expected = scaled(np.abs(sal)).sum(0)
    np.testing.assert_allclose(interp.explain(model, x, "fullgrad", target=1).map, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Deep Feature Factorization


def pgc_dff(model: nn.Module, layer: str, x: torch.Tensor, targets, head, k: int = 4) -> np.ndarray:
    """pytorch-grad-cam's part for each image (factorised alone) whose concept, through ``head``,
    has the target's highest softmax probability; scaled and resized as it returns them."""
    from pytorch_grad_cam import DeepFeatureFactorization

    ref = not_inplace(model)
    dff = DeepFeatureFactorization(ref, ref.get_submodule(layer), computation_on_concepts=head)
    out = []
    for i, t in enumerate(targets):
        _, explanations, outputs = dff(x[i : i + 1], k)
        probs = torch.softmax(torch.from_numpy(outputs).double(), 1)[:, int(t)]
        out.append(explanations[0][int(probs.argmax())])
    dff.activations_and_grads.release()
    return np.stack(out)


def _resized(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scaled at the layer's resolution, then resized by OpenCV: what pytorch-grad-cam does to a part."""
    import cv2

    return np.stack([cv2.resize(m.astype(np.float32), size[::-1]) for m in scaled(maps)])


@pytest.mark.parametrize("case", ["bn_cnn", "nin_cifar10"])
def test_dff_equals_pytorch_grad_cam_after_its_scaling(case):
    if case == "bn_cnn":
        model, x, targets, layer = bn_cnn(), image_batch(3, 32, seed=5), [0, 3, 4], "relu2"

        def head(c: torch.Tensor) -> torch.Tensor:
            return model.fc(c)
    else:
        model, x = zebra_nin()
        targets, layer = list(range(10)), "features.relu3_3"
        x = x.expand(10, -1, -1, -1)  # every class of the one image

        def head(c: torch.Tensor) -> torch.Tensor:
            return c  # the classifier pools the ten class maps: a concept is its own logits

    e = interp.explain(model, x, "dff", target=targets, layer=layer)
    assert e.layer == layer and e.map.shape == (len(x), 32, 32) and (e.map >= 0).all()
    peer = pgc_dff(model, layer, x, targets, head)
    corr = pearson(scaled(e.map), peer)
    print(f"dff {case}: correlation with pytorch-grad-cam {corr}")
    assert min(corr) >= 0.95
    at_layer = interp.explain(model, x, "dff", target=targets, layer=layer, resolution="layer").map
    np.testing.assert_allclose(_resized(at_layer, (32, 32)), peer, atol=2e-5)  # the same part, exactly


def test_dff_default_layer_seed_and_a_layer_before_the_head(tiny_gap_model):
    x = image_batch(2, 16, seed=3)
    e = interp.explain(tiny_gap_model, x, "dff", target=[0, 2])
    assert e.layer == interp.explain(tiny_gap_model, x, "grad_cam").layer
    np.testing.assert_array_equal(e.map, interp.explain(tiny_gap_model, x, "dff", target=[0, 2]).map)
    # relu1's concepts are scored by conv2, relu2 and the head run on them: a part of relu1's maps
    early = interp.explain(tiny_gap_model, x, "dff", target=[0, 2], layer="relu1", n_components=3)
    assert early.map.shape == (2, 16, 16) and np.isfinite(early.map).all() and early.map.max() > 0
    with pytest.raises(MethodError, match="n_components"):
        interp.explain(tiny_gap_model, x, "dff", n_components=0)
    with pytest.raises(LayerError, match="feature maps"):
        interp.explain(tiny_gap_model, x, "dff", layer="fc")


def test_dff_scores_a_pooled_layer_with_the_head_alone(tiny_gap_model, monkeypatch):
    from interp.methods.attribution import dff

    x = image_batch(2, 16, seed=4)
    fast = interp.explain(tiny_gap_model, x, "dff", target=[1, 2])
    with torch.no_grad():
        act = tiny_gap_model.relu2(tiny_gap_model.conv2(tiny_gap_model.relu1(tiny_gap_model.conv1(x))))
        assert dff.head_after(tiny_gap_model, act, tiny_gap_model(x)) is tiny_gap_model.fc
        assert dff.head_after(tiny_gap_model, act * 2, tiny_gap_model(x)) is None  # logits that disagree
    monkeypatch.setattr(dff, "head_after", lambda *args: None)  # run the rest of the model instead
    slow = interp.explain(tiny_gap_model, x, "dff", target=[1, 2])
    np.testing.assert_allclose(fast.map, slow.map, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# RISE


def rise_by_the_paper(model, x, target, n_masks, s, p1, seed, probabilities=True) -> torch.Tensor:
    """Petsiuk et al.'s algorithm as their code (eclique/RISE) writes it, with its draws taken from a
    torch generator in interp's order: the grids, then the row shifts, then the column shifts."""
    from skimage.transform import resize

    _, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    grid = (torch.rand((n_masks, s, s), generator=g) < p1).double().numpy()
    cell = (math.ceil(h / s), math.ceil(w / s))
    up_size = ((s + 1) * cell[0], (s + 1) * cell[1])
    dy = torch.randint(0, cell[0], (n_masks,), generator=g)
    dx = torch.randint(0, cell[1], (n_masks,), generator=g)
    masks = np.empty((n_masks, h, w))
    for i in range(n_masks):
        up = resize(grid[i], up_size, order=1, mode="reflect", anti_aliasing=False)
        masks[i] = up[int(dy[i]) : int(dy[i]) + h, int(dx[i]) : int(dx[i]) + w]
    masks_t = torch.from_numpy(masks).float()
    with torch.no_grad():
        p = torch.softmax(model(masks_t[:, None] * x), 1)
    sal = p[:, target].double() @ masks_t.reshape(n_masks, h * w).double()
    return (sal / n_masks / p1).reshape(h, w)


def test_rise_equals_the_papers_algorithm(tiny_gap_model):
    x = image_batch(1, 20, seed=6)
    for target, s, p1, seed in ((1, 5, 0.5, 0), (2, 3, 0.3, 7)):
        e = interp.explain(tiny_gap_model, x, "rise", target=target, n_masks=48, grid=s, p=p1, seed=seed, batch_size=20)
        expected = rise_by_the_paper(tiny_gap_model, x, target, 48, s, p1, seed)
        torch.testing.assert_close(torch.from_numpy(e.map).double(), expected, rtol=1e-5, atol=1e-6)
        assert e.details == {"n_masks": 48}


def test_rise_seeds_batches_and_its_report(tiny_gap_model):
    x = image_batch(2, 16, seed=1)
    run = dict(n_masks=40, target=[0, 1])
    a = interp.explain(tiny_gap_model, x, "rise", **run)
    assert a.details["n_masks"] == 40 and a.method == "rise" and a.layer is None and a.map.shape == (2, 16, 16)
    np.testing.assert_array_equal(a.map, interp.explain(tiny_gap_model, x, "rise", **run).map)
    assert not np.allclose(a.map, interp.explain(tiny_gap_model, x, "rise", seed=1, **run).map)
    np.testing.assert_allclose(a.map, interp.explain(tiny_gap_model, x, "rise", batch_size=7, **run).map, rtol=1e-5)
    one = interp.explain(tiny_gap_model, x[1:], "rise", n_masks=40, target=1)
    np.testing.assert_allclose(a.map[1], one.map, rtol=1e-5)  # the same masks for every image
    assert (a.map >= 0).all()
    default = interp.methods.get_method("rise")
    assert default.options()["n_masks"] > default.quick["n_masks"] and str(default.options()["n_masks"]) in default.cost
    with pytest.raises(MethodError, match="p must"):
        interp.explain(tiny_gap_model, x, "rise", p=0)
    with pytest.raises(MethodError, match="n_masks"):
        interp.explain(tiny_gap_model, x, "rise", n_masks=0)


def test_other_methods_report_no_details(tiny_gap_model):
    assert interp.explain(tiny_gap_model, image_batch(1, 16), "grad_cam").details == {}

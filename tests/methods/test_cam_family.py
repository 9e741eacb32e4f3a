"""The CAM family (Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Score-CAM, Ablation-CAM, Eigen-CAM,
EigenGrad-CAM) against pytorch-grad-cam and torch-cam, by hand, and for hygiene."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interp
from bench.peers_cams import PGC_CLASSES, TC_CLASSES
from interp.data.samples import held_out_batch
from interp.methods import CAM_FAMILY
from tests.methods.helpers import assert_unchanged, hooks_left, image_batch, not_inplace_copy, snapshot

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# The peers' class of each member of the family (pytorch-grad-cam has them all; torch-cam four).
PGC, TC = PGC_CLASSES, TC_CLASSES
EIGEN = ("eigen_cam", "eigen_grad_cam")  # a principal component's sign is arbitrary


def pgc_map(model, method, layer, x, targets) -> np.ndarray:
    """pytorch-grad-cam's map: ReLU, then each map min-max scaled to [0, 1] (and resized)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ref = not_inplace_copy(model)  # its Ablation-CAM swaps the layer while it runs
    with (
        warnings.catch_warnings(),
        getattr(pytorch_grad_cam, PGC[method])(ref, target_layers=[ref.get_submodule(layer)]) as cam,
    ):
        warnings.simplefilter("ignore")
        return cam(x, [ClassifierOutputTarget(int(t)) for t in targets])


def tc_map(model, method, layer, x, targets) -> np.ndarray:
    """torch-cam's raw map (normalized=False) at the layer's resolution, upsampled as ours."""
    import torchcam.methods

    ref = not_inplace_copy(model)
    with getattr(torchcam.methods, TC[method])(ref, layer, input_shape=tuple(x.shape[1:])) as extractor:
        with torch.set_grad_enabled(method != "score_cam"):
            scores = ref(x)
        maps = extractor(class_idx=[int(t) for t in targets], scores=scores, normalized=False)[0]
    return F.interpolate(maps.detach()[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].numpy()


def pgc_scaled(maps: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's ReLU and scale_cam_image on maps already at the input size: it scales
    each layer's map, then the layers' mean (here of one layer) again."""
    maps = np.maximum(maps, 0)
    for _ in range(2):
        maps = maps - maps.min((1, 2), keepdims=True)
        maps = maps / (1e-7 + maps.max((1, 2), keepdims=True))
    return maps


def pearson(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(u.ravel(), v.ravel())[0, 1]) for u, v in zip(a, b)]


def ours(model, method, layer, x, targets, **options) -> np.ndarray:
    """interp's map with a leading N, also for one image."""
    m = interp.explain(model, x, method, target=targets, layer=layer, **options).map
    return m if len(x) > 1 else m[None]


def eigen_relation(model, method, layer, x, targets, peer: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's Eigen maps are the ReLU of the component with LAPACK's sign, at the layer's
    resolution: ours, or the ReLU of its negative, whichever matches each image (the relation the
    docstring states). Upsampling is linear, so that is upsample(relu(-p)) = relu map - signed map."""
    positive = ours(model, method, layer, x, targets)
    negative = positive - ours(model, method, layer, x, targets, relu=False)
    both = [pgc_scaled(positive), pgc_scaled(negative)]
    pick = [int(np.abs(both[1][i] - peer[i]).max() < np.abs(both[0][i] - peer[i]).max()) for i in range(len(x))]
    return np.stack([both[p][i] for i, p in enumerate(pick)])


@pytest.mark.parametrize("method", CAM_FAMILY)
def test_equals_pytorch_grad_cam_where_the_layer_has_the_input_resolution(method, tiny_gap_model):
    """tiny_gap_model's relu2 maps are 16 x 16 like its input: no resizing, so the maps are equal
    after pytorch-grad-cam's scaling (an exact match, not a correlation)."""
    x, targets = image_batch(2, 16, seed=3), [1, 2]
    peer = pgc_map(tiny_gap_model, method, "relu2", x, targets)
    mine = (
        eigen_relation(tiny_gap_model, method, "relu2", x, targets, peer)
        if method in EIGEN
        else pgc_scaled(ours(tiny_gap_model, method, "relu2", x, targets))
    )
    np.testing.assert_allclose(mine, peer, atol=2e-5)


@pytest.mark.parametrize("method", ["xgrad_cam", "layer_cam", "score_cam"])
def test_equals_torch_cam_raw_maps_at_the_input_resolution(method, tiny_gap_model):
    x, targets = image_batch(2, 16, seed=3), [1, 2]
    peer = tc_map(tiny_gap_model, method, "relu2", x, targets)
    np.testing.assert_allclose(
        ours(tiny_gap_model, method, "relu2", x, targets), peer, rtol=1e-4, atol=1e-5 * np.abs(peer).max()
    )


def test_grad_cam_pp_differs_from_torch_cam_where_its_alpha_is_not_divided(tiny_gap_model):
    """torch-cam 0.5's GradCAMpp divides a masked copy of its alpha in place (alpha[mask].div_), which
    leaves alpha = g^2: its weights are sum(g^2 relu(g)), not the paper's. That is what it returns."""
    m, x, targets = tiny_gap_model, image_batch(2, 16, seed=3), [1, 2]
    layer = "relu2"
    act, grad = (t.detach() for t in _act_grad(m, layer, x, targets))
    weights = (grad**2 * grad.clamp(min=0)).sum((2, 3))
    expected = (weights[:, :, None, None] * act).sum(1).clamp(min=0).numpy()
    np.testing.assert_allclose(tc_map(m, "grad_cam_pp", layer, x, targets), expected, rtol=1e-4, atol=1e-9)


def _act_grad(model, layer, x, targets):
    """The layer's output and d target logits / d output, by hand."""
    ref = not_inplace_copy(model)
    store = []
    handle = ref.get_submodule(layer).register_forward_hook(lambda mod, i, o: store.append(o))
    try:
        out = ref(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(out.gather(1, torch.tensor(targets)[:, None]).sum(), store[-1])
    return store[-1], grad


@pytest.fixture(scope="module")
def cifar():
    """table2_cnn_cifar10 (trained, shipped) and three shipped CIFAR-10 test images."""
    spec = interp.get_spec("table2_cnn_cifar10")
    model = interp.load_model("table2_cnn_cifar10")
    x = held_out_batch(spec, 3, data_dir="/nonexistent").x  # the shipped sample
    with torch.no_grad():
        return model, x, model(x).argmax(1).tolist()


@pytest.mark.parametrize("layer", ["relu2", "relu3"])  # 16 x 16 and 8 x 8 maps of a 32 px input
@pytest.mark.parametrize("method", CAM_FAMILY)
def test_agrees_with_pytorch_grad_cam_on_a_shipped_model(method, layer, cifar):
    model, x, targets = cifar
    peer = pgc_map(model, method, layer, x, targets)
    mine = (
        eigen_relation(model, method, layer, x, targets, peer)
        if method in EIGEN
        else ours(model, method, layer, x, targets)
    )
    assert min(pearson(mine, peer)) >= 0.99, pearson(mine, peer)


@pytest.mark.parametrize("layer", ["relu2", "relu3"])
@pytest.mark.parametrize("method", ["xgrad_cam", "layer_cam", "score_cam"])
def test_agrees_with_torch_cam_on_a_shipped_model(method, layer, cifar):
    model, x, targets = cifar
    r = pearson(ours(model, method, layer, x, targets), tc_map(model, method, layer, x, targets))
    if method == "score_cam":
        # torch-cam scales each map before upsampling it (see _score_cam): as close to ours as
        # it is to pytorch-grad-cam's, which ours equals
        between = pearson(pgc_map(model, method, layer, x, targets), tc_map(model, method, layer, x, targets))
        np.testing.assert_allclose(r, between, atol=1e-3)
        assert min(r) >= 0.9, r
    else:
        assert min(r) >= 0.9999, r


def test_ablation_cam_equals_pytorch_grad_cam_on_the_shipped_alexnet():
    spec = interp.get_spec("alexnet_gap_pacs_class")
    model = interp.load_model("alexnet_gap_pacs_class")
    x = held_out_batch(spec, 1, data_dir="/nonexistent").x
    with torch.no_grad():
        target = [int(model(x).argmax())]
    mine = pgc_scaled(ours(model, "ablation_cam", "features.relu5", x, target))
    np.testing.assert_allclose(mine, pgc_map(model, "ablation_cam", "features.relu5", x, target), atol=1e-4)


def test_layer_cam_fuses_layers_as_torch_cam(cifar):
    """Jiang et al.'s fusion: tanh(2 M / max M) per layer, upsampled to the largest layer, element-wise max."""
    import torchcam.methods

    model, x, targets = cifar
    layers = ["relu1", "relu2", "relu3"]  # 32, 16 and 8 px maps
    e = interp.explain(model, x, "layer_cam", target=targets, layer=layers)
    assert e.layer == "relu1+relu2+relu3" and e.map.shape == (3, 32, 32)
    ref = not_inplace_copy(model)
    with torchcam.methods.LayerCAM(ref, layers, input_shape=(3, 32, 32)) as extractor:
        cams = extractor(class_idx=targets, scores=ref(x))  # min-max scaled: min(M) is 0 here, as M / max M
        assert all(float(c.amin((1, 2)).max()) == 0 for c in cams)
        fused = extractor.fuse_cams(cams).detach().numpy()  # 32 px, the largest layer: no last resize
    np.testing.assert_allclose(e.map, fused, atol=1e-5)


def test_eigen_cam_is_the_first_principal_component_with_positive_loadings(cifar):
    model, x, targets = cifar
    act = torch.as_tensor(interp.methods.feature_maps(model, x, ["relu3"])["relu3"]).double()
    for center in (True, False):
        got = ours(model, "eigen_cam", "relu3", x, targets, relu=False, center=center)
        for i in range(len(x)):
            m = act[i].flatten(1).T  # pixels x channels
            m = m - m.mean(0) if center else m
            v = torch.linalg.svd(m, full_matrices=False).Vh[0]
            v = v if v.sum() > 0 else -v
            expected = F.interpolate((m @ v).reshape(1, 1, 8, 8), size=(32, 32), mode="bilinear")[0, 0]
            np.testing.assert_allclose(got[i], expected.numpy(), rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


class _Tail(nn.Module):
    """conv -> [block] -> conv (no ReLU: negative maps) -> GAP -> Linear; the block adds or concatenates
    its input to its output (a residual or a dense connection across the ablated layer)."""

    def __init__(self, join: str):
        super().__init__()
        torch.manual_seed(0)
        self.join = join
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)  # the ablated layer
        self.conv3 = nn.Conv2d(8 if join == "cat" else 4, 5, 3, padding=1)
        self.fc = nn.Linear(5, 3)
        self.head_batches: list[int] = []

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        self.head_batches.append(a.shape[0])
        b = self.conv2(a)
        b = torch.cat([a, b], 1) if self.join == "cat" else a + b
        return self.fc(self.conv3(b).mean((2, 3)))


def _ablation_by_hand(model, layer, x, targets):
    """(y - y_k) / y with channel k of the layer's output zeroed by a hook, one image and channel at a time."""
    module, maps = model.get_submodule(layer), []
    for i, t in enumerate(targets):
        with torch.no_grad():
            store: list[torch.Tensor] = []
            h = module.register_forward_hook(lambda mod, inp, out, store=store: store.append(out.clone()))
            y = float(model(x[i : i + 1])[0, t])
            h.remove()
            a = store[0][0]
            w = []
            for k in range(a.shape[0]):

                def zero(mod, inp, out, k=k):
                    out = out.clone()
                    out[:, k] = 0
                    return out

                h = module.register_forward_hook(zero)
                w.append((y - float(model(x[i : i + 1])[0, t])) / y)
                h.remove()
            maps.append(torch.einsum("c,chw->hw", torch.tensor(w, dtype=a.dtype), a).clamp(min=0))
    return F.interpolate(torch.stack(maps)[:, None], size=x.shape[-2:], mode="bilinear")[:, 0].numpy()


@pytest.mark.parametrize("join", ["add", "cat"])
def test_ablation_cam_runs_the_layers_before_once_per_pass_and_zeroes_channels(join):
    """A residual connection lets the layers before the ablated one run on the single image (the
    copies broadcast against it); a concatenation cannot mix the batches, so the whole model runs
    on copies. Both give the hand computation: zero ablation, also where maps are negative
    (pytorch-grad-cam ablates those with their minimum minus 1e7)."""
    model = _Tail(join).eval()
    x, targets = image_batch(2, 12, seed=5), [0, 2]
    expected = _ablation_by_hand(model, "conv2", x, targets)
    model.head_batches.clear()
    got = ours(model, "ablation_cam", "conv2", x, targets, batch_size=3)  # 4 channels: passes of 3 and 1
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    # One pass of both images for their maps and logits; then per image a pass of 3 copies and one
    # of 1, where the layers before run at batch 1. The concatenation fails the first such pass,
    # which runs again on 3 copies of the image, as do all after it.
    expected_batches = [2, 1, 1, 1, 1] if join == "add" else [2, 1, 3, 1, 3, 1]
    assert model.head_batches == expected_batches


@pytest.mark.parametrize("method", ["score_cam", "ablation_cam"])
def test_batch_size_changes_nothing_but_speed(method, tiny_gap_model):
    with torch.no_grad():
        tiny_gap_model.conv2.weight[0] = 0  # a dead channel: Score-CAM scores a black image for it
        tiny_gap_model.conv2.bias[0] = -1
    x = image_batch(2, 16)
    one = ours(tiny_gap_model, method, "relu2", x, [0, 1], batch_size=1)
    np.testing.assert_allclose(ours(tiny_gap_model, method, "relu2", x, [0, 1]), one, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pgc_scaled(one), pgc_map(tiny_gap_model, method, "relu2", x, [0, 1]), atol=2e-5)


def test_layer_errors(tiny_gap_model):
    x = image_batch(1, 16)
    for method in CAM_FAMILY:
        with pytest.raises(interp.LayerError, match="feature maps"):
            interp.explain(tiny_gap_model, x, method, layer="fc")
        with pytest.raises(interp.LayerError, match="does not exist"):
            interp.explain(tiny_gap_model, x, method, layer="conv9")
    with pytest.raises(interp.LayerError, match="non-empty"):
        interp.explain(tiny_gap_model, x, "layer_cam", layer=[])
    assert hooks_left(tiny_gap_model) == []


CALLS = {**{m: {} for m in CAM_FAMILY}, "layer_cam fused": {"layer": ["conv1", "relu2"]}}


@pytest.mark.parametrize("name", list(CALLS))
def test_no_hooks_or_changes_remain_after_success_or_an_exception(name, tiny_bomb_model):
    m = tiny_bomb_model
    method, options = name.split()[0], CALLS[name]
    x = image_batch(2, 16)
    before = snapshot(m)
    interp.explain(m, x, method, **options)  # the first call on a model may trace it once
    m.bomb.calls = 0
    interp.explain(m, x, method, **options)
    assert hooks_left(m) == [] and m.bomb.calls >= 1
    assert_unchanged(before, m)
    forwards = m.bomb.calls
    for fuse in sorted({1, min(2, forwards), forwards}):  # fail in the first, the second and the last pass
        m.bomb.calls, m.bomb.fuse = 0, fuse
        with pytest.raises(RuntimeError, match="bomb"):
            interp.explain(m, x, method, **options)
        assert hooks_left(m) == [], (name, fuse)
        assert_unchanged(before, m)
    m.bomb.fuse = 0
    np.testing.assert_array_equal(
        interp.explain(copy.deepcopy(m), x, method, **options).map, interp.explain(m, x, method, **options).map
    )

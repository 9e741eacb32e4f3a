"""Every method and every page on eight of torchvision's architectures with random weights, each
brought as a user's model (tests/models_files/torchvision_zoo.py): batch norm, depthwise and
grouped convolutions, SiLU and Hardswish, squeeze-and-excitation, residual and dense blocks,
LayerNorm in another layout (ConvNeXt), heads that are not GAP -> Linear."""

from __future__ import annotations

import numpy as np
import pytest

import interp
from interp import methods
from interp.data import zebra_path
from interp.models import load_models_files
from tests.apptest import REPO, no_errors, open_page
from tests.methods.helpers import FAST

ZOO_FILE = REPO / "tests" / "models_files" / "torchvision_zoo.py"
ZOO = [
    "resnet50",
    "vgg11_bn",
    "densenet121",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "convnext_tiny",
    "regnet_y_400mf",
    "squeezenet1_1",
]
# CAM needs global average pooling read by one linear layer (or pooled class maps): these have it.
CAM_APPLIES = {"resnet50", "efficientnet_b0", "regnet_y_400mf", "squeezenet1_1"}
# DeepLIFT has rules for activation modules only: DenseNet applies F.relu, the others GELU, SiLU,
# Hardswish, which it refuses rather than silently differentiating them.
DEEPLIFT_APPLIES = {"resnet50", "vgg11_bn", "regnet_y_400mf", "squeezenet1_1"}
# LRP has no rule for ConvNeXt's LayerNorm (and layer scale), which it refuses by name; the others
# have canonizers for their batch norms, residual sums and gates.
LRP_APPLIES = set(ZOO) - {"convnext_tiny"}
# The last stage's maps at 64 px: the architectures' final widths (channels first), 1/32 of the side
# (VGG's pool5 comes after its last conv; SqueezeNet's pooled maps are its 5 class maps).
LAST_STAGE = {
    "resnet50": (2048, 2, 2),
    "vgg11_bn": (512, 4, 4),
    "densenet121": (1024, 2, 2),
    "mobilenet_v3_small": (576, 2, 2),
    "efficientnet_b0": (1280, 2, 2),
    "convnext_tiny": (768, 2, 2),
    "regnet_y_400mf": (440, 2, 2),
    "squeezenet1_1": (5, 3, 3),
}


@pytest.fixture(scope="module")
def zoo():
    assert load_models_files([ZOO_FILE]) == {}
    return {arch: interp.load_model(f"zoo_{arch}") for arch in ZOO}


@pytest.mark.parametrize("arch", ZOO)
def test_every_method_on(arch, zoo):
    model = zoo[arch]
    x = interp.preprocess(interp.load_image(zebra_path()), interp.get_spec(f"zoo_{arch}"))
    for method in methods.METHODS:
        if method == "cam" and arch not in CAM_APPLIES:
            with pytest.raises(interp.CamNotApplicableError, match="use method 'grad_cam'"):
                interp.explain(model, x, method)
            continue
        if method == "deeplift" and arch not in DEEPLIFT_APPLIES:
            with pytest.raises(interp.MethodError, match="integrated_gradients"):
                interp.explain(model, x, method)
            continue
        if methods.get_method(method).family == "Relevance propagation" and arch not in LRP_APPLIES:
            with pytest.raises(interp.MethodError, match=r"LRP has no rule for layer '.*' \(LayerNorm2d\)"):
                interp.explain(model, x, method)
            continue
        e = interp.explain(model, x, method, **FAST.get(method, {}))
        assert e.spatial().shape == (64, 64) and np.isfinite(e.map).all(), (arch, method)
    # Grad-CAM's default layer: the last stage's channel-first maps (ConvNeXt's blocks also hold
    # N x H x W x C tensors, which it must not pick)
    layer = methods.default_layer(model, x)
    assert methods.feature_maps(model, x, [layer])[layer].shape == LAST_STAGE[arch], (arch, layer)


@pytest.mark.parametrize(
    "page",
    [
        "filters.py",
        "feature_maps.py",
        "filter_activations.py",
        "cam.py",
        "gradients.py",
        "sanity.py",
        "faithfulness.py",
        "architecture.py",
    ],
)
def test_every_page_on_the_zoo(page, zoo, monkeypatch):
    monkeypatch.setenv("INTERP_MODELS", str(ZOO_FILE))
    for arch in ZOO:
        at = open_page(page, model=f"zoo_{arch}")
        no_errors(at)
        assert at.selectbox(key="model").value == f"zoo_{arch}"
        if page == "cam.py" and arch not in CAM_APPLIES:
            assert any("CAM does not apply" in i.value for i in at.info), arch

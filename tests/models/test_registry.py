"""Architectures against the course's layer tables (output shapes and parameter counts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import interp
from interp import methods
from interp.models import count_parameters, layer_table

# (layer, output C x H x W, parameters) for n = 4 classes: the course's AlexNet table.
ALEXNET_TABLE = [
    ("features.conv1", (96, 55, 55), 34_944),
    ("features.pool1", (96, 27, 27), 0),
    ("features.conv2", (256, 27, 27), 614_656),
    ("features.pool2", (256, 13, 13), 0),
    ("features.conv3", (384, 13, 13), 885_120),
    ("features.conv4", (384, 13, 13), 1_327_488),
    ("features.conv5", (256, 13, 13), 884_992),
    ("features.pool5", (256, 6, 6), 0),
    ("classifier.fc6", (4096,), 37_752_832),
    ("classifier.fc7", (4096,), 16_781_312),
    ("classifier.fc8", (4,), 16_388),
]
LARGE_KERNEL_TABLE = [
    ("features.conv1", (96, 27, 27), 127_104),
    ("features.conv2", (256, 13, 13), 1_204_480),
    ("features.conv3", (384, 13, 13), 885_120),
    ("features.conv4", (384, 13, 13), 1_327_488),
    ("features.conv5", (256, 6, 6), 884_992),
    ("classifier.fc6", (4096,), 37_752_832),
    ("classifier.fc7", (4096,), 16_781_312),
    ("classifier.fc8", (4,), 16_388),
]


def _rows(name: str) -> dict[str, dict]:
    spec = interp.get_spec(name)
    rows, _ = layer_table(spec.build(), spec.input_size)
    return {r["layer"]: r for r in rows}


@pytest.mark.parametrize(
    "name, table",
    [
        ("alexnet_pacs_domain", ALEXNET_TABLE),
        ("alexnet_avgpool_pacs_domain", ALEXNET_TABLE),
        ("alexnet_large_kernel_pacs_domain", LARGE_KERNEL_TABLE),
    ],
)
def test_alexnet_family_layer_tables(name, table):
    rows = _rows(name)
    for layer, shape, params in table:
        assert rows[layer]["output"] == shape, layer
        assert rows[layer]["parameters"] == params, layer


def test_alexnet_totals_and_kernels():
    assert count_parameters(interp.build_model("alexnet_pacs_domain")) == 58_297_732
    assert count_parameters(interp.build_model("alexnet_avgpool_pacs_domain")) == 58_297_732
    rows = _rows("alexnet_pacs_domain")
    assert (rows["features.conv1"]["kernel"], rows["features.conv1"]["stride"]) == ("11", "4")
    assert (rows["features.conv2"]["kernel"], rows["features.conv2"]["padding"]) == ("5", "2")
    assert rows["features.pool1"]["type"] == "MaxPool2d"
    assert "classifier.dropout6" in rows and "classifier.dropout7" in rows
    # No dropout between fc7 and fc8, as in the table.
    order = list(rows)
    assert order.index("classifier.fc8") == order.index("classifier.relu7") + 1


def test_avgpool_variant_replaces_every_maxpool():
    model = interp.build_model("alexnet_avgpool_pacs_class")
    kinds = [type(m) for m in model.modules()]
    assert nn.MaxPool2d not in kinds
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 3 and all((p.kernel_size, p.stride) == (3, 2) for p in pools)


def test_large_kernel_variant_has_no_pooling():
    model = interp.build_model("alexnet_large_kernel_pacs_domain")
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())
    conv1 = model.features.conv1
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((21, 21), (8, 8), (1, 1))


def test_alexnet_gap_is_conv_stack_then_gap_and_one_linear():
    rows = _rows("alexnet_gap_pacs_class")
    linears = [r for r in rows.values() if r["type"] == "Linear"]
    assert len(linears) == 1 and linears[0]["parameters"] == 256 * 7 + 7
    assert rows["features.relu5"]["output"] == (256, 13, 13)
    assert rows["classifier.gap"]["output"] == (256, 1, 1)


def test_table2_cnn_parameters():
    rows = _rows("table2_cnn_cifar10")
    assert count_parameters(interp.build_model("table2_cnn_cifar10")) == 390_410
    assert [rows[f"conv{i}"]["output"] for i in (1, 2, 3)] == [(32, 32, 32), (64, 16, 16), (128, 8, 8)]
    assert rows["fc1"]["parameters"] == 2048 * 64 + 64


def test_vanilla_cnn_shapes():
    rows = _rows("vanilla_cnn_cifar10")
    assert rows["conv1"]["output"] == (32, 26, 26)
    assert rows["fc"]["parameters"] == 5408 * 10 + 10


def test_nin_has_no_dense_layer_and_class_channels():
    model = interp.build_model("nin_cifar10")
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    rows = _rows("nin_cifar10")
    assert rows["features.conv3_3"]["output"][0] == 10
    assert rows["features.conv1_2"]["kernel"] == "1"


def test_resnet32_depth_and_size():
    model = interp.build_model("resnet32_cifar10")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 32  # 31 convs + fc: 6n+2 layers with n = 5
    assert 0.46e6 < count_parameters(model) < 0.47e6  # He et al.: 0.46 M


def test_resnet50_bottlenecks():
    model = interp.build_model("resnet50_cifar10")
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3, 4)] == [3, 4, 6, 3]
    block = model.layer2[0]
    assert block.conv2.stride == (2, 2) and block.conv1.stride == (1, 1)  # stride on the 3x3
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.padding) == ((7, 7), (2, 2), (3, 3))


def test_transfer_model_freezes_all_but_layer4_and_fc():
    model = interp.build_model("resnet18_transfer_cifar10")
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    assert model.fc.out_features == 10


@pytest.mark.parametrize("name", interp.list_models())
def test_every_entry_builds_and_runs_forward(name):
    spec = interp.get_spec(name)
    model = spec.build().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, spec.input_size, spec.input_size))
    assert out.shape == (2, spec.num_classes)
    assert torch.isfinite(out).all()
    assert spec.target_layer is None  # the Grad-CAM layer comes from the model (methods.layers) alone
    model.get_submodule(methods.default_layer(model, torch.zeros(1, 3, spec.input_size, spec.input_size)))


def test_registry_table_needs_no_torchvision_and_counts_as_torchvision_does():
    """The Home table (models.registry_rows) counts ResNet parameters by formula and the registry
    carries ImageNet's class names itself, so a fresh process never imports torchvision for them
    (nor torch._dynamo, which initialising meta tensors would pull in);
    both must equal what torchvision's own models and weights say."""
    import subprocess
    import sys

    from torchvision import models as tvm

    from interp.models import parameter_count
    from interp.models.registry import imagenet_categories

    assert imagenet_categories() == list(tvm.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    from interp.models.weights import TORCHVISION_FILES

    for arch, filename in TORCHVISION_FILES.items():
        assert tvm.get_model_weights(arch).IMAGENET1K_V1.url.rsplit("/", 1)[1] == filename
    for spec in (interp.get_spec(n) for n in interp.list_models()):
        if spec.arch.startswith("resnet") and spec.arch != "resnet32":
            with torch.device("meta"):
                built = sum(p.numel() for p in spec.build().parameters())
            assert parameter_count(spec) == built, spec.name
    probe = (
        "import sys; from interp.models import registry_rows; registry_rows(); "
        "print(*(m in sys.modules for m in ('torchvision', 'scipy', 'torch._dynamo')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]  # each costs seconds at the dashboard's start


def test_torchvision_entry_is_ready_only_once_its_weights_are_cached(tmp_path, monkeypatch):
    from interp.models import has_weights, registry_rows, torchvision_weights_file, weights_command, weights_status

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty torch cache
    spec = interp.get_spec("resnet18_imagenet")
    assert not has_weights(spec)
    assert weights_status(spec) == "torchvision (not downloaded)"
    assert weights_command(spec) == "python -m interp fetch resnet18_imagenet"
    cached = torchvision_weights_file("resnet18")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")  # only its presence is read here
    assert has_weights(spec) and weights_status(spec) == "torchvision (cached)" and weights_command(spec) == ""
    row = next(r for r in registry_rows() if r["model"] == "nin_cifar10")
    assert (row["weights"], row["get weights"]) == ("checkpoint", "")

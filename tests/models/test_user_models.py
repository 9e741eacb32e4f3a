"""Your own model: register_model, models files, the command line and the dashboard, on a
custom 5-class network with a non-square input (tests/models_files/my_models.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import interp
from interp.__main__ import main
from interp.data import zebra_path
from interp.methods import METHODS
from interp.models import load_models_files
from tests.apptest import REPO, no_errors, open_page

FILES = REPO / "tests" / "models_files"
MY_MODELS = FILES / "my_models.py"


@pytest.fixture(scope="module")
def my_model():
    assert load_models_files([MY_MODELS]) == {}
    return interp.get_spec("my_tinynet")


def test_the_models_file_registers_a_non_square_5_class_model(my_model):
    assert my_model.input_hw == (48, 64) and my_model.num_classes == 5 and my_model.task == "user"
    first, second = interp.load_model("my_tinynet"), interp.load_model("my_tinynet")
    with torch.no_grad():
        first.fc.weight.zero_()  # a caller changing its copy changes nobody else's
    assert not torch.equal(first.fc.weight, second.fc.weight)
    x = interp.preprocess(interp.load_image(zebra_path()), my_model)
    assert x.shape == (1, 3, 48, 64)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_at_the_models_own_input_size(method, my_model):
    model = interp.load_model("my_tinynet")
    x = interp.preprocess(interp.load_image(zebra_path()), my_model)
    e = interp.explain(model, x, method)
    assert e.spatial().shape == (48, 64) and np.isfinite(e.map).all()
    assert 0 <= e.target < 5


def test_a_failing_models_file_reports_once_and_keeps_the_rest(capsys):
    problems = load_models_files([FILES / "broken.py"])
    ((path, message),) = problems.items()
    failing = next(i for i, line in enumerate((FILES / "broken.py").read_text().splitlines(), 1) if "raise" in line)
    assert path.name == "broken.py" and f"line {failing}" in message and "a mistake in the user's file" in message
    assert "before_the_error" in interp.list_models()  # registered before the failing line
    assert main(["models", "--models", str(FILES / "broken.py")]) == 0
    err = capsys.readouterr().err
    assert err.count("broken.py") == 1 and "warning:" in err


def test_register_model_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(ValueError, match="interp's own"):
        interp.register_model("nin_cifar10", nn.Linear(2, 2), classes=2, input_size=8)
    with pytest.raises(ValueError, match="input_size"):
        interp.register_model("odd", nn.Linear(2, 2), classes=2, input_size=(0, 8))
    with pytest.raises(interp.CheckpointError, match="no weights file"):
        interp.register_model("odd", nn.Linear(2, 2), classes=2, input_size=8, weights=tmp_path / "none.pt")


def test_a_weights_file_of_the_wrong_shapes_is_refused_by_name(tmp_path, my_model):
    from tests.models_files.my_models import TinyNet

    wrong = {k: v for k, v in TinyNet(classes=7).state_dict().items()}
    save_file({k: v.contiguous() for k, v in wrong.items()}, str(tmp_path / "wrong.safetensors"))
    interp.register_model(
        "tinynet_from_file", TinyNet, classes=5, input_size=(48, 64), weights=tmp_path / "wrong.safetensors"
    )
    with pytest.raises(interp.CheckpointError, match=r"fc.weight has shape \(7, 16\)"):
        interp.load_model("tinynet_from_file")
    right = TinyNet(classes=5).state_dict()
    torch.save(right, tmp_path / "right.pt")
    interp.register_model("tinynet_from_file", TinyNet, classes=5, input_size=(48, 64), weights=tmp_path / "right.pt")
    loaded = interp.load_model("tinynet_from_file")
    assert all(torch.equal(loaded.state_dict()[k], v.to(loaded.state_dict()[k].dtype)) for k, v in right.items())


def test_command_line_explains_the_users_model(my_model, tmp_path, capsys):
    base = [
        "explain",
        "--models",
        str(MY_MODELS),
        "--model",
        "my_tinynet",
        "--method",
        "grad_cam",
        "--image",
        str(zebra_path()),
        "--target",
        "2",
    ]
    assert main(base + ["--out", str(tmp_path / "map.npy")]) == 0
    assert main(base + ["--out", str(tmp_path / "overlay.png")]) == 0
    x = interp.preprocess(interp.load_image(zebra_path()), my_model)
    expected = interp.explain(interp.load_model("my_tinynet"), x, "grad_cam", target=2).map
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), expected)
    with Image.open(tmp_path / "overlay.png") as img:
        assert img.size == (64, 48)  # width x height of the model's input
    assert "class 2 (fox" in capsys.readouterr().out


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
        "training.py",
        "architecture.py",
        "filter_look.py",
        "concepts.py",
        "report_card.py",
    ],
)
def test_every_page_works_on_the_users_model(page, my_model, monkeypatch):
    monkeypatch.setenv("INTERP_MODELS", str(MY_MODELS))
    at = open_page(page, model="my_tinynet")
    no_errors(at)
    assert at.selectbox(key="model").value == "my_tinynet"
    # no held-out images of the user's classes: said calmly
    if page in ("cam.py", "faithfulness.py", "concepts.py", "report_card.py"):
        assert any("is your model" in i.value for i in at.info)


def test_torchvision_classifiers_by_name(tmp_path, monkeypatch):
    from torchvision import models as tvm

    from interp.models import has_weights, torchvision_weights_file, weights_command

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty torch cache, offline
    spec = interp.get_spec("torchvision/efficientnet_b0")
    weights = tvm.EfficientNet_B0_Weights.DEFAULT
    assert (
        spec.class_names == tuple(weights.meta["categories"]) and spec.input_size == weights.transforms().crop_size[0]
    )
    assert (spec.mean, spec.std) == (tuple(weights.transforms().mean), tuple(weights.transforms().std))
    assert not has_weights(spec) and weights_command(spec) == "python -m interp fetch torchvision/efficientnet_b0"
    assert torchvision_weights_file("efficientnet_b0").name == weights.url.rsplit("/", 1)[1]
    import urllib.error

    from torchvision.models import _api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_api, "load_state_dict_from_url", offline)  # offline, whatever the test machine
    with pytest.raises(interp.CheckpointError, match="could not download.*no network"):
        interp.load_model("torchvision/efficientnet_b0")
    with pytest.raises(interp.UnknownModelError, match="no image classifier 'resnet51'"):
        interp.get_spec("torchvision/resnet51")


def test_a_torchvision_name_takes_the_head_of_its_checkpoint(tmp_path, capsys):
    """`--model torchvision/<builder> --checkpoint` of a fine-tuned 7-class file: the head is sized
    from the file (random weights stand in for a fine-tuned model; ImageNet's cannot be fetched here)."""
    from safetensors.torch import save_file
    from torchvision import models as tvm

    from interp.models import checkpoint_spec

    torch.manual_seed(4)
    seven = tvm.mobilenet_v3_small(num_classes=7).state_dict()
    path = tmp_path / "seven_classes.safetensors"
    save_file({k: v.contiguous() for k, v in seven.items()}, str(path))
    model = interp.load_model("torchvision/mobilenet_v3_small", checkpoint=path)
    head = model.classifier[3]
    assert head.out_features == 7 and torch.equal(head.bias, seven["classifier.3.bias"])
    spec = checkpoint_spec("torchvision/mobilenet_v3_small", path)
    assert spec.class_names == tuple(f"class {i}" for i in range(7)) and spec.input_size == 224
    assert interp.get_spec("torchvision/mobilenet_v3_small").num_classes == 1000  # the registry entry is unchanged
    out = tmp_path / "map.png"
    assert (
        main(
            [
                "explain",
                "--model",
                "torchvision/mobilenet_v3_small",
                "--checkpoint",
                str(path),
                "--method",
                "grad_cam",
                "--image",
                str(zebra_path()),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (224, 224)
    # A head that fits no number of classes (weight and bias disagree) is refused, naming both.
    seven["classifier.3.bias"] = torch.zeros(5)
    save_file({k: v.contiguous() for k, v in seven.items()}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(
        interp.CheckpointError,
        match=r"classifier.3.weight has shape \(7, 1024\), the model "
        r"expects \(1000, 1024\); classifier.3.bias has shape \(5,\)",
    ):
        interp.load_model("torchvision/mobilenet_v3_small", checkpoint=tmp_path / "odd.safetensors")


def test_fine_tuned_torchvision_weights_get_a_head_of_their_size(tmp_path):
    from torchvision import models as tvm

    torch.manual_seed(3)
    fine_tuned = tvm.resnet18(num_classes=5).state_dict()
    torch.save(fine_tuned, tmp_path / "ft.pt")
    interp.register_model(
        "my_resnet18",
        "torchvision/resnet18",
        classes=["a", "b", "c", "d", "e"],
        weights=tmp_path / "ft.pt",
        input_size=64,
    )
    model = interp.load_model("my_resnet18")
    assert model.fc.out_features == 5 and torch.equal(model.fc.weight, fine_tuned["fc.weight"])
    x = interp.preprocess(interp.load_image(zebra_path()), interp.get_spec("my_resnet18"))
    assert interp.explain(model, x, "cam").map.shape == (64, 64)
    with pytest.raises(ValueError, match="torchvision/<builder>"):
        interp.register_model("odd", "resnet18", classes=2)

"""interp.explain and `python -m interp explain`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import interp
from interp.__main__ import main
from interp.methods import METHODS, MethodError, TargetError
from interp.methods.explain import LAYER_METHODS, SPATIAL_METHODS
from interp.models.weights import save_checkpoint
from tests.apptest import REPO
from tests.conftest import _tiny_gap
from tests.methods.helpers import FAST, image_batch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_explanation_fields_and_default_target(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(1, 16)
    with torch.no_grad():
        probs = torch.softmax(m(x), 1)[0]
    for method in METHODS:
        e = interp.explain(m, x, method, **FAST.get(method, {}))
        assert isinstance(e, interp.Explanation) and e.method == method and not e.batched
        assert e.target == int(probs.argmax()) and e.probability == pytest.approx(float(probs.max()), rel=1e-5)
        assert e.map.shape == ((16, 16) if method in SPATIAL_METHODS else (3, 16, 16))
        assert e.map.dtype == np.float32 and e.spatial().shape == (16, 16)
        assert (e.layer is None) == (method not in LAYER_METHODS)
    e = interp.explain(m, x[0], "grad_cam", target=1)  # C x H x W works too
    assert e.target == 1 and e.probability == pytest.approx(float(probs[1]), rel=1e-5)


def test_batches_match_single_images(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(3, 16)
    for method in METHODS:
        e = interp.explain(m, x, method, target=[0, 1, 2], **FAST.get(method, {}))
        assert e.batched and e.map.shape[0] == 3 and e.spatial().shape == (3, 16, 16)
        np.testing.assert_array_equal(e.target, [0, 1, 2])
        for i in range(3):
            one = interp.explain(m, x[i : i + 1], method, target=i, **FAST.get(method, {}))
            if method not in ("smoothgrad", "vargrad", "gradient_shap"):  # noise drawn for the whole batch at once
                np.testing.assert_allclose(e.map[i], one.map, rtol=1e-4, atol=1e-6)
            assert e.probability[i] == pytest.approx(one.probability, rel=1e-5)


def test_user_errors_are_interp_errors(tiny_gap_model):
    m = tiny_gap_model
    x = image_batch(2, 16)
    with pytest.raises(MethodError, match="grad_cam"):
        interp.explain(m, x, "gradcam")
    with pytest.raises(MethodError, match="n_samples"):
        interp.explain(m, x, "saliency", n_samples=3)
    for bad in (3, -1, [0, 1, 2], 1.5, "cat"):
        with pytest.raises(TargetError):
            interp.explain(m, x, "saliency", target=bad)
    for bad in (
        torch.zeros(16, 16),
        torch.zeros(1, 1, 3, 16, 16),
        torch.full((1, 3, 16, 16), float("nan")),
        torch.zeros(1, 3, 16, 16, dtype=torch.uint8),
        np.zeros((3, 16, 16)),
    ):
        with pytest.raises(interp.ImageError):
            interp.explain(m, bad, "saliency")
    with pytest.raises(interp.LayerError, match="does not exist"):
        interp.explain(m, x, "grad_cam", layer="conv9")
    assert all(issubclass(e, interp.InterpError) for e in (MethodError, TargetError, interp.CamNotApplicableError))


def test_explain_under_inference_mode(tiny_gap_model):
    with torch.inference_mode():
        x = image_batch(1, 16)
        e = interp.explain(tiny_gap_model, x, "guided_grad_cam")
    assert np.isfinite(e.map).all() and np.abs(e.map).max() > 0


@pytest.fixture(scope="module")
def nin_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "nin.safetensors"
    torch.manual_seed(0)
    save_checkpoint(interp.build_model("nin_cifar10"), path, "nin", half=False)
    return path


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "img.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("method", list(METHODS))
def test_cli_explain_writes_png_and_npy(method, nin_checkpoint, image_file, tmp_path, capsys):
    base = [
        "explain",
        "--model",
        "nin_cifar10",
        "--method",
        method,
        "--image",
        str(image_file),
        "--checkpoint",
        str(nin_checkpoint),
        "--target",
        "3",
    ]
    assert main(base + ["--out", str(tmp_path / "map.npy")]) == 0
    assert main(base + ["--out", str(tmp_path / "overlay.png")]) == 0
    raw = np.load(tmp_path / "map.npy")
    spec = interp.get_spec("nin_cifar10")
    model = interp.load_model("nin_cifar10", nin_checkpoint)
    x = interp.preprocess(interp.load_image(image_file), spec)
    options = dict(mean=spec.mean, std=spec.std) if method in ("lime", "kernel_shap") else {}
    np.testing.assert_array_equal(raw, interp.explain(model, x, method, target=3, **options).map)
    with Image.open(tmp_path / "overlay.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    assert "class 3 (cat" in capsys.readouterr().out


def test_cli_errors_without_traceback(nin_checkpoint, image_file, tmp_path, capsys):
    base = ["explain", "--model", "nin_cifar10", "--image", str(image_file), "--checkpoint", str(nin_checkpoint)]
    assert main(base + ["--method", "cam", "--target", "10", "--out", str(tmp_path / "a.png")]) == 2
    assert main(base + ["--method", "cam", "--out", str(tmp_path / "a.jpg")]) == 2
    assert main(base + ["--method", "grad_cam", "--layer", "nope", "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "target class 10" in err and ".png" in err and "nope" in err and "Traceback" not in err


def test_python_dash_m_interp_explain(nin_checkpoint, image_file, tmp_path):
    out = tmp_path / "cam.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "interp",
            "explain",
            "--model",
            "nin_cifar10",
            "--method",
            "cam",
            "--image",
            str(image_file),
            "--checkpoint",
            str(nin_checkpoint),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "layer features.relu3_3" in proc.stdout


def test_layer_resolution_maps_upsample_to_the_input_maps():
    """resolution='layer' is each CAM as computed; bilinear upsampling gives the default map."""
    from interp.methods.explain import LAYER_RESOLUTION_METHODS

    model = _tiny_gap({"pool": nn.MaxPool2d(2)})  # the last maps at half the input's size
    x = torch.randn(2, 3, 16, 16)
    for method in LAYER_RESOLUTION_METHODS:
        small = interp.explain(model, x, method, target=[1, 2], layer="pool", resolution="layer")
        full = interp.explain(model, x, method, target=[1, 2], layer="pool")
        assert small.map.shape == (2, 8, 8) and full.map.shape == (2, 16, 16), method
        up = F.interpolate(torch.from_numpy(small.map)[:, None], size=(16, 16), mode="bilinear", align_corners=False)
        np.testing.assert_allclose(
            up[:, 0].numpy(), full.map, rtol=1e-4, atol=1e-6 * np.abs(full.map).max(), err_msg=method
        )
    with pytest.raises(MethodError, match="layer's resolution"):
        interp.explain(model, x, "guided_grad_cam", layer="pool", resolution="layer")
    with pytest.raises(MethodError, match="resolution"):
        interp.explain(model, x, "grad_cam", resolution="full")

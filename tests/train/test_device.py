"""Devices: resolve_device's choice and messages (checked without a GPU by patching torch's
answers), --device on the commands that run a model, and, where CUDA exists, explain and
training on the GPU (tests marked ``cuda``, skipped elsewhere)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import interp
from interp.__main__ import main
from interp.errors import DeviceError, InterpError
from interp.hardware import available_devices, cuda_name, resolve_device
from interp.methods import METHODS
from interp.models.weights import save_checkpoint
from interp.train import RunSettings, config_for, precision_for, train
from interp.train import device as device_mod
from interp.train import loop as loop_mod
from interp.train.device import Batches
from interp.train.state import resume_key
from tests.methods.helpers import FAST, image_batch

TINY_RUN = ["--epochs", "1", "--batch-size", "4", "--limit-train", "8", "--limit-val", "4", "--no-progress"]


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("INTERP_DEVICE", raising=False)


def _cuda(monkeypatch, available: bool, count: int = 1) -> None:
    """Make torch answer as a machine with ``count`` CUDA GPUs (or none) would."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if available else 0)


def test_default_is_cuda_where_available_else_cpu(monkeypatch, no_env):
    _cuda(monkeypatch, False)
    assert resolve_device() == torch.device("cpu")
    _cuda(monkeypatch, True)
    assert resolve_device() == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_explicit_name_beats_the_environment_which_beats_the_default(monkeypatch):
    _cuda(monkeypatch, True)
    monkeypatch.setenv("INTERP_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("cuda") == torch.device("cuda")
    monkeypatch.setenv("INTERP_DEVICE", "")  # empty means unset
    assert resolve_device() == torch.device("cuda")


def test_unavailable_devices_say_what_there_is_and_how_to_choose(monkeypatch, no_env):
    _cuda(monkeypatch, False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name, why in (
        ("cuda", "torch.cuda.is_available() is False"),
        ("mps", "MPS"),
        ("gpu", "not a device"),
        ("xpu", "not a device interp runs on"),
    ):
        with pytest.raises(DeviceError) as info:
            resolve_device(name)
        msg = str(info.value)
        assert why in msg and "Available here: cpu." in msg, msg
        assert "--device cpu" in msg and "INTERP_DEVICE=cpu" in msg, msg
    _cuda(monkeypatch, True, count=1)
    with pytest.raises(DeviceError, match=r"1 CUDA device \(cuda:0\).*Available here: cpu, cuda:0"):
        resolve_device("cuda:3")
    _cuda(monkeypatch, True, count=2)
    with pytest.raises(DeviceError, match=r"2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")
    monkeypatch.setenv("INTERP_DEVICE", "cuda:7")
    with pytest.raises(DeviceError, match="INTERP_DEVICE='cuda:7'"):
        resolve_device()
    assert issubclass(DeviceError, InterpError) and issubclass(DeviceError, ValueError)


def test_available_devices_and_gpu_name_on_this_machine():
    found = available_devices()
    assert found[0] == "cpu" and len(found) == 1 + torch.cuda.device_count() + ("mps" in found)
    assert cuda_name("cpu") is None
    assert (cuda_name() is None) == (not torch.cuda.is_available())


def test_precision_per_device(monkeypatch):
    assert precision_for(torch.device("cpu"), True).name == "bfloat16 autocast"
    assert precision_for(torch.device("cpu"), False).name == "float32"
    assert precision_for(torch.device("cpu"), False).scaler() is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision_for(torch.device("cuda"), False).name == "bfloat16 autocast"  # bf16 describes the CPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision_for(torch.device("cuda"), True).name == "float16 autocast + GradScaler"


def test_batches_on_the_cpu_are_the_split_itself():
    x, y = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8), torch.arange(10)
    batches = Batches(x, y, torch.device("cpu"))
    assert batches.x is x and batches.y is y and not batches.staged and len(batches) == 10
    xb, yb = batches.take(torch.tensor([3, 1, 4]))
    assert torch.equal(xb, x[[3, 1, 4]]) and torch.equal(yb, y[[3, 1, 4]])


def test_the_device_is_a_run_setting_not_part_of_the_run_identity():
    cfg = config_for("linear_cnn_cifar10")
    assert RunSettings.given(device=None).device == "cpu"  # the library's default stays the CPU
    assert "device" not in resume_key(cfg, None)


@pytest.fixture(scope="module")
def nin_file(tmp_path_factory) -> str:
    """A randomly initialised nin_cifar10 checkpoint."""
    path = tmp_path_factory.mktemp("ckpt") / "nin.safetensors"
    torch.manual_seed(0)
    save_checkpoint(interp.build_model("nin_cifar10"), path, "nin", half=False)
    return str(path)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_load_model_stays_on_the_cpu_unless_told(nin_file, monkeypatch):
    assert next(interp.load_model("nin_cifar10", nin_file).parameters()).device.type == "cpu"
    assert next(interp.load_model("nin_cifar10", nin_file, device="cpu").parameters()).device.type == "cpu"
    _cuda(monkeypatch, False)
    with pytest.raises(DeviceError):
        interp.load_model("nin_cifar10", nin_file, device="cuda")


def _explain_args(nin_file, image_file, out, *extra) -> list[str]:
    return [
        "explain",
        "--model",
        "nin_cifar10",
        "--method",
        "grad_cam",
        "--image",
        str(image_file),
        "--checkpoint",
        nin_file,
        "--target",
        "3",
        "--out",
        str(out),
        *extra,
    ]


def test_explain_accepts_device_cpu_and_refuses_a_missing_gpu(nin_file, image_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_DEVICE", "cpu")  # the default, wherever the tests run
    assert main(_explain_args(nin_file, image_file, tmp_path / "plain.npy")) == 0
    assert main(_explain_args(nin_file, image_file, tmp_path / "cpu.npy", "--device", "cpu")) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "cpu.npy"), np.load(tmp_path / "plain.npy"))
    _cuda(monkeypatch, False)
    assert main(_explain_args(nin_file, image_file, tmp_path / "gpu.npy", "--device", "cuda")) == 2
    err = capsys.readouterr().err
    assert "--device cpu" in err and "Traceback" not in err


def test_evaluate_and_train_accept_device_cpu(nin_file, tmp_path, data_dir, capsys):
    assert main(["evaluate", "nin_cifar10", "--checkpoint", nin_file, "--limit", "8", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 8
    out = tmp_path / "linear.safetensors"
    assert main(["train", "linear_cnn_cifar10", *TINY_RUN, "--no-bf16", "--out", str(out), "--device", "cpu"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["device"] == "cpu" and card["settings"]["device"] == "cpu"
    assert card["precision"] == "float32" and card["hardware"]["gpu"] is None


@pytest.mark.parametrize("bad_step", [1, 2])  # mid-epoch, and the epoch's last step (read at its end)
def test_a_non_finite_loss_read_a_step_late_still_stops_the_run(bad_step, tmp_path, data_dir, monkeypatch):
    # The loop reads a step's loss after queueing the next step (so a GPU never idles): the run
    # must still stop at that loss, name its batch and write nothing.
    real_step, steps = loop_mod.optimizer_step, []

    def nan_once(*args, **kwargs):
        logits, loss = real_step(*args, **kwargs)
        steps.append(len(steps))
        return logits, (loss * float("nan") if steps[-1] == bad_step else loss)

    monkeypatch.setattr(loop_mod, "optimizer_step", nan_once)
    cfg = config_for("linear_cnn_cifar10", epochs=2, batch_size=4, limit_train=12, limit_val=4, bf16=False)
    out = tmp_path / "nan.safetensors"
    with pytest.raises(FloatingPointError, match=f"epoch 1, batch {bad_step}"):
        train("linear_cnn_cifar10", cfg, RunSettings(out=str(out), progress=False))
    assert not out.exists() and not out.with_name("nan.resume.pt").exists()


# ---------------------------------------------------------------------------------------------
# On a CUDA GPU (skipped without one)


@pytest.fixture
def cuda_device(monkeypatch) -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    # TF32 convolutions (cuDNN's default) round to ~1e-3: compare against float32 arithmetic.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    return torch.device("cuda")


@pytest.mark.cuda
def test_explain_on_cuda_matches_the_cpu(tiny_gap_model, cuda_device):
    on_gpu = copy.deepcopy(tiny_gap_model).to(cuda_device)
    x = image_batch(2, 16)
    for method in METHODS:
        cpu = interp.explain(tiny_gap_model, x, method, target=[0, 2], **FAST.get(method, {}))
        gpu = interp.explain(on_gpu, x, method, target=[0, 2], **FAST.get(method, {}))
        assert isinstance(gpu.map, np.ndarray) and isinstance(gpu.probability, np.ndarray), method
        np.testing.assert_allclose(gpu.map, cpu.map, atol=1e-4, rtol=1e-4, err_msg=method)
        np.testing.assert_allclose(gpu.probability, cpu.probability, atol=1e-5, err_msg=method)
    np.testing.assert_allclose(interp.methods.predict(on_gpu, x), interp.methods.predict(tiny_gap_model, x), atol=1e-5)


@pytest.mark.cuda
def test_cli_explain_on_cuda_matches_the_cpu(nin_file, image_file, tmp_path, cuda_device):
    assert main(_explain_args(nin_file, image_file, tmp_path / "cpu.npy", "--device", "cpu")) == 0
    assert main(_explain_args(nin_file, image_file, tmp_path / "gpu.npy", "--device", "cuda")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "gpu.npy"), np.load(tmp_path / "cpu.npy"), atol=1e-4, rtol=1e-4)


@pytest.mark.cuda
def test_training_two_steps_on_cuda(tmp_path, data_dir, cuda_device):
    name = "linear_cnn_cifar10"
    cfg = config_for(name, epochs=1, batch_size=4, limit_train=8, limit_val=4, augment=True)
    out = tmp_path / f"{name}.safetensors"
    card = train(name, cfg, RunSettings(out=str(out), progress=False, device="cuda"))
    assert len(card["history"]["step_loss"]) == 2 and card["metrics"]["n"] == 4
    assert card["device"].startswith("cuda") and card["settings"]["device"] == "cuda"
    assert card["hardware"]["gpu"] == torch.cuda.get_device_name() and "autocast" in card["precision"]
    assert card["throughput"]["bare_loop_images_per_s"] > 0
    model = interp.load_model(name, out)  # written from the GPU, read on the CPU
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.cuda
def test_batches_on_cuda_resident_or_staged_in_pinned_memory(cuda_device, monkeypatch):
    x, y = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8), torch.arange(10)
    for fraction, staged in ((1.0, False), (0.0, True)):  # 0: the split never fits, so it is pinned
        monkeypatch.setattr(device_mod, "RESIDENT_FRACTION", fraction)
        batches = Batches(x, y, cuda_device)
        assert batches.staged == staged and batches.x.is_pinned() == staged
        for idx in (torch.tensor([3, 1, 4, 1]), torch.tensor([9, 2]), torch.tensor([5, 0, 7, 6, 8])):
            xb, yb = batches.take(idx)
            assert xb.device.type == "cuda" and torch.equal(xb.cpu(), x[idx]) and torch.equal(yb.cpu(), y[idx])


@pytest.mark.cuda
def test_a_run_stopped_on_cuda_resumes_on_the_cpu(tmp_path, data_dir, cuda_device, monkeypatch):
    name = "linear_cnn_cifar10"
    cfg = config_for(name, epochs=2, batch_size=4, limit_train=8, limit_val=4)
    settings = RunSettings(out=str(tmp_path / "run.safetensors"), progress=False, device="cuda")
    real_lr = loop_mod.learning_rate

    def stop_at_step_3(c, step, total):
        if step == 3:
            raise KeyboardInterrupt
        return real_lr(c, step, total)

    monkeypatch.setattr(loop_mod, "learning_rate", stop_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(name, cfg, settings)
    monkeypatch.setattr(loop_mod, "learning_rate", real_lr)
    card = train(name, cfg, RunSettings(out=settings.out, progress=False, device="cpu"), resume=True)
    assert card["device"] == "cpu" and len(card["history"]["step_loss"]) == 4

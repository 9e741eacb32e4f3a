"""The training pipeline on small subsets of the real data: every entry, resume, determinism,
early stopping, transfer freezing, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import interp
from interp import train as train_mod
from interp.__main__ import main
from interp.train import TrainConfig, augment_batch, config_for, learning_rate, native_bf16, train

SMALL = dict(epochs=1, batch_size=4, lr=1e-3, limit_train=8, limit_val=4, progress=False, bf16=False)


def _cfg(name, tmp_path, **kw):
    return config_for(name, **{**SMALL, "out": str(tmp_path / f"{name}.safetensors"), **kw})


def _weights(path):
    return load_file(str(path))


TRAINABLE = [n for n in interp.list_models() if interp.get_spec(n).task != "imagenet"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_entry_trains_two_steps(name, tmp_path, data_dir):
    kw = {}
    if name == "resnet18_transfer_cifar10":
        torch.save(interp.build_model("resnet18_imagenet").state_dict(), tmp_path / "stand_in.pth")
        kw = dict(init_weights=str(tmp_path / "stand_in.pth"), input_size=112)
    card = train(name, _cfg(name, tmp_path, **kw))
    assert len(card["history"]["step_loss"]) == 2
    assert card["metrics"]["n"] == 4
    loaded = interp.load_model(name, checkpoint=tmp_path / f"{name}.safetensors")
    assert not loaded.training
    assert card["throughput"]["bare_loop_images_per_s"] > 0


def test_imagenet_entry_is_not_trainable_here(tmp_path, data_dir):
    with pytest.raises(interp.DataError, match="ImageNet"):
        train("resnet18_imagenet", _cfg("resnet18_imagenet", tmp_path))


def test_transfer_changes_only_layer4_and_fc(tmp_path, data_dir):
    name = "resnet18_transfer_cifar10"
    torch.manual_seed(5)
    stand_in = interp.build_model("resnet18_imagenet").state_dict()
    torch.save(stand_in, tmp_path / "stand_in.pth")
    train(name, _cfg(name, tmp_path, init_weights=str(tmp_path / "stand_in.pth"), input_size=112,
                     lr=1e-2, limit_train=16, batch_size=8))
    after = _weights(tmp_path / f"{name}.safetensors")
    # fc is new (10 classes instead of 1000), so it has no ImageNet counterpart to compare with.
    changed = {k.split(".")[0] for k, v in after.items()
               if not k.startswith("fc.") and not torch.equal(v, stand_in[k].to(v.dtype))}
    assert changed == {"layer4"}
    assert after["fc.weight"].shape == (10, 512)


def test_bf16_autocast_defaults_to_what_the_cpu_computes_natively():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to compare oneDNN's check with")
    flags = cpuinfo.read_text()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert native_bf16() == native
    assert TrainConfig().bf16 == native
    assert TrainConfig(bf16=True).bf16 is True and TrainConfig(bf16=False).bf16 is False
    assert config_for("nin_cifar10").bf16 == native


def test_same_seed_same_weights(tmp_path, data_dir):
    kw = dict(epochs=2, limit_train=32, batch_size=8, augment=True, bf16=True)
    train("linear_cnn_cifar10", _cfg("linear_cnn_cifar10", tmp_path, out=str(tmp_path / "a.safetensors"), **kw))
    train("linear_cnn_cifar10", _cfg("linear_cnn_cifar10", tmp_path, out=str(tmp_path / "b.safetensors"), **kw))
    train("linear_cnn_cifar10", _cfg("linear_cnn_cifar10", tmp_path, out=str(tmp_path / "c.safetensors"),
                                     seed=1, **kw))
    a, b, c = (_weights(tmp_path / f"{x}.safetensors") for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, data_dir, monkeypatch):
    kw = dict(epochs=2, limit_train=32, batch_size=8, augment=True)
    name = "table2_cnn_cifar10"
    train(name, _cfg(name, tmp_path, out=str(tmp_path / "straight.safetensors"), **kw))

    cfg = _cfg(name, tmp_path, out=str(tmp_path / "resumed.safetensors"), **kw)
    real_lr = train_mod.learning_rate

    def interrupt_at_step_6(c, step, total):  # mid-way through the second epoch
        if step == 6:
            raise KeyboardInterrupt
        return real_lr(c, step, total)

    monkeypatch.setattr(train_mod, "learning_rate", interrupt_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(name, cfg)
    state = tmp_path / "resumed.resume.pt"
    assert state.is_file() and not (tmp_path / "resumed.safetensors").exists()
    monkeypatch.setattr(train_mod, "learning_rate", real_lr)
    card = train(name, cfg, resume=True)
    assert not state.exists()
    straight, resumed = _weights(tmp_path / "straight.safetensors"), _weights(tmp_path / "resumed.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert len(card["history"]["step_loss"]) == 8 and len(card["history"]["epochs"]) == 2


def test_resume_refuses_other_settings_and_missing_state(tmp_path, data_dir):
    with pytest.raises(interp.CheckpointError, match="nothing to resume"):
        train("vanilla_cnn_cifar10", _cfg("vanilla_cnn_cifar10", tmp_path), resume=True)


def test_early_stopping_keeps_the_best_epoch(tmp_path, data_dir):
    # With lr = 0 the validation loss never improves after the first epoch: patience 2 stops after 3.
    card = train("vanilla_cnn_cifar10", _cfg("vanilla_cnn_cifar10", tmp_path, epochs=10, lr=0.0,
                                             schedule="none", patience=2))
    assert len(card["history"]["epochs"]) == 3
    assert card["best_epoch"] == 1


def test_card_records_what_the_training_page_needs(tmp_path, data_dir):
    card = train("alexnet_gap_pacs_domain", _cfg("alexnet_gap_pacs_domain", tmp_path, epochs=2))
    on_disk = json.loads((tmp_path / "alexnet_gap_pacs_domain.json").read_text())
    assert on_disk["metrics"] == card["metrics"]
    for key in ("command", "settings", "seed", "wall_time_s", "hardware", "code_version", "history",
                "conv1_autocorrelation", "class_names", "trained_at"):
        assert key in on_disk, key
    epoch = on_disk["history"]["epochs"][0]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "conv1_autocorrelation"} <= set(epoch)
    assert len(on_disk["metrics"]["confusion_matrix"]) == 4


def test_learning_rate_schedules():
    cfg = TrainConfig(lr=1.0, schedule="onecycle")
    assert learning_rate(cfg, 0, 100) == pytest.approx(1 / 25)
    assert learning_rate(cfg, 25, 100) == pytest.approx(1.0)
    assert learning_rate(cfg, 100, 100) == pytest.approx(1e-4)
    assert learning_rate(TrainConfig(lr=1.0, schedule="cosine"), 50, 100) == pytest.approx(0.5)


def test_augment_shift_is_an_exact_crop():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = augment_batch(x, torch.Generator().manual_seed(0), min_scale=1.0)
    for i in range(2):
        # Every output pixel is an input pixel (possibly mirrored) or a zero from the border.
        values = set(out[i].flatten().tolist())
        assert values <= set(x[i].flatten().tolist()) | {0.0}


def test_evaluate_command_prints_json(tmp_path, data_dir, capsys):
    name = "vanilla_cnn_cifar10"
    train(name, _cfg(name, tmp_path))
    assert main(["evaluate", name, "--checkpoint", str(tmp_path / f"{name}.safetensors"), "--limit", "50"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 50 and len(result["confusion_matrix"]) == 10
    assert set(result["per_class_accuracy"]) == set(interp.get_spec(name).class_names)

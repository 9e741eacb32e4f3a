"""The training pipeline on small subsets of the real data: every entry, resume, determinism,
early stopping, transfer freezing, and evaluation checked against a plain-torch count."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import interp
from interp.__main__ import main
from interp.data import dataset_split, spread_indices
from interp.methods.introspect.filters import conv1_autocorrelation
from interp.methods.layers import first_conv_name
from interp.models import count_parameters
from interp.models.spec import CHECKPOINT_DIR
from interp.train import (
    RunSettings,
    TrainConfig,
    augment_batch,
    config_for,
    evaluate_tensors,
    learning_rate,
    load_split,
    native_bf16,
    train,
)
from interp.train import loop as loop_mod
from interp.train.steps import BATCH_RADIX, SHUFFLE, stream_seed

SMALL = dict(epochs=1, batch_size=4, lr=1e-3, limit_train=8, limit_val=4, bf16=False)


def _cfg(name, **kw):
    return config_for(name, **{**SMALL, **kw})


def _settings(tmp_path, stem, **kw):
    return RunSettings(out=str(tmp_path / f"{stem}.safetensors"), progress=False, **kw)


def _train(name, tmp_path, stem=None, **kw):
    return train(name, _cfg(name, **kw), _settings(tmp_path, stem or name))


def _weights(path):
    return load_file(str(path))


TRAINABLE = [n for n in interp.list_models() if interp.get_spec(n).task != "imagenet"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_entry_trains_two_steps(name, tmp_path, data_dir):
    kw = {}
    if name == "resnet18_transfer_cifar10":
        torch.save(interp.build_model("resnet18_imagenet").state_dict(), tmp_path / "stand_in.pth")
        kw = dict(init_weights=str(tmp_path / "stand_in.pth"), input_size=112)
    card = _train(name, tmp_path, **kw)
    assert len(card["history"]["step_loss"]) == 2
    assert card["metrics"]["n"] == 4
    loaded = interp.load_model(name, checkpoint=tmp_path / f"{name}.safetensors")
    assert not loaded.training
    assert card["throughput"]["bare_loop_images_per_s"] > 0


def test_imagenet_entry_is_not_trainable_here(tmp_path, data_dir):
    with pytest.raises(interp.DataError, match="ImageNet"):
        _train("resnet18_imagenet", tmp_path)


def test_run_settings_are_not_hyper_parameters():
    with pytest.raises(TypeError, match="RunSettings"):
        config_for("nin_cifar10", progress=False)
    assert RunSettings.given(out=None, progress=None, threads=2) == RunSettings(threads=2)


def test_transfer_changes_only_layer4_and_fc(tmp_path, data_dir):
    name = "resnet18_transfer_cifar10"
    torch.manual_seed(5)
    stand_in = interp.build_model("resnet18_imagenet").state_dict()
    torch.save(stand_in, tmp_path / "stand_in.pth")
    _train(
        name,
        tmp_path,
        init_weights=str(tmp_path / "stand_in.pth"),
        input_size=112,
        lr=1e-2,
        limit_train=16,
        batch_size=8,
    )
    after = _weights(tmp_path / f"{name}.safetensors")
    # fc is new (10 classes instead of 1000), so it has no ImageNet counterpart to compare with.
    # Buffers count too: the frozen layers' batch norm statistics must not move either.
    changed = {
        k.split(".")[0]
        for k, v in after.items()
        if not k.startswith("fc.") and not torch.equal(v, stand_in[k].to(v.dtype))
    }
    assert changed == {"layer4"}
    assert after["fc.weight"].shape == (10, 512)


def test_warm_restart_starts_from_the_whole_checkpoint(tmp_path):
    """--init-weights on an entry trained from scratch: the run starts from that checkpoint's
    tensors exactly (as stored, float16), not from the seeded initialisation; another
    architecture's checkpoint is refused."""
    from interp.train.steps import init_model

    name = "table2_cnn_cifar10"
    spec = interp.get_spec(name)
    stored = _weights(spec.checkpoint)
    model = init_model(spec, _cfg(name, init_weights=str(spec.checkpoint)))
    state = model.state_dict()
    assert state.keys() == stored.keys()
    for k, v in stored.items():
        assert torch.equal(state[k], v.to(state[k].dtype)), k
    fresh = init_model(spec, _cfg(name)).state_dict()
    assert not torch.equal(fresh["conv1.weight"], state["conv1.weight"])
    with pytest.raises(interp.CheckpointError, match="nin"):
        init_model(spec, _cfg(name, init_weights=str(interp.get_spec("nin_cifar10").checkpoint)))


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
    for stem, seed in (("a", 0), ("b", 0), ("c", 1)):
        _train("linear_cnn_cifar10", tmp_path, stem, seed=seed, **kw)
    a, b, c = (_weights(tmp_path / f"{x}.safetensors") for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_random_streams_are_distinct_and_bounded():
    seeds = {stream_seed(s, e, b) for s in range(3) for e in range(3) for b in (*range(4), SHUFFLE)}
    assert len(seeds) == 3 * 3 * 5
    with pytest.raises(ValueError):
        stream_seed(0, 0, BATCH_RADIX)


def _interrupt_at(monkeypatch, at_step):
    real_lr = loop_mod.learning_rate

    def interrupting(c, step, total):
        if step == at_step:
            raise KeyboardInterrupt
        return real_lr(c, step, total)

    monkeypatch.setattr(loop_mod, "learning_rate", interrupting)
    return real_lr


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, data_dir, monkeypatch):
    name = "table2_cnn_cifar10"
    cfg = _cfg(name, epochs=2, limit_train=32, batch_size=8, augment=True)
    train(name, cfg, _settings(tmp_path, "straight"))

    real_lr = _interrupt_at(monkeypatch, 6)  # mid-way through the second epoch
    with pytest.raises(KeyboardInterrupt):
        train(name, cfg, _settings(tmp_path, "resumed"))
    state = tmp_path / "resumed.resume.pt"
    assert state.is_file() and not (tmp_path / "resumed.safetensors").exists()
    monkeypatch.setattr(loop_mod, "learning_rate", real_lr)
    # How the run executes may change between sessions; only TrainConfig and out identify it.
    card = train(
        name, cfg, _settings(tmp_path, "resumed", save_every_s=1e6, threads=torch.get_num_threads()), resume=True
    )
    assert not state.exists()
    straight, resumed = _weights(tmp_path / "straight.safetensors"), _weights(tmp_path / "resumed.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert len(card["history"]["step_loss"]) == 8 and len(card["history"]["epochs"]) == 2


def test_resume_refuses_other_settings_and_missing_state(tmp_path, data_dir, monkeypatch):
    name = "vanilla_cnn_cifar10"
    with pytest.raises(interp.CheckpointError, match="nothing to resume"):
        train(name, _cfg(name), _settings(tmp_path, name), resume=True)
    _interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        train(name, _cfg(name), _settings(tmp_path, name))
    with pytest.raises(interp.CheckpointError, match="other settings"):
        train(name, _cfg(name, lr=2e-3), _settings(tmp_path, name), resume=True)


def test_early_stopping_keeps_the_best_epoch(tmp_path, data_dir):
    # With lr = 0 the validation loss never improves after the first epoch: patience 2 stops after 3.
    card = _train("vanilla_cnn_cifar10", tmp_path, epochs=10, lr=0.0, schedule="none", patience=2)
    assert len(card["history"]["epochs"]) == 3
    assert card["best_epoch"] == 1


def _plain_metrics(model, x_uint8, y, spec):
    """Loss, predictions and counts computed here with plain torch and numpy, for comparison."""
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model.eval()((x_uint8.float() / 255 - mean) / std)
    pred, truth, k = logits.argmax(1).numpy(), y.numpy(), spec.num_classes
    confusion = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    return {
        "loss": F.cross_entropy(logits, y).item(),
        "pred": pred,
        "confusion": confusion,
        "accuracy": float((pred == truth).mean()),
        "per_class": {c: float((pred[truth == i] == i).mean()) for i, c in enumerate(spec.class_names)},
    }


def _assert_metrics_equal(metrics, plain, n):
    assert metrics["n"] == n
    assert metrics["confusion_matrix"] == plain["confusion"].tolist()
    assert metrics["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-12)
    assert metrics["per_class_accuracy"] == pytest.approx(plain["per_class"], abs=6e-5)  # rounded to 4 places


def test_held_out_metrics_match_a_plain_torch_count(tmp_path, data_dir, capsys):
    name, n = "vanilla_cnn_cifar10", 200
    spec = interp.get_spec(name)
    card = _train(name, tmp_path, epochs=2, limit_train=256, batch_size=32, limit_val=n)
    x, y = load_split(spec, "val", None, n, progress=False)
    held_out = dataset_split(spec, "val")
    assert y.tolist() == [held_out.labels[i] for i in spread_indices(len(held_out), n)]  # every class, in order
    model = interp.load_model(name, checkpoint=tmp_path / f"{name}.safetensors")
    plain = _plain_metrics(model, x, y, spec)
    assert len(set(plain["pred"].tolist())) > 2  # a model that predicts one class would test little

    metrics = evaluate_tensors(model, x, y, spec)
    _assert_metrics_equal(metrics, plain, n)
    assert metrics["loss"] == pytest.approx(plain["loss"], rel=1e-4)

    assert main(["evaluate", name, "--checkpoint", str(tmp_path / f"{name}.safetensors"), "--limit", str(n)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == name and result["split"] == "test" and "loss" not in result
    _assert_metrics_equal(result, plain, n)

    # The card's metrics (float32 weights, before the float16 checkpoint): the same images and classes.
    counts = np.bincount(y.numpy(), minlength=spec.num_classes)
    assert np.asarray(card["metrics"]["confusion_matrix"]).sum(1).tolist() == counts.tolist()


def _key_sets(card):
    epoch = card["history"]["epochs"][0]
    return {
        "card": set(card),
        "settings": set(card["settings"]),
        "metrics": set(card["metrics"]),
        "epoch": set(epoch),
        "throughput": set(card["throughput"]),
        "hardware": set(card["hardware"]),
    }


def test_card_records_what_the_training_page_needs(tmp_path, data_dir):
    name = "alexnet_gap_pacs_domain"
    spec = interp.get_spec(name)
    cfg, settings = _cfg(name, epochs=2), _settings(tmp_path, name)
    card = train(name, cfg, settings, command="python -m interp train x")
    on_disk = json.loads((tmp_path / f"{name}.json").read_text())
    assert on_disk == json.loads(json.dumps(card))

    # Every key of the shipped card, which the dashboard's Training page reads; cards now also
    # record the device (its GPU) and the precision they trained with.
    keys, shipped = _key_sets(on_disk), _key_sets(json.loads((CHECKPOINT_DIR / f"{name}.json").read_text()))
    assert all(keys[group] >= shipped[group] for group in shipped)
    assert {"device", "precision"} <= keys["card"] and "device" in keys["settings"] and "gpu" in keys["hardware"]
    assert on_disk["device"] == "cpu" and on_disk["hardware"]["gpu"] is None
    assert on_disk["settings"] == json.loads(json.dumps({**dataclasses.asdict(cfg), **dataclasses.asdict(settings)}))
    assert on_disk["command"] == "python -m interp train x" and on_disk["seed"] == cfg.seed

    history = on_disk["history"]
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and len(history["step_loss"]) == 2 * 2
    val_losses = [e["val_loss"] for e in history["epochs"]]
    assert on_disk["best_epoch"] == 1 + int(np.argmin(val_losses))
    best = history["epochs"][on_disk["best_epoch"] - 1]

    metrics = on_disk["metrics"]
    _, y = load_split(spec, "val", None, cfg.limit_val, progress=False)
    confusion = np.asarray(metrics["confusion_matrix"])
    assert confusion.shape == (4, 4) and metrics["split"] == "validation" and metrics["n"] == 4
    assert confusion.sum(1).tolist() == np.bincount(y.numpy(), minlength=4).tolist()
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / 4)
    assert round(metrics["accuracy"], 5) == best["val_accuracy"]  # the kept weights are the best epoch's
    for i, c in enumerate(spec.class_names):
        row = confusion[i].sum()
        assert metrics["per_class_accuracy"][c] == pytest.approx(confusion[i, i] / row if row else 0.0, abs=6e-5)

    model = interp.load_model(name, checkpoint=tmp_path / f"{name}.safetensors")
    assert on_disk["parameters"] == count_parameters(model)
    assert on_disk["conv1_autocorrelation"] == best["conv1_autocorrelation"]
    assert on_disk["conv1_autocorrelation"] == pytest.approx(
        conv1_autocorrelation(model.get_submodule(first_conv_name(model)).weight), abs=2e-3
    )


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


def test_long_tailed_entries_train_on_the_long_tail_and_test_on_the_balanced_set(tmp_path, data_dir):
    from interp.data import long_tail_counts

    spec = interp.get_spec("resnet32_cifar10lt_cbfocal")
    _, y = load_split(spec, "train", str(data_dir), None, progress=False, imbalance=100, seed=0)
    assert torch.bincount(y, minlength=10).tolist() == long_tail_counts(5000, 100, 10)
    _, y_test = load_split(spec, "test", str(data_dir), None, progress=False)
    assert torch.bincount(y_test, minlength=10).tolist() == [1000] * 10
    card = _train("resnet32_cifar10lt_cbfocal", tmp_path, limit_train=64, limit_val=16, batch_size=16)
    assert card["settings"]["imbalance"] == 100 and sum(card["train_counts"]) == 64
    assert card["train_counts"][0] > card["train_counts"][-1]
    assert card["loss"] == "class-balanced focal (beta 0.9999, gamma 1), class weights from epoch 45"  # deferred


def test_keep_last_writes_the_last_epoch_and_may_resume_a_run_that_kept_the_best(tmp_path, data_dir):
    name = "table2_cnn_cifar10"
    kw = dict(epochs=2, limit_train=32, batch_size=8, limit_val=16)
    last = _train(name, tmp_path, "last", keep="last", **kw)
    best = _train(name, tmp_path, "best", **kw)
    assert last["kept_epoch"] == 2 and best["kept_epoch"] == best["best_epoch"] == last["best_epoch"]
    same = all(
        torch.equal(a, b)
        for a, b in zip(
            _weights(tmp_path / "last.safetensors").values(), _weights(tmp_path / "best.safetensors").values()
        )
    )
    assert same == (best["best_epoch"] == 2)  # one trajectory: only the written epoch differs
    from interp.train.state import resume_key

    assert resume_key(_cfg(name, keep="last"), None) == resume_key(_cfg(name), None)
    with pytest.raises(ValueError, match="keep"):
        _cfg(name, keep="first")

"""The command line: models and summary."""

from __future__ import annotations

import subprocess
import sys

from interp.__main__ import main
from tests.models.test_registry import ALEXNET_TABLE


def test_summary_prints_the_alexnet_table(capsys):
    assert main(["summary", "alexnet_pacs_domain"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("features.", "classifier."))}
    for layer, shape, params in ALEXNET_TABLE:
        assert "x".join(map(str, shape)) in lines[layer].split(), layer
        assert lines[layer].split()[-1] == f"{params:,}", layer
    assert "total parameters: 58,297,732" in out


def test_models_lists_every_entry_with_its_weights(capsys):
    import interp

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in interp.list_models():
        assert name in out
    assert "python -m interp train resnet18_transfer_cifar10" in out
    assert "58,297,732" in out


def test_unknown_model_is_a_message_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "interp", "summary", "lenet"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown model 'lenet'" in result.stderr and "Traceback" not in result.stderr


def test_fetch_gets_torchvision_weights_and_refuses_other_entries(tmp_path, monkeypatch, capsys):
    import torch

    import interp.models
    from interp.models import has_weights, torchvision_weights_file

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def download(arch):  # torchvision's download, without the network: the file lands in the cache
        torchvision_weights_file(arch).parent.mkdir(parents=True, exist_ok=True)
        torchvision_weights_file(arch).write_bytes(b"weights")
        return {}

    monkeypatch.setattr(interp.models, "torchvision_state_dict", download)
    spec = interp.get_spec("resnet18_imagenet")
    assert not has_weights(spec)
    assert main(["fetch", "resnet18_imagenet"]) == 0
    assert has_weights(spec) and str(tmp_path) in capsys.readouterr().out
    assert main(["fetch", "nin_cifar10"]) == 2
    assert "does not use downloaded weights" in capsys.readouterr().err

"""The command line: models and summary."""

from __future__ import annotations

import subprocess
import sys

from interp.__main__ import main
from tests.test_models import ALEXNET_TABLE


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
    assert "python -m interp train resnet32_cifar10" in out
    assert "58,297,732" in out


def test_unknown_model_is_a_message_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "interp", "summary", "lenet"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown model 'lenet'" in result.stderr and "Traceback" not in result.stderr

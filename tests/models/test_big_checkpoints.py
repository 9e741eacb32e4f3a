"""Models too big for one file: per-row int8 and grouped int4 weight matrices, shards with an index,
and the round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import interp
from interp import CheckpointError
from interp.errors import ParameterError
from interp.models import weights
from interp.models.weights import (
    as_stored,
    dequantize_groups,
    dequantize_rows,
    index_path,
    load_weights,
    quantize_groups,
    quantize_rows,
    read_state_dict,
    save_checkpoint,
)


def test_quantize_rows_by_hand():
    # Row 0: largest magnitude 1.27, so the scale is 0.01 and 0.254 rounds to 25.
    # Row 1: all zeros keeps a tiny positive scale and zero values.
    w = torch.tensor([[0.5, -1.27, 0.254], [0.0, 0.0, 0.0]])
    values, scale = quantize_rows(w)
    assert values.dtype == torch.int8
    assert values[0].tolist() == [50, -127, 25]
    assert values[1].tolist() == [0, 0, 0]
    assert scale[0].item() == pytest.approx(0.01)
    torch.testing.assert_close(dequantize_rows(values, scale)[0], torch.tensor([0.5, -1.27, 0.25]))


def test_quantize_rows_error_is_at_most_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(64, 300) * torch.logspace(-3, 0, 64)[:, None]  # rows of very different scales
    values, scale = quantize_rows(w)
    error = (dequantize_rows(values, scale) - w).abs()
    assert (error <= scale[:, None] / 2 + 1e-9).all()


def test_quantize_groups_by_hand():
    # Group [0.7, -0.35, 0.1, 0.0]: largest magnitude 0.7, scale 0.1, values 7, -3.5 -> -4 (round half
    # to even), 1, 0; stored +8 as 15, 4, 9, 8 and packed low nibble first: 15 | 4 << 4 = 79, 9 | 8 << 4 = 137.
    # Group [-1.6, 0.2, 0.0, 0.0]: scale 1.6 / 7, so -1.6 is -7 and 0.2 rounds to 1.
    w = torch.tensor([[0.7, -0.35, 0.1, 0.0, -1.6, 0.2, 0.0, 0.0]])
    packed, scale = quantize_groups(w, group=4)
    assert packed.dtype == torch.uint8 and packed.shape == (1, 4) and scale.shape == (1, 2)
    assert packed[0].tolist() == [15 | 4 << 4, 9 | 8 << 4, 1 | 9 << 4, 8 | 8 << 4]
    torch.testing.assert_close(scale[0], torch.tensor([0.1, 1.6 / 7]))
    expected = torch.tensor([0.7, -0.4, 0.1, 0, -1.6, 1.6 / 7, 0, 0])
    torch.testing.assert_close(dequantize_groups(packed, scale)[0], expected)


def test_quantize_groups_error_is_at_most_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(32, 256) * torch.logspace(-3, 0, 256)[None, :]  # groups of very different scales
    packed, scale = quantize_groups(w, group=64)
    error = (dequantize_groups(packed, scale) - w).abs().reshape(32, 4, 64)
    assert (error <= scale[..., None] / 2 + 1e-9).all()


def test_quantize_groups_refuses_rows_that_do_not_split():
    with pytest.raises(ParameterError, match="multiple"):
        quantize_groups(torch.randn(4, 100), group=64)


class _Wide(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc1 = nn.Linear(200, 300)
        self.fc2 = nn.Linear(300, 100)

    def forward(self, x):
        return self.fc2(self.fc1(self.conv(x).flatten(1)[:, :200]))


def _limits(monkeypatch, max_file_bytes: int) -> None:
    """Limits scaled down so that a small model takes the big-model path: fc1 (60,000 values,
    120 kB in float16; 61 kB as int8 rows; 36 kB as int4 groups of 40) is quantised, fc2 (30,000
    values, 60 kB in float16) is not."""
    monkeypatch.setattr(weights, "MAX_FILE_BYTES", max_file_bytes)
    monkeypatch.setattr(weights, "QUANTIZE_MIN_ELEMENTS", 40_000)
    monkeypatch.setattr(weights, "INT4_GROUP", 40)


@pytest.fixture
def small_limits(monkeypatch):
    """No file may hold more than 70 kB: even int4 leaves _Wide (97 kB) in two files."""
    _limits(monkeypatch, 70_000)


def _check_round_trip(model: nn.Module, written, tolerance: float) -> None:
    loaded = load_weights(_Wide(), written, "wide")
    expected = as_stored(model.state_dict())
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, expected[k]), k
    x = torch.randn(2, 3, 12, 12)
    assert (loaded(x) - model(x)).abs().max() < tolerance


def test_int8_rows_where_they_fit_one_file(tmp_path, monkeypatch):
    _limits(monkeypatch, 150_000)  # float16 (181 kB) does not fit, int8 rows (122 kB) do
    torch.manual_seed(1)
    model = _Wide()
    written = save_checkpoint(model, tmp_path / "w.safetensors", "wide")
    assert written == tmp_path / "w.safetensors" and not index_path(written).exists()
    tensors, metadata = read_state_dict(written)
    assert metadata["quantized"].startswith("int8")
    values, scale = quantize_rows(model.fc1.weight)
    torch.testing.assert_close(tensors["fc1.weight"], values.float() * scale[:, None])
    assert tensors["fc2.weight"].dtype == torch.float16  # below the size that is quantised
    _check_round_trip(model, written, 0.01)  # int8 rows barely move the outputs


def test_sharded_int4_round_trip(tmp_path, small_limits):
    torch.manual_seed(1)
    model = _Wide()
    written = save_checkpoint(model, tmp_path / "w.safetensors", "wide", card={"accuracy": 0.5})
    assert written == index_path(tmp_path / "w.safetensors")
    files = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert files == ["w-00001-of-00002.safetensors", "w-00002-of-00002.safetensors"]
    assert all((tmp_path / f).stat().st_size <= 70_000 + 4096 for f in files)  # plus the safetensors header
    tensors, metadata = read_state_dict(tmp_path / "w.safetensors")  # the plain name finds the index
    assert metadata["quantized"].startswith("int4") and metadata["int4_group"] == "40"
    # int4 by hand: symmetric, one scale per 40 values of a row
    w = model.fc1.weight.detach().reshape(300, 5, 40)
    step = w.abs().amax(dim=2, keepdim=True) / 7
    torch.testing.assert_close(tensors["fc1.weight"], (torch.round(w / step).clamp(-8, 7) * step).reshape(300, 200))
    _check_round_trip(model, written, 0.05)


def test_missing_shard_is_named(tmp_path, small_limits):
    written = save_checkpoint(_Wide(), tmp_path / "w.safetensors", "wide")
    (tmp_path / "w-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="w-00002-of-00002.safetensors"):
        load_weights(_Wide(), written, "wide")


def test_small_model_is_one_float16_file(tmp_path, small_limits):
    model = nn.Linear(10, 10)
    path = save_checkpoint(model, tmp_path / "s.safetensors", "linear")
    assert path == tmp_path / "s.safetensors" and not index_path(path).exists()
    assert read_state_dict(path)[0]["weight"].dtype == torch.float16


def test_alexnet_fits_the_file_limit(tmp_path):
    """The real 58 M-parameter AlexNet: one file under 50 MB (fc6 and fc7 in int4 groups), loaded
    back through the registry's load_model exactly as as_stored predicts."""
    torch.manual_seed(0)
    model = interp.build_model("alexnet_pacs_domain")
    written = save_checkpoint(model, tmp_path / "alexnet.safetensors", "alexnet")
    assert written == tmp_path / "alexnet.safetensors"
    assert written.stat().st_size <= 50 * 1000**2
    assert written.stat().st_size < 0.35 * 58.3e6 * 2  # vs float16: 4 bits and a scale per 64 for 94% of it
    assert read_state_dict(written)[1]["quantized"].startswith("int4")
    loaded = interp.load_model("alexnet_pacs_domain", checkpoint=written)
    expected = as_stored(model.state_dict())
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())


COURSE_ALEXNETS = [
    f"{arch}_{task}"
    for task in ("pacs_domain", "pacs_class")
    for arch in ("alexnet", "alexnet_large_kernel", "alexnet_avgpool")
]
TARGETS = {"pacs_domain": 0.88, "pacs_class": 0.60}  # validation accuracy each course AlexNet must reach


@pytest.mark.parametrize("name", COURSE_ALEXNETS)
def test_shipped_course_alexnets_reproduce_their_cards(name, data_dir, capsys):
    """Evaluated here on the 1,998 validation images, the weights as shipped give the card's numbers;
    the card's float32 accuracy is within half a point; targets and learned conv1 kernels hold."""
    import json

    from interp.__main__ import main
    from interp.methods import conv1_autocorrelation

    spec = interp.get_spec(name)
    if spec.checkpoint is None:
        pytest.skip(f"{name} is not trained in this checkout (python -m interp train {name})")
    main(["evaluate", name, "--data-dir", str(data_dir)])
    result = json.loads(capsys.readouterr().out)
    card = json.loads(spec.card_path.read_text())
    assert result["n"] == 1998
    assert result["confusion_matrix"] == card["metrics"]["confusion_matrix"]
    assert abs(card["metrics"]["float32_accuracy"] - result["accuracy"]) <= 0.005
    assert result["accuracy"] >= TARGETS[spec.task]
    model = interp.load_model(name)
    autocorrelation = conv1_autocorrelation(model.features.conv1.weight.detach())
    assert autocorrelation == pytest.approx(card["conv1_autocorrelation"], abs=1e-3) and autocorrelation >= 0.5
    assert all(f.stat().st_size <= 50 * 1000**2 for f in spec.checkpoint.parent.glob(f"{name}*.safetensors"))

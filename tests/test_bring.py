"""Bringing a model to the dashboard (dashboard/bring.py), and weights files that must be refused
there and on the command line: wrong shapes, not weights, a pickle that would run code, oversize."""

from __future__ import annotations

import io
import os

import pytest
import torch
from safetensors.torch import save
from streamlit.testing.v1 import AppTest

import interp
from dashboard import bring
from interp.__main__ import main
from interp.data import zebra_path
from interp.models import weights as weights_module
from tests.apptest import REPO, no_errors, open_page


class RunsCode:
    """Unpickling this would run a shell command: the kind of file that must never load."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _nin_weights(classes: int = 10) -> bytes:
    torch.manual_seed(0)
    model = interp.models.ARCHITECTURES["nin"](classes, batch_norm=True, dropout=0.3)
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


BAD = {
    "wrong shapes": ("bad.safetensors", lambda: _nin_weights(7), r"has shape \(7, "),
    "not weights": ("notes.pt", lambda: b"certainly not a checkpoint", "notes.pt is not a PyTorch checkpoint"),
    "runs code": ("evil.pt", lambda: _pickled({"w": RunsCode()}), "pickled objects other than tensors"),
}


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_a_brought_model_loads_and_explains():
    name = bring.bring_model("cifar nin", "nin", _nin_weights(), "mine.safetensors", bring.parse_classes("10"))
    model = interp.load_model(name)
    x = interp.preprocess(interp.load_image(zebra_path()), interp.get_spec(name))
    assert x.shape == (1, 3, 32, 32) and interp.explain(model, x, "cam").map.shape == (32, 32)
    assert bring.parse_classes("cat, dog\nfox") == ["cat", "dog", "fox"]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_weights_are_refused_in_the_dashboard(case):
    filename, make, message = BAD[case]
    before = set(interp.list_models())
    with pytest.raises(interp.InterpError, match=message):
        bring.bring_model("bad", "nin", make(), filename, 10)
    assert set(interp.list_models()) == before  # nothing offered


def test_an_oversize_upload_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(bring, "MAX_UPLOAD_MB", 1)
    with pytest.raises(interp.CheckpointError, match="above the dashboard's cap of 1 MB"):
        bring.bring_model("big", "nin", bytes(2 * 1024**2), "big.safetensors", 10)


@pytest.mark.parametrize("case", list(BAD) + ["oversize"])
def test_bad_weights_are_refused_on_the_command_line(case, tmp_path, capsys, monkeypatch):
    if case == "oversize":
        path = tmp_path / "huge.safetensors"
        with open(path, "wb") as f:
            f.truncate(weights_module.MAX_WEIGHTS_BYTES + 1)  # sparse: nothing is written
        message = "larger than"
    else:
        filename, make, message = BAD[case]
        message = message.replace("notes.pt is", "is")  # the command line names the whole path
        path = tmp_path / filename
        path.write_bytes(make())
    code = main(
        [
            "explain",
            "--model",
            "nin_cifar10",
            "--method",
            "cam",
            "--image",
            str(zebra_path()),
            "--checkpoint",
            str(path),
            "--out",
            str(tmp_path / "map.npy"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "map.npy").exists()


def test_pages_offer_the_brought_model_to_its_session_only():
    name = bring.bring_model("session nin", "nin", _nin_weights(), "mine.safetensors", 10)
    other = open_page("cam.py", model=None)
    assert not [o for o in other.selectbox(key="model").options if o.startswith(name)]  # another session's model
    mine = AppTest.from_file(str(REPO / "pages" / "cam.py"), default_timeout=300)
    mine.session_state[bring.SESSION_KEY] = [name]
    mine.session_state["model"] = name
    mine.run()
    no_errors(mine)
    assert mine.selectbox(key="model").value == name
    assert any("is your model" in i.value for i in mine.info)  # no held-out images of its task: said calmly

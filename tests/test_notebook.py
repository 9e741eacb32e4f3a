"""The tutorial notebook (docs/tutorial.ipynb) runs from top to bottom in a fresh kernel on the
shipped sample alone (no INTERP_DATA_DIR), and is stored executed and small."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.apptest import REPO

nbformat = pytest.importorskip("nbformat", reason="needs nbformat, nbclient and ipykernel (requirements-dev.txt)")
nbclient = pytest.importorskip("nbclient", reason="needs nbclient (requirements-dev.txt)")
pytest.importorskip("ipykernel", reason="needs ipykernel (requirements-dev.txt)")

NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
MAX_BYTES = 400_000  # outputs included: pictures are JPEGs, plotly.js is not embedded


def test_the_stored_tutorial_is_executed_and_small():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "store the notebook executed (outputs included)"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert NOTEBOOK.stat().st_size < MAX_BYTES, f"{NOTEBOOK.stat().st_size:,} bytes"


def test_the_tutorial_runs_without_a_cell_error_on_the_shipped_sample(tmp_path, monkeypatch):
    monkeypatch.delenv("INTERP_DATA_DIR", raising=False)  # the shipped sample only
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "cache"))
    # The kernel runs in a temporary copy's folder: interp comes from this checkout.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    copy = tmp_path / "tutorial.ipynb"
    shutil.copy(NOTEBOOK, copy)
    nb = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "Grad-CAM for class" in shown and "data:image/jpeg;base64," in shown  # explanations drew themselves

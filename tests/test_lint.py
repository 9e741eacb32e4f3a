"""The code base passes its linters as configured in pyproject.toml: ruff's rules, ruff's format and
mypy, on the whole tree. A failure prints what to fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.apptest import REPO


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def ruff() -> list[str]:
    pytest.importorskip("ruff", reason="pip install ruff (requirements-dev.txt)")
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing(ruff):
    checked = _run(*ruff, "check", ".")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_tree_is_formatted_by_ruff(ruff):
    checked = _run(*ruff, "format", "--check", ".")
    assert checked.returncode == 0, "run `ruff format .`:\n" + checked.stdout + checked.stderr


def test_mypy_finds_nothing():
    pytest.importorskip("mypy", reason="pip install mypy (requirements-dev.txt)")
    checked = _run(sys.executable, "-m", "mypy")
    assert checked.returncode == 0, checked.stdout + checked.stderr

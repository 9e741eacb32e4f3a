"""interp as a library people install: the wheel, the `interp` command, the dashboard from the wheel,
and where an installed interp finds and writes checkpoints (interp.paths)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

import interp
from interp import paths
from interp.models import spec as model_spec
from tests.apptest import REPO

WHEEL_LIMIT_MB = 100  # PyPI's default limit on one file


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout and installed in a fresh venv that sees this environment's
    packages (the dependencies) but not the checkout; (wheel, venv's bin folder, an empty folder
    outside the checkout to run in, the environment to run with)."""
    pytest.importorskip("hatchling", reason="pip install hatchling (requirements-dev.txt) to build the wheel")
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp / "dist").glob("interp-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # This environment's packages (torch, streamlit, ...) stand in for the dependencies pip would download.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "this_environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("INTERP_DATA_DIR", "PYTHONPATH", "INTERP_MODELS")}
    env["INTERP_HOME"] = str(tmp / "home")
    return wheel, venv / "bin", elsewhere, env


def _run(installed, *command: str, timeout: int = 300) -> subprocess.CompletedProcess:
    _, bin_dir, elsewhere, env = installed
    return subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_wheel_carries_the_dashboard_the_sample_and_the_small_models(installed):
    wheel = installed[0]
    assert wheel.stat().st_size < WHEEL_LIMIT_MB * 1024**2
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "dashboard/_app/app.py" in names and "dashboard/_app/pages/cam.py" in names
    assert "interp/data/sample/zebra.jpg" in names and "interp/methods/records.toml" in names
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("interp/_shipped/checkpoints/")}
    assert {"nin_cifar10.safetensors", "nin_cifar10.json", "alexnet_gap_pacs_domain.safetensors"} <= shipped
    assert not [n for n in shipped if "-of-" in n], "sharded (big) checkpoints stay out of the wheel"
    from hatch_build import WHEEL_CHECKPOINT_BYTES

    big = {f.name for f in (REPO / "checkpoints").glob("*.safetensors") if f.stat().st_size > WHEEL_CHECKPOINT_BYTES}
    assert "alexnet_large_kernel_pacs_domain.safetensors" in big  # one int4 file, 40 MB
    assert not big & shipped, "big checkpoints in one file stay out of the wheel too"
    assert not [n for n in names if "__pycache__" in n]


def test_the_installed_package_satisfies_its_declared_dependencies(installed):
    """interp's own requirements and its dashboard extra's, against what the venv has (pip check would
    also judge unrelated packages of this environment)."""
    script = (
        "from importlib.metadata import requires, version; from packaging.requirements import Requirement; "
        "bad = [str(r) for r in map(Requirement, requires('interp')) "
        "if (r.marker is None or r.marker.evaluate({'extra': 'dashboard'})) "
        "and version(r.name) not in r.specifier]; print(bad)"
    )
    checked = _run(installed, "python", "-c", script)
    assert checked.returncode == 0 and checked.stdout.strip() == "[]", checked.stdout + checked.stderr


def test_the_interp_command_outside_the_checkout(installed):
    version = _run(installed, "interp", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"interp {interp.__version__}"
    helped = _run(installed, "interp", "--help")
    assert helped.returncode == 0 and "dashboard" in helped.stdout and "explain" in helped.stdout
    where = _run(installed, "python", "-c", "import interp, sys; print(interp.__file__)")
    assert str(REPO) not in where.stdout  # the wheel's interp, not the checkout's
    elsewhere = installed[2]
    shutil.copy(REPO / "interp" / "data" / "sample" / "zebra.jpg", elsewhere / "zebra.jpg")
    explained = _run(
        installed,
        "interp",
        "explain",
        "--model",
        "nin_cifar10",
        "--image",
        "zebra.jpg",
        "--method",
        "grad_cam",
        "--out",
        "map.png",
    )
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert (elsewhere / "map.png").stat().st_size > 1000
    missing = _run(
        installed,
        "interp",
        "explain",
        "--model",
        "alexnet_pacs_domain",
        "--image",
        "zebra.jpg",
        "--method",
        "grad_cam",
        "--out",
        "big.png",
    )
    assert missing.returncode == 2 and "python -m interp train alexnet_pacs_domain" in missing.stderr
    assert "INTERP_HOME" in missing.stderr and "Traceback" not in missing.stderr


def test_interp_dashboard_serves_the_app_from_the_wheel(installed):
    _, bin_dir, elsewhere, env = installed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(bin_dir / "interp"), "dashboard", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, healthy = time.monotonic() + 120, False
        while time.monotonic() < deadline and not healthy:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                    healthy = r.read().decode().strip() == "ok"
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(1)
        assert healthy, "interp dashboard did not answer in two minutes"
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The installed app runs through its navigation to a page that loads a bundled checkpoint.
    script = (
        "from streamlit.testing.v1 import AppTest; import dashboard, pathlib; "
        "app = pathlib.Path(dashboard.__file__).parent / '_app' / 'app.py'; "
        "at = AppTest.from_file(str(app), default_timeout=300); at.run(); assert not at.exception, at.exception; "
        "at.switch_page('pages/filters.py'); at.session_state['model'] = 'nin_cifar10'; at.run(); "
        "assert not at.exception and not at.error, (at.exception, [e.value for e in at.error]); "
        "print(at.title[0].value)"
    )
    ran = _run(installed, "python", "-c", script)
    assert ran.returncode == 0 and ran.stdout.strip().endswith("Filters"), ran.stdout + ran.stderr


def test_interp_home_is_where_training_writes_and_checkpoints_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    assert paths.writable_checkpoint_dir() == tmp_path / "home" / "checkpoints"
    monkeypatch.delenv(paths.HOME_ENV)
    assert paths.writable_checkpoint_dir() == REPO / "checkpoints"  # a checkout writes to its own folder


def test_checkpoints_are_searched_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    monkeypatch.setattr(model_spec, "CHECKPOINT_DIR", first)
    monkeypatch.setattr(model_spec, "CHECKPOINT_SEARCH", [second])
    spec = interp.get_spec("nin_cifar10")
    assert spec.checkpoint is None
    (second / "nin_cifar10.safetensors").write_bytes(b"")
    (second / "nin_cifar10.json").write_text("{}")
    assert spec.checkpoint == second / "nin_cifar10.safetensors" and spec.card_path == second / "nin_cifar10.json"
    assert spec.checkpoint_path == first / "nin_cifar10.safetensors"  # training still writes to the first
    (first / "nin_cifar10.safetensors.index.json").write_text("{}")
    assert spec.checkpoint == first / "nin_cifar10.safetensors.index.json"

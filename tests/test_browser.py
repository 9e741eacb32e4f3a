"""End to end: `streamlit run app.py` for real, every page visited in headless Chromium.

Uses Debian's Chromium (/usr/bin/chromium) driven by Playwright; nothing is downloaded.
Screenshots go to test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("INTERP_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"


def _pages() -> list[tuple[str, str]]:
    """(url path, title) of every page that app.py routes to, read from app.py itself."""
    import re

    text = (REPO / "app.py").read_text()
    pages = re.findall(r'st\.Page\("pages/(\w+)\.py", title="([^"]+)"', text)
    return [("" if i == 0 else stem, title) for i, (stem, title) in enumerate(pages)]


@pytest.fixture(scope="module")
def server(data_dir):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium'; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _settle(page) -> None:
    """Wait until the script run is over: the 'running' indicator is gone and nothing spins."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    try:  # every page has a title; the first run of a fresh server imports torch first
        page.wait_for_selector("h1", timeout=90_000)
    except Exception:
        pass  # reported by the caller as "no title rendered"
    deadline = time.time() + 120
    while time.time() < deadline:
        running = page.locator('[data-test-script-state="running"]').count()
        spinners = page.locator('[data-testid="stSpinner"]').count()
        if not running and not spinners:
            break
        page.wait_for_timeout(500)
    page.wait_for_timeout(1500)  # Plotly draws after the run


def test_every_page_renders_without_exception(server):
    from playwright.sync_api import sync_playwright

    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    failures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for i, (path, title) in enumerate(_pages()):
                page.goto(f"{server}/{path}")
                _settle(page)
                page.screenshot(path=str(SHOTS / f"{i:02d}-{path or 'home'}.png"), full_page=True)
                if page.locator('[data-testid="stException"]').count():
                    failures.append(f"{title}: {page.locator('[data-testid=stException]').first.inner_text()[:500]}")
                if not page.locator("h1").count():
                    failures.append(f"{title}: no title rendered")
        finally:
            browser.close()
    assert not failures, failures

"""End to end: `streamlit run app.py` for real, every page visited in headless Chromium.

Uses Debian's Chromium (/usr/bin/chromium) driven by Playwright; nothing is downloaded.
Screenshots go to test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.navigation import page_table
from tests.apptest import REPO

CHROMIUM = os.environ.get("INTERP_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"


def _pages() -> list[tuple[str, str]]:
    """(url path, title) of every page that app.py routes to (dashboard/pages.toml); the first is home."""
    rows = [(stem, title) for section in page_table().values() for stem, title, _ in section]
    return [("" if i == 0 else stem, title) for i, (stem, title) in enumerate(rows)]


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium'; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-dev.txt)")


@contextlib.contextmanager
def _streamlit_server(*options: str):
    """`streamlit run app.py [-- options]` on a free port of this machine, fresh for each use; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            *(("--", *options) if options else ()),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
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


@contextlib.contextmanager
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server():
    _require_browser()
    with _streamlit_server() as url:
        yield url


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
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    failures = []
    with _browser() as page:
        for i, (path, title) in enumerate(_pages()):
            page.goto(f"{server}/{path}")
            _settle(page)
            page.screenshot(path=str(SHOTS / f"{i:02d}-{path or 'home'}.png"), full_page=True)
            if page.locator('[data-testid="stException"]').count():
                failures.append(f"{title}: {page.locator('[data-testid=stException]').first.inner_text()[:500]}")
            if not page.locator("h1").count():
                failures.append(f"{title}: no title rendered")
    assert not failures, failures


def test_a_deep_link_to_a_fresh_server_keeps_the_apps_navigation():
    """The first request to a new server names a page: the sidebar still lists the app's own
    pages by their titles, never the files of pages/, and later visitors see the same."""
    _require_browser()
    titles = [title for _, title in _pages()]
    stems = [path for path, _ in _pages() if path]
    failures = []
    for path in stems:
        with _streamlit_server() as url, _browser() as page:
            for visit in (f"{url}/{path}", f"{url}/"):  # the deep link, then a later visitor
                page.goto(visit)
                page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=90_000)
                page.wait_for_selector("h1", timeout=90_000)
                links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
                shown = [text.split("\n")[-1].strip() for text in links]
                if shown != titles:
                    failures.append(f"{visit}: sidebar lists {shown}")
    assert not failures, failures


def _choose(page, label: str, option: str, sidebar: bool = False) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, as a person would, and wait for the run."""
    scope = page.locator('[data-testid="stSidebar"]') if sidebar else page.locator('[data-testid="stMain"]')
    box = scope.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    # Typing filters the list as a person would: a long list renders only the options in view.
    box.locator('input[role="combobox"]').fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    _settle(page)


def _selected(page, label: str) -> str:
    """The option shown in the selectbox labelled ``label`` (its combobox input's value)."""
    return page.locator(f'[data-testid="stMain"] input[role="combobox"][aria-label="{label}"]').first.input_value()


def test_labels_follow_image_and_model_in_the_browser(server):
    """Change the image, then the model, on the CAM page: the target box and the map's title name
    the class the library predicts for the pair on screen."""
    import interp
    from interp.data import sample_images

    samples = {label: path for label, path in sample_images().items() if label.startswith("CIFAR-10")}
    (first, first_path), (second, second_path) = list(samples.items())[:2]
    with _browser() as page:
        page.goto(f"{server}/cam")
        _settle(page)
        for image, path, model in [
            (first, first_path, "nin_cifar10"),
            (second, second_path, "nin_cifar10"),
            (second, second_path, "table2_cnn_cifar10"),
        ]:
            _choose(page, "Model", model)
            _choose(page, "Image", image, sidebar=True)
            spec = interp.get_spec(model)
            probs = interp.methods.predict(interp.load_model(model), interp.preprocess(interp.load_image(path), spec))[
                0
            ]
            expected = spec.class_names[int(probs.argmax())]
            assert _selected(page, "Target class") == f"{int(probs.argmax())}: {expected} ({probs.max():.1%})"
            title = page.locator(".gtitle").first.text_content()
            assert f"for '{expected}'" in title, (model, image, title)


def test_every_page_on_a_users_model_from_a_models_file():
    """`streamlit run app.py -- --models tests/models_files/my_models.py`: every page with a model
    picker offers the user's model and renders with it selected, without a traceback."""
    _require_browser()
    failures = []
    with _streamlit_server("--models", "tests/models_files/my_models.py") as url, _browser() as page:
        for path, title in _pages():
            page.goto(f"{url}/{path}")
            _settle(page)
            if not page.locator('[data-testid="stMain"] input[role="combobox"][aria-label="Model"]').count():
                continue  # Home and Compare models have no single model picker
            _choose(page, "Model", "my_tinynet")
            if _selected(page, "Model") != "my_tinynet":
                failures.append(f"{title}: my_tinynet not selected")
            if page.locator('[data-testid="stException"]').count():
                failures.append(f"{title}: {page.locator('[data-testid=stException]').first.inner_text()[:300]}")
            if page.locator('[data-testid="stAlertContentError"]').count():
                failures.append(
                    f"{title}: {page.locator('[data-testid=stAlertContentError]').first.inner_text()[:300]}"
                )
    assert not failures, failures


def test_bring_a_model_through_the_sidebar(server, tmp_path):
    """Upload a weights file with class names in the sidebar: the model is offered and the CAM
    page explains the image with it; a file of the wrong shapes gets a message naming them."""
    from playwright.sync_api import expect
    from safetensors.torch import save_file

    import interp

    torch_model = interp.models.ARCHITECTURES["nin"](3, batch_norm=True, dropout=0.3)
    save_file({k: v.contiguous() for k, v in torch_model.state_dict().items()}, str(tmp_path / "three.safetensors"))
    wrong = interp.models.ARCHITECTURES["nin"](4, batch_norm=True, dropout=0.3)
    save_file({k: v.contiguous() for k, v in wrong.state_dict().items()}, str(tmp_path / "four.safetensors"))
    with _browser() as page:
        page.goto(f"{server}/cam")
        _settle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        for weights, expected in (
            ("four.safetensors", "has shape (4, "),
            ("three.safetensors", "is in the model pickers"),
        ):
            architecture = sidebar.locator('input[role="combobox"][aria-label="Architecture"]')
            if not architecture.is_visible():
                sidebar.get_by_text("Bring a model").click()
                architecture.wait_for(state="visible")
                page.wait_for_timeout(500)  # the expander's opening animation
            _choose(page, "Architecture", "nin", sidebar=True)
            sidebar.locator('input[type="file"]').set_input_files(str(tmp_path / weights))
            _settle(page)
            sidebar.locator("textarea").fill("cat\ndog\nfox")
            sidebar.locator("textarea").press("Tab")
            _settle(page)
            add = sidebar.get_by_role("button", name="Add the model")
            expect(add).to_be_enabled(timeout=90_000)  # once the upload and the names reached the server
            add.click()
            _settle(page)
            assert expected in sidebar.inner_text(), sidebar.inner_text()[-500:]
        assert _selected(page, "Model").startswith("nin [")
        assert not page.locator('[data-testid="stException"]').count()
        assert "layer features.relu3_3" in page.locator(".gtitle").first.text_content()


def _press_and_wait(page, button: str, shown: str, timeout_s: int = 420) -> None:
    """Press the button named ``button`` and wait until the element keyed ``shown`` is drawn."""
    page.get_by_role("button", name=button).click()
    page.wait_for_selector(f".st-key-{shown}", timeout=timeout_s * 1000)
    _settle(page)


def test_concepts_and_the_style_tcav_of_the_alexnet_pair_run_in_the_browser(server):
    """The Concepts page's TCAV panel and the Compare page's TCAV of the PACS styles, on their
    default models (the course's AlexNet pair), run from their buttons to a drawn result."""
    from dashboard import defaults

    with _browser() as page:
        page.goto(f"{server}/concepts")
        _settle(page)
        assert _selected(page, "Model") == defaults.COURSE_CLASS[0]
        _press_and_wait(page, "Run TCAV", "concepts_tcav_scores")
        page.screenshot(path=str(SHOTS / "concepts-tcav.png"), full_page=True)
        assert not page.locator('[data-testid="stException"]').count()
        assert page.locator('[data-testid="stDataFrame"]').count() >= 2  # CRP's channels, then TCAV's scores

        page.goto(f"{server}/compare")
        _settle(page)
        _press_and_wait(page, "Compute", "cmp_tcav_bars")
        page.screenshot(path=str(SHOTS / "compare-style-tcav.png"), full_page=True)
        assert not page.locator('[data-testid="stException"]').count()
        main = page.locator('[data-testid="stMain"]').inner_text()
        for tag, name in (("A", defaults.COURSE_DOMAIN[0]), ("B", defaults.COURSE_CLASS[0])):
            assert f"{tag}: {name}: TCAV scores" in main  # each table's heading names its model


def test_a_report_card_runs_in_the_browser(tmp_path, monkeypatch):
    """On a fresh server with an empty cache: the Report card page on NiN, its button, a progress
    bar, then the rank table, the family charts and the downloads."""
    _require_browser()
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))  # no card kept from an earlier run
    with _streamlit_server() as url, _browser() as page:
        page.goto(f"{url}/report_card")
        _settle(page)
        _choose(page, "Model", "nin_cifar10")
        _press_and_wait(page, "Run report card", "rc_ranks")
        page.screenshot(path=str(SHOTS / "report-card-run.png"), full_page=True)
        assert not page.locator('[data-testid="stException"]').count()
        assert "Rank of each method" in page.locator(".st-key-rc_ranks .gtitle").first.text_content()
        for key in ("rc_csv", "rc_summary_parquet", "rc_long_parquet"):
            assert page.locator(f".st-key-{key}").count(), key
        assert not page.get_by_role("button", name="Run report card").count()  # the kept card shows instead

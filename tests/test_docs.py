"""The documentation: the MkDocs site builds without a warning, and README stays a short front door
that holds both set-up commands as written (CI runs README's test command)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SET_UP = "pip install -r requirements.txt && streamlit run app.py"
TESTS = "pip install -r requirements.txt -r requirements-dev.txt && python -m pytest"


def test_the_site_builds_in_strict_mode(tmp_path):
    # NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.0, which says nothing about this site.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_the_readme_is_short_and_holds_both_set_up_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    blocks = [block.split("```", 1)[0].strip() for block in readme.split("```bash\n")[1:]]
    assert blocks[0] == SET_UP  # the first code block starts the dashboard
    assert TESTS in blocks

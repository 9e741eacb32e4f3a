"""Every page runs through app.py's navigation, even when a deep link is a fresh server's first request.

Streamlit treats an app whose folder holds ``pages/`` as an old-style multipage app until
``st.navigation`` runs: a first request for ``/cam`` runs pages/cam.py directly, under a
sidebar that lists the raw files of pages/ and without app.py's page configuration, and the
server keeps that mode for every later session. Every page starts with dashboard.widgets.page,
which calls :func:`run_through_app` first: it clears the mode (as ``st.navigation`` itself does)
and reruns, so app.py routes the same URL to the same page with the app's own navigation.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import streamlit as st

PAGES_FILE = Path(__file__).with_name("pages.toml")


def page_table() -> dict[str, list[tuple[str, str, str]]]:
    """The sidebar's sections in order, each a list of (file stem under pages/, title, Material icon)."""
    with PAGES_FILE.open("rb") as f:
        return {section: [tuple(row) for row in rows] for section, rows in tomllib.load(f).items()}


def run_through_app() -> None:
    """Rerun through app.py when this page was started without it (see the module's docstring)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode: nothing to undo
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()

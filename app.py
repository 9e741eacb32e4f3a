"""interp dashboard entry point: page configuration, the dashboard's options and navigation only."""

import sys

import streamlit as st

from dashboard.cli import apply_command_line
from dashboard.navigation import page_table
from interp.models import load_models_files

st.set_page_config(page_title="interp: inside trained CNNs", layout="wide")
not_understood = apply_command_line(sys.argv[1:])  # streamlit run app.py -- --data-dir DIR --models FILE
if not_understood:
    st.sidebar.warning(
        f"Options not understood (the dashboard takes --data-dir, --device and --models): {' '.join(not_understood)}"
    )
for problem in load_models_files().values():  # each file runs once per process; its error shows here
    st.sidebar.error(problem)
SECTIONS = page_table()  # dashboard/pages.toml
HOME = next(iter(SECTIONS.values()))[0][0]
PAGES = {
    section: [
        st.Page(f"pages/{stem}.py", title=title, icon=f":material/{icon}:", default=stem == HOME)
        for stem, title, icon in rows
    ]
    for section, rows in SECTIONS.items()
}
navigation = st.navigation(PAGES, expanded=True)  # every page in view, none behind 'View more'
navigation.run()

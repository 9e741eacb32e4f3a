"""interp dashboard entry point: page configuration, the shared image picker and navigation."""

import streamlit as st

from pages.common import image_sidebar

st.set_page_config(page_title="interp: inside trained CNNs", layout="wide")
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
]
navigation = st.navigation(PAGES)
image_sidebar()
navigation.run()

"""interp dashboard entry point: page configuration and navigation only."""

import streamlit as st

st.set_page_config(page_title="interp: inside trained CNNs", layout="wide")
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
]
navigation = st.navigation(PAGES)
navigation.run()

"""interp dashboard entry point: page configuration and navigation only."""

import streamlit as st

st.set_page_config(page_title="interp: inside trained CNNs", layout="wide")
navigation = st.navigation([st.Page("pages/home.py", title="Home", default=True)])
navigation.run()

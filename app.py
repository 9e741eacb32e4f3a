"""interp dashboard entry point: page configuration, the dashboard's options and navigation only."""

import sys

import streamlit as st

from dashboard.cli import apply_command_line
from interp.models import load_models_files

st.set_page_config(page_title="interp: inside trained CNNs", layout="wide")
not_understood = apply_command_line(sys.argv[1:])  # streamlit run app.py -- --data-dir DIR --models FILE
if not_understood:
    st.sidebar.warning(f"Options not understood (the dashboard takes --data-dir, --device and --models): "
                       f"{' '.join(not_understood)}")
for problem in load_models_files().values():  # each file runs once per process; its error shows here
    st.sidebar.error(problem)
# Sections of the sidebar: the model's parts, its explanations, whether to trust them, how it was
# trained and built, and the basics of convolutional networks.
PAGES = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Inside the model": [
        st.Page("pages/filters.py", title="Filters", icon=":material/grid_view:"),
        st.Page("pages/feature_maps.py", title="Feature maps", icon=":material/layers:"),
        st.Page("pages/filter_activations.py", title="Filter activations", icon=":material/filter_center_focus:"),
        st.Page("pages/filter_look.py", title="What filters look for", icon=":material/visibility:"),
    ],
    "Explanations": [
        st.Page("pages/cam.py", title="CAM", icon=":material/local_fire_department:"),
        st.Page("pages/gradients.py", title="Gradients", icon=":material/gradient:"),
        st.Page("pages/methods.py", title="All methods", icon=":material/view_module:"),
        st.Page("pages/compare.py", title="Compare models", icon=":material/compare:"),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:"),
    ],
    "Trust": [
        st.Page("pages/sanity.py", title="Sanity checks", icon=":material/verified:"),
        st.Page("pages/faithfulness.py", title="Faithfulness", icon=":material/rule:"),
    ],
    "Training": [
        st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
        st.Page("pages/imbalance.py", title="Imbalance", icon=":material/balance:"),
        st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
        st.Page("pages/variants.py", title="Enhancing AlexNet", icon=":material/compare_arrows:"),
    ],
    "Basics": [
        st.Page("pages/convolution.py", title="Convolution", icon=":material/blur_on:"),
        st.Page("pages/output_sizes.py", title="Output sizes", icon=":material/straighten:"),
        st.Page("pages/scratch.py", title="CNN from scratch", icon=":material/construction:"),
        st.Page("pages/piecewise.py", title="Piecewise-linear view", icon=":material/timeline:"),
    ],
}
navigation = st.navigation(PAGES, expanded=True)  # every page in view, none behind 'View more'
navigation.run()

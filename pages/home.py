"""Home: the registry, the chosen image and a short guide."""

import pandas as pd
import streamlit as st

from dashboard.widgets import image_sidebar, page
from interp.models import registry_rows


@st.cache_data(show_spinner=False)
def _rows():
    return registry_rows()


image_sidebar()
page("interp: look inside trained image CNNs")
st.markdown(
    "Pick an image in the sidebar (the zebra, held-out images of PACS and CIFAR-10, or your own), "
    "then open a page: **Filters** shows what each conv layer's kernels look like, **Feature maps** "
    "and **Filter activations** what they respond to in the image, **CAM**, **Gradients** and **All "
    "methods** where the model looks for its answer, **Compare models** how a domain model and a class "
    "model of the same architecture differ, **Sanity checks** and **Faithfulness** whether to trust a map, "
    "**Training**, **Imbalance** and **Architecture** how each model came to be. **Basics** teaches "
    "convolution by hand, output sizes, a network written from scratch and the piecewise-linear view."
)
st.subheader("Models")
table = pd.DataFrame(_rows()).drop(columns=["arch", "task"])  # the model's name says both
# Untrained entries have no card: an empty cell, not "None" (a number column prints missing values).
table["conv1 autocorrelation"] = ["" if pd.isna(v) else f"{v:.2f}" for v in table["conv1 autocorrelation"]]
table = table.astype({"held-out accuracy": "Float64"})
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=36 * len(table) + 40,
    column_config={
        "model": st.column_config.TextColumn(width="medium"),
        "parameters": st.column_config.NumberColumn(format="localized"),
        "held-out accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        "conv1 autocorrelation": st.column_config.TextColumn(
            "conv1 autocorr.", help="about 0: initial noise; about 0.66: Gabor-like learned filters"
        ),
        "weights": st.column_config.TextColumn(
            width="medium", help="a checkpoint, torchvision's download, or none yet"
        ),
        "get weights": st.column_config.TextColumn(width="large", help="the command that trains or downloads them"),
    },
)
st.caption("Held-out accuracy: CIFAR-10 test set (10,000 images) or the PACS validation split (1,998 images).")

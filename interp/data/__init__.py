"""Data: single images (``images``), the datasets under the data root (``datasets``) and the
images offered to people (``samples``: the zebra, the shipped sample, picker samples, held-out
batches)."""

from .datasets import (
    NATIVE_SIZE,
    PACS_VAL_FRACTION,
    ImageList,
    cache_dir,
    cifar10_split,
    data_root,
    dataset_split,
    decode_split,
    pacs_files,
    pacs_split,
    spread_indices,
)
from .images import MAX_IMAGE_PIXELS, ImageSource, load_image, normalize, preprocess, resize_center_crop
from .longtail import long_tail_counts, long_tail_indices
from .samples import (
    SAMPLE_DIR,
    ZEBRA_URL,
    HeldOutBatch,
    curate_sample,
    held_out_batch,
    held_out_images,
    held_out_sample,
    sample_images,
    shipped_split,
    zebra_path,
)

__all__ = [
    "HeldOutBatch",
    "MAX_IMAGE_PIXELS",
    "NATIVE_SIZE",
    "PACS_VAL_FRACTION",
    "SAMPLE_DIR",
    "ZEBRA_URL",
    "ImageList",
    "ImageSource",
    "cache_dir",
    "cifar10_split",
    "curate_sample",
    "data_root",
    "dataset_split",
    "decode_split",
    "held_out_batch",
    "held_out_images",
    "held_out_sample",
    "load_image",
    "long_tail_counts",
    "long_tail_indices",
    "normalize",
    "pacs_files",
    "pacs_split",
    "preprocess",
    "resize_center_crop",
    "sample_images",
    "shipped_split",
    "spread_indices",
    "zebra_path",
]

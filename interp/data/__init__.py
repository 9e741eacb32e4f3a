"""Data: single images (``images``), the datasets under the data root (``datasets``) and the
images offered to people (``samples``: the zebra, picker samples, held-out batches)."""

from .datasets import (NATIVE_SIZE, PACS_VAL_FRACTION, ImageList, cache_dir, cifar10_split, data_root, dataset_split,
                       decode_split, held_out_sample, pacs_files, pacs_split, spread_indices)
from .images import MAX_IMAGE_PIXELS, ImageSource, load_image, normalize, preprocess, resize_center_crop
from .samples import ZEBRA_URL, HeldOutBatch, held_out_batch, sample_image_path, sample_images

__all__ = [
    "HeldOutBatch", "MAX_IMAGE_PIXELS", "NATIVE_SIZE", "PACS_VAL_FRACTION", "ZEBRA_URL", "ImageList", "ImageSource",
    "cache_dir", "cifar10_split", "data_root", "dataset_split", "decode_split", "held_out_batch", "held_out_sample",
    "load_image", "normalize", "pacs_files", "pacs_split", "preprocess", "resize_center_crop", "sample_image_path",
    "sample_images", "spread_indices",
]

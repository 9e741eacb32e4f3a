"""Data: single images (``images``) and the datasets under the data root (``datasets``)."""

from .datasets import (NATIVE_SIZE, PACS_VAL_FRACTION, ZEBRA_URL, ImageList, cache_dir, cifar10_split, data_root,
                       dataset_split, decode_split, held_out_sample, pacs_files, pacs_split, sample_image_path,
                       sample_images, spread_indices)
from .images import MAX_IMAGE_PIXELS, ImageSource, load_image, normalize, preprocess, resize_center_crop

__all__ = [
    "MAX_IMAGE_PIXELS", "NATIVE_SIZE", "PACS_VAL_FRACTION", "ZEBRA_URL", "ImageList", "ImageSource", "cache_dir",
    "cifar10_split", "data_root", "dataset_split", "decode_split", "held_out_sample", "load_image", "normalize",
    "pacs_files", "pacs_split", "preprocess", "resize_center_crop", "sample_image_path", "sample_images",
    "spread_indices",
]

"""load_image on good and bad inputs, preprocess, and the real PACS / CIFAR-10 loaders."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import interp
from interp import ImageError
from interp.data import (
    MAX_IMAGE_PIXELS,
    ImageList,
    cifar10_split,
    held_out_batch,
    pacs_files,
    pacs_split,
    spread_indices,
)


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_sources_path_bytes_file_and_pil(tmp_path):
    img = Image.new("RGB", (10, 6), (10, 200, 30))
    path = tmp_path / "a.png"
    path.write_bytes(_png(img))
    for src in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), img):
        out = interp.load_image(src)
        assert out.mode == "RGB" and out.size == (10, 6)
        assert out.getpixel((0, 0)) == (10, 200, 30)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 10))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = interp.load_image(_jpeg(img, exif=exif.tobytes(), quality=95))
    assert out.size == (10, 20)
    # After a 90-degree clockwise turn, the left half is on top.
    top, bottom = np.asarray(out)[2, 5], np.asarray(out)[17, 5]
    assert top[2] > 200 and bottom[0] > 200


def test_transparency_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    out = np.asarray(interp.load_image(_png(img)))
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (255, 0, 0)
    half = Image.new("LA", (2, 2), (0, 128))  # black at half opacity -> mid grey
    assert 120 <= np.asarray(interp.load_image(_png(half)))[0, 0, 0] <= 135


def test_palette_cmyk_grayscale_and_16bit():
    pal = Image.new("RGB", (4, 4), (0, 128, 255)).convert("P")
    assert interp.load_image(_png(pal)).mode == "RGB"
    pal_t = Image.new("P", (2, 2), 0)
    pal_t.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal_t.info["transparency"] = 0
    assert tuple(np.asarray(interp.load_image(_png(pal_t, transparency=0)))[0, 0]) == (255, 255, 255)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    red = np.asarray(interp.load_image(_jpeg(cmyk)))[0, 0]
    assert red[0] > 200 and red[1] < 60
    gray = interp.load_image(_png(Image.new("L", (3, 3), 77)))
    assert tuple(np.asarray(gray)[0, 0]) == (77, 77, 77)
    # 16-bit: 40000/65535 of full scale must stay ~155, not clip to 255.
    arr16 = np.full((4, 4), 40000, dtype=np.uint16)
    arr16[0, 0] = 65535
    out = np.asarray(interp.load_image(_png(Image.fromarray(arr16))))
    assert abs(int(out[1, 1, 0]) - round(40000 / 257)) <= 1
    assert out[0, 0, 0] == 255


def test_animation_takes_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = np.asarray(interp.load_image(buf.getvalue()))
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 60


@pytest.mark.parametrize(
    "bad, message",
    [(b"", "empty"), (b"this is not an image at all", "not an image"), ("%PDF-1.4 fake".encode(), "not an image")],
)
def test_rejects_empty_and_non_images(bad, message):
    with pytest.raises(ImageError, match=message):
        interp.load_image(bad)


def test_rejects_truncated_file(tmp_path):
    data = _jpeg(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(ImageError, match="truncated|damaged"):
        interp.load_image(data[: len(data) // 2])
    png = _png(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(ImageError):
        interp.load_image(png[: len(png) // 2])


def test_rejects_missing_path_and_wrong_type(tmp_path):
    with pytest.raises(ImageError, match="no image file"):
        interp.load_image(tmp_path / "missing.jpg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        interp.load_image(empty)
    with pytest.raises(ImageError, match="cannot read"):
        interp.load_image(12345)


def test_rejects_decompression_bomb_and_oversized_image():
    # A tiny PNG whose header claims 30000 x 30000 pixels: Pillow's bomb check fires before decoding.
    bomb = _png(Image.new("1", (30000, 30000)))
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="decompression bomb|too large|limit"):
        interp.load_image(bomb)
    side = int(MAX_IMAGE_PIXELS**0.5) + 10
    big = Image.new("1", (side, side))
    with pytest.raises(ImageError, match="limit"):
        interp.load_image(big)
    assert isinstance(ImageError("x"), ValueError)


def test_preprocess_shape_and_normalisation():
    spec = interp.get_spec("table2_cnn_cifar10")
    img = Image.new("RGB", (64, 48), (255, 255, 255))
    x = interp.preprocess(img, spec)
    assert x.shape == (1, 3, 32, 32)
    expected = (1.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), expected, rtol=1e-5)


def test_pacs_on_real_data(data_dir):
    files = pacs_files(data_dir)
    assert len(files) == 9991
    train, val = pacs_split("train", "domain", data_dir), pacs_split("val", "domain", data_dir)
    assert len(train) + len(val) == 9991
    assert set(train.paths).isdisjoint(val.paths)
    assert 0.19 < len(val) / 9991 < 0.21
    # Stratified: every (domain, class) group is about 20% validation.
    groups: dict[tuple[str, str], list[int]] = {}
    val_set = set(val.paths)
    for path, domain, cls in files:
        groups.setdefault((domain, cls), [0, 0])[path in val_set] += 1
    assert len(groups) == 28
    for n_train, n_val in groups.values():
        assert abs(n_val - 0.2 * (n_train + n_val)) <= 0.5
    # Same files for both label types, and the same split on every call.
    assert pacs_split("val", "class", data_dir).paths == val.paths
    assert pacs_split("val", "domain", data_dir).paths == val.paths
    assert set(pacs_split("train", "class", data_dir).labels) == set(range(7))


def test_cifar10_on_real_data(data_dir):
    train, test = cifar10_split("train", data_dir), cifar10_split("test", data_dir)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    img = interp.load_image(test.paths[0])
    assert img.size == (32, 32)


def test_missing_dataset_says_what_to_do(tmp_path):
    with pytest.raises(interp.DataError, match="INTERP_DATA_DIR"):
        pacs_files(tmp_path)
    with pytest.raises(interp.DataError, match="cifar10"):
        cifar10_split("test", tmp_path)


def test_spread_indices_by_hand():
    assert spread_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert spread_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert spread_indices(0, 3).tolist() == [] and spread_indices(7, 0).tolist() == []
    ordered_by_class = np.repeat(np.arange(10), 100)
    assert sorted(ordered_by_class[spread_indices(1000, 10)].tolist()) == list(range(10))


def test_cifar10_binary_release_becomes_an_image_folder_tree(tmp_path, monkeypatch):
    """torchvision's pickled release (here a 3-image stand-in) is written out once as lossless PNG files."""
    import pickle

    from torchvision.datasets import cifar

    release = tmp_path / "cifar10" / "cifar-10-batches-py"
    release.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 3 * 32 * 32), dtype=np.uint8)
    (release / "test_batch").write_bytes(pickle.dumps({"data": pixels, "labels": [3, 0, 3]}))
    (release / "batches.meta").write_bytes(pickle.dumps({"label_names": list(interp.models.CIFAR10_CLASSES)}))
    monkeypatch.setattr(cifar, "check_integrity", lambda *args: True)  # the stand-in has no official MD5
    test = cifar10_split("test", tmp_path)
    assert isinstance(test, ImageList) and test.labels == [0, 3, 3]
    assert [p.parent.name for p in test.paths] == ["airplane", "cat", "cat"]
    decoded = np.asarray(interp.load_image(test.paths[1]))  # the first image of class 3 is release image 0
    np.testing.assert_array_equal(decoded, pixels[0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert cifar10_split("test", tmp_path).paths == test.paths  # read from the tree from now on


def test_held_out_batch_is_preprocessed_and_spread_over_classes(data_dir):
    spec = interp.get_spec("table2_cnn_cifar10")
    batch = held_out_batch(spec, 20, data_dir)
    assert batch.x.shape == (20, 3, 32, 32) and len(batch.pictures) == 20
    assert sorted(set(batch.labels.tolist())) == list(range(10))
    first = cifar10_split("test", data_dir).paths[0]
    torch.testing.assert_close(batch.image(0), interp.preprocess(interp.load_image(first), spec))

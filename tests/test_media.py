"""Frames and image loading: every odd input becomes RGB uint8 or a typed error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench import Frame, ImageError, InputError, load_image


def test_gray_rgba_float_and_bool_become_rgb_uint8():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    f = Frame(gray)
    assert f.image.shape == (3, 4, 3) and (f.image[..., 1] == gray).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 9
    assert Frame(rgba).image.shape == (2, 2, 3)
    flt = np.full((2, 2, 3), 0.5, np.float32)
    assert Frame(flt).image[0, 0, 0] == 128  # rint(127.5) -> 128
    assert Frame(np.ones((2, 2), bool)).image.max() == 255
    assert Frame(gray).size == (4, 3)


def test_frame_is_immutable_and_does_not_alias_the_callers_array():
    a = np.zeros((4, 4, 3), np.uint8)
    f = Frame(a, id="x")
    a[0, 0, 0] = 7
    assert f.image[0, 0, 0] == 0
    with pytest.raises(ValueError):
        f.image[0, 0, 0] = 1
    assert f.id == "x" and Frame(a).id.startswith("frame-")


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (np.full((2, 2, 3), 300, np.int32), "outside 0..255"),
        (np.zeros((0, 4, 3), np.uint8), "shape"),
        (np.zeros((2, 2, 3), np.complex64), "dtype"),
    ],
)
def test_bad_arrays_raise_input_error(bad, match):
    with pytest.raises(InputError, match=match):
        Frame(bad)


def test_load_image_roundtrip_and_broken_files(tmp_path):
    img = (np.random.default_rng(0).integers(0, 255, (10, 12, 3))).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "ok.png")
    assert (load_image(tmp_path / "ok.png") == img).all()
    f = Frame.open(tmp_path / "ok.png")
    assert f.id == "ok" and f.source.endswith("ok.png")

    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 3])
    (tmp_path / "garbage.jpg").write_bytes(b"\x00" * 100)
    for name in ("truncated.png", "garbage.jpg"):
        with pytest.raises(ImageError, match="cannot decode"):
            load_image(tmp_path / name)
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")

"""Packaged sample frames (no download) and the LFW subset."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from workbench import DataError, Frame, data


@pytest.mark.parametrize("name", sorted(data.SAMPLE_IMAGES))
def test_every_sample_loads_as_rgb_uint8_without_download(name):
    img = data.sample_image(name)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.size > 0
    f = data.sample_frame(name)
    assert isinstance(f, Frame) and f.id == name and f.source == f"sample:{name}"


def test_samples_are_scikit_image_pixels():
    assert (data.sample_image("astronaut") == skimage.data.astronaut()).all()
    cam = data.sample_image("camera")
    assert (cam[..., 0] == skimage.data.camera()).all() and (cam[..., 0] == cam[..., 2]).all()
    assert (data.sample_image("motorcycle") == skimage.data.stereo_motorcycle()[0]).all()


def test_unknown_sample_lists_the_names():
    with pytest.raises(DataError, match="astronaut"):
        data.sample_image("mona-lisa")


def test_lfw_subset_and_mosaic():
    imgs, is_face = data.lfw_subset()
    assert imgs.shape == (200, 25, 25, 3) and imgs.dtype == np.uint8
    assert is_face.sum() == 100 and is_face[:100].all()
    raw = skimage.data.lfw_subset()
    assert np.abs(imgs[5, ..., 0].astype(int) - np.rint(raw[5] * 255)).max() == 0
    m = data.lfw_mosaic(rows=2, cols=3, scale=4, gap=24)
    assert m.shape == (2 * 100 + 3 * 24, 3 * 100 + 4 * 24, 3)
    # the second face sits at (row 0, col 1), upscaled 4x by pixel repetition
    tile = m[24:124, 24 + 124 : 124 + 124]
    assert (tile[::4, ::4] == imgs[1]).all()
    with pytest.raises(DataError):
        data.lfw_mosaic(rows=20, cols=20)


def test_sample_names_cover_all_kinds():
    names = data.sample_names()
    assert "lfw-mosaic" in names and "shapes" in names and "astronaut" in names
    assert data.sample_image("shapes").shape[2] == 3

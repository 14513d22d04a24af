"""Preprocessing: geometry checked against where the pixels actually land, values, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import Frame, InputError, TensorSpec, preprocess
from workbench.preprocess import infer_input_spec
from workbench.zoo import InputSpec


def _frame_with_square(w=200, h=100, box=(120, 30, 160, 70)):
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return Frame(img), np.array([[x1, y1], [x2, y2]], float)


def _bright_extent(chw):
    mask = chw.max(axis=-1) > 0.5 * chw.max()
    ys, xs = np.nonzero(mask)
    return np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.max() + 1]], float)


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "pad-resize", "center-crop"])
def test_transform_maps_frame_points_to_where_pixels_land(policy):
    frame, corners = _frame_with_square()
    spec = InputSpec(name="x", size=(64, 64), layout="NHWC", range=(0.0, 1.0), resize=policy)
    x, t = preprocess(frame, spec)
    assert x.shape == (1, 64, 64, 3) and x.dtype == np.float32
    found = _bright_extent(x[0])
    expected = np.clip(t.to_input(corners), 0, 64)  # center-crop cuts the square at the border
    assert np.abs(expected - found).max() <= 1.5  # within resampling blur
    # the inverse really is the inverse
    pts = np.random.default_rng(0).uniform(0, 64, (10, 2))
    assert np.allclose(t.to_input(t.to_frame(pts)), pts)


def test_letterbox_pads_symmetrically_and_keeps_aspect():
    frame, _ = _frame_with_square()
    spec = InputSpec(name="x", size=(128, 128), layout="NHWC", range=(-1.0, 1.0), resize="letterbox")
    x, t = preprocess(frame, spec)
    assert t.scale == (0.64, 0.64) and t.offset == (0.0, 32.0)
    assert np.allclose(x[0, :32], -1.0) and np.allclose(x[0, 96:], -1.0)  # black pad -> -1
    assert t.boxes_to_frame(np.array([[0, 32, 128, 96]])).round(6).tolist() == [[0, 0, 200, 100]]


def test_values_mean_std_layout_and_bgr():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # pure red
    spec = InputSpec(name="x", size=(4, 4), layout="NCHW", color="BGR", range=None,
                     mean=(127.5,) * 3, std=(128.0,) * 3)
    x, _ = preprocess(Frame(img), spec)
    assert x.shape == (1, 3, 4, 4)
    assert np.allclose(x[0, 2], (255 - 127.5) / 128) and np.allclose(x[0, 0], -127.5 / 128)


def test_infer_input_spec_from_model_shapes():
    nchw = infer_input_spec(TensorSpec.from_shape([1, 3, 224, 320], "float32", name="images"))
    assert nchw.layout == "NCHW" and nchw.size == (320, 224) and nchw.range == (0.0, 1.0)
    nhwc = infer_input_spec(TensorSpec.from_shape([1, 128, 128, 3], "float32", name="input"), value_range=(-1, 1))
    assert nhwc.layout == "NHWC" and nhwc.range == (-1.0, 1.0)
    with pytest.raises(InputError, match="--input-size"):
        infer_input_spec(TensorSpec.from_shape([1, "h", "w", 3], "float32", name="p"))
    assert infer_input_spec(TensorSpec.from_shape([1, "h", "w", 3], "float32"), size=(40, 30)).size == (40, 30)


@pytest.mark.parametrize("color, layout, norm", [
    ("RGB", "NHWC", {"range": (-1.0, 1.0)}),
    ("BGR", "NCHW", {"range": None, "mean": (127.5, 120.0, 100.0), "std": (128.0, 60.0, 57.0)}),
    ("RGB", "NCHW", {"range": (0.0, 1.0)}),
])
def test_every_step_is_recorded_and_the_value_steps_undo(color, layout, norm):
    from workbench.preprocess import resize_image, undo_values

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (50, 80, 3)).astype(np.uint8)
    spec = InputSpec(name="x", size=(40, 40), layout=layout, color=color, resize="letterbox", **norm)
    x, t = preprocess(Frame(img), spec, pad_value=0)
    assert [s.name for s in t.steps] == ["letterbox", "color", "normalize", "layout"]
    # the undone picture is the letterboxed resize of the frame (independent: resize + paste here)
    resized = resize_image(img, (40, 25))
    expected = np.zeros((40, 40, 3), np.uint8)
    expected[7:32] = resized
    assert t.offset == (0.0, 7.0)
    assert np.abs(undo_values(x, t.steps).astype(int) - expected).max() <= 1
    # steps survive the JSON form used by saved results
    from workbench.preprocess import Transform
    again = Transform.from_dict(t.as_dict())
    assert again == t and np.abs(undo_values(x, again.steps).astype(int) - expected).max() <= 1


def test_gray_models_undo_to_gray_rgb():
    from workbench.preprocess import undo_values

    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 1] = 200
    spec = InputSpec(name="x", size=(8, 8), layout="NCHW", color="GRAY", range=(0.0, 1.0))
    x, t = preprocess(Frame(img), spec)
    assert x.shape == (1, 1, 8, 8)
    back = undo_values(x, t.steps)
    assert back.shape == (8, 8, 3) and np.all(np.abs(back.astype(int) - round(200 * 0.587)) <= 1)

"""Box math against a slow pure-Python oracle and hand-computed values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from workbench import boxes as B
from workbench.errors import InputError
from workbench.preprocess import Transform

from oracles import loop_iou


def random_boxes(rng: np.random.Generator, n: int, degenerate: float = 0.0) -> np.ndarray:
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(0.5, 40, (n, 2))
    if degenerate:
        z = rng.random((n, 2)) < degenerate
        wh[z] = 0.0
        flip = rng.random(n) < degenerate / 2  # inverted boxes (x2 < x1) count as empty
        wh[flip, 0] = -wh[flip, 0] - 1
    return np.concatenate([xy, xy + wh], axis=1)


def test_box_iou_matches_loop_oracle_including_degenerate_boxes():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 40, degenerate=0.2), random_boxes(rng, 30, degenerate=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero warnings either
        got = B.box_iou(a, b)
    want = np.array([[loop_iou(x.tolist(), y.tolist()) for y in b] for x in a])
    assert got.shape == (40, 30)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert not np.isnan(got).any()
    assert B.pairwise_iou is B.box_iou


def test_elementwise_iou_is_the_diagonal():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 25, degenerate=0.2), random_boxes(rng, 25, degenerate=0.2)
    np.testing.assert_array_equal(B.elementwise_iou(a, b), np.diag(B.box_iou(a, b)))
    # broadcasting one box against many
    np.testing.assert_array_equal(B.elementwise_iou(a[0], b), B.box_iou(a[:1], b)[0])


def test_exact_iou_values():
    a = np.array([[0, 0, 4, 4]], float)
    b = np.array([[0, 0, 4, 2], [2, 0, 6, 4], [0, 0, 4, 1], [0, 0, 4, 3], [4, 0, 8, 4], [0, 0, 4, 4]], float)
    # half inside (8/16), half overlap (8/24), quarter (4/16), 3/4, touching (0), identical
    np.testing.assert_array_equal(B.box_iou(a, b)[0], [0.5, 8 / 24, 0.25, 0.75, 0.0, 1.0])


def test_degenerate_boxes_give_zero_not_nan():
    z = np.array([[5, 5, 5, 5], [5, 5, 5, 9], [3, 3, 1, 1]], float)  # point, line, inverted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = B.box_iou(z, z)
    np.testing.assert_array_equal(m, np.zeros((3, 3)))
    np.testing.assert_array_equal(B.box_area(z), [0, 0, 0])


def test_box_area_shapes():
    xy = np.arange(12, dtype=float).reshape(2, 3, 2)
    b = np.concatenate([xy, xy + 3], axis=-1)  # every box 3 x 3
    np.testing.assert_array_equal(B.box_area(b), np.full((2, 3), 9.0))


@pytest.mark.parametrize("fwd, back", [(B.cxcywh_to_xyxy, B.xyxy_to_cxcywh), (B.xywh_to_xyxy, B.xyxy_to_xywh),
                                       (B.yxyx_to_xyxy, B.xyxy_to_yxyx)])
def test_conversions_round_trip(fwd, back):
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(0, 100, (3, 5, 4)) * 8) / 8  # dyadic: exact round trips
    np.testing.assert_array_equal(back(fwd(x)), x)
    np.testing.assert_array_equal(fwd(back(x)), x)


def test_conversion_values():
    np.testing.assert_array_equal(B.cxcywh_to_xyxy([[10, 20, 4, 6]]), [[8, 17, 12, 23]])
    np.testing.assert_array_equal(B.xyxy_to_cxcywh([[8, 17, 12, 23]]), [[10, 20, 4, 6]])
    np.testing.assert_array_equal(B.xywh_to_xyxy([[1, 2, 3, 4]]), [[1, 2, 4, 6]])
    np.testing.assert_array_equal(B.yxyx_to_xyxy([[1, 2, 3, 4]]), [[2, 1, 4, 3]])
    np.testing.assert_array_equal(B.order_corners([[5, 1, 2, 4]]), [[2, 1, 5, 4]])


def test_clip_boxes():
    b = np.array([[-5, -5, 20, 8], [3, 4, 5, 6]], float)
    np.testing.assert_array_equal(B.clip_boxes(b, (7, 10)), [[0, 0, 10, 7], [3, 4, 5, 6]])  # (height, width)
    with pytest.raises(InputError):
        B.clip_boxes(b, (1, 2, 3))


def test_scale_boxes_matches_preprocess_transform():
    t = Transform("letterbox", (1280, 720), (640, 640), (0.5, 0.5), (0.0, 140.0))
    rng = np.random.default_rng(3)
    frame_boxes = random_boxes(rng, 10)
    corners = frame_boxes.reshape(-1, 2, 2)
    want = t.to_input(corners).reshape(-1, 4)
    np.testing.assert_allclose(B.scale_boxes(frame_boxes, t.scale, t.offset), want)
    np.testing.assert_allclose(t.boxes_to_frame(B.scale_boxes(frame_boxes, t.scale, t.offset)), frame_boxes)
    np.testing.assert_array_equal(B.scale_boxes([[1, 2, 3, 4]], 2), [[2, 4, 6, 8]])
    with pytest.raises(InputError):
        B.scale_boxes([[1, 2, 3, 4]], (1, 2, 3))


def test_as_boxes_errors_name_shape_and_bad_rows():
    with pytest.raises(InputError, match=r"expected shape \[N, 4\], got \[3, 5\]"):
        B.as_boxes(np.zeros((3, 5)))
    x = np.zeros((6, 4))
    x[1, 2] = np.nan
    x[4, 0] = np.inf
    with pytest.raises(InputError, match=r"2 of 6 rows hold NaN or Inf \(first rows: \[1, 4\]\)"):
        B.as_boxes(x)
    with pytest.raises(InputError, match="numeric"):
        B.as_boxes([["a", "b", "c", "d"]])
    with pytest.raises(InputError, match=r"expected shape \[\.\.\., 4\]"):
        B.box_iou(np.zeros((2, 3)), np.zeros((2, 4)))

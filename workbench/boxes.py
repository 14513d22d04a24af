"""Pure, vectorized box math in NumPy.

Boxes are ``(x1, y1, x2, y2)`` (corners, pixel-edge coordinates, ``x2 >= x1`` for a proper box)
unless a function says otherwise. Every function takes ``[..., 4]`` or ``[N, 4]`` arrays and
returns new arrays (inputs are never modified).

Degenerate boxes: a box whose width or height is zero *or negative* has area 0, and its IoU with
anything (itself included) is 0, never NaN. NMS therefore never suppresses a degenerate box and a
degenerate box never suppresses anything. (OpenCV's ``NMSBoxes`` differs here: it calls two
zero-area boxes identical, IoU 1.)

Other formats: ``cxcywh`` = (centre x, centre y, width, height), ``xywh`` = (left, top, width,
height) as OpenCV's ``Rect2d``, ``yxyx`` = (y1, x1, y2, x2) as TensorFlow and ONNX
``NonMaxSuppression`` (``center_point_box=0``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InputError

__all__ = [
    "as_boxes",
    "box_area",
    "box_iou",
    "pairwise_iou",
    "elementwise_iou",
    "cxcywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "yxyx_to_xyxy",
    "xyxy_to_yxyx",
    "order_corners",
    "clip_boxes",
    "scale_boxes",
]


def as_boxes(boxes: object, name: str = "boxes", *, dtype: type | None = np.float64) -> np.ndarray:
    """Check that ``boxes`` is a finite ``[N, 4]`` array and return it (as ``dtype`` if given).

    Raises :class:`InputError` naming the expected shape, or the number of rows holding NaN/Inf.
    """
    try:
        arr = np.asarray(boxes) if dtype is None else np.asarray(boxes, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: cannot be read as a numeric [N, 4] array ({exc})",
                         hint="pass a float array of shape [N, 4]") from None
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"{name}: expected shape [N, 4], got {list(arr.shape)}",
                         hint="reshape to [N, 4]; for a batch, call once per image")
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected a real numeric dtype, got {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            n_bad = int(bad.sum())
            first = np.flatnonzero(bad)[:5].tolist()
            raise InputError(f"{name}: {n_bad} of {len(arr)} rows hold NaN or Inf (first rows: {first})",
                             hint="drop or repair those rows before NMS; NaN usually means the model "
                                  "output was read with the wrong dtype or layout")
    return arr


def _check_last4(boxes: object, name: str = "boxes") -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.ndim < 1 or arr.shape[-1] != 4:
        raise InputError(f"{name}: expected shape [..., 4], got {list(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of ``[..., 4]`` xyxy boxes -> ``[...]``; inverted or empty boxes have area 0."""
    b = _check_last4(boxes)
    w = np.maximum(b[..., 2] - b[..., 0], 0)
    h = np.maximum(b[..., 3] - b[..., 1], 0)
    return w * h


def _safe_ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``inter / union`` where ``union > 0``, else 0 (degenerate boxes: IoU 0, never NaN)."""
    out = np.zeros(np.broadcast_shapes(inter.shape, union.shape), dtype=np.result_type(inter, union))
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair: ``a[N, 4]``, ``b[M, 4]`` (xyxy) -> ``[N, M]``."""
    a = _check_last4(a, "a").reshape(-1, 4)
    b = _check_last4(b, "b").reshape(-1, 4)
    area_a = box_area(a)
    area_b = box_area(b)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = area_a[:, None] + area_b[None, :] - inter
    return _safe_ratio(inter, union)


pairwise_iou = box_iou
"""Alias of :func:`box_iou` (all pairs, ``[N, M]``)."""


def elementwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows: ``a[..., 4]`` and ``b[..., 4]`` (broadcastable, xyxy) -> ``[...]``."""
    a = _check_last4(a, "a")
    b = _check_last4(b, "b")
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = box_area(a) + box_area(b) - inter
    return _safe_ratio(inter, union)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    b = _check_last4(boxes)
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x1, y1, x2, y2) -> (cx, cy, w, h)."""
    b = _check_last4(boxes)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x, y, w, h) with (x, y) the top-left corner -> (x1, y1, x2, y2)."""
    b = _check_last4(boxes)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (x1, y1, x2, y2) -> (x, y, w, h), OpenCV's ``Rect2d`` layout."""
    b = _check_last4(boxes)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def yxyx_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` (y1, x1, y2, x2) -> (x1, y1, x2, y2). Its own inverse."""
    b = _check_last4(boxes)
    return b[..., [1, 0, 3, 2]]


xyxy_to_yxyx = yxyx_to_xyxy
"""(x1, y1, x2, y2) -> (y1, x1, y2, x2); the same swap as :func:`yxyx_to_xyxy`."""


def order_corners(boxes: np.ndarray) -> np.ndarray:
    """``[..., 4]`` boxes whose corners may be given in either order -> proper xyxy (x1<=x2, y1<=y2).

    ONNX ``NonMaxSuppression`` accepts "flipped" boxes this way; NMS here treats an inverted box as
    empty instead, so call this first when the source allows either corner order.
    """
    b = _check_last4(boxes)
    return np.concatenate([np.minimum(b[..., :2], b[..., 2:]), np.maximum(b[..., :2], b[..., 2:])], axis=-1)


def clip_boxes(boxes: np.ndarray, size: Sequence[float]) -> np.ndarray:
    """Clip ``[..., 4]`` xyxy boxes to an image of ``size = (height, width)`` (torchvision's order)."""
    b = _check_last4(boxes)
    if len(size) != 2:
        raise InputError(f"clip_boxes: size must be (height, width), got {tuple(size)}")
    h, w = float(size[0]), float(size[1])
    hi = np.array([w, h, w, h], dtype=b.dtype)
    return np.clip(b, 0, hi)


def scale_boxes(boxes: np.ndarray, scale: float | Sequence[float],
                offset: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Map ``[..., 4]`` xyxy boxes by ``box * scale + offset`` per axis.

    ``scale`` is one number or (sx, sy); ``offset`` is (ox, oy). This is the convention of
    :class:`workbench.preprocess.Transform` (``model = frame * scale + offset``); to go from
    model-input pixels back to the frame use ``Transform.boxes_to_frame``.
    """
    b = _check_last4(boxes)
    try:
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
        o = np.broadcast_to(np.asarray(offset, dtype=np.float64), (2,))
    except ValueError:
        raise InputError(f"scale_boxes: scale must be a number or (sx, sy) and offset (ox, oy); "
                         f"got scale={scale!r}, offset={offset!r}") from None
    return b * np.tile(s, 2) + np.tile(o, 2)

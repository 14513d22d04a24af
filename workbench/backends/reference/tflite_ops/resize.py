"""Resizing: RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR (NHWC), with TFLite's three coordinate
conventions: ``align_corners``, ``half_pixel_centers`` and neither (TF1's legacy mapping
``src = dst * in/out``, which torch's ``interpolate`` does not offer).

Source coordinates are computed in float32 exactly as TFLite's reference kernels do
(``ComputeInterpolationValues`` / ``GetNearestNeighbor``); the interpolation itself is a
gather plus weights, so it is differentiable with respect to the input.
"""

from __future__ import annotations

import numpy as np
import torch

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import const_ints, opt, to_ints


def _scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def bilinear_taps(in_size: int, out_size: int, align_corners: bool, half_pixel: bool):
    """(lower index, upper index, weight of upper) per output position, as TFLite computes them."""
    scale = _scale(in_size, out_size, align_corners)
    d = np.arange(out_size, dtype=np.float32)
    src = (d + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel else d * scale
    lo = np.maximum(np.floor(src).astype(np.int64), 0)
    hi = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    w = (src - lo.astype(np.float32)).astype(np.float32)
    return torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w)


def nearest_index(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> torch.Tensor:
    scale = _scale(in_size, out_size, align_corners)
    offset = np.float32(0.5) if half_pixel else np.float32(0.0)
    v = (np.arange(out_size, dtype=np.float32) + offset) * scale
    # TfLiteRound rounds half away from zero (v >= 0 here)
    idx = np.floor(v + np.float32(0.5)) if align_corners else np.floor(v)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    if half_pixel:
        idx = np.maximum(idx, 0)
    return torch.from_numpy(idx)


def _flags(info: NodeInfo) -> tuple[bool, bool]:
    align, half = bool(opt(info, "align_corners", False)), bool(opt(info, "half_pixel_centers", False))
    if align and half:
        raise info.unsupported("align_corners and half_pixel_centers both set")
    return align, half


def _sizes(info: NodeInfo):
    c = const_ints(info, 1)
    return (lambda t: c) if c is not None else to_ints


@tflite_op("RESIZE_BILINEAR")
def resize_bilinear(info: NodeInfo) -> OpFn:
    align, half = _flags(info)
    get = _sizes(info)
    cache: dict[tuple[int, int, int, int], tuple] = {}

    def run(x: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor]:
        oh, ow = get(size)
        key = (x.shape[1], x.shape[2], oh, ow)
        if key not in cache:
            cache[key] = (bilinear_taps(x.shape[1], oh, align, half), bilinear_taps(x.shape[2], ow, align, half))
        (y0, y1, wy), (x0, x1, wx) = cache[key]
        wy = wy.to(x.dtype).reshape(1, -1, 1, 1)
        wx = wx.to(x.dtype).reshape(1, 1, -1, 1)
        # TFLite: top*(1-wy) + bottom*wy, per axis (weights may be negative at clamped borders)
        rows = x.index_select(1, y0) * (1 - wy) + x.index_select(1, y1) * wy
        out = rows.index_select(2, x0) * (1 - wx) + rows.index_select(2, x1) * wx
        return (out,)

    return run


@tflite_op("RESIZE_NEAREST_NEIGHBOR")
def resize_nearest_neighbor(info: NodeInfo) -> OpFn:
    align, half = _flags(info)
    get = _sizes(info)

    def run(x: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor]:
        oh, ow = get(size)
        iy = nearest_index(x.shape[1], oh, align, half)
        ix = nearest_index(x.shape[2], ow, align, half)
        return (x.index_select(1, iy).index_select(2, ix),)

    return run

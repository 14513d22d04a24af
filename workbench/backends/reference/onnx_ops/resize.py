"""Resize (opset 11+: nearest with every nearest_mode, linear, cubic, antialias, every
coordinate_transformation_mode, exclude_outside, tf_crop_and_resize with extrapolation, axes,
keep_aspect_ratio_policy) and Upsample (nearest, integer scales).

Interpolation is separable, so each resized axis is done on its own, as in the onnx reference
implementation: per output position a few source indices and weights, computed once per
(input size, output size, scale, roi) in float64 and cached; the tensor work is one gather
and one weighted sum per axis (differentiable).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, norm_axes, to_ints

_CTMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
         "tf_crop_and_resize", "tf_half_pixel_for_nn")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coords(mode: str, out: int, n_in: int, scale: float, roi: tuple[float, float] | None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate (float64) of every output index along one axis, and for
    tf_crop_and_resize the mask of positions outside the input.

    As the spec (and onnxruntime) says, ``length_resized`` is the integer output length
    ``out``; only half_pixel_symmetric uses the fractional ``scale * n_in``. Coordinates
    within 1e-9 of an integer or half-integer are snapped onto it, so that floor / round
    decisions at exact ties do not depend on float64 rounding of ``scale``.
    """
    y = np.arange(out, dtype=np.float64)
    outside = None
    if mode == "align_corners":
        x = np.zeros(out) if out == 1 else y * (n_in - 1) / (out - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_half_pixel_for_nn":
        x = (y + 0.5) / scale
    elif mode == "pytorch_half_pixel":
        x = np.zeros(out) if out == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - out / (scale * n_in))
        x = offset + (y + 0.5) / scale - 0.5
    else:  # tf_crop_and_resize
        assert roi is not None
        start, end = roi
        if out == 1:
            x = np.full(out, (start + end) * (n_in - 1) / 2)
        else:
            x = start * (n_in - 1) + y * (end - start) * (n_in - 1) / (out - 1)
    halves = np.round(x * 2) / 2
    x = np.where(np.abs(x - halves) <= 1e-9 * np.maximum(1.0, np.abs(x)), halves, x)
    if mode == "tf_crop_and_resize":
        outside = (x < 0) | (x > n_in - 1)
    return x, outside


def nearest_index(x: np.ndarray, mode: str, n_in: int) -> np.ndarray:
    """Nearest source index per ``nearest_mode``; integer coordinates map to themselves."""
    lo = np.floor(x)
    frac = x - lo
    if mode == "round_prefer_floor":
        up = frac > 0.5
    elif mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif mode == "floor":
        up = np.zeros_like(frac, dtype=bool)
    else:
        up = frac > 0
    return np.clip(lo + up, 0, n_in - 1).astype(np.int64)


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def interpolation_weights(x: np.ndarray, n_in: int, scale: float, mode: str, cubic_a: float,
                          antialias: bool, exclude_outside: bool) -> tuple[np.ndarray, np.ndarray]:
    """(indices (out, taps) clamped into the input, weights (out, taps)) for linear / cubic."""
    lo = np.floor(x)
    ratio = np.where(x == lo, 1.0, x - lo)  # the reference prefers the pixel left of x
    r = ratio[:, None]
    if mode == "linear" and not antialias:
        coeffs = np.concatenate([1 - r, r], axis=1)
    elif mode == "cubic" and not antialias:
        offsets = np.array([-1.0, 0.0, 1.0, 2.0])
        coeffs = _cubic(offsets[None, :] - r, cubic_a)
    else:
        s = min(scale, 1.0)
        if mode == "linear":
            start = int(np.floor(-1 / s) + 1)
            taps = np.arange(start, start + 2 - 2 * start, dtype=np.float64)
            coeffs = np.clip(1 - np.abs((taps[None, :] - r) * s), 0, 1)
        else:
            start = int(np.floor(-2 / s) + 1)
            taps = np.arange(start, 2 - start, dtype=np.float64)
            coeffs = _cubic((taps[None, :] - r) * s, cubic_a)
        coeffs = coeffs / coeffs.sum(axis=1, keepdims=True)
    n = coeffs.shape[1]
    # the n indices nearest to x, ties to the smaller ones (onnx's _get_neighbor); decided on x
    # itself, with the same "x is an integer" test as the ratio above
    if n % 2 == 0:
        start = lo.astype(np.int64) - n // 2 + np.where(x == lo, 0, 1)
    else:
        start = lo.astype(np.int64) - (n - 1) // 2 + np.where(x - lo <= 0.5, 0, 1)
    idx = start[:, None] + np.arange(n)[None, :]
    if exclude_outside:
        coeffs = np.where((idx < 0) | (idx >= n_in), 0.0, coeffs)
        total = coeffs.sum(axis=1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, n_in - 1), coeffs


class _AxisPlan:
    """How one axis is resized: a plain gather (nearest) or a gather + weighted sum."""

    def __init__(self, index: torch.Tensor, weights: torch.Tensor | None, outside: torch.Tensor | None) -> None:
        self.index, self.weights, self.outside = index, weights, outside
        self._typed: dict[torch.dtype, torch.Tensor] = {}

    def weights_as(self, dtype: torch.dtype) -> torch.Tensor:
        w = self._typed.get(dtype)
        if w is None:
            assert self.weights is not None
            with torch.inference_mode(False):
                w = self._typed[dtype] = self.weights.to(dtype)
        return w

    def apply(self, x: torch.Tensor, axis: int, extrapolation: float) -> torch.Tensor:
        if self.weights is None:
            y = x.index_select(axis, self.index)
        else:
            moved = x.movedim(axis, -1)
            y = (moved[..., self.index] * self.weights_as(x.dtype)).sum(-1).movedim(-1, axis)
        if self.outside is not None:
            shape = [1] * x.dim()
            shape[axis] = -1
            y = torch.where(self.outside.reshape(shape), torch.tensor(extrapolation, dtype=y.dtype), y)
        return y


@onnx_op("Resize")
def resize(info: NodeInfo) -> OpFn:
    """X, roi?, scales?, sizes? -> Y; see the module docstring for what is covered."""
    if info.opset < 11:
        raise info.unsupported("Resize-10 (its nearest rounding differs between runtimes); re-export with opset >= 11")
    defaults = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                "nearest_mode": "round_prefer_floor", "cubic_coeff_a": -0.75, "exclude_outside": 0,
                "extrapolation_value": 0.0}
    if info.opset >= 18:
        defaults.update(antialias=0, axes=None, keep_aspect_ratio_policy="stretch")
    a = attributes(info, defaults)
    mode, ctm, nearest_mode = str(a["mode"]), str(a["coordinate_transformation_mode"]), str(a["nearest_mode"])
    antialias, exclude = bool(a.get("antialias", 0)), bool(a["exclude_outside"])
    policy = str(a.get("keep_aspect_ratio_policy", "stretch"))
    cubic_a, extrapolation = float(a["cubic_coeff_a"]), float(a["extrapolation_value"])
    attr_axes = None if a.get("axes") is None else [int(v) for v in a["axes"]]
    if mode not in ("nearest", "linear", "cubic"):
        raise info.unsupported(f"mode={mode!r}")
    if ctm not in _CTMS:
        raise info.unsupported(f"coordinate_transformation_mode={ctm!r}")
    if mode == "nearest" and nearest_mode not in _NEAREST:
        raise info.unsupported(f"nearest_mode={nearest_mode!r}")
    if mode == "nearest" and (antialias or exclude):
        raise info.unsupported("antialias / exclude_outside with mode='nearest'")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        raise info.unsupported(f"keep_aspect_ratio_policy={policy!r}")
    plans: dict[tuple, _AxisPlan] = {}  # type: ignore[type-arg]

    def plan(n_in: int, out: int, scale: float, roi: tuple[float, float] | None) -> _AxisPlan:
        key = (n_in, out, scale, roi)
        p = plans.get(key)
        if p is None:
            with torch.inference_mode(False):  # cached: must stay usable with autograd
                p = plans[key] = make_plan(n_in, out, scale, roi)
        return p

    def make_plan(n_in: int, out: int, scale: float, roi: tuple[float, float] | None) -> _AxisPlan:
        x, outside = source_coords(ctm, out, n_in, scale, roi)
        mask = None if outside is None or not outside.any() else torch.from_numpy(outside)
        if mode == "nearest":
            return _AxisPlan(torch.from_numpy(nearest_index(x, nearest_mode, n_in)), None, mask)
        idx, w = interpolation_weights(x, n_in, scale, mode, cubic_a, antialias, exclude)
        return _AxisPlan(torch.from_numpy(idx), torch.from_numpy(w), mask)

    def run(x: torch.Tensor, roi_t: torch.Tensor | None = None, scales_t: torch.Tensor | None = None,
            sizes_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        r = x.dim()
        axes = list(range(r)) if attr_axes is None else norm_axes(attr_axes, r)
        shape = list(x.shape)
        given = scales_t is not None and scales_t.numel() > 0
        scales = [float(v) for v in scales_t.reshape(-1).tolist()] if given else None  # type: ignore[union-attr]
        sizes = to_ints(sizes_t) if sizes_t is not None and sizes_t.numel() else None
        if (scales is None) == (sizes is None):
            raise ValueError("Resize needs exactly one of scales and sizes")
        if len(scales or sizes or []) != len(axes):
            raise ValueError(f"Resize: {len(scales or sizes or [])} scales/sizes for {len(axes)} axes")
        rois: dict[int, tuple[float, float]] = {}
        if ctm == "tf_crop_and_resize":
            if roi_t is None or roi_t.numel() != 2 * len(axes):
                raise ValueError("tf_crop_and_resize needs roi with 2 values per resized axis")
            rv = [float(v) for v in roi_t.reshape(-1).tolist()]
            rois = {ax: (rv[i], rv[len(axes) + i]) for i, ax in enumerate(axes)}
        if sizes is not None:
            axis_scale = {ax: sizes[i] / shape[ax] for i, ax in enumerate(axes)}
            axis_out = {ax: sizes[i] for i, ax in enumerate(axes)}
            if policy != "stretch":
                pick = min if policy == "not_larger" else max
                s = pick(axis_scale.values())
                axis_scale = {ax: s for ax in axes}
                axis_out = {ax: int(s * shape[ax] + 0.5) for ax in axes}
        else:
            assert scales is not None
            axis_scale = {ax: scales[i] for i, ax in enumerate(axes)}
            axis_out = {ax: int(scales[i] * shape[ax]) for i, ax in enumerate(axes)}
        integer = not x.is_floating_point()
        y = x.to(torch.float64) if integer and mode != "nearest" else x
        for ax in axes:
            s, out = axis_scale[ax], axis_out[ax]
            roi = rois.get(ax)
            full_roi = roi is None or (math.isclose(roi[0], 0.0) and math.isclose(roi[1], 1.0))
            if math.isclose(s, 1.0) and out == shape[ax] and full_roi:
                continue  # identity along this axis
            y = plan(shape[ax], out, s, roi).apply(y, ax, extrapolation)
        if integer and mode != "nearest":
            info_ = torch.iinfo(x.dtype)
            y = torch.round(y).clamp(info_.min, info_.max).to(x.dtype)
        return (y,)

    return run


@onnx_op("Upsample")
def upsample(info: NodeInfo) -> OpFn:
    """Deprecated Upsample: mode='nearest' with integer scales only (each element repeated)."""
    defaults: dict[str, object] = {"mode": "nearest"}
    if info.opset < 9:
        defaults["scales"] = None
    a = attributes(info, defaults)
    if a["mode"] != "nearest":
        raise info.unsupported(f"mode={a['mode']!r}; re-export with Resize (opset >= 11)")
    fixed = None if a.get("scales") is None else [float(s) for s in a["scales"]]  # type: ignore[union-attr]
    if fixed is None and info.const(1) is not None:
        fixed = [float(s) for s in info.const(1).reshape(-1).tolist()]  # type: ignore[union-attr]
    if fixed is not None and any(s != int(s) for s in fixed):
        raise info.unsupported(f"non-integer scales {fixed}")

    def run(x: torch.Tensor, scales_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        scales: Sequence[float] = fixed if fixed is not None else [float(s) for s in scales_t.reshape(-1).tolist()]  # type: ignore[union-attr]
        if any(s != int(s) for s in scales):
            raise ValueError(f"Upsample: non-integer scales {list(scales)} are not supported")
        y = x
        for ax, s in enumerate(scales):
            if int(s) != 1:
                y = y.repeat_interleave(int(s), dim=ax)
        return (y,)

    return run

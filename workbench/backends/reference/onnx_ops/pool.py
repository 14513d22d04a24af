"""Pooling: MaxPool (with Indices), AveragePool, GlobalAveragePool, GlobalMaxPool.

Output sizes follow the spec: ``floor`` (or ``ceil`` with ceil_mode, dropping a last window
that would start in the end padding) of ``(in + pads - ((k - 1) * d + 1)) / s + 1``; SAME
auto_pad gives ``ceil(in / s)``. The input is padded explicitly (with -inf for max, zeros for
average) to exactly the extent the windows need, so torch's pooling runs with padding 0 and
its own ceil/padding rules never come into play.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes
from .conv import SAME_WITH_DILATION, _torch_pad, same_pads

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class _Geometry:
    """Pads and output size of one pooling node for one input shape."""

    def __init__(self, sizes: Sequence[int], kernel: list[int], strides: list[int], dil: list[int],
                 auto_pad: str, pads: list[int] | None, ceil_mode: bool) -> None:
        nd = len(kernel)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = same_pads(sizes, kernel, strides, dil, auto_pad == "SAME_UPPER")
        elif auto_pad == "VALID" or not pads:
            pads = [0] * (2 * nd)
        self.pads = list(pads)
        out, extra = [], []
        for i, (n, k, s, d) in enumerate(zip(sizes, kernel, strides, dil)):
            span = (k - 1) * d + 1
            padded = n + pads[i] + pads[nd + i]
            if ceil_mode:
                o = -(-(padded - span) // s) + 1
                if (o - 1) * s >= n + pads[i]:
                    o -= 1
            else:
                o = (padded - span) // s + 1
            if o < 1:
                raise ValueError(f"pooling window {span} is larger than the padded input {padded}")
            out.append(o)
            extra.append(max(0, (o - 1) * s + span - padded))
        self.out = out
        self.extra = extra  # room at the end for ceil_mode windows (never counted as padding)
        self.torch_pads = _torch_pad(self.pads[:nd] + [e + x for e, x in zip(self.pads[nd:], extra)])
        self.native = self._native_max_pool(sizes, kernel, strides, dil)

    def _native_max_pool(self, sizes: Sequence[int], kernel: list[int], strides: list[int],
                         dil: list[int]) -> tuple[list[int], bool] | None:
        """(padding, ceil_mode) for which torch's own max pooling visits exactly our windows.

        Every position outside the input is -inf for max pooling, so only where windows start
        (``i * s - pad_begin``) and how many there are matter: torch's implicit padding must
        equal the begin pads and its floor/ceil output size must equal ours.
        """
        nd = len(kernel)
        begins = self.pads[:nd]
        if any(b > k // 2 for b, k in zip(begins, kernel)):  # torch: pad <= kernel / 2
            return None
        for ceil_mode in (False, True):
            ok = True
            for n, k, s, d, p, o in zip(sizes, kernel, strides, dil, begins, self.out):
                span = (k - 1) * d + 1
                t = (-(-(n + 2 * p - span) // s) if ceil_mode else (n + 2 * p - span) // s) + 1
                if ceil_mode and (t - 1) * s >= n + p:
                    t -= 1
                ok = ok and t == o
            if ok:
                return begins, ceil_mode
        return None


def _pool_attrs(info: NodeInfo, extra: dict) -> dict:  # type: ignore[type-arg]
    defaults = {"auto_pad": "NOTSET", "kernel_shape": None, "pads": None, "strides": None, **extra}
    if info.opset >= 10:
        defaults.update(ceil_mode=0)
    a = attributes(info, defaults)
    if a["auto_pad"] not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise info.unsupported(f"auto_pad={a['auto_pad']!r}")
    if not a["kernel_shape"]:
        raise info.unsupported("missing kernel_shape")
    nd = len(a["kernel_shape"])
    if nd not in _MAX:
        raise info.unsupported(f"{nd}-D pooling")
    a["kernel_shape"] = [int(k) for k in a["kernel_shape"]]
    a["strides"] = [int(s) for s in a["strides"]] if a["strides"] else [1] * nd
    a["dilations"] = [int(d) for d in a.get("dilations") or [1] * nd]
    a["pads"] = [int(p) for p in a["pads"]] if a["pads"] else None
    a["ceil_mode"] = bool(a.get("ceil_mode", 0))
    if a["auto_pad"] in ("SAME_UPPER", "SAME_LOWER") and any(d != 1 for d in a["dilations"]):
        raise info.unsupported(SAME_WITH_DILATION)
    return a


def _cached_geometry(a: dict):  # type: ignore[no-untyped-def,type-arg]
    cache: dict[tuple[int, ...], _Geometry] = {}

    def geometry(sizes: Sequence[int]) -> _Geometry:
        key = tuple(sizes)
        g = cache.get(key)
        if g is None:
            g = cache[key] = _Geometry(key, a["kernel_shape"], a["strides"], a["dilations"],
                                       str(a["auto_pad"]), a["pads"], a["ceil_mode"])
        return g

    return geometry


@onnx_op("MaxPool")
def max_pool(info: NodeInfo) -> OpFn:
    """Y (N, C, *out) and optional Indices (int64, flat over N*C*spatial, row-major or
    column-major spatial order with storage_order=1)."""
    extra = {"storage_order": 0}
    if info.opset >= 10:
        extra["dilations"] = None
    a = _pool_attrs(info, extra)
    kernel, strides, dil = a["kernel_shape"], a["strides"], a["dilations"]
    nd = len(kernel)
    want_idx = len(info.outputs) > 1 and bool(info.outputs[1])
    col_major = int(a["storage_order"]) == 1
    geometry = _cached_geometry(a)

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g = geometry(x.shape[2:])
        work = x if x.is_floating_point() else x.to(torch.float64)  # exact for <= 32-bit ints
        if g.native is not None:
            padding, ceil_mode = g.native
            padded, begins = work, [0] * nd
        else:
            padding, ceil_mode = [0] * nd, False
            padded = F.pad(work, g.torch_pads, value=-math.inf) if any(g.torch_pads) else work
            begins = g.pads[:nd]
        if not want_idx:
            y = _MAX[nd](padded, kernel, strides, padding, dil, ceil_mode)
            return (y.to(x.dtype) if y.dtype != x.dtype else y,)
        y, idx = _MAX[nd](padded, kernel, strides, padding, dil, ceil_mode, return_indices=True)
        return y.to(x.dtype), _unpad_indices(idx, padded.shape[2:], x.shape, begins, col_major)

    return run


def _unpad_indices(idx: torch.Tensor, padded: Sequence[int], shape: Sequence[int],
                   begins: Sequence[int], col_major: bool) -> torch.Tensor:
    """torch's per-plane indices into the padded input -> ONNX flat indices into the input."""
    spatial = list(shape[2:])
    coords = []
    rest = idx
    for size in reversed(list(padded)):
        coords.append(torch.remainder(rest, size))
        rest = torch.div(rest, size, rounding_mode="floor")
    coords = [c - b for c, b in zip(reversed(coords), begins)]
    flat = torch.zeros_like(idx)
    order = range(len(spatial) - 1, -1, -1) if col_major else range(len(spatial))
    for i in order:
        flat = flat * spatial[i] + coords[i]
    n, c = shape[0], shape[1]
    plane = math.prod(spatial)
    base = torch.arange(n * c, dtype=torch.int64).reshape([n, c] + [1] * len(spatial)) * plane
    return flat + base


@onnx_op("AveragePool")
def average_pool(info: NodeInfo) -> OpFn:
    """Mean over each window; ``count_include_pad`` decides whether explicit pads count in the
    divisor (the ceil_mode overhang never does)."""
    extra = {"count_include_pad": 0}
    if info.opset >= 19:
        extra["dilations"] = None
    a = _pool_attrs(info, extra)
    kernel, strides, dil = a["kernel_shape"], a["strides"], a["dilations"]
    nd = len(kernel)
    include_pad = bool(a["count_include_pad"])
    geometry = _cached_geometry(a)
    counts: dict[tuple, torch.Tensor | None] = {}  # type: ignore[type-arg]
    window = math.prod(kernel)

    def window_sums(t: torch.Tensor) -> torch.Tensor:
        if all(d == 1 for d in dil):
            return _AVG[nd](t, kernel, strides, 0) * window
        c = t.shape[1]  # dilated windows: a depthwise convolution with a kernel of ones
        ones = torch.ones([c, 1] + kernel, dtype=t.dtype)
        return _CONV[nd](t, ones, None, strides, 0, dil, c)

    def divisor(x: torch.Tensor, g: _Geometry) -> torch.Tensor | None:
        """Per-window element count, or None when every window counts ``window`` elements."""
        key = (*x.shape[2:], x.dtype)
        if key not in counts:
            with torch.inference_mode(False):  # cached: must stay usable with autograd
                counts[key] = count_windows(x, g)
        return counts[key]

    def count_windows(x: torch.Tensor, g: _Geometry) -> torch.Tensor | None:
        mask = torch.ones([1, 1] + list(x.shape[2:]), dtype=x.dtype)
        if include_pad:
            mask = F.pad(mask, _torch_pad(g.pads), value=1.0)
            mask = F.pad(mask, _torch_pad([0] * nd + g.extra), value=0.0)
        else:
            mask = F.pad(mask, g.torch_pads, value=0.0)
        n = window_sums(mask)
        return None if bool((n == window).all()) and all(d == 1 for d in dil) else n

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        g = geometry(x.shape[2:])
        padded = F.pad(x, g.torch_pads) if any(g.torch_pads) else x
        n = divisor(x, g)
        if n is None:
            return (_AVG[nd](padded, kernel, strides, 0),)
        return (window_sums(padded) / n,)

    return run


@onnx_op("GlobalAveragePool")
def global_average_pool(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda x: (x.mean(dim=tuple(range(2, x.dim())), keepdim=True),)


@onnx_op("GlobalMaxPool")
def global_max_pool(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda x: (x.amax(dim=tuple(range(2, x.dim())), keepdim=True),)

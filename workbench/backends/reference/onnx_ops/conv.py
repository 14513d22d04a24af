"""Convolutions: Conv and ConvTranspose (1-D, 2-D, 3-D; groups, depthwise, dilations,
auto_pad SAME_UPPER / SAME_LOWER / VALID, asymmetric pads, output_padding, output_shape)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def same_pads(sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int], upper: bool) -> list[int]:
    """SAME padding [begins..., ends...]: output = ceil(in / stride); the odd pixel goes to the
    end (SAME_UPPER) or the beginning (SAME_LOWER)."""
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-n // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        b = total // 2 if upper else total - total // 2
        begins.append(b)
        ends.append(total - b)
    return begins + ends


def _torch_pad(pads: Sequence[int]) -> list[int]:
    """ONNX [b1, b2, .., e1, e2, ..] -> F.pad's [b_last, e_last, ..., b1, e1]."""
    n = len(pads) // 2
    out: list[int] = []
    for i in reversed(range(n)):
        out += [pads[i], pads[n + i]]
    return out


#: runtimes disagree on SAME padding with a dilated window (onnxruntime refuses it for Conv
#: and sizes pools differently from the onnx reference), so the interpreter refuses it too
SAME_WITH_DILATION = "auto_pad=SAME_* with dilations > 1 (runtimes disagree on its padding); use explicit pads"


def _conv_attrs(info: NodeInfo, extra: dict) -> dict:  # type: ignore[type-arg]
    a = attributes(info, {"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
                          "pads": None, "strides": None, **extra})
    if a["auto_pad"] not in _AUTO_PADS:
        raise info.unsupported(f"auto_pad={a['auto_pad']!r}")
    if a["auto_pad"] in ("SAME_UPPER", "SAME_LOWER") and any(int(d) != 1 for d in a["dilations"] or ()):
        raise info.unsupported(SAME_WITH_DILATION)
    return a


_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def _ints(values, n: int, default: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(v) for v in values] if values else [default] * n


@onnx_op("Conv")
def conv(info: NodeInfo) -> OpFn:
    """X (N, C, *spatial), W (M, C / group, *kernel), B (M,) -> (N, M, *out).

    2-D and 3-D convolutions run channels-last (oneDNN's fast layout; the weights are
    converted once here); outputs keep that memory layout, their values do not change.
    """
    a = _conv_attrs(info, {})
    auto_pad, group = str(a["auto_pad"]), int(a["group"])
    w_const = info.const(1)
    nd_fixed = None if w_const is None else w_const.dim() - 2
    if nd_fixed is None and a["kernel_shape"]:
        nd_fixed = len(a["kernel_shape"])
    if nd_fixed is not None and nd_fixed not in _CONV:
        raise info.unsupported(f"{nd_fixed}-D convolution")
    if w_const is not None and a["kernel_shape"] and [int(k) for k in a["kernel_shape"]] != list(w_const.shape[2:]):
        raise info.unsupported(f"kernel_shape {a['kernel_shape']} differs from the weights' {list(w_const.shape[2:])}")
    layout = _CHANNELS_LAST.get(nd_fixed or 0)
    w_fast = w_const if (w_const is None or layout is None) else w_const.contiguous(memory_format=layout)
    pad_cache: dict[tuple[int, ...], tuple[list[int], bool]] = {}

    def padding(sizes: tuple[int, ...], kernel: list[int], nd: int) -> tuple[list[int], bool]:
        """(pads, symmetric) for an input of spatial ``sizes``."""
        got = pad_cache.get(sizes)
        if got is None:
            strides, dil = _ints(a["strides"], nd, 1), _ints(a["dilations"], nd, 1)
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                pads = same_pads(sizes, kernel, strides, dil, auto_pad == "SAME_UPPER")
            elif auto_pad == "VALID" or not a["pads"]:
                pads = [0] * (2 * nd)
            else:
                pads = [int(p) for p in a["pads"]]
            got = pad_cache[sizes] = (pads, pads[:nd] == pads[nd:])
        return got

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        nd = w.dim() - 2
        if nd not in _CONV:
            raise ValueError(f"{nd}-D convolution is not supported")
        if w is w_const:
            w = w_fast
        lay = _CHANNELS_LAST.get(nd)
        if lay is not None and x.dim() == nd + 2:
            x = x.contiguous(memory_format=lay)
        pads, symmetric = padding(tuple(x.shape[2:]), list(w.shape[2:]), nd)
        strides, dil = _ints(a["strides"], nd, 1), _ints(a["dilations"], nd, 1)
        if symmetric:
            return (_CONV[nd](x, w, b, strides, pads[:nd], dil, group),)
        return (_CONV[nd](F.pad(x, _torch_pad(pads)), w, b, strides, 0, dil, group),)

    return run


@onnx_op("ConvTranspose")
def conv_transpose(info: NodeInfo) -> OpFn:
    """X (N, C, *spatial), W (C, M / group, *kernel), B (M,) -> (N, M, *out) with
    out = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end.

    With ``output_shape`` (or SAME auto_pad) the pads are derived as the spec says: the
    total is split with the extra pixel at the end for SAME_UPPER, else at the beginning; an
    output_shape beyond the full output adds zeros (+ bias) at the end, as onnxruntime does.
    """
    a = _conv_attrs(info, {"output_padding": None, "output_shape": None})
    auto_pad, group = str(a["auto_pad"]), int(a["group"])

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        nd = w.dim() - 2
        if nd not in _CONV_T:
            raise ValueError(f"{nd}-D transposed convolution is not supported")
        kernel = list(w.shape[2:])
        sizes = list(x.shape[2:])
        strides = [int(s) for s in a["strides"]] if a["strides"] else [1] * nd
        dil = [int(d) for d in a["dilations"]] if a["dilations"] else [1] * nd
        out_pad = [int(p) for p in a["output_padding"]] if a["output_padding"] else [0] * nd
        full = [s * (n - 1) + (k - 1) * d + 1 + op for n, k, s, d, op in zip(sizes, kernel, strides, dil, out_pad)]
        if a["output_shape"] is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if a["output_shape"] is not None:
                target = [int(v) for v in a["output_shape"]][-nd:]
            else:
                target = [n * s for n, s in zip(sizes, strides)]
            total = [f - t for f, t in zip(full, target)]
            upper = auto_pad == "SAME_UPPER"
            # a target larger than the full output grows at the end (as onnxruntime does)
            begins = [0 if t < 0 else (t // 2 if upper else t - t // 2) for t in total]
            pads = begins + [t - bgn for t, bgn in zip(total, begins)]
        elif auto_pad == "VALID" or not a["pads"]:
            pads = [0] * (2 * nd)
        else:
            pads = [int(p) for p in a["pads"]]
        y = _CONV_T[nd](x, w, None, strides, 0, 0, group, dil)
        # output_padding adds rows at the end; pads crop (F.pad with negative widths)
        crop = []
        for i in reversed(range(nd)):
            crop += [-pads[i], out_pad[i] - pads[nd + i]]
        if any(crop):
            y = F.pad(y, crop)
        if b is not None:
            y = y + b.reshape([1, -1] + [1] * nd)
        return (y,)

    return run

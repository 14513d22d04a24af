"""Quantization ops: QUANTIZE, DEQUANTIZE, and the fake quantization the loader applies.

The reference holds a quantized tensor as its float32 real values. DEQUANTIZE therefore only
casts (float16 weights -> float32; quantized constants were dequantized at load time, and
quantized activations are already real). QUANTIZE passes real values through; the loader
then fake-quantizes every op output that TFLite stores quantized (:func:`fake_quantize`), so
values land on TFLite's grid: ``q = clamp(round_half_away(x / scale) + zero_point)``.
Gradients pass straight through the rounding.
"""

from __future__ import annotations

import torch

from ....capture import Quantization
from ..program import NodeInfo, OpFn
from ..registry import tflite_op

_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1),
           "uint16": (0, 65535), "int4": (-8, 7), "uint4": (0, 15)}


def quant_range(dtype: str) -> tuple[int, int]:
    return _RANGES[dtype]


def fake_quantize(x: torch.Tensor, q: Quantization, dtype: str) -> torch.Tensor:
    """Real values -> the nearest values representable by ``q`` in ``dtype`` (straight-through)."""
    scale = torch.tensor(q.scale, dtype=torch.float32)
    zp = torch.tensor(q.zero_point, dtype=torch.float32)
    if scale.numel() > 1:
        shape = [1] * x.dim()
        shape[q.axis] = scale.numel()
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    lo, hi = _RANGES[dtype]
    xd = x.detach().float()
    v = xd / scale
    qv = torch.clamp(torch.sign(v) * torch.floor(v.abs() + 0.5) + zp, lo, hi)
    y = (qv - zp) * scale
    return x + (y.to(x.dtype) - x).detach()


@tflite_op("QUANTIZE")
def quantize(info: NodeInfo) -> OpFn:
    return lambda x: (x.float(),)


@tflite_op("DEQUANTIZE")
def dequantize(info: NodeInfo) -> OpFn:
    return lambda x: (x.float(),)

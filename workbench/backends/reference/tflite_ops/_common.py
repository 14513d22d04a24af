"""Helpers shared by the TFLite op builders: options, constant inputs, fused activations and
TFLite's SAME/VALID padding arithmetic.

Layout: TFLite tensors are NHWC and stay NHWC between ops; a builder that needs torch's NCHW
kernels permutes in and out inside its closure.

Numeric domain: a quantized TFLite tensor (int8/uint8/int16 with scale and zero point) is held
as float32 *real values* (``scale * (q - zero_point)``); the program loader fake-quantizes the
outputs of ops whose output is quantized, so values sit on the same grid as TFLite's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..program import NodeInfo
from ..ophelpers import const_ints, has_input, norm_axis, to_ints  # noqa: F401  (re-exported)

__all__ = [
    "opt", "has_input", "to_ints", "const_ints", "norm_axis", "fused_activation",
    "conv_padding", "check_padding", "TORCH_DTYPES", "out_dtype", "is_quantized",
]

#: TFLite tensor type name -> the torch dtype the reference computes with
TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "float64": torch.float64,
    "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "bool": torch.bool, "uint16": torch.int32, "uint32": torch.int64,
}


def opt(info: NodeInfo, name: str, default: Any) -> Any:
    """A builtin option, or ``default`` when the file does not set it."""
    v = info.attributes.get(name)
    return default if v is None else v


def is_quantized(info: NodeInfo, name: str) -> bool:
    spec = info.specs.get(name)
    return name in info.quantization and spec is not None and str(spec.dtype).startswith(("int", "uint"))


def out_dtype(info: NodeInfo, i: int = 0) -> torch.dtype | None:
    """The torch dtype of the i-th output in the reference's domain (float32 when quantized)."""
    name = info.outputs[i]
    if is_quantized(info, name):
        return torch.float32
    spec = info.specs.get(name)
    return None if spec is None or spec.dtype is None else TORCH_DTYPES.get(spec.dtype)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "NONE": None,
    "RELU": lambda x: torch.clamp(x, min=0.0),
    "RELU_N1_TO_1": lambda x: torch.clamp(x, -1.0, 1.0),
    "RELU6": lambda x: torch.clamp(x, 0.0, 6.0),
    "TANH": torch.tanh,
}


def fused_activation(info: NodeInfo) -> Callable[[torch.Tensor], torch.Tensor]:
    """The op's ``fused_activation_function`` as a function (identity for NONE)."""
    name = opt(info, "fused_activation_function", "NONE")
    if name not in _ACTIVATIONS:
        raise info.unsupported(f"fused activation {name!r} is not supported")
    fn = _ACTIVATIONS[name]
    return (lambda x: x) if fn is None else fn


def conv_padding(padding: str, in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TFLite's padding for one spatial axis: ``(before, after, out_size)``.

    SAME: ``out = ceil(in / stride)``, total = ``max((out-1)*stride + eff_kernel - in, 0)``,
    ``before = total // 2`` (the odd pixel goes after). VALID: no padding.
    """
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - eff) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    if padding != "SAME":
        return 0, 0, out
    return total // 2, total - total // 2, out


def check_padding(info: NodeInfo) -> str:
    p = opt(info, "padding", "SAME")
    if p not in ("SAME", "VALID"):
        raise info.unsupported(f"padding {p!r} is not supported")
    return p

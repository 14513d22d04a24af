"""Element-wise ops with broadcasting: ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM,
SQUARED_DIFFERENCE, and unary ABS, NEG, EXP, LOG, SQRT, RSQRT, SQUARE.

Binary arithmetic ops apply their ``fused_activation_function`` after the op. Integer DIV
truncates toward zero (C++ integer division), as TFLite's int32 kernel does.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import fused_activation


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


_BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ADD": torch.add,
    "SUB": torch.sub,
    "MUL": torch.mul,
    "DIV": _div,
    "POW": torch.pow,
    "MAXIMUM": torch.maximum,
    "MINIMUM": torch.minimum,
    "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
}

_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ABS": torch.abs,
    "NEG": torch.neg,
    "EXP": torch.exp,
    "LOG": torch.log,
    "SQRT": torch.sqrt,
    "RSQRT": torch.rsqrt,
    "SQUARE": lambda x: x * x,
}


def _binary_builder(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[NodeInfo], OpFn]:
    def build(info: NodeInfo) -> OpFn:
        act = fused_activation(info)

        def run(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor]:
            if a.dtype != b.dtype and a.dtype.is_floating_point != b.dtype.is_floating_point:
                raise info.unsupported(f"mixed input dtypes {a.dtype} and {b.dtype}")
            if a.dtype != b.dtype:  # e.g. float16 constant with float32 activations
                b = b.to(a.dtype)
            return (act(fn(a, b)),)

        return run

    return build


def _unary_builder(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[NodeInfo], OpFn]:
    def build(info: NodeInfo) -> OpFn:
        return lambda x: (fn(x),)

    return build


for _name, _fn in _BINARY.items():
    tflite_op(_name)(_binary_builder(_fn))
for _name, _fn in _UNARY.items():
    tflite_op(_name)(_unary_builder(_fn))

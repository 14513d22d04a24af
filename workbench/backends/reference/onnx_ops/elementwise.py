"""Element-wise ops with numpy broadcasting: arithmetic, math functions, comparisons, logic.

Integer tensors keep their dtype (integer Div truncates toward zero as in C); Pow keeps the
base's dtype.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, is_float

Binary = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Unary = Callable[[torch.Tensor], torch.Tensor]


def _register_unary(name: str, fn: Unary) -> None:
    def builder(info: NodeInfo) -> OpFn:
        attributes(info, {})
        return lambda x: (fn(x),)

    builder.__name__ = name.lower()
    builder.__doc__ = f"ONNX {name}."
    onnx_op(name)(builder)


def _register_binary(name: str, fn: Binary) -> None:
    def builder(info: NodeInfo) -> OpFn:
        attributes(info, {})
        return lambda a, b: (fn(a, b),)

    builder.__name__ = name.lower()
    builder.__doc__ = f"ONNX {name} (numpy broadcasting)."
    onnx_op(name)(builder)


def _sign(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x)


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if is_float(a):
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def _pow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype == b.dtype:
        return torch.pow(a, b)
    if is_float(a):
        return torch.pow(a, b.to(a.dtype)) if is_float(b) else torch.pow(a, b)
    # integer base, float exponent: numpy computes in float64 and casts back (truncation)
    return torch.pow(a.to(torch.float64), b.to(torch.float64)).to(a.dtype)


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


_UNARY: dict[str, Unary] = {
    "Neg": torch.neg, "Abs": torch.abs, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
    "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil,
    "Round": torch.round,  # half to even, as ONNX
    "Erf": torch.erf, "Sign": _sign, "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan,
    "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh,
    "Cosh": torch.cosh, "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh,
    "IsNaN": torch.isnan, "Not": torch.logical_not, "BitwiseNot": torch.bitwise_not,
}

_BINARY: dict[str, Binary] = {
    "Add": _add, "Sub": torch.sub, "Mul": torch.mul, "Div": _div, "Pow": _pow,
    "Equal": torch.eq, "Less": torch.lt, "LessOrEqual": torch.le, "Greater": torch.gt,
    "GreaterOrEqual": torch.ge, "And": torch.logical_and, "Or": torch.logical_or,
    "Xor": torch.logical_xor, "BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
    "BitwiseXor": torch.bitwise_xor,
}

for _name, _fn in _UNARY.items():
    _register_unary(_name, _fn)
for _name, _fn in _BINARY.items():
    _register_binary(_name, _fn)


@onnx_op("Mod")
def mod(info: NodeInfo) -> OpFn:
    """fmod=0: sign of the divisor (Python / numpy ``mod``); fmod=1: sign of the dividend (C fmod)."""
    fmod = int(attributes(info, {"fmod": 0})["fmod"])
    fn = torch.fmod if fmod == 1 else torch.remainder
    return lambda a, b: (fn(a, b),)


@onnx_op("IsInf")
def is_inf(info: NodeInfo) -> OpFn:
    a = attributes(info, {"detect_negative": 1, "detect_positive": 1})
    neg, pos = bool(a["detect_negative"]), bool(a["detect_positive"])

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        if neg and pos:
            return (torch.isinf(x),)
        if neg:
            return (torch.isneginf(x),)
        if pos:
            return (torch.isposinf(x),)
        return (torch.zeros(x.shape, dtype=torch.bool),)

    return run


@onnx_op("Where")
def where(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda c, x, y: (torch.where(c, x, y),)


def _variadic(info: NodeInfo, fold: Binary, finish: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> OpFn:
    attributes(info, {})

    def run(*xs: torch.Tensor) -> tuple[torch.Tensor]:
        y = xs[0]
        for x in xs[1:]:
            y = fold(y, x)
        if len(xs) == 1:
            y = y.broadcast_to(y.shape)  # a view, so y is not the input object itself
        return (finish(y, len(xs)) if finish else y,)

    return run


@onnx_op("Max")
def max_(info: NodeInfo) -> OpFn:
    return _variadic(info, torch.maximum)


@onnx_op("Min")
def min_(info: NodeInfo) -> OpFn:
    return _variadic(info, torch.minimum)


@onnx_op("Sum")
def sum_(info: NodeInfo) -> OpFn:
    return _variadic(info, _add)


@onnx_op("Mean")
def mean(info: NodeInfo) -> OpFn:
    return _variadic(info, _add, lambda y, n: y / n)

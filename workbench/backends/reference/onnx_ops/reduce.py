"""Reductions: ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp, ArgMax/ArgMin.

``axes`` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an input after;
no axes reduces everything unless ``noop_with_empty_axes=1``. Reducing an empty set gives
the reduction's identity (0 for sums, 1 for Prod, -inf / +inf for Max / Min).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, has_input, norm_axes, norm_axis, to_ints

Reducer = Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]  # keepdim=True


def _as_float(fn: Reducer) -> Reducer:
    """Run a float-only reduction on integers in float64 and cast back (numpy-style truncation)."""
    def run(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        if x.is_floating_point():
            return fn(x, dims)
        return fn(x.to(torch.float64), dims).to(x.dtype)
    return run


def _empty_value(name: str, dtype: torch.dtype) -> float | int:
    if name in ("ReduceMax", "ReduceLogSum", "ReduceLogSumExp"):
        return -math.inf if dtype.is_floating_point else (torch.iinfo(dtype).min if dtype != torch.bool else 0)
    if name == "ReduceMin":
        return math.inf if dtype.is_floating_point else (torch.iinfo(dtype).max if dtype != torch.bool else 1)
    return 1 if name == "ReduceProd" else 0


def _prod(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=True)
    return x


_REDUCERS: dict[str, Reducer] = {
    "ReduceSum": lambda x, d: x.sum(dim=d, keepdim=True, dtype=x.dtype),
    "ReduceMean": _as_float(lambda x, d: x.mean(dim=d, keepdim=True)),
    "ReduceMax": lambda x, d: x.amax(dim=d, keepdim=True),
    "ReduceMin": lambda x, d: x.amin(dim=d, keepdim=True),
    "ReduceProd": _prod,
    "ReduceL1": lambda x, d: x.abs().sum(dim=d, keepdim=True, dtype=x.dtype),
    "ReduceL2": _as_float(lambda x, d: torch.sqrt((x * x).sum(dim=d, keepdim=True))),
    "ReduceSumSquare": lambda x, d: (x * x).sum(dim=d, keepdim=True, dtype=x.dtype),
    "ReduceLogSum": _as_float(lambda x, d: torch.log(x.sum(dim=d, keepdim=True))),
    "ReduceLogSumExp": _as_float(lambda x, d: torch.logsumexp(x, dim=d, keepdim=True)),
}
_AXES_INPUT_FROM = {name: (13 if name == "ReduceSum" else 18) for name in _REDUCERS}


def _register(name: str, reducer: Reducer) -> None:
    def builder(info: NodeInfo) -> OpFn:
        from_input = info.opset >= _AXES_INPUT_FROM[name]
        defaults: dict[str, object] = {"keepdims": 1}
        if from_input:
            defaults["noop_with_empty_axes"] = 0
        else:
            defaults["axes"] = None
        a = attributes(info, defaults)
        keep = bool(a["keepdims"])
        noop = bool(a.get("noop_with_empty_axes", 0))
        attr_axes = None if from_input or a.get("axes") is None else [int(v) for v in a["axes"]]
        axes_given = has_input(info, 1) if from_input else attr_axes is not None

        def run(x: torch.Tensor, axes_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
            axes = (to_ints(axes_t) if axes_t is not None else []) if from_input else (attr_axes or [])
            if not axes_given or not axes:
                if noop:
                    return (x,)
                dims = tuple(range(x.dim()))
            else:
                dims = tuple(norm_axes(axes, x.dim()))
            if not dims:  # a scalar: nothing to reduce, but the op still applies its function
                y = reducer(x.reshape(1), (0,)).reshape(())
            elif any(x.shape[d] == 0 for d in dims):
                shape = [1 if i in dims else s for i, s in enumerate(x.shape)]
                y = torch.full(shape, _empty_value(name, x.dtype), dtype=x.dtype)
            else:
                y = reducer(x, dims)
            if not keep:
                y = y.reshape([s for i, s in enumerate(y.shape) if i not in dims])
            return (y,)

        return run

    builder.__name__ = name
    builder.__doc__ = f"ONNX {name}."
    onnx_op(name)(builder)


for _name, _reducer in _REDUCERS.items():
    _register(_name, _reducer)


def _arg(info: NodeInfo, fn: Callable[..., torch.Tensor]) -> OpFn:
    a = attributes(info, {"axis": 0, "keepdims": 1, "select_last_index": 0})
    axis, keep, last = int(a["axis"]), bool(a["keepdims"]), bool(a["select_last_index"])

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        ax = norm_axis(axis, x.dim())
        if last:
            idx = x.shape[ax] - 1 - fn(x.flip(ax), dim=ax, keepdim=keep)
        else:
            idx = fn(x, dim=ax, keepdim=keep)
        return (idx.to(torch.int64),)

    return run


@onnx_op("ArgMax")
def arg_max(info: NodeInfo) -> OpFn:
    """Index of the first (or last, with select_last_index) maximum along ``axis``."""
    return _arg(info, torch.argmax)


@onnx_op("ArgMin")
def arg_min(info: NodeInfo) -> OpFn:
    return _arg(info, torch.argmin)

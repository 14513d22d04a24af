"""Reductions over constant (or run-time) axes: MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD.

``keep_dims`` keeps the reduced axes with size 1; negative axes count from the end and a
repeated axis counts once, as in TFLite.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import const_ints, norm_axis, opt, to_ints


def _amax(x: torch.Tensor, dims: list[int], keep: bool) -> torch.Tensor:
    return torch.amax(x, dim=dims, keepdim=keep)


def _amin(x: torch.Tensor, dims: list[int], keep: bool) -> torch.Tensor:
    return torch.amin(x, dim=dims, keepdim=keep)


def _prod(x: torch.Tensor, dims: list[int], keep: bool) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, dim=d, keepdim=keep)
    return x


_REDUCERS: dict[str, Callable[[torch.Tensor, list[int], bool], torch.Tensor]] = {
    "MEAN": lambda x, d, k: torch.mean(x, dim=d, keepdim=k),
    "SUM": lambda x, d, k: torch.sum(x, dim=d, keepdim=k),
    "REDUCE_MAX": _amax,
    "REDUCE_MIN": _amin,
    "REDUCE_PROD": _prod,
}


def _builder(name: str) -> Callable[[NodeInfo], OpFn]:
    reduce = _REDUCERS[name]

    def build(info: NodeInfo) -> OpFn:
        keep = bool(opt(info, "keep_dims", False))
        c = const_ints(info, 1)
        spec = info.specs.get(info.inputs[0])
        if name == "MEAN" and spec is not None and str(spec.dtype).startswith(("int", "uint")) \
                and info.inputs[0] not in info.quantization:
            raise info.unsupported(f"integer MEAN on {spec.dtype} (TFLite rounds its integer mean)")

        def run(x: torch.Tensor, axes: torch.Tensor) -> tuple[torch.Tensor]:
            dims = sorted({norm_axis(a, x.dim()) for a in (c if c is not None else to_ints(axes))})
            if not dims:
                return (x,)
            return (reduce(x, dims, keep),)

        return run

    return build


for _name in _REDUCERS:
    tflite_op(_name)(_builder(_name))

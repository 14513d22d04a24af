"""Op registries of the reference interpreter, keyed by format and op type.

An op is registered as a *builder*: ``builder(info: NodeInfo) -> OpFn``. The builder runs once
at load time, reads and checks the node's attributes (raising ``info.unsupported(...)`` for
anything it cannot do faithfully) and returns the closure that runs the op with torch.

    @onnx_op("Relu")
    def relu(info):
        return lambda x: (torch.relu(x),)
"""

from __future__ import annotations

from typing import Callable

from .program import NodeInfo, OpFn

__all__ = ["ONNX_OPS", "TFLITE_OPS", "onnx_op", "tflite_op", "Builder"]

Builder = Callable[[NodeInfo], OpFn]

ONNX_OPS: dict[str, Builder] = {}
TFLITE_OPS: dict[str, Builder] = {}


def _register(table: dict[str, Builder], names: tuple[str, ...]) -> Callable[[Builder], Builder]:
    def deco(builder: Builder) -> Builder:
        for name in names:
            if name in table:
                raise RuntimeError(f"op {name} registered twice")
            table[name] = builder
        return builder

    return deco


def onnx_op(*names: str) -> Callable[[Builder], Builder]:
    """Register an ONNX op builder under one or more op types (default domain)."""
    return _register(ONNX_OPS, names)


def tflite_op(*names: str) -> Callable[[Builder], Builder]:
    """Register a TFLite op builder under builtin operator names (e.g. ``"CONV_2D"``)."""
    return _register(TFLITE_OPS, names)

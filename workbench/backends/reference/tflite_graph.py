"""Load a ``.tflite`` file as a reference :class:`Program` (torch ops, differentiable).

The file is read and verified by :func:`workbench.backends.tflite_model.read_tflite` (no
TFLite runtime involved). Tensor names are the graph's tensor *keys* (unique names), so a
reference trace and a LiteRT trace of the same model line up name for name.

Conventions kept from TFLite: tensors stay NHWC between ops (graph inputs and outputs have the
model's own shapes). Numeric domain: float16 constants stay float16 until their DEQUANTIZE;
quantized tensors (int8/uint8/int16 with scale and zero point) are held as float32 *real*
values: quantized constants are dequantized at load, and the output of every op whose TFLite
output is quantized is fake-quantized onto TFLite's grid. Quantized graph inputs and outputs
are exchanged as real values too; ``Program.quantization`` has their parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...tensors import TensorSpec
from ..tflite_model import TFLiteGraph, TFLiteTensor, read_tflite
from . import tflite_ops  # noqa: F401  (registers the builders)
from .program import Node, NodeInfo, OpFn, Program
from .registry import TFLITE_OPS
from .tflite_ops._common import TORCH_DTYPES
from .tflite_ops.quant import fake_quantize

__all__ = ["load_tflite_program", "program_from_graph", "SUPPORTED_TFLITE_OPS"]

#: the TFLite builtin ops the reference interpreter runs (filled by importing tflite_ops)
SUPPORTED_TFLITE_OPS = frozenset(TFLITE_OPS)


def load_tflite_program(path: Path | str) -> Program:
    """Read, verify and compile a ``.tflite`` file into a :class:`Program`.

    Raises ``ModelLoadError`` for a bad file and ``UnsupportedOpError`` naming the first
    unsupported op (and listing all of them) for a model the reference cannot run.
    """
    return program_from_graph(read_tflite(path))


def _spec(t: TFLiteTensor, real: bool = False) -> TensorSpec:
    dtype = "float32" if real and t.is_quantized else (t.dtype if t.dtype in TORCH_DTYPES else None)
    shape = t.shape_signature if len(t.shape_signature) == len(t.shape) else t.shape
    return TensorSpec.from_shape(shape, dtype, name=t.key)


def _constant(t: TFLiteTensor) -> torch.Tensor | None:
    if t.data is None:
        return None
    if t.is_quantized:
        assert t.quantization is not None
        return torch.from_numpy(t.quantization.dequantize(np.asarray(t.data)).astype(np.float32))
    a = np.asarray(t.data)
    if a.dtype in (np.uint16, np.uint32, np.uint64):
        a = a.astype(np.int64)
    return torch.from_numpy(a.copy())


def program_from_graph(graph: TFLiteGraph) -> Program:
    """Compile a verified :class:`TFLiteGraph` into a :class:`Program`."""
    unsupported = sorted({op.op for op in graph.operators if op.op not in TFLITE_OPS})
    constants: dict[str, torch.Tensor] = {}
    for t in graph.tensors:
        c = _constant(t)
        if c is not None:
            constants[t.key] = c
    specs = {t.key: _spec(t) for t in graph.tensors}
    quant = {t.key: t.quantization for t in graph.tensors if t.is_quantized and t.quantization is not None}
    available = set(constants) | set(graph.input_keys)
    nodes: list[Node] = []
    for op in graph.operators:
        ins = tuple(graph.key(i) for i in op.inputs)
        outs = tuple(graph.key(i) for i in op.outputs)
        info = NodeInfo(
            index=op.index, op_type=op.op, name=outs[0] if outs else f"{op.op}#{op.index}",
            inputs=ins, outputs=outs, attributes=dict(op.options), fmt="tflite", opset=op.version,
            constants={k: constants[k] for k in ins if k in constants},
            specs={k: specs[k] for k in ins + outs if k}, quantization={k: quant[k] for k in ins + outs if k in quant},
        )
        if op.op not in TFLITE_OPS:
            extra = f" (this model also needs: {', '.join(u for u in unsupported if u != op.op)})" \
                if len(unsupported) > 1 else ""
            raise info.unsupported(f"op {op.op} is not implemented by the reference interpreter{extra}")
        for k in ins:
            if k and k not in available:
                t = graph.tensor(k)
                why = (f"its constant of type {t.dtype} cannot be represented" if t.dtype not in TORCH_DTYPES
                       else "it is a variable or is produced by no earlier op")
                raise info.unsupported(f"input {k!r}: {why}")
        for k in outs:
            if k and graph.tensor(k).dtype not in TORCH_DTYPES:
                raise info.unsupported(f"output {k!r} has type {graph.tensor(k).dtype}")
        fn = TFLITE_OPS[op.op](info)
        fq = [(i, quant[k], graph.tensor(k).dtype) for i, k in enumerate(outs) if k in quant]
        if fq and op.op != "DEQUANTIZE":
            fn = _fake_quantized(fn, fq)
        nodes.append(Node(info, fn))
        available.update(k for k in outs if k)
    real_specs = {t.key: _spec(t, real=True) for t in graph.tensors}
    return Program(
        fmt="tflite",
        inputs=tuple(real_specs[k] for k in graph.input_keys),
        outputs=tuple(real_specs[k] for k in graph.output_keys),
        constants=constants,
        nodes=nodes,
        quantization=dict(quant),
    )


def _fake_quantized(fn: OpFn, fq: Sequence[tuple[int, object, str]]) -> OpFn:
    """Wrap an op so its quantized outputs land on TFLite's quantization grid."""

    def run(*args: torch.Tensor | None) -> Sequence[torch.Tensor]:
        outs = list(fn(*args))
        for i, q, dtype in fq:
            outs[i] = fake_quantize(outs[i].float(), q, dtype)  # type: ignore[arg-type]
        return outs

    return run


"""Matrix products: MatMul (numpy matmul semantics) and Gemm (alpha * A' @ B' + beta * C)."""

from __future__ import annotations

import torch

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, has_input


@onnx_op("MatMul")
def matmul(info: NodeInfo) -> OpFn:
    """A (..., M, K) @ B (..., K, N) with batch broadcasting; 1-D operands as numpy does."""
    attributes(info, {})
    return lambda a, b: (torch.matmul(a, b),)


@onnx_op("Gemm")
def gemm(info: NodeInfo) -> OpFn:
    """A (M, K) or (K, M) with transA, B (K, N) or (N, K) with transB, C broadcast to (M, N)."""
    a = attributes(info, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0, "broadcast": 1})
    alpha, beta = float(a["alpha"]), float(a["beta"])
    trans_a, trans_b = bool(a["transA"]), bool(a["transB"])
    use_c = has_input(info, 2) and beta != 0.0
    b_const = info.const(1)
    # weights are transposed once here, not on every call
    b_fixed = None if b_const is None else (b_const.t().contiguous() if trans_b else b_const)

    def run(x: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        xa = x.t() if trans_a else x
        wb = b_fixed if (b_fixed is not None and w is b_const) else (w.t() if trans_b else w)
        if use_c and c is not None and alpha == 1.0 and beta == 1.0 and xa.is_floating_point():
            return (torch.addmm(c, xa, wb) if c.dim() <= 2 else xa @ wb + c,)
        y = xa @ wb
        if alpha != 1.0:
            y = y * alpha
        if use_c and c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return (y,)

    return run

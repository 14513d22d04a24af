"""Activations: Relu, PRelu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Softmax,
LogSoftmax, Hardmax, Softplus, Softsign, Elu, Selu, Celu, ThresholdedRelu, Mish, Gelu, Swish.

SiLU reaches ONNX as ``Sigmoid`` + ``Mul`` (or as ``Swish`` from opset 24).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, has_input, norm_axis


def _unary(fn) -> OpFn:  # type: ignore[no-untyped-def]
    return lambda x: (fn(x),)


@onnx_op("Relu")
def relu(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return _unary(torch.relu)


@onnx_op("Sigmoid")
def sigmoid(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return _unary(torch.sigmoid)


@onnx_op("Tanh")
def tanh(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return _unary(torch.tanh)


@onnx_op("Softplus")
def softplus(info: NodeInfo) -> OpFn:
    attributes(info, {})
    # log(1 + exp(x)) without overflow; exact where F.softplus switches to x at 20
    return _unary(lambda x: torch.logaddexp(x, torch.zeros((), dtype=x.dtype)))


@onnx_op("Softsign")
def softsign(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return _unary(lambda x: x / (1 + x.abs()))


@onnx_op("Mish")
def mish(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return _unary(lambda x: x * torch.tanh(torch.logaddexp(x, torch.zeros((), dtype=x.dtype))))


@onnx_op("LeakyRelu")
def leaky_relu(info: NodeInfo) -> OpFn:
    alpha = float(attributes(info, {"alpha": 0.01})["alpha"])
    return _unary(lambda x: torch.where(x >= 0, x, x * alpha))


@onnx_op("PRelu")
def prelu(info: NodeInfo) -> OpFn:
    """y = x if x >= 0 else slope * x; ``slope`` broadcasts to x (unidirectionally).

    A per-channel slope (shape (C, 1, ..) or (1, C, 1, ..) against dim 1, or one value) runs
    as torch's fused prelu kernel; any other broadcast as where(x >= 0, x, x * slope).
    """
    attributes(info, {})

    def channel_weight(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor | None:
        if slope.numel() == 1:
            return slope.reshape(1)
        if x.dim() < 2 or slope.dim() > x.dim():
            return None
        shape = [1] * (x.dim() - slope.dim()) + list(slope.shape)
        if shape[0] == 1 and shape[1] == x.shape[1] and all(d == 1 for d in shape[2:]):
            return slope.reshape(-1)
        return None

    def run(x: torch.Tensor, slope: torch.Tensor) -> tuple[torch.Tensor]:
        if x.is_floating_point() and slope.dtype == x.dtype:
            weight = channel_weight(x, slope)
            if weight is not None:
                return (F.prelu(x, weight),)
        return (torch.where(x >= 0, x, x * slope),)

    return run


@onnx_op("ThresholdedRelu")
def thresholded_relu(info: NodeInfo) -> OpFn:
    alpha = float(attributes(info, {"alpha": 1.0})["alpha"])
    return _unary(lambda x: torch.where(x > alpha, x, torch.zeros((), dtype=x.dtype)))


@onnx_op("Elu")
def elu(info: NodeInfo) -> OpFn:
    alpha = float(attributes(info, {"alpha": 1.0})["alpha"])
    return _unary(lambda x: torch.where(x > 0, x, alpha * torch.expm1(x)))


@onnx_op("Selu")
def selu(info: NodeInfo) -> OpFn:
    a = attributes(info, {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875})
    alpha, gamma = float(a["alpha"]), float(a["gamma"])
    return _unary(lambda x: gamma * torch.where(x > 0, x, alpha * torch.expm1(x)))


@onnx_op("Celu")
def celu(info: NodeInfo) -> OpFn:
    alpha = float(attributes(info, {"alpha": 1.0})["alpha"])
    return _unary(lambda x: F.celu(x, alpha=alpha))


@onnx_op("HardSigmoid")
def hard_sigmoid(info: NodeInfo) -> OpFn:
    a = attributes(info, {"alpha": 0.2, "beta": 0.5})
    alpha, beta = float(a["alpha"]), float(a["beta"])
    return _unary(lambda x: torch.clamp(x * alpha + beta, 0.0, 1.0))


@onnx_op("HardSwish")
def hard_swish(info: NodeInfo) -> OpFn:
    """x * max(0, min(1, x / 6 + 0.5)) (the spec's formula, not torch's (x + 3) / 6)."""
    attributes(info, {})
    return _unary(lambda x: x * torch.clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0))


@onnx_op("Swish")
def swish(info: NodeInfo) -> OpFn:
    alpha = float(attributes(info, {"alpha": 1.0})["alpha"])
    return _unary(lambda x: x * torch.sigmoid(x * alpha) if alpha != 1.0 else x * torch.sigmoid(x))


@onnx_op("Gelu")
def gelu(info: NodeInfo) -> OpFn:
    approximate = str(attributes(info, {"approximate": "none"})["approximate"])
    if approximate not in ("none", "tanh"):
        raise info.unsupported(f"approximate={approximate!r}")
    return _unary(lambda x: F.gelu(x, approximate=approximate))


@onnx_op("Clip")
def clip(info: NodeInfo) -> OpFn:
    """Opset < 11: ``min``/``max`` attributes; from 11: optional ``min``/``max`` inputs."""
    if info.opset < 11:
        a = attributes(info, {"min": -3.4028234663852886e38, "max": 3.4028234663852886e38})
        lo, hi = float(a["min"]), float(a["max"])
        return _unary(lambda x: torch.clamp(x, lo, hi))
    attributes(info, {})
    use_lo, use_hi = has_input(info, 1), has_input(info, 2)

    def run(x: torch.Tensor, lo: torch.Tensor | None = None, hi: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        y = x
        if use_lo and lo is not None:
            y = torch.maximum(y, lo.to(x.dtype))
        if use_hi and hi is not None:
            y = torch.minimum(y, hi.to(x.dtype))
        return (y,)

    return run


def _softmax_family(info: NodeInfo, fn) -> OpFn:  # type: ignore[no-untyped-def]
    """Opset >= 13: along ``axis`` (default -1). Before: flatten to 2-D at ``axis`` (default 1)
    and normalize each row, i.e. over all dims from ``axis`` on."""
    if info.opset >= 13:
        axis = int(attributes(info, {"axis": -1})["axis"])

        def run13(x: torch.Tensor) -> tuple[torch.Tensor]:
            return (fn(x, norm_axis(axis, x.dim())),)

        return run13
    axis = int(attributes(info, {"axis": 1})["axis"])

    def run_flat(x: torch.Tensor) -> tuple[torch.Tensor]:
        if x.dim() == 0:
            return (fn(x.reshape(1, 1), 1).reshape(()),)
        a = norm_axis(axis, x.dim())
        if a == x.dim() - 1:
            return (fn(x, a),)  # same as flattening: one row per leading index
        rows = math.prod(x.shape[:a])
        return (fn(x.reshape(rows, math.prod(x.shape[a:])), 1).reshape(x.shape),)

    return run_flat


@onnx_op("Softmax")
def softmax(info: NodeInfo) -> OpFn:
    return _softmax_family(info, lambda x, d: torch.softmax(x, d))


@onnx_op("LogSoftmax")
def log_softmax(info: NodeInfo) -> OpFn:
    return _softmax_family(info, lambda x, d: torch.log_softmax(x, d))


def _hardmax(x: torch.Tensor, d: int) -> torch.Tensor:
    # one-hot of the first maximum along d
    idx = torch.argmax(x, dim=d, keepdim=True)
    return torch.zeros_like(x).scatter_(d, idx, 1)


@onnx_op("Hardmax")
def hardmax(info: NodeInfo) -> OpFn:
    return _softmax_family(info, _hardmax)

"""Activations: RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LEAKY_RELU, PRELU, LOGISTIC, TANH,
HARD_SWISH, GELU, SOFTMAX, LOG_SOFTMAX.

SOFTMAX works on the last axis with ``beta``: ``exp(beta*x) / sum(exp(beta*x))``.
HARD_SWISH is ``x * relu6(x + 3) / 6``. PRELU's alpha broadcasts against the input (NHWC).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import opt


@tflite_op("RELU")
def relu(info: NodeInfo) -> OpFn:
    return lambda x: (torch.clamp(x, min=0.0),)


@tflite_op("RELU6")
def relu6(info: NodeInfo) -> OpFn:
    return lambda x: (torch.clamp(x, 0.0, 6.0),)


@tflite_op("RELU_N1_TO_1")
def relu_n1_to_1(info: NodeInfo) -> OpFn:
    return lambda x: (torch.clamp(x, -1.0, 1.0),)


@tflite_op("RELU_0_TO_1")
def relu_0_to_1(info: NodeInfo) -> OpFn:
    return lambda x: (torch.clamp(x, 0.0, 1.0),)


@tflite_op("LEAKY_RELU")
def leaky_relu(info: NodeInfo) -> OpFn:
    alpha = float(opt(info, "alpha", 0.2))
    return lambda x: (torch.where(x >= 0, x, x * alpha),)


@tflite_op("PRELU")
def prelu(info: NodeInfo) -> OpFn:
    return lambda x, alpha: (torch.where(x >= 0, x, x * alpha.to(x.dtype)),)


@tflite_op("LOGISTIC")
def logistic(info: NodeInfo) -> OpFn:
    return lambda x: (torch.sigmoid(x),)


@tflite_op("TANH")
def tanh(info: NodeInfo) -> OpFn:
    return lambda x: (torch.tanh(x),)


@tflite_op("HARD_SWISH")
def hard_swish(info: NodeInfo) -> OpFn:
    return lambda x: (x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0,)


@tflite_op("GELU")
def gelu(info: NodeInfo) -> OpFn:
    approximate = "tanh" if opt(info, "approximate", False) else "none"
    return lambda x: (F.gelu(x, approximate=approximate),)


@tflite_op("SOFTMAX")
def softmax(info: NodeInfo) -> OpFn:
    beta = float(opt(info, "beta", 1.0))
    return lambda x: (torch.softmax(x * beta if beta != 1.0 else x, dim=-1),)


@tflite_op("LOG_SOFTMAX")
def log_softmax(info: NodeInfo) -> OpFn:
    return lambda x: (torch.log_softmax(x, dim=-1),)

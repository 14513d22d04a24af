"""Pooling: MAX_POOL_2D, AVERAGE_POOL_2D (NHWC, TFLite SAME/VALID padding).

SAME padding can be asymmetric (the odd pixel goes after), which torch's pooling ``padding``
cannot express, so the input is padded explicitly: with -inf for max pooling, and average
pooling divides by the number of *valid* (unpadded) elements in each window, as TFLite does.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import check_padding, conv_padding, fused_activation, opt


def _pool_params(info: NodeInfo) -> tuple[str, int, int, int, int]:
    padding = check_padding(info)
    kh, kw = int(opt(info, "filter_height", 1)), int(opt(info, "filter_width", 1))
    sh, sw = int(opt(info, "stride_h", 1)), int(opt(info, "stride_w", 1))
    return padding, kh, kw, sh, sw


def _pads(x: torch.Tensor, padding: str, kh: int, kw: int, sh: int, sw: int) -> tuple[int, int, int, int]:
    pt, pb, _ = conv_padding(padding, x.shape[1], kh, sh)
    pl, pr, _ = conv_padding(padding, x.shape[2], kw, sw)
    return pl, pr, pt, pb


def _pool_op(info: NodeInfo, pool: Callable[[torch.Tensor, tuple[int, int, int, int], tuple[int, int], tuple[int, int]], torch.Tensor]) -> OpFn:
    """A TFLite NHWC pooling op: SAME/VALID pads as TFLite computes them, then ``pool`` on NCHW."""
    padding, kh, kw, sh, sw = _pool_params(info)
    act = fused_activation(info)

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        pads = _pads(x, padding, kh, kw, sh, sw)
        y = pool(x.permute(0, 3, 1, 2), pads, (kh, kw), (sh, sw))
        return (act(y.permute(0, 2, 3, 1)),)

    return run


def _max(xc: torch.Tensor, pads: tuple[int, int, int, int], k: tuple[int, int], s: tuple[int, int]) -> torch.Tensor:
    if any(pads):
        xc = F.pad(xc, pads, value=float("-inf"))
    return F.max_pool2d(xc, k, s)


def _average(xc: torch.Tensor, pads: tuple[int, int, int, int], k: tuple[int, int], s: tuple[int, int]) -> torch.Tensor:
    if not any(pads):
        return F.avg_pool2d(xc, k, s)
    # TFLite averages over the valid (unpadded) elements only
    ones = F.pad(torch.ones_like(xc[:1, :1]), pads)
    return F.avg_pool2d(F.pad(xc, pads), k, s) / F.avg_pool2d(ones, k, s)


@tflite_op("MAX_POOL_2D")
def max_pool_2d(info: NodeInfo) -> OpFn:
    return _pool_op(info, _max)


@tflite_op("AVERAGE_POOL_2D")
def average_pool_2d(info: NodeInfo) -> OpFn:
    return _pool_op(info, _average)

"""Pooling: MAX_POOL_2D, AVERAGE_POOL_2D (NHWC, TFLite SAME/VALID padding).

SAME padding can be asymmetric (the odd pixel goes after), which torch's pooling ``padding``
cannot express, so the input is padded explicitly: with -inf for max pooling, and average
pooling divides by the number of *valid* (unpadded) elements in each window, as TFLite does.
"""

from __future__ import annotations

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


@tflite_op("MAX_POOL_2D")
def max_pool_2d(info: NodeInfo) -> OpFn:
    padding, kh, kw, sh, sw = _pool_params(info)
    act = fused_activation(info)

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        pads = _pads(x, padding, kh, kw, sh, sw)
        xc = x.permute(0, 3, 1, 2)
        if any(pads):
            xc = F.pad(xc, pads, value=float("-inf"))
        y = F.max_pool2d(xc, (kh, kw), (sh, sw))
        return (act(y.permute(0, 2, 3, 1)),)

    return run


@tflite_op("AVERAGE_POOL_2D")
def average_pool_2d(info: NodeInfo) -> OpFn:
    padding, kh, kw, sh, sw = _pool_params(info)
    act = fused_activation(info)

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        pads = _pads(x, padding, kh, kw, sh, sw)
        xc = x.permute(0, 3, 1, 2)
        if any(pads):
            ones = F.pad(torch.ones_like(xc[:1, :1]), pads)
            y = F.avg_pool2d(F.pad(xc, pads), (kh, kw), (sh, sw)) / F.avg_pool2d(ones, (kh, kw), (sh, sw))
        else:
            y = F.avg_pool2d(xc, (kh, kw), (sh, sw))
        return (act(y.permute(0, 2, 3, 1)),)

    return run

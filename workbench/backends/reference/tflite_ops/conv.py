"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED.

TFLite layouts: input NHWC; CONV_2D filter ``[O, kh, kw, I]`` (grouped when ``I`` divides the
input channels); DEPTHWISE_CONV_2D filter ``[1, kh, kw, C*M]`` (output channel ``c*M + m``);
TRANSPOSE_CONV filter ``[O, kh, kw, I]`` with the output shape as input 0; FULLY_CONNECTED
weights ``[N, K]``. The closures permute to torch's NCHW around the kernel and back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import tflite_op
from ..program import NodeInfo, OpFn
from ._common import check_padding, conv_padding, fused_activation, has_input, opt, to_ints


def _pad_nchw(x: torch.Tensor, padding: str, kh: int, kw: int, sh: int, sw: int, dh: int = 1, dw: int = 1,
              value: float = 0.0) -> torch.Tensor:
    pt, pb, _ = conv_padding(padding, x.shape[2], kh, sh, dh)
    pl, pr, _ = conv_padding(padding, x.shape[3], kw, sw, dw)
    if pt or pb or pl or pr:
        x = F.pad(x, (pl, pr, pt, pb), value=value)
    return x


@tflite_op("CONV_2D")
def conv_2d(info: NodeInfo) -> OpFn:
    padding = check_padding(info)
    sh, sw = int(opt(info, "stride_h", 1)), int(opt(info, "stride_w", 1))
    dh, dw = int(opt(info, "dilation_h_factor", 1)), int(opt(info, "dilation_w_factor", 1))
    act = fused_activation(info)

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        weight = w.to(x.dtype).permute(0, 3, 1, 2)  # OHWI -> OIHW
        if x.shape[3] % weight.shape[1]:
            raise info.unsupported(f"input has {x.shape[3]} channels, filter expects a divisor-compatible "
                                   f"{weight.shape[1]}")
        groups = x.shape[3] // weight.shape[1]
        xc = _pad_nchw(x.permute(0, 3, 1, 2), padding, weight.shape[2], weight.shape[3], sh, sw, dh, dw)
        y = F.conv2d(xc, weight, None if b is None else b.to(x.dtype), stride=(sh, sw),
                     dilation=(dh, dw), groups=groups)
        return (act(y.permute(0, 2, 3, 1)),)

    return run


@tflite_op("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(info: NodeInfo) -> OpFn:
    padding = check_padding(info)
    sh, sw = int(opt(info, "stride_h", 1)), int(opt(info, "stride_w", 1))
    dh, dw = int(opt(info, "dilation_h_factor", 1)), int(opt(info, "dilation_w_factor", 1))
    act = fused_activation(info)

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        c_in, c_out = x.shape[3], w.shape[3]
        if c_out % c_in:
            raise info.unsupported(f"filter has {c_out} channels, not a multiple of the input's {c_in}")
        weight = w.to(x.dtype)[0].permute(2, 0, 1).unsqueeze(1)  # [C*M, 1, kh, kw]
        xc = _pad_nchw(x.permute(0, 3, 1, 2), padding, weight.shape[2], weight.shape[3], sh, sw, dh, dw)
        y = F.conv2d(xc, weight, None if b is None else b.to(x.dtype), stride=(sh, sw),
                     dilation=(dh, dw), groups=c_in)
        return (act(y.permute(0, 2, 3, 1)),)

    return run


@tflite_op("TRANSPOSE_CONV")
def transpose_conv(info: NodeInfo) -> OpFn:
    """Padding as TFLite computes it: the SAME/VALID padding of the *forward* conv that maps the
    requested output size back to the input, cropped from the full transposed result."""
    padding = check_padding(info)
    sh, sw = int(opt(info, "stride_h", 1)), int(opt(info, "stride_w", 1))
    act = fused_activation(info)

    def run(out_shape: torch.Tensor, w: torch.Tensor, x: torch.Tensor,
            b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        n, oh, ow, oc = to_ints(out_shape)
        kh, kw = w.shape[1], w.shape[2]
        weight = w.to(x.dtype).permute(3, 0, 1, 2)  # [O,kh,kw,I] -> [I, O, kh, kw]
        full = F.conv_transpose2d(x.permute(0, 3, 1, 2), weight, stride=(sh, sw))
        pt, _, _ = conv_padding(padding, oh, kh, sh)
        pl, _, _ = conv_padding(padding, ow, kw, sw)
        # crop (negative pad) or extend with zeros to the requested output size
        y = F.pad(full, (-pl, pl + ow - full.shape[3], -pt, pt + oh - full.shape[2]))
        if b is not None:
            y = y + b.to(x.dtype).reshape(1, -1, 1, 1)
        return (act(y.permute(0, 2, 3, 1)),)

    return run


@tflite_op("FULLY_CONNECTED")
def fully_connected(info: NodeInfo) -> OpFn:
    fmt = opt(info, "weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        raise info.unsupported(f"weights_format {fmt!r} (shuffled weights) is not supported")
    keep = bool(opt(info, "keep_num_dims", False))
    act = fused_activation(info)
    with_bias = has_input(info, 2)

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        n_out, k = w.shape
        y = F.linear(x.reshape(-1, k), w.to(x.dtype), b.to(x.dtype) if with_bias and b is not None else None)
        if keep:
            y = y.reshape(*x.shape[:-1], n_out)
        return (act(y),)

    return run

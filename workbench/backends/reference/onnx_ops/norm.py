"""Normalization: BatchNormalization (inference), InstanceNormalization, LayerNormalization, LRN."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, norm_axis


@onnx_op("BatchNormalization")
def batch_normalization(info: NodeInfo) -> OpFn:
    """Inference: y = (x - mean) / sqrt(var + epsilon) * scale + B over channel dim 1."""
    if info.opset < 7:
        raise info.unsupported("opset < 7 (is_test / spatial / consumed_inputs attributes)")
    defaults = {"epsilon": 1e-5, "momentum": 0.9}
    if info.opset < 9:
        defaults["spatial"] = 1
    if info.opset >= 14:
        defaults["training_mode"] = 0
    a = attributes(info, defaults)
    if int(a.get("training_mode", 0)):
        raise info.unsupported("training_mode=1 (batch statistics); export the model in eval mode")
    if not int(a.get("spatial", 1)):
        raise info.unsupported("spatial=0")
    if len([o for o in info.outputs if o]) > 1:
        raise info.unsupported("running mean/var outputs (training mode)")
    eps = float(a["epsilon"])

    def run(x: torch.Tensor, scale: torch.Tensor, b: torch.Tensor, mean: torch.Tensor,
            var: torch.Tensor) -> tuple[torch.Tensor]:
        if x.dim() < 2:
            raise ValueError(f"BatchNormalization needs rank >= 2, got shape {tuple(x.shape)}")
        return (F.batch_norm(x, mean, var, scale, b, False, 0.0, eps),)

    return run


@onnx_op("InstanceNormalization")
def instance_normalization(info: NodeInfo) -> OpFn:
    eps = float(attributes(info, {"epsilon": 1e-5})["epsilon"])
    return lambda x, scale, b: (F.instance_norm(x, weight=scale, bias=b, eps=eps),)


@onnx_op("LayerNormalization")
def layer_normalization(info: NodeInfo) -> OpFn:
    """Normalize over dims ``axis..``; outputs Y, Mean, InvStdDev (reduced dims kept as 1)."""
    a = attributes(info, {"axis": -1, "epsilon": 1e-5, "stash_type": 1})
    if int(a["stash_type"]) != 1:
        raise info.unsupported(f"stash_type={a['stash_type']}")
    axis, eps = int(a["axis"]), float(a["epsilon"])

    def run(x: torch.Tensor, scale: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        ax = norm_axis(axis, x.dim())
        dims = tuple(range(ax, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        diff = x - mean
        inv_std = torch.rsqrt((diff * diff).mean(dim=dims, keepdim=True) + eps)
        y = diff * inv_std * scale
        if b is not None:
            y = y + b
        return y, mean, inv_std

    return run


@onnx_op("LRN")
def lrn(info: NodeInfo) -> OpFn:
    """y = x / (bias + alpha / size * sum of x^2 over channels [c - floor((size-1)/2),
    c + ceil((size-1)/2)]) ** beta."""
    a = attributes(info, {"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": None})
    alpha, beta, bias, size = float(a["alpha"]), float(a["beta"]), float(a["bias"]), int(a["size"])
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        sq = (x * x).transpose(1, -1)  # channels last for F.pad
        sq = F.pad(sq, (lo + 1, hi))
        cs = sq.cumsum(-1)
        c = x.shape[1]
        window = (cs[..., size:size + c] - cs[..., :c]).transpose(1, -1)
        return (x / (bias + alpha / size * window) ** beta,)

    return run

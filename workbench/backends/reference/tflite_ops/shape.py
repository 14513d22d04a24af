"""Shape and data-movement ops: RESHAPE, TRANSPOSE, SQUEEZE, EXPAND_DIMS, CONCATENATION,
SPLIT, SPLIT_V, SLICE, STRIDED_SLICE, GATHER, PAD, PADV2, CAST.

Shape-like inputs (new shape, perm, axes, begin/end...) are read at load time when they are
constant buffers, else from the run-time tensor. STRIDED_SLICE follows TFLite's
``StartForAxis`` / ``StopForAxis`` (masks, negative indices, clamping); ``ellipsis_mask``,
``new_axis_mask`` and ``offset`` are refused.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import tflite_op
from ._common import const_ints, fused_activation, has_input, norm_axis, opt, out_dtype, to_ints


def _ints_or_runtime(info: NodeInfo, i: int):
    """Constant input i as ints now, or a function reading it from the run-time tensor."""
    c = const_ints(info, i)
    return (lambda t: c) if c is not None else to_ints


@tflite_op("RESHAPE")
def reshape(info: NodeInfo) -> OpFn:
    # TFLite takes the shape from input 1 when given, else from the new_shape option
    if has_input(info, 1):
        get = _ints_or_runtime(info, 1)
        return lambda x, shape: (x.reshape(get(shape)),)
    new_shape = opt(info, "new_shape", None)
    if new_shape is None:
        spec = info.specs.get(info.outputs[0])
        if spec is None or spec.dims is None:
            raise info.unsupported("no shape input, no new_shape option and no declared output shape")
        new_shape = list(spec.dims)
    shape = [int(d) for d in new_shape]
    return lambda x: (x.reshape(shape),)


@tflite_op("TRANSPOSE")
def transpose(info: NodeInfo) -> OpFn:
    get = _ints_or_runtime(info, 1)
    return lambda x, perm: (x.permute(*get(perm)),)


@tflite_op("SQUEEZE")
def squeeze(info: NodeInfo) -> OpFn:
    dims = [int(d) for d in opt(info, "squeeze_dims", [])]

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        if not dims:
            return (x.reshape([d for d in x.shape if d != 1]),)
        drop = {norm_axis(d, x.dim()) for d in dims}
        return (x.reshape([d for i, d in enumerate(x.shape) if i not in drop]),)

    return run


@tflite_op("EXPAND_DIMS")
def expand_dims(info: NodeInfo) -> OpFn:
    get = _ints_or_runtime(info, 1)

    def run(x: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor]:
        a = get(axis)[0]
        return (x.unsqueeze(a + x.dim() + 1 if a < 0 else a),)

    return run


@tflite_op("CONCATENATION")
def concatenation(info: NodeInfo) -> OpFn:
    axis = int(opt(info, "axis", 0))
    act = fused_activation(info)

    def run(*xs: torch.Tensor) -> tuple[torch.Tensor]:
        dtype = xs[0].dtype
        return (act(torch.cat([x.to(dtype) for x in xs], dim=norm_axis(axis, xs[0].dim()))),)

    return run


@tflite_op("SPLIT")
def split(info: NodeInfo) -> OpFn:
    n = int(opt(info, "num_splits", len(info.outputs)))
    get = _ints_or_runtime(info, 0)

    def run(axis: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = norm_axis(get(axis)[0], x.dim())
        if x.shape[a] % n:
            raise info.unsupported(f"axis {a} of size {x.shape[a]} does not split into {n} equal parts")
        return tuple(torch.split(x, x.shape[a] // n, dim=a))

    return run


@tflite_op("SPLIT_V")
def split_v(info: NodeInfo) -> OpFn:
    get_sizes, get_axis = _ints_or_runtime(info, 1), _ints_or_runtime(info, 2)

    def run(x: torch.Tensor, sizes: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = norm_axis(get_axis(axis)[0], x.dim())
        s = get_sizes(sizes)
        if -1 in s:
            s[s.index(-1)] = x.shape[a] - (sum(s) + 1)
        return tuple(torch.split(x, s, dim=a))

    return run


@tflite_op("SLICE")
def slice_(info: NodeInfo) -> OpFn:
    get_begin, get_size = _ints_or_runtime(info, 1), _ints_or_runtime(info, 2)

    def run(x: torch.Tensor, begin: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor]:
        idx = tuple(
            slice(b, x.shape[i] if s == -1 else b + s)
            for i, (b, s) in enumerate(zip(get_begin(begin), get_size(size)))
        )
        return (x[idx],)

    return run


def _strided_axis(dim: int, begin: int, end: int, stride: int, axis: int,
                  begin_mask: int, end_mask: int, shrink_mask: int) -> list[int] | slice:
    """Indices one axis keeps, as TFLite's StartForAxis / StopForAxis compute them."""
    big = 1 << 62
    start = begin
    if begin_mask & (1 << axis):
        start = -big if stride > 0 else big
    if start < 0:
        start += dim
    start = min(max(start, 0), dim) if stride > 0 else min(max(start, -1), dim - 1)
    if shrink_mask & (1 << axis):
        stop = start + 1
    else:
        stop = end
        if end_mask & (1 << axis):
            stop = big if stride > 0 else -big
        if stop < 0:
            stop += dim
        stop = min(max(stop, 0), dim) if stride > 0 else min(max(stop, -1), dim - 1)
    if stride > 0:
        return slice(start, max(stop, start), stride)
    return list(range(start, stop, stride))


@tflite_op("STRIDED_SLICE")
def strided_slice(info: NodeInfo) -> OpFn:
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if int(opt(info, mask, 0)):
            raise info.unsupported(f"{mask}={opt(info, mask, 0)} is not supported (only begin/end/shrink masks)")
    if opt(info, "offset", False):
        raise info.unsupported("offset=True is not supported")
    bm, em, sm = (int(opt(info, k, 0)) for k in ("begin_mask", "end_mask", "shrink_axis_mask"))
    gets = [_ints_or_runtime(info, i) for i in (1, 2, 3)]

    def run(x: torch.Tensor, begin: torch.Tensor, end: torch.Tensor, strides: torch.Tensor) -> tuple[torch.Tensor]:
        b, e, s = (g(t) for g, t in zip(gets, (begin, end, strides)))
        if any(v == 0 for v in s):
            raise info.unsupported("a stride of 0")
        y = x
        for axis in range(min(len(b), x.dim())):
            sel = _strided_axis(x.shape[axis], b[axis], e[axis], s[axis], axis, bm, em, sm)
            if isinstance(sel, slice):
                if sel != slice(0, x.shape[axis], 1):
                    y = y[(slice(None),) * axis + (sel,)]
            else:
                y = torch.index_select(y, axis, torch.tensor(sel, dtype=torch.long))
        keep = [d for i, d in enumerate(y.shape) if not (i < len(b) and sm & (1 << i))]
        return (y.reshape(keep),)

    return run


@tflite_op("GATHER")
def gather(info: NodeInfo) -> OpFn:
    axis = int(opt(info, "axis", 0))
    if int(opt(info, "batch_dims", 0)):
        raise info.unsupported(f"batch_dims={opt(info, 'batch_dims', 0)} is not supported")

    def run(params: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor]:
        a = norm_axis(axis, params.dim())
        idx = indices.reshape(-1).long()
        y = torch.index_select(params, a, idx)
        return (y.reshape(*params.shape[:a], *indices.shape, *params.shape[a + 1:]),)

    return run


def _torch_pads(pads: Sequence[int]) -> list[int]:
    """[[b0, a0], [b1, a1], ...] (flattened, first axis first) -> F.pad's last-axis-first list."""
    pairs = [(pads[2 * i], pads[2 * i + 1]) for i in range(len(pads) // 2)]
    return [v for b, a in reversed(pairs) for v in (b, a)]


@tflite_op("PAD", "PADV2")
def pad(info: NodeInfo) -> OpFn:
    get = _ints_or_runtime(info, 1)
    value_const = info.const(2)

    def run(x: torch.Tensor, paddings: torch.Tensor, value: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        v = value if value is not None else value_const
        fill = float(v.reshape(-1)[0]) if v is not None else 0.0
        return (F.pad(x, _torch_pads(get(paddings)), value=fill),)

    return run


@tflite_op("CAST")
def cast(info: NodeInfo) -> OpFn:
    dtype = out_dtype(info)
    if dtype is None:
        raise info.unsupported(f"output type {info.specs.get(info.outputs[0])} is not supported")

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        if dtype == torch.bool:
            return (x != 0,)
        return (x.to(dtype),)

    return run

"""Shape and data-movement ops: Concat, Split, Slice, Reshape, Flatten, Transpose, Squeeze,
Unsqueeze, Shape, Size, Gather, GatherElements, Cast, CastLike, Constant, ConstantOfShape,
Identity, Dropout (inference), Expand, Tile, Range, Pad, DepthToSpace, SpaceToDepth.

Shape-like inputs (``shape``, ``axes``, ``starts`` ...) are read at run time with
``.tolist()``; they are tiny, and graphs exported from PyTorch compute them with Shape ops.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..program import NodeInfo, OpFn
from ..registry import onnx_op
from ._common import attributes, const_ints, has_input, norm_axes, norm_axis, to_ints
from ._dtypes import onnx_type_name, torch_dtype


@onnx_op("Identity")
def identity(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda x: (x,)


@onnx_op("Dropout")
def dropout(info: NodeInfo) -> OpFn:
    """Inference mode only: y = x, mask = all true."""
    if info.opset < 7:
        a = attributes(info, {"ratio": 0.5, "is_test": 0, "consumed_inputs": None})
        if not a["is_test"]:
            raise info.unsupported("is_test=0 (training mode)")
    else:
        attributes(info, {"ratio": 0.5, "seed": 0})
    if has_input(info, 2):
        mode = info.const(2)
        if mode is None or bool(mode.reshape(-1)[0]):
            raise info.unsupported("training_mode must be a constant false (dropout is random in training)")

    def run(x: torch.Tensor, *_: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return x, torch.ones(x.shape, dtype=torch.bool)

    return run


@onnx_op("Reshape")
def reshape(info: NodeInfo) -> OpFn:
    """0 in ``shape`` copies the input dim (unless allowzero=1); -1 is inferred."""
    if info.opset < 5:
        raise info.unsupported("opset < 5 (shape as an attribute)")
    allowzero = int(attributes(info, {"allowzero": 0})["allowzero"])

    def run(x: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor]:
        dims = to_ints(shape)
        if not allowzero:
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return (x.reshape(dims),)

    return run


@onnx_op("Flatten")
def flatten(info: NodeInfo) -> OpFn:
    axis = int(attributes(info, {"axis": 1})["axis"])

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        a = axis + x.dim() if axis < 0 else axis
        if not 0 <= a <= x.dim():
            raise IndexError(f"Flatten axis {axis} out of range for rank {x.dim()}")
        return (x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:])),)

    return run


@onnx_op("Transpose")
def transpose(info: NodeInfo) -> OpFn:
    perm = attributes(info, {"perm": None})["perm"]

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        p = list(range(x.dim() - 1, -1, -1)) if perm is None else [int(v) for v in perm]
        return (x.permute(p),)

    return run


def _axes_arg(info: NodeInfo, attr_opset: int) -> tuple[list[int] | None, bool]:
    """(axes from the attribute, axes come from input 1) for ops whose axes moved to an input."""
    if info.opset < attr_opset:
        axes = attributes(info, {"axes": None})["axes"]
        return (None if axes is None else [int(a) for a in axes]), False
    attributes(info, {})
    return None, has_input(info, 1)


@onnx_op("Squeeze")
def squeeze(info: NodeInfo) -> OpFn:
    """No axes: drop every dim of size 1."""
    attr_axes, from_input = _axes_arg(info, 13)

    def run(x: torch.Tensor, axes_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        axes = to_ints(axes_t) if (from_input and axes_t is not None) else attr_axes
        if axes is None:
            return (x.reshape([d for d in x.shape if d != 1]),)
        ax = norm_axes(axes, x.dim())
        if any(x.shape[a] != 1 for a in ax):
            raise ValueError(f"Squeeze axes {axes} include a dim that is not 1 (shape {tuple(x.shape)})")
        return (x.reshape([d for i, d in enumerate(x.shape) if i not in ax]),)

    return run


@onnx_op("Unsqueeze")
def unsqueeze(info: NodeInfo) -> OpFn:
    """Axes refer to the output's dims (negative ones count from the output's end)."""
    attr_axes, from_input = _axes_arg(info, 13)

    def run(x: torch.Tensor, axes_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        axes = to_ints(axes_t) if from_input else (attr_axes or [])
        rank = x.dim() + len(axes)
        ax = set(norm_axes(axes, rank))
        it = iter(x.shape)
        return (x.reshape([1 if i in ax else next(it) for i in range(rank)]),)

    return run


@onnx_op("Concat")
def concat(info: NodeInfo) -> OpFn:
    axis = int(attributes(info, {"axis": 0 if info.opset < 4 else None})["axis"])

    def run(*xs: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.cat(xs, dim=norm_axis(axis, xs[0].dim())),)

    return run


@onnx_op("Split")
def split(info: NodeInfo) -> OpFn:
    """Sizes from the ``split`` attribute (< 13) or input (>= 13); otherwise equal parts
    (from opset 18 the last part may be smaller: parts of ceil(dim / n))."""
    a = attributes(info, {"axis": 0, "split": None, "num_outputs": None})
    axis, split_attr = int(a["axis"]), a["split"]
    n_out = len(info.outputs)
    if a["num_outputs"] is not None and int(a["num_outputs"]) != n_out:
        raise info.unsupported(f"num_outputs={a['num_outputs']} differs from the {n_out} outputs")
    from_input = has_input(info, 1)

    def run(x: torch.Tensor, split_t: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        ax = norm_axis(axis, x.dim())
        if from_input and split_t is not None:
            sizes = to_ints(split_t)
        elif split_attr is not None:
            sizes = [int(s) for s in split_attr]
        else:
            dim = x.shape[ax]
            if info.opset < 18 and dim % n_out:
                raise ValueError(f"Split: dim {dim} is not divisible into {n_out} outputs")
            part = -(-dim // n_out)
            sizes = [part] * (n_out - 1) + [dim - part * (n_out - 1)]
        if sum(sizes) != x.shape[ax] or len(sizes) != n_out:
            raise ValueError(f"Split sizes {sizes} do not fit dim {x.shape[ax]} into {n_out} outputs")
        return tuple(torch.split(x, sizes, dim=ax))

    return run


def _slice_axis(x: torch.Tensor, axis: int, start: int, end: int, step: int) -> torch.Tensor:
    """numpy-style slice of one axis with ONNX clamping; negative steps via index_select."""
    dim = x.shape[axis]
    if step == 0:
        raise ValueError("Slice step must not be 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        if start == 0 and end == dim and step == 1:
            return x
        idx = [slice(None)] * x.dim()
        idx[axis] = slice(start, end, step)
        return x[tuple(idx)]
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    index = torch.arange(start, end, step, dtype=torch.int64)
    return x.index_select(axis, index)


@onnx_op("Slice")
def slice_(info: NodeInfo) -> OpFn:
    """Opset < 10: starts/ends/axes attributes; from 10: inputs starts, ends, axes?, steps?."""
    if info.opset < 10:
        a = attributes(info, {"starts": None, "ends": None, "axes": None})
        if a["starts"] is None or a["ends"] is None:
            raise info.unsupported("Slice-1 needs starts and ends")
        fixed = ([int(v) for v in a["starts"]], [int(v) for v in a["ends"]], a["axes"])

        def run1(x: torch.Tensor) -> tuple[torch.Tensor]:
            return (_slice(x, fixed[0], fixed[1], fixed[2], None),)

        return run1
    attributes(info, {})
    # graphs exported from PyTorch pass constant starts/ends/axes/steps: read them once here
    fixed = [const_ints(info, i) if has_input(info, i) else None for i in range(1, 5)]
    static = all(f is not None or not has_input(info, i + 1) for i, f in enumerate(fixed))

    def run(x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
            axes: torch.Tensor | None = None, steps: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        if static:
            return (_slice(x, fixed[0], fixed[1], fixed[2], fixed[3]),)  # type: ignore[arg-type]
        return (_slice(x, to_ints(starts), to_ints(ends),
                       None if axes is None else to_ints(axes), None if steps is None else to_ints(steps)),)

    return run


def _slice(x: torch.Tensor, starts: list[int], ends: list[int], axes, steps) -> torch.Tensor:  # type: ignore[no-untyped-def]
    axes_l = list(range(len(starts))) if axes is None else norm_axes([int(a) for a in axes], x.dim())
    steps_l = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes_l) == len(steps_l):
        raise ValueError("Slice: starts, ends, axes and steps differ in length")
    for ax, s, e, st in zip(axes_l, starts, ends, steps_l):
        x = _slice_axis(x, ax, s, e, st)
    return x


@onnx_op("Shape")
def shape(info: NodeInfo) -> OpFn:
    a = attributes(info, {"start": 0, "end": None})
    start, end = int(a["start"]), a["end"]
    made: dict[tuple[int, ...], torch.Tensor] = {}  # one tensor per input shape, made once

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        dims = tuple(x.shape)
        t = made.get(dims)
        if t is None:
            r = len(dims)
            s = min(max(start + r if start < 0 else start, 0), r)
            e = r if end is None else min(max(int(end) + r if int(end) < 0 else int(end), 0), r)
            with torch.inference_mode(False):  # cached across runs of any grad mode
                t = made[dims] = torch.tensor(dims[s:e], dtype=torch.int64)
        return (t,)

    return run


@onnx_op("Size")
def size(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda x: (torch.tensor(x.numel(), dtype=torch.int64),)


def _fix_negative(indices: torch.Tensor, dim: int) -> torch.Tensor:
    indices = indices.to(torch.int64)
    return torch.where(indices < 0, indices + dim, indices)


@onnx_op("Gather")
def gather(info: NodeInfo) -> OpFn:
    """out = data.take(indices, axis); negative indices count from the end."""
    axis = int(attributes(info, {"axis": 0})["axis"])

    def run(data: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor]:
        ax = norm_axis(axis, data.dim())
        idx = _fix_negative(indices, data.shape[ax])
        out = data.index_select(ax, idx.reshape(-1))
        return (out.reshape(data.shape[:ax] + idx.shape + data.shape[ax + 1:]),)

    return run


@onnx_op("GatherElements")
def gather_elements(info: NodeInfo) -> OpFn:
    axis = int(attributes(info, {"axis": 0})["axis"])

    def run(data: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor]:
        ax = norm_axis(axis, data.dim())
        return (torch.gather(data, ax, _fix_negative(indices, data.shape[ax])),)

    return run


@onnx_op("Cast")
def cast(info: NodeInfo) -> OpFn:
    a = attributes(info, {"to": None, "saturate": 1, "round_mode": "up"})
    target = torch_dtype(int(a["to"]))
    if target is None:
        raise info.unsupported(f"cast to {onnx_type_name(int(a['to']))}")
    return lambda x: (x.to(target),)


@onnx_op("CastLike")
def cast_like(info: NodeInfo) -> OpFn:
    attributes(info, {"saturate": 1, "round_mode": "up"})
    return lambda x, like: (x.to(like.dtype),)


@onnx_op("Constant")
def constant(info: NodeInfo) -> OpFn:
    """The value is made once at load time (tensor, float(s) or int(s); strings unsupported)."""
    attrs = dict(info.attributes)
    if len(attrs) != 1:
        raise info.unsupported(f"needs exactly one value attribute, got {sorted(attrs)}")
    key, value = next(iter(attrs.items()))
    if key == "value":
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.dtype.name not in _NUMPY_OK:
            raise info.unsupported(f"constant of dtype {arr.dtype}")
        t = torch.from_numpy(np.array(arr, copy=True))
    elif key == "value_float":
        t = torch.tensor(float(value), dtype=torch.float32)
    elif key == "value_floats":
        t = torch.tensor([float(v) for v in value], dtype=torch.float32)
    elif key == "value_int":
        t = torch.tensor(int(value), dtype=torch.int64)
    elif key == "value_ints":
        t = torch.tensor([int(v) for v in value], dtype=torch.int64)
    else:
        raise info.unsupported(f"attribute {key!r}")
    return lambda: (t,)


_NUMPY_OK = {"float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool"}


@onnx_op("ConstantOfShape")
def constant_of_shape(info: NodeInfo) -> OpFn:
    value = attributes(info, {"value": None})["value"]
    if value is None:
        fill = torch.zeros((), dtype=torch.float32)
    else:
        arr = np.asarray(value).reshape(-1)
        if arr.dtype.name not in _NUMPY_OK or arr.size != 1:
            raise info.unsupported(f"value of dtype {arr.dtype} / size {arr.size}")
        fill = torch.from_numpy(arr.copy()).reshape(())

    def run(shape_t: torch.Tensor) -> tuple[torch.Tensor]:
        return (fill.expand(to_ints(shape_t)).clone(),)

    return run


@onnx_op("Expand")
def expand(info: NodeInfo) -> OpFn:
    """Bidirectional broadcast of x with ``shape``."""
    attributes(info, {})

    def run(x: torch.Tensor, shape_t: torch.Tensor) -> tuple[torch.Tensor]:
        out = torch.broadcast_shapes(tuple(x.shape), tuple(to_ints(shape_t)))
        return (x.expand(out),)

    return run


@onnx_op("Tile")
def tile(info: NodeInfo) -> OpFn:
    attributes(info, {})
    return lambda x, repeats: (x.repeat(to_ints(repeats)) if x.dim() else x.clone(),)


@onnx_op("Range")
def range_(info: NodeInfo) -> OpFn:
    """n = max(ceil((limit - start) / delta), 0) values start + i * delta, dtype of start."""
    attributes(info, {})

    def run(start: torch.Tensor, limit: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor]:
        s, l, d = start.item(), limit.item(), delta.item()
        n = max(math.ceil((l - s) / d), 0)
        return ((start + torch.arange(n, dtype=start.dtype) * delta).to(start.dtype),)

    return run


def _pad_index(n: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Source index along one axis for positions -before .. n + after - 1 (reflect/edge/wrap)."""
    i = torch.arange(-before, n + after, dtype=torch.int64)
    if mode == "edge":
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return torch.remainder(i, n)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


@onnx_op("Pad")
def pad(info: NodeInfo) -> OpFn:
    """Modes constant / reflect / edge / wrap; pads [x1_begin, x2_begin, ..., x1_end, ...];
    negative pads crop. Opset < 11: pads and value are attributes."""
    if info.opset < 11:
        a = attributes(info, {"mode": "constant", "pads": None, "value": 0.0, "paddings": None})
        if a["pads"] is None:
            raise info.unsupported("Pad without pads")
        fixed_pads, fixed_value = [int(p) for p in a["pads"]], float(a["value"])
    else:
        a = attributes(info, {"mode": "constant"})
        fixed_pads, fixed_value = None, None
    mode = str(a["mode"])
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise info.unsupported(f"mode={mode!r}")

    def run(x: torch.Tensor, pads_t: torch.Tensor | None = None, value_t: torch.Tensor | None = None,
            axes_t: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        pads = fixed_pads if fixed_pads is not None else to_ints(pads_t)  # type: ignore[arg-type]
        r = x.dim()
        axes = list(range(r)) if axes_t is None else norm_axes(to_ints(axes_t), r)
        if len(pads) != 2 * len(axes):
            raise ValueError(f"Pad: {len(pads)} pads for {len(axes)} axes")
        begin, end = pads[: len(axes)], pads[len(axes):]
        if mode == "constant":
            if fixed_value is not None:
                value = fixed_value
            else:
                value = 0 if value_t is None or value_t.numel() == 0 else value_t.reshape(-1)[0].item()
            full = [0] * (2 * r)
            for ax, b, e in zip(axes, begin, end):
                full[2 * (r - 1 - ax)], full[2 * (r - 1 - ax) + 1] = b, e
            if not any(full):
                return (x,)
            if x.dtype == torch.bool:
                return (F.pad(x.to(torch.uint8), full, value=float(bool(value))).to(torch.bool),)
            return (F.pad(x, full, value=value),)
        y = x
        for ax, b, e in zip(axes, begin, end):
            if b < 0 or e < 0:  # crop first
                y = y.narrow(ax, max(-b, 0), y.shape[ax] - max(-b, 0) - max(-e, 0))
                b, e = max(b, 0), max(e, 0)
            if b or e:
                y = y.index_select(ax, _pad_index(y.shape[ax], b, e, mode))
        return (y,)

    return run


@onnx_op("DepthToSpace")
def depth_to_space(info: NodeInfo) -> OpFn:
    a = attributes(info, {"blocksize": None, "mode": "DCR"})
    bs, mode = int(a["blocksize"]), str(a["mode"])
    if mode not in ("DCR", "CRD"):
        raise info.unsupported(f"mode={mode!r}")

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        n, c, h, w = x.shape
        if mode == "DCR":
            t = x.reshape(n, bs, bs, c // (bs * bs), h, w).permute(0, 3, 4, 1, 5, 2)
        else:
            t = x.reshape(n, c // (bs * bs), bs, bs, h, w).permute(0, 1, 4, 2, 5, 3)
        return (t.reshape(n, c // (bs * bs), h * bs, w * bs),)

    return run


@onnx_op("SpaceToDepth")
def space_to_depth(info: NodeInfo) -> OpFn:
    """(N, C, H, W) -> (N, C * bs * bs, H / bs, W / bs); DCR puts the block offset first in
    the new channel index, CRD the input channel."""
    a = attributes(info, {"blocksize": None, "mode": "DCR"})
    bs, mode = int(a["blocksize"]), str(a["mode"])
    if mode not in ("DCR", "CRD"):
        raise info.unsupported(f"mode={mode!r}")
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)

    def run(x: torch.Tensor) -> tuple[torch.Tensor]:
        n, c, h, w = x.shape
        t = x.reshape(n, c, h // bs, bs, w // bs, bs).permute(perm)
        return (t.reshape(n, c * bs * bs, h // bs, w // bs),)

    return run

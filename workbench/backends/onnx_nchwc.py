"""Capture onnxruntime's NCHWc-blocked tensors as the kernels wrote them; reorder on first read.

With ``ORT_ENABLE_ALL`` on x86 CPUs, onnxruntime rewrites convolutions into its NCHWc layout
(channels split into blocks of 8 or 16 that sit innermost in memory: ``[N, C/b, H, W, b]``).
Every tensor a capture marks as a graph output then gets a ``ReorderOutput`` kernel back to NCHW,
and on a 500-node 640x640 net those reorders alone take a third of the capture run.

This module edits the capture session's *optimized* graph instead: a ``ReorderOutput`` that only
feeds a graph output is removed, and the blocked tensor it read becomes the graph output. The
store keeps that blocked buffer and :func:`unblock` turns it into the NCHW array the first time
somebody reads the tensor (:meth:`TensorStore.put_deferred`).

Nothing is guessed: the block size is learned on the first run from one *probe* tensor whose
reorder is kept, by finding the block that makes :func:`unblock` reproduce onnxruntime's own
reorder bit for bit, and every blocked output's shape is checked against it. When anything does
not fit (another onnxruntime, another layout) the caller falls back to the plain capture session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper

from .onnx_graph_edit import _names_used

__all__ = ["NCHWC_DOMAIN", "BlockedPlan", "plan_blocked", "unblock", "learn_block", "check_blocked_shape"]

NCHWC_DOMAIN = "com.microsoft.nchwc"
#: block sizes tried when learning the layout (MLAS uses 8 with AVX2, 16 with AVX-512)
BLOCK_CANDIDATES = (4, 8, 16, 32, 64)


@dataclass(frozen=True)
class BlockedPlan:
    """An edited optimized graph whose outputs hold some captured tensors in NCHWc layout.

    ``outputs``: the session's output names, in order; ``source``: captured name -> the output
    that holds it; ``channels``: captured name -> its NCHW channel count, for the blocked ones;
    ``probe``: (NCHW output, blocked output) of one tensor captured both ways.
    """

    model: bytes
    outputs: tuple[str, ...]
    source: Mapping[str, str]
    channels: Mapping[str, int]
    probe: tuple[str, str]


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def plan_blocked(
    optimized: onnx.ModelProto, names: Sequence[str], sizes: Mapping[str, int], elem_types: Mapping[str, int]
) -> BlockedPlan | None:
    """Edit ``optimized`` (onnxruntime's optimized capture graph, changed in place) so that the
    float tensors in ``names`` that reach their graph output through a lone ``ReorderOutput``
    are output in NCHWc layout. ``sizes`` (bytes per name) picks the smallest as the probe.
    None when fewer than two such reorders exist (no NCHWc layout here: nothing to gain).
    """
    g = optimized.graph
    outputs = {o.name for o in g.output}
    wanted = set(names)
    used: set[str] = set()
    for node in g.node:
        used |= _names_used(node)
    removable: dict[str, onnx.NodeProto] = {}  # captured name -> its reorder
    for node in g.node:
        if (node.domain == NCHWC_DOMAIN and node.op_type == "ReorderOutput" and len(node.output) == 1
                and len(node.input) == 1 and _attr(node, "channels_last", 0) == 0 and _attr(node, "channels", 0) > 0):
            out = node.output[0]
            if (out in wanted and out in outputs and out not in used
                    and elem_types.get(out) == onnx.TensorProto.FLOAT):
                removable[out] = node
    if len(removable) < 2:
        return None
    probe_name = min(removable, key=lambda n: (sizes.get(n, 1 << 62), n))
    probe_node = removable.pop(probe_name)
    dropped = {id(n) for n in removable.values()}
    kept_nodes = [n for n in g.node if id(n) not in dropped]
    del g.node[:]
    g.node.extend(kept_nodes)

    source = {name: (removable[name].input[0] if name in removable else name) for name in names}
    channels = {name: _attr(node, "channels", 0) for name, node in removable.items()}
    order: list[str] = []
    seen: set[str] = set()
    for name in names:
        src = source[name]
        if src not in seen:
            seen.add(src)
            order.append(src)
    probe_blocked = probe_node.input[0]
    if probe_blocked not in seen:
        order.append(probe_blocked)
    old = {o.name: o for o in g.output}
    new_outputs = [
        old[n] if n in old and n not in removable else helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
        for n in order
    ]
    new_outputs += [o for o in g.output if o.name not in seen and o.name not in removable and o.name != probe_blocked]
    del g.output[:]
    g.output.extend(new_outputs)
    return BlockedPlan(
        model=optimized.SerializeToString(), outputs=tuple(o.name for o in new_outputs),
        source=source, channels=channels, probe=(probe_name, probe_blocked),
    )


def unblock(blocked: np.ndarray, channels: int, block: int) -> np.ndarray:
    """NCHWc ``[N, Cpad, H, W]`` (memory ``[N, Cpad/b, H, W, b]``) -> contiguous NCHW ``[N, channels, H, W]``."""
    n, cpad, h, w = blocked.shape
    full = np.empty((n, cpad, h, w), dtype=blocked.dtype)
    full.reshape(n, cpad // block, block, h, w)[...] = blocked.reshape(n, cpad // block, h, w, block).transpose(0, 1, 4, 2, 3)
    return full if channels == cpad else np.ascontiguousarray(full[:, :channels])


def check_blocked_shape(blocked: np.ndarray, channels: int, block: int) -> bool:
    """Can ``blocked`` be an NCHWc tensor of ``channels`` channels with this block size?"""
    return (blocked.ndim == 4 and blocked.dtype == np.float32 and blocked.flags.c_contiguous
            and blocked.shape[1] % block == 0 and channels <= blocked.shape[1] < channels + block)


def learn_block(blocked: np.ndarray, nchw: np.ndarray) -> int | None:
    """The one block size for which :func:`unblock` of ``blocked`` equals onnxruntime's own
    reorder ``nchw`` bit for bit; None when none does, or when several do (values too uniform
    to tell, e.g. a constant tensor: learn again on another input)."""
    if blocked.ndim != 4 or nchw.ndim != 4 or nchw.dtype != np.float32:
        return None
    if (blocked.shape[0], *blocked.shape[2:]) != (nchw.shape[0], *nchw.shape[2:]):
        return None
    channels = nchw.shape[1]
    found = [
        block for block in BLOCK_CANDIDATES
        if check_blocked_shape(blocked, channels, block)
        and np.array_equal(unblock(blocked, channels, block).view(np.uint32), nchw.view(np.uint32))
    ]
    return found[0] if len(found) == 1 else None

"""ONNX graph plumbing for the onnxruntime backend: checked loading, specs, node views, the
temporary graph edit that exposes intermediate tensors as graph outputs, and the cut of a graph
into consecutive segments for streaming capture.

Nothing here imports onnxruntime; everything works on ``onnx.ModelProto``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper

from ..capture.records import jsonable
from ..errors import ModelLoadError
from ..tensors import TensorSpec

__all__ = [
    "GraphNode", "TensorType", "Segment", "load_checked", "io_specs", "graph_nodes", "tensor_types",
    "exposed_outputs", "onnx_dtype_name", "plan_segments", "segment_model",
]

@dataclass(frozen=True)
class GraphNode:
    """One top-level node of the graph, in graph (topological) order; ``name`` is unique."""

    index: int
    op_type: str
    domain: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class TensorType:
    """What ONNX shape inference knows about a tensor: element type and (maybe partial) shape.

    ``shape`` is None when the rank is unknown; unknown dims are -1.
    """

    elem_type: int
    shape: tuple[int, ...] | None

    @property
    def dtype(self) -> str:
        return onnx_dtype_name(self.elem_type)


def onnx_dtype_name(elem_type: int) -> str:
    """numpy dtype name of an ONNX element type ('' when numpy has none)."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return ""


# -- loading -----------------------------------------------------------------------------------------
def load_checked(path: str | os.PathLike) -> onnx.ModelProto:
    """Load an ONNX file with its external data and run the ONNX checker.

    Every failure (missing, empty, truncated or garbage file, another format, missing external
    data, an invalid graph) becomes a :class:`ModelLoadError` that says what to do.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"ONNX model file not found: {p}", hint="check the path or re-fetch the model")
    size = p.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{p} is empty (0 bytes)", hint="the download or copy was interrupted; fetch it again")
    with p.open("rb") as f:
        head = f.read(16)
    fmt = _sniff_other_format(head)
    if fmt:
        raise ModelLoadError(
            f"{p} is not an ONNX model: it looks like {fmt}",
            hint="pass the .onnx file itself (a .tflite file needs backend='litert')",
        )
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelLoadError(
            f"{p} cannot be parsed as an ONNX model ({type(exc).__name__}: {_short(exc)})",
            hint="the file is truncated or corrupt: fetch it again (workbench zoo fetch --force)",
        ) from exc
    external = _load_external_data(model, p)
    try:
        # with external data the loaded proto may pass protobuf's 2 GiB limit: check from the file
        onnx.checker.check_model(str(p) if external else model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise ModelLoadError(
            f"{p} is not a valid ONNX model: {_short(exc)}",
            hint="the file is truncated, corrupt or was written by a broken exporter; fetch or export it again",
        ) from exc
    if len(model.graph.node) == 0 or len(model.graph.output) == 0:
        raise ModelLoadError(
            f"{p} has an empty graph ({len(model.graph.node)} nodes, {len(model.graph.output)} outputs)",
            hint="the file is truncated or not a model export; fetch or export it again",
        )
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> bool:
    """Read tensors stored beside the model file, naming the first missing file; True if any."""
    tensors = [t for t in external_data_helper._get_all_tensors(model) if external_data_helper.uses_external_data(t)]
    if not tensors:
        return False
    for t in tensors:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        if not location or not (path.parent / location).is_file():
            raise ModelLoadError(
                f"{path} keeps tensor {t.name!r} in external data {location!r}, which is missing",
                hint=f"put the model's external-data files next to {path.name}",
            )
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as exc:  # out-of-bounds offsets, unsafe paths, short files
        raise ModelLoadError(
            f"{path}: its external data cannot be read ({type(exc).__name__}: {_short(exc)})",
            hint="the external-data file is truncated or does not belong to this model; fetch both again",
        ) from exc
    return True


_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip archive", b"%PDF": "a PDF document",
    b"\x7fELF": "an executable (ELF)", b"\x93NUMPY": "a numpy .npy file",
}


def _sniff_other_format(head: bytes) -> str | None:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if head[4:8] in (b"TFL3", b"TFL2"):
        return "a TFLite flatbuffer"
    return None


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


# -- specs and nodes ---------------------------------------------------------------------------------
def _value_spec(vi: onnx.ValueInfoProto) -> TensorSpec:
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim] if tt.HasField("shape") else None
    dtype = onnx_dtype_name(tt.elem_type) if tt.elem_type else None
    if dims is None:
        return TensorSpec(None, None, "row-major", dtype or None, vi.name)
    return TensorSpec.from_shape(dims, dtype or None, name=vi.name)


def io_specs(model: onnx.ModelProto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Graph inputs (initializers excluded) and outputs as row-major specs (0 = symbolic dim)."""
    inits = {t.name for t in model.graph.initializer} | {t.values.name for t in model.graph.sparse_initializer}
    ins = tuple(_value_spec(v) for v in model.graph.input if v.name not in inits)
    outs = tuple(_value_spec(v) for v in model.graph.output)
    return ins, outs


def _attribute_value(attr: onnx.AttributeProto) -> Any:
    """JSON-safe value of one attribute (tensors as arrays, subgraphs as a short description)."""
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, onnx.GraphProto):
        return {"graph": value.name, "nodes": len(value.node)}
    if isinstance(value, onnx.SparseTensorProto):
        return {"sparse_tensor": list(value.dims)}
    if isinstance(value, onnx.TypeProto):
        return str(value).strip()
    if isinstance(value, list) and value and isinstance(value[0], onnx.TensorProto):
        return [numpy_helper.to_array(v) for v in value]
    if isinstance(value, list) and value and isinstance(value[0], onnx.GraphProto):
        return [{"graph": g.name, "nodes": len(g.node)} for g in value]
    return value


def graph_nodes(model: onnx.ModelProto) -> tuple[GraphNode, ...]:
    """Top-level nodes in graph order with unique names (unnamed nodes get ``<op>_<index>``).

    Renaming happens on ``model`` itself (the caller's in-memory copy) so that onnxruntime's
    profiler reports the same names.
    """
    seen: set[str] = set()
    out: list[GraphNode] = []
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        if name != node.name:
            node.name = name
        seen.add(name)
        attrs = {a.name: jsonable(_attribute_value(a)) for a in node.attribute}
        out.append(GraphNode(i, node.op_type, node.domain, name, tuple(node.input), tuple(node.output), attrs))
    return tuple(out)


def tensor_types(model: onnx.ModelProto) -> dict[str, TensorType]:
    """Element type and shape of every tensor ONNX shape inference can type (may be partial)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # advisory (and impossible past 2 GiB): onnxruntime types what it leaves out
        inferred = model
    out: dict[str, TensorType] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.elem_type:
            continue
        tt = vi.type.tensor_type
        shape = (
            tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            if tt.HasField("shape") else None
        )
        out[vi.name] = TensorType(tt.elem_type, shape)
    for t in g.initializer:
        out[t.name] = TensorType(t.data_type, tuple(t.dims))
    return out


# -- the temporary edit ------------------------------------------------------------------------------
def _output_info(name: str, types: dict[str, TensorType]) -> onnx.ValueInfoProto:
    """A graph output for ``name``: its element type where ONNX inference found one, no shape;
    untyped otherwise (onnxruntime then fills the type in from its kernels)."""
    t = types.get(name)
    if t is not None and onnx_dtype_name(t.elem_type):
        return helper.make_tensor_value_info(name, t.elem_type, None)
    vi = onnx.ValueInfoProto()
    vi.name = name
    return vi


@contextlib.contextmanager
def exposed_outputs(
    model: onnx.ModelProto, names: Sequence[str], types: dict[str, TensorType]
) -> Iterator[onnx.ModelProto]:
    """Temporarily make ``names`` graph outputs of ``model`` (restored on exit).

    Each added output carries the element type ONNX shape inference found, and no shape;
    a tensor inference could not type is added with no type at all, which onnxruntime fills in
    from its own kernels' type inference. Serialize the model inside the ``with`` block.
    """
    g = model.graph
    n_before = len(g.output)
    present = {o.name for o in g.output}
    try:
        for name in names:
            if name in present:
                continue
            g.output.append(_output_info(name, types))
            present.add(name)
        yield model
    finally:
        while len(g.output) > n_before:
            g.output.pop()


# -- segments: the graph cut into consecutive pieces, for streaming capture --------------------------
@dataclass(frozen=True)
class Segment:
    """Consecutive top-level nodes ``[start, stop)`` run as one sub-model.

    ``inputs``: tensors it takes from the graph inputs or from earlier segments; ``outputs``:
    the captured tensors it produces plus those that later segments or the graph outputs need.
    """

    start: int
    stop: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _names_used(node: onnx.NodeProto) -> set[str]:
    """Inputs of a node, including outer-scope names its subgraphs (If/Loop/Scan bodies) read."""
    used = {t for t in node.input if t}
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for sub in graphs:
            for inner in sub.node:
                used |= _names_used(inner)
    return used


def plan_segments(
    model: onnx.ModelProto, captured: Iterable[str], sizes: dict[str, int], max_bytes: int
) -> list[Segment]:
    """Cut the graph so that each segment's captured outputs stay near ``max_bytes``.

    ``sizes`` estimates each tensor's bytes (unknown tensors count 0). A segment holds at least
    one node; cuts never split a node. The union of the segments' outputs covers ``captured``.
    """
    g = model.graph
    captured = set(captured)
    graph_outputs = {o.name for o in g.output}
    uses = [_names_used(n) for n in g.node]
    ranges: list[tuple[int, int]] = []
    start, acc = 0, 0
    for i, node in enumerate(g.node):
        add = sum(sizes.get(t, 0) for t in node.output if t in captured)
        if i > start and acc + add > max_bytes:
            ranges.append((start, i))
            start, acc = i, 0
        acc += add
    ranges.append((start, len(g.node)))
    # names consumed at or after each segment, for the outputs it must pass on
    later: list[set[str]] = [set() for _ in ranges]
    needed = set(graph_outputs)
    for k in range(len(ranges) - 1, -1, -1):
        later[k] = set(needed)
        for i in range(*ranges[k]):
            needed |= uses[i]
    segments = []
    for k, (a, b) in enumerate(ranges):
        produced = [t for i in range(a, b) for t in g.node[i].output if t]
        produced_set = set(produced)
        consumed = set().union(*uses[a:b]) if b > a else set()
        inputs = sorted(consumed - produced_set)
        outputs = [t for t in produced if t in captured or t in later[k]]
        segments.append(Segment(a, b, tuple(inputs), tuple(dict.fromkeys(outputs))))
    return segments


def segment_model(
    model: onnx.ModelProto, seg: Segment, types: dict[str, TensorType]
) -> onnx.ModelProto:
    """A standalone model of one segment: its nodes, the initializers they use, typed inputs.

    Inputs that are not initializers need a type: the original graph input's, or what
    ``types`` says (element type, and the shape with a symbolic name for each unknown dim).
    """
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    graph_inputs = {v.name: v for v in g.input}
    sg = onnx.GraphProto(name=f"{g.name}_nodes_{seg.start}_{seg.stop}")
    sg.node.extend(g.node[seg.start:seg.stop])
    for name in seg.inputs:
        if name in inits:
            sg.initializer.append(inits[name])
        elif name in graph_inputs:
            sg.input.append(graph_inputs[name])
        else:
            t = types.get(name)
            if t is None:
                raise KeyError(name)
            shape = None if t.shape is None else [d if d >= 0 else f"{_safe_dim(name)}_{i}" for i, d in enumerate(t.shape)]
            sg.input.append(helper.make_tensor_value_info(name, t.elem_type, shape))
    sparse = {t.values.name: t for t in g.sparse_initializer}
    sg.sparse_initializer.extend(sparse[n] for n in seg.inputs if n in sparse)
    for name in seg.outputs:
        sg.output.append(_output_info(name, types))
    out = onnx.ModelProto()
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    out.functions.extend(model.functions)
    out.graph.CopyFrom(sg)
    return out


def _safe_dim(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40]

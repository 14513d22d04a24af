"""Load an ONNX model into a reference :class:`~.program.Program`.

    program = load_onnx_program("model.onnx")      # or an onnx.ModelProto
    outputs = execute(program, {"input": torch.from_numpy(x)})

Loading reads and checks the file (failures -> :class:`ModelLoadError`), inlines model-local
functions, sorts the nodes topologically, turns initializers into torch constants (keeping
their dtype) and builds *every* node through the op registry, so an unsupported op,
attribute or element type fails here with :class:`UnsupportedOpError` naming the node —
never later with a wrong answer. Runtime failures of a node (shape mismatches for the given
input) are re-raised as :class:`InputError` naming the node and its input shapes.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ...errors import InputError, ModelLoadError, UnsupportedOpError, WorkbenchError
from ...tensors import TensorSpec
from . import onnx_ops  # noqa: F401  (fills ONNX_OPS)
from .onnx_ops._dtypes import TORCH_TO_NUMPY, onnx_type_name, torch_dtype
from .program import Node, NodeInfo, OpFn, Program
from .registry import ONNX_OPS

__all__ = ["load_onnx_program", "read_onnx_model"]

_DEFAULT_DOMAINS = ("", "ai.onnx")
#: exceptions torch / our builders raise for inputs that do not fit a node
_RUNTIME_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError)


def read_onnx_model(source: str | os.PathLike | onnx.ModelProto, *, check: bool = True) -> onnx.ModelProto:
    """Read (and check) an ONNX model; every failure is a :class:`ModelLoadError`."""
    if isinstance(source, onnx.ModelProto):
        model = source
        where = f"model {model.graph.name!r}"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ModelLoadError(f"ONNX model file not found: {path}", hint="check the path or the zoo id")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf DecodeError, truncated files, bad external data...
            raise ModelLoadError(
                f"{path} is not a readable ONNX model: {type(exc).__name__}: {exc}",
                hint="the file may be truncated or not ONNX; fetch it again (workbench zoo fetch)",
            ) from exc
    if not model.graph.node and not model.graph.output:
        raise ModelLoadError(f"{where} has an empty graph", hint="is this really an ONNX model file?")
    if check:
        try:
            onnx.checker.check_model(model)
        except Exception as exc:
            raise ModelLoadError(
                f"{where} fails the ONNX checker: {exc}",
                hint="the model is malformed; re-export it, or inspect it with onnx.checker",
            ) from exc
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelLoadError(f"{where}: cannot inline its local functions: {exc}") from exc
    return model


def _default_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in _DEFAULT_DOMAINS:
            return int(o.version)
    return 1  # IR versions without opset_import predate opsets


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX element type, from declarations and (when it works) shape inference."""
    types: dict[str, int] = {}

    def add(values: Iterable[onnx.ValueInfoProto]) -> None:
        for v in values:
            if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
                types.setdefault(v.name, int(v.type.tensor_type.elem_type))

    g = model.graph
    add(g.input)
    add(g.output)
    add(g.value_info)
    for init in g.initializer:
        types.setdefault(init.name, int(init.data_type))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        add(inferred.graph.value_info)
        add(inferred.graph.output)
    except Exception:  # inference is a help for early errors, not a requirement
        pass
    return types


def _attribute(a: onnx.AttributeProto) -> Any:
    if a.type == onnx.AttributeProto.GRAPH:
        return f"<graph {a.g.name}>"
    if a.type == onnx.AttributeProto.GRAPHS:
        return [f"<graph {g.name}>" for g in a.graphs]
    v = onnx.helper.get_attribute_value(a)
    return _plain(v)


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, (onnx.SparseTensorProto, onnx.TypeProto)):
        return f"<{type(v).__name__}>"
    return v


def _spec(v: onnx.ValueInfoProto) -> TensorSpec:
    tt = v.type.tensor_type
    dt = torch_dtype(tt.elem_type)
    dtype = None if dt is None else TORCH_TO_NUMPY[dt].name
    if not tt.HasField("shape"):
        return TensorSpec(dims=None, dtype=dtype, name=v.name)
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim]
    return TensorSpec.from_shape(dims, dtype=dtype, name=v.name)


def _toposort(nodes: Sequence[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Kahn's algorithm, keeping the file's order among ready nodes."""
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                producer[o] = i
    waiting = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        deps = {producer[t] for t in n.input if t and t not in available and t in producer}
        missing = [t for t in n.input if t and t not in available and t not in producer]
        if missing:
            raise ModelLoadError(
                f"node {n.name or n.op_type!r} ({n.op_type}) reads tensor(s) {missing} that nothing produces",
                hint="the graph is malformed; re-export the model",
            )
        waiting[i] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users.get(i, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if i not in set(order)]
        raise ModelLoadError(f"the graph has a cycle through nodes {stuck[:5]}", hint="re-export the model")
    return [nodes[i] for i in order]


def _guard(info: NodeInfo, fn: OpFn) -> OpFn:
    """Report a node that fails at run time as an InputError naming it and its input shapes."""

    def run(*args: torch.Tensor | None) -> Sequence[torch.Tensor]:
        try:
            return fn(*args)
        except WorkbenchError:
            raise
        except _RUNTIME_ERRORS as exc:
            shapes = ", ".join("None" if a is None else f"{tuple(a.shape)} {str(a.dtype).replace('torch.', '')}"
                               for a in args)
            raise InputError(
                f"reference interpreter: op {info.op_type} (node {info.name!r}) failed on inputs [{shapes}]: {exc}",
                hint="check the input's shape and dtype against the model's inputs; if they fit, "
                "run the model with backend='onnxruntime' and report the node",
            ) from exc

    return run


def _check_types(info: NodeInfo, types: dict[str, int]) -> None:
    for t in (*info.inputs, *info.outputs):
        if t and t in types and torch_dtype(types[t]) is None:
            raise info.unsupported(
                f"tensor {t!r} has element type {onnx_type_name(types[t])}, which the interpreter "
                "does not represent (supported: float16/32/64, int8/16/32/64, uint8, bool)"
            )


def _type_of(v: onnx.ValueInfoProto) -> str:
    return onnx_type_name(v.type.tensor_type.elem_type)


def _unsupported(what: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"reference interpreter: {what}", hint="run this model with backend='onnxruntime'")


def _refuse_unknown_ops(nodes: Sequence[onnx.NodeProto]) -> None:
    """Fail on the first node whose op is not registered, listing every such op of the model."""
    def known(n: onnx.NodeProto) -> bool:
        return n.domain in _DEFAULT_DOMAINS and n.op_type in ONNX_OPS

    bad = [(i, n) for i, n in enumerate(nodes) if not known(n)]
    if not bad:
        return
    all_bad = sorted({n.op_type if n.domain in _DEFAULT_DOMAINS else f"{n.domain}.{n.op_type}" for _, n in bad})
    i, n = bad[0]
    name = n.name or f"{n.op_type}_{i}"
    what = ("this op is not implemented by the reference interpreter" if n.domain in _DEFAULT_DOMAINS
            else f"domain {n.domain!r} (only the default ONNX domain is implemented)")
    raise UnsupportedOpError(
        f"reference interpreter: onnx op {n.op_type} (node {name!r}): {what}; "
        f"unsupported ops in this model: {', '.join(all_bad)}",
        hint="run this model with backend='onnxruntime'; gradient methods need the reference backend",
    )


def load_onnx_program(source: str | os.PathLike | onnx.ModelProto, *, check: bool = True) -> Program:
    """Read, check and build an ONNX model; see the module docstring."""
    model = read_onnx_model(source, check=check)
    g = model.graph
    opset = _default_opset(model)
    types = _elem_types(model)
    if g.sparse_initializer:
        raise _unsupported("sparse initializers are not supported")

    constants: dict[str, torch.Tensor] = {}
    for init in g.initializer:
        if torch_dtype(init.data_type) is None:
            continue  # its consumer fails below with the node's name
        try:
            arr = numpy_helper.to_array(init)
        except Exception as exc:
            raise ModelLoadError(f"initializer {init.name!r} cannot be read: {exc}") from exc
        constants[init.name] = torch.from_numpy(np.array(arr, copy=True))
    init_names = {i.name for i in g.initializer}
    graph_inputs = [v for v in g.input if v.name not in init_names]
    ordered = _toposort(list(g.node), init_names | {v.name for v in graph_inputs})
    _refuse_unknown_ops(ordered)
    for v in graph_inputs:
        if not v.type.HasField("tensor_type"):
            raise _unsupported(f"graph input {v.name!r} is not a tensor (sequence / map / optional)")
        if torch_dtype(v.type.tensor_type.elem_type) is None:
            raise _unsupported(f"graph input {v.name!r} has element type {_type_of(v)}")

    known: dict[str, torch.Tensor] = dict(constants)  # constants the builders may read
    nodes: list[Node] = []
    for index, n in enumerate(ordered):
        info = NodeInfo(
            index=index,
            op_type=n.op_type,
            name=n.name or f"{n.op_type}_{index}",
            inputs=tuple(n.input),
            outputs=tuple(n.output),
            attributes={a.name: _attribute(a) for a in n.attribute},
            fmt="onnx",
            opset=opset,
            constants=known,
        )
        builder = ONNX_OPS[n.op_type]
        _check_types(info, types)
        try:
            fn = builder(info)
        except WorkbenchError:
            raise
        except Exception as exc:  # a malformed attribute value
            raise info.unsupported(f"cannot build it: {type(exc).__name__}: {exc}") from exc
        if n.op_type == "Constant":
            (value,) = fn()
            known[n.output[0]] = value
        nodes.append(Node(info, _guard(info, fn)))

    outputs = tuple(_spec(v) for v in g.output)
    for v in g.output:
        if v.type.HasField("tensor_type") and torch_dtype(v.type.tensor_type.elem_type) is None:
            raise _unsupported(f"graph output {v.name!r} has element type {_type_of(v)}")
    return Program(
        fmt="onnx",
        inputs=tuple(_spec(v) for v in graph_inputs),
        outputs=outputs,
        constants=constants,
        nodes=nodes,
    )

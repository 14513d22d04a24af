"""Read and verify a ``.tflite`` file in plain Python, without the TFLite runtime.

A ``.tflite`` file is a FlatBuffer (schema ``tflite``, file identifier ``"TFL3"``). This module
parses it with the schema module that ships with the runtime (``ai_edge_litert.
schema_py_generated``), checks it *before* any byte reaches the C++ interpreter (identifier,
schema version, buffer offsets and sizes inside the file, tensor / operator / subgraph indices
in range, known opcodes, sane shapes, constant data that fits its tensor) and exposes the
result as a plain-Python :class:`TFLiteGraph`. Anything wrong raises :class:`ModelLoadError`.

    >>> g = read_tflite(zoo.load("blazeface-short").path)          # doctest: +SKIP
    >>> g.operators[2].op, g.operators[2].options["padding"]      # doctest: +SKIP
    ('CONV_2D', 'SAME')

Tensor *keys* (:attr:`TFLiteTensor.key`) are the tensor names made unique (``name#index`` when
a name repeats or is empty); backends and the reference interpreter use keys as tensor ids.

:func:`build_tflite` does the reverse for tests and teaching: it packs tensors and operators
into a valid ``.tflite`` (no converter needed), e.g. a one-op model to check a kernel.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..capture import Quantization
from ..errors import ModelLoadError

__all__ = [
    "TFLiteTensor", "TFLiteOperator", "TFLiteGraph", "read_tflite", "parse_tflite", "schema",
    "build_tflite", "NUMPY_DTYPES", "MAX_TENSOR_BYTES",
]

#: the schema version every current TFLite runtime reads
SCHEMA_VERSION = 3
#: a single tensor larger than this is treated as hostile (the runtime would try to allocate it)
MAX_TENSOR_BYTES = 1 << 32
#: bound on tables walked (subgraphs x (tensors + operators)); guards the Python parser
MAX_TABLES = 2_000_000

_SCHEMA_MODULES = (
    "ai_edge_litert.schema_py_generated",
    "tflite_runtime.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
    "tflite",
)

#: TFLite tensor type name (lower case) -> numpy dtype, for the types numpy can hold
NUMPY_DTYPES: dict[str, np.dtype] = {
    n: np.dtype(n)
    for n in ("float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
              "uint32", "uint64", "bool", "complex64", "complex128")
}

_FIX = "re-download or re-export the model; check its sha256 against the model card"


def schema() -> ModuleType:
    """The FlatBuffers schema module (object API) of the installed TFLite runtime."""
    global _SCHEMA
    if _SCHEMA is None:
        for name in _SCHEMA_MODULES:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(mod, "ModelT") and hasattr(mod, "BuiltinOperator"):
                _SCHEMA = mod
                break
        else:
            raise ModelLoadError(
                "cannot read .tflite files: no TFLite FlatBuffers schema module found "
                f"(tried {', '.join(_SCHEMA_MODULES)})",
                hint="pip install ai-edge-litert",
            )
    return _SCHEMA


_SCHEMA: ModuleType | None = None


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    s1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# -- the plain-Python graph ------------------------------------------------------------------------


@dataclass(frozen=True)
class TFLiteTensor:
    """One tensor of the primary subgraph.

    ``shape`` is the stored shape; ``shape_signature`` has ``-1`` for dynamic dims. ``dtype`` is
    the TFLite type in lower case (``"float32"``, ``"int8"``, ``"int4"``...). ``data`` is the
    constant buffer as a read-only numpy array of ``shape`` (None for activations and for types
    numpy cannot hold).
    """

    index: int
    name: str
    key: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    quantization: Quantization | None = None
    data: np.ndarray | None = None
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def is_quantized(self) -> bool:
        """True for integer tensors carrying affine quantization (int8, uint8, int16...)."""
        return self.quantization is not None and self.dtype.startswith(("int", "uint"))


@dataclass(frozen=True)
class TFLiteOperator:
    """One operator in execution order: builtin name, tensor indices (-1 = omitted optional
    input) and its builtin options as snake_case fields (enums by name: ``padding="SAME"``,
    ``fused_activation_function="RELU6"``)."""

    index: int
    op: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    custom_code: str | None = None


@dataclass(frozen=True)
class TFLiteGraph:
    """The primary subgraph of a verified ``.tflite`` file (other subgraphs are verified and
    counted, not exposed)."""

    sha256: str
    size_bytes: int
    version: int
    description: str
    tensors: tuple[TFLiteTensor, ...]
    operators: tuple[TFLiteOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    num_subgraphs: int = 1

    def tensor(self, key: int | str) -> TFLiteTensor:
        """A tensor by index or key."""
        if isinstance(key, (int, np.integer)):
            return self.tensors[int(key)]
        idx = self._index_by_key().get(key)
        if idx is None:
            raise KeyError(f"no tensor with key {key!r} in this model")
        return self.tensors[idx]

    def _index_by_key(self) -> dict[str, int]:
        cache = self.__dict__.get("_keys")
        if cache is None:
            cache = {t.key: t.index for t in self.tensors}
            object.__setattr__(self, "_keys", cache)
        return cache

    def key(self, index: int) -> str:
        """Tensor key of an index ('' for -1, an omitted optional input)."""
        return "" if index < 0 else self.tensors[index].key

    @property
    def input_keys(self) -> tuple[str, ...]:
        return tuple(self.tensors[i].key for i in self.inputs)

    @property
    def output_keys(self) -> tuple[str, ...]:
        return tuple(self.tensors[i].key for i in self.outputs)

    @property
    def op_types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts


# -- parsing and verification --------------------------------------------------------------------


_GRAPHS: dict[str, TFLiteGraph] = {}


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Read, verify and describe a ``.tflite`` file (cached by sha256)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {p}: {exc}", hint="check the path and permissions") from exc
    return parse_tflite(data, source=str(p))


def parse_tflite(data: bytes, source: str = "<bytes>") -> TFLiteGraph:
    """Verify and describe a ``.tflite`` file's bytes; raises :class:`ModelLoadError`."""
    data = bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    hit = _GRAPHS.get(digest)
    if hit is not None:
        return hit
    _check_header(data, source)
    s = schema()
    try:
        _check_table_counts(s, data, source)
        model = s.ModelT.InitFromPackedBuf(data, 0)
        graph = _describe(s, model, data, digest, source)
    except ModelLoadError:
        raise
    except Exception as exc:  # any parser failure on a damaged buffer
        raise ModelLoadError(
            f"{source} is corrupt or truncated: parsing its TFLite FlatBuffer failed "
            f"({type(exc).__name__}: {exc})",
            hint=_FIX,
        ) from exc
    if len(_GRAPHS) > 32:
        _GRAPHS.clear()
    _GRAPHS[digest] = graph
    return graph


def _bad(source: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{source} is not a valid TFLite model: {what}", hint=_FIX)


def _check_header(data: bytes, source: str) -> None:
    if len(data) < 16:
        raise ModelLoadError(
            f"{source} is not a TFLite model: {len(data)} bytes is too short "
            "(empty or truncated file)", hint=_FIX,
        )
    if data[4:8] != b"TFL3":
        what = "an ONNX/protobuf file?" if data[:1] == b"\x08" else "wrong format or corrupt"
        raise ModelLoadError(
            f"{source} is not a TFLite model: its FlatBuffer file identifier is "
            f"{bytes(data[4:8])!r}, expected b'TFL3' ({what})",
            hint="pass a .tflite file (TFLite FlatBuffer); ONNX models load with backend='onnxruntime'",
        )
    root = int.from_bytes(data[:4], "little")
    if not 8 <= root <= len(data) - 4:
        raise ModelLoadError(f"{source} is truncated or corrupt: root table offset {root} lies "
                             f"outside the {len(data)}-byte file", hint=_FIX)


def _check_table_counts(s: ModuleType, data: bytes, source: str) -> None:
    """Bound the tables the object API would walk, so a hostile file cannot make it spin."""
    m = s.Model.GetRootAs(data, 0)
    n_sub = m.SubgraphsLength()
    if n_sub < 1:
        raise _bad(source, "it has no subgraph")
    total = m.BuffersLength() + m.OperatorCodesLength() + m.SignatureDefsLength()
    for i in range(n_sub):
        sg = m.Subgraphs(i)
        total += sg.TensorsLength() + sg.OperatorsLength()
        if total > MAX_TABLES:
            raise _bad(source, f"more than {MAX_TABLES} tables (hostile or corrupt counts)")


def _ints(v: Any) -> tuple[int, ...]:
    """A FlatBuffers int vector (None, list or numpy array) as a tuple of ints."""
    if v is None:
        return ()
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def _enum_fields(s: ModuleType) -> dict[str, dict[int, str]]:
    """snake_case option field -> enum value names, for fields whose value is an enum."""
    dtypes = _enum_names(s.TensorType)
    table = {
        "padding": _enum_names(s.Padding),
        "fused_activation_function": _enum_names(s.ActivationFunctionType),
        "weights_format": _enum_names(s.FullyConnectedOptionsWeightsFormat),
        "mode": _enum_names(s.MirrorPadMode),
    }
    for f in ("in_data_type", "out_data_type", "output_type", "out_type", "idx_out_type",
              "quantized_bias_type", "index_out_type"):
        table[f] = dtypes
    return table


def options_dict(s: ModuleType, obj: Any) -> dict[str, Any]:
    """Builtin options object -> {snake_case field: python value}, enums by name."""
    if obj is None:
        return {}
    enums = _enum_fields(s)
    out: dict[str, Any] = {}
    for k, v in vars(obj).items():
        name = _snake(k)
        if isinstance(v, np.ndarray):
            v = [x.item() for x in v.reshape(-1)]
        elif isinstance(v, list):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, (bytes, bytearray)):
            v = _text(v)
        if name in enums and isinstance(v, int):
            v = enums[name].get(v, v)
            if isinstance(v, str) and name.endswith("type"):
                v = v.lower()
        out[name] = v
    return out


def _describe(s: ModuleType, model: Any, data: bytes, digest: str, source: str) -> TFLiteGraph:
    size = len(data)
    if model.version != SCHEMA_VERSION:
        raise _bad(source, f"schema version {model.version}, this runtime reads version {SCHEMA_VERSION}")
    buffers = model.buffers or []
    subgraphs = model.subgraphs or []
    codes = model.operatorCodes or []
    if not subgraphs:
        raise _bad(source, "it has no subgraph")
    if not buffers:
        raise _bad(source, "it has no buffer table (buffer 0 must exist)")
    op_names = _enum_names(s.BuiltinOperator)
    dtype_names = {k: v.lower() for k, v in _enum_names(s.TensorType).items()}

    # buffers: inline data lies inside the file by construction; external data must too
    buf_bytes: list[bytes | None] = []
    for bi, b in enumerate(buffers):
        off, n = int(getattr(b, "offset", 0) or 0), int(getattr(b, "size", 0) or 0)
        if off > 1:
            if n < 0 or off + n > size:
                raise _bad(source, f"buffer {bi} points at bytes {off}..{off + n}, outside the "
                                   f"{size}-byte file (truncated file or hostile offsets)")
            buf_bytes.append(data[off:off + n])
        elif b.data is not None and len(b.data):
            buf_bytes.append(np.asarray(b.data, dtype=np.uint8).tobytes())
        else:
            buf_bytes.append(None)
    for eb in getattr(model, "externalBuffers", None) or []:
        off, n = int(eb.offset or 0), int(eb.length or 0)
        if off < 0 or n < 0 or off + n > size:
            raise _bad(source, f"external buffer {eb.id} points at bytes {off}..{off + n}, "
                               f"outside the {size}-byte file")

    # opcodes
    op_of_code: list[tuple[str, int, str | None]] = []
    for ci, c in enumerate(codes):
        code = max(int(c.builtinCode or 0), int(c.deprecatedBuiltinCode or 0))
        name = op_names.get(code)
        if name is None:
            raise _bad(source, f"operator code {ci} is builtin op #{code}, unknown to this runtime "
                               "(a newer model format, or a corrupt file)")
        op_of_code.append((name, int(c.version or 1), _text(c.customCode) or None))

    for mi in _ints(getattr(model, "metadataBuffer", None)):
        if not 0 <= mi < len(buffers):
            raise _bad(source, f"metadata buffer index {mi} out of range (0..{len(buffers) - 1})")
    for md in getattr(model, "metadata", None) or []:
        if not 0 <= int(md.buffer) < len(buffers):
            raise _bad(source, f"metadata {_text(md.name)!r} names buffer {md.buffer}, out of range")

    primary: tuple[list[TFLiteTensor], list[TFLiteOperator], tuple[int, ...], tuple[int, ...]] | None = None
    for si, sg in enumerate(subgraphs):
        where = f"subgraph {si}"
        tensors_t = sg.tensors or []
        nt = len(tensors_t)
        names = [_text(t.name) for t in tensors_t]
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        tensors: list[TFLiteTensor] = []
        for ti, t in enumerate(tensors_t):
            tw = f"{where} tensor {ti} ({names[ti]!r})"
            shape = _ints(t.shape) if t.shape is not None else ()
            sig = _ints(t.shapeSignature) if t.shapeSignature is not None else shape
            if any(d < 0 or d > 1 << 31 for d in shape) or any(d < -1 for d in sig):
                raise _bad(source, f"{tw} has an invalid shape {shape}")
            dtype = dtype_names.get(int(t.type))
            if dtype is None:
                raise _bad(source, f"{tw} has unknown type #{t.type}")
            np_dtype = NUMPY_DTYPES.get(dtype)
            n_elem = int(np.prod(shape, dtype=np.float64)) if shape else 1
            if n_elem * (np_dtype.itemsize if np_dtype is not None else 1) > MAX_TENSOR_BYTES:
                raise _bad(source, f"{tw} would need {n_elem} elements (shape {shape}): hostile or corrupt")
            if not 0 <= int(t.buffer) < len(buffers):
                raise _bad(source, f"{tw} names buffer {t.buffer}, out of range (0..{len(buffers) - 1})")
            raw = buf_bytes[int(t.buffer)]
            array = None
            if raw is not None and np_dtype is not None:
                if len(raw) != n_elem * np_dtype.itemsize:
                    raise _bad(source, f"{tw}: its constant buffer holds {len(raw)} bytes, shape {shape} "
                                       f"of {dtype} needs {n_elem * np_dtype.itemsize}")
                array = np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()
                array.flags.writeable = False
            quant = _quantization(t.quantization, shape, tw, source)
            key = names[ti] if names[ti] and counts[names[ti]] == 1 else f"{names[ti] or 'tensor'}#{ti}"
            tensors.append(TFLiteTensor(ti, names[ti], key, shape, sig, dtype, quant, array,
                                        bool(t.isVariable)))

        ins = _check_indices(sg.inputs, nt, f"{where} graph input", False, source)
        outs = _check_indices(sg.outputs, nt, f"{where} graph output", False, source)
        ops: list[TFLiteOperator] = []
        for oi, o in enumerate(sg.operators or []):
            if not 0 <= int(o.opcodeIndex) < len(codes):
                raise _bad(source, f"{where} operator {oi} uses opcode {o.opcodeIndex}, out of range "
                                   f"(0..{len(codes) - 1})")
            name, version, custom = op_of_code[int(o.opcodeIndex)]
            o_in = _check_indices(o.inputs, nt, f"{where} operator {oi} ({name}) input", True, source)
            o_out = _check_indices(o.outputs, nt, f"{where} operator {oi} ({name}) output", True, source)
            _check_indices(o.intermediates, nt, f"{where} operator {oi} ({name}) intermediate", True, source)
            opts = options_dict(s, o.builtinOptions)
            opts.update(options_dict(s, getattr(o, "builtinOptions2", None)))
            for k, v in opts.items():
                if k.endswith("subgraph_index") and isinstance(v, int) and not 0 <= v < len(subgraphs):
                    raise _bad(source, f"{where} operator {oi} ({name}): {k}={v} names no subgraph")
            lo_off = int(getattr(o, "largeCustomOptionsOffset", 0) or 0)
            lo_n = int(getattr(o, "largeCustomOptionsSize", 0) or 0)
            if lo_off > 1 and lo_off + lo_n > size:
                raise _bad(source, f"{where} operator {oi}: custom options lie outside the file")
            ops.append(TFLiteOperator(oi, name, version, o_in, o_out, opts, custom))
        if si == 0:
            primary = (tensors, ops, ins, outs)

    for sd in getattr(model, "signatureDefs", None) or []:
        sub = int(sd.subgraphIndex or 0)
        if not 0 <= sub < len(subgraphs):
            raise _bad(source, f"signature {_text(sd.signatureKey)!r} names subgraph {sub}, out of range")
        nt = len(subgraphs[sub].tensors or [])
        for tm in list(sd.inputs or []) + list(sd.outputs or []):
            if not 0 <= int(tm.tensorIndex) < nt:
                raise _bad(source, f"signature {_text(sd.signatureKey)!r} names tensor {tm.tensorIndex}, "
                                   "out of range")

    assert primary is not None
    tensors, ops, ins, outs = primary
    if not ins or not outs:
        raise _bad(source, "its main subgraph declares no inputs or no outputs")
    return TFLiteGraph(digest, size, int(model.version), _text(model.description), tuple(tensors),
                       tuple(ops), ins, outs, len(subgraphs))


def _check_indices(idx: Iterable[int] | None, n: int, what: str, allow_omitted: bool, source: str) -> tuple[int, ...]:
    """Tensor indices as ints, each in [0, n) (or -1 for an omitted optional input)."""
    out = _ints(idx)
    lo = -1 if allow_omitted else 0
    for i in out:
        if not lo <= i < n:
            raise _bad(source, f"{what} names tensor {i}, out of range (0..{n - 1})")
    return out


def _quantization(q: Any, shape: tuple[int, ...], where: str, source: str) -> Quantization | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = tuple(float(x) for x in np.asarray(q.scale).reshape(-1))
    zp = tuple(int(x) for x in np.asarray(q.zeroPoint).reshape(-1)) if q.zeroPoint is not None else ()
    if not zp:
        zp = (0,) * len(scale)
    axis = int(q.quantizedDimension or 0)
    if len(zp) != len(scale):
        raise _bad(source, f"{where}: {len(scale)} quantization scales but {len(zp)} zero points")
    if len(scale) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scale)):
        raise _bad(source, f"{where}: {len(scale)} per-channel scales do not fit axis {axis} of shape {shape}")
    return Quantization(scale, zp, axis)


# -- writing (tests, teaching) ------------------------------------------------------------------

#: op name -> its BuiltinOptions union member where the name does not follow CamelCase(op)+"Options"
_OPTIONS_OF = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions", "REDUCE_PROD": "ReducerOptions", "PADV2": "PadV2Options",
    "SPLIT_V": "SplitVOptions", "RELU": None, "RELU6": None, "RELU_N1_TO_1": None,
    "LOGISTIC": None, "TANH": None, "PRELU": None,
}


def build_tflite(
    tensors: Sequence[Mapping[str, Any]],
    operators: Sequence[Mapping[str, Any]],
    inputs: Sequence[int],
    outputs: Sequence[int],
) -> bytes:
    """Pack a one-subgraph model into ``.tflite`` bytes (no converter needed).

    ``tensors``: dicts with ``name``, ``shape``, ``dtype`` (``"float32"``, ``"int8"``...),
    optional ``data`` (numpy array: a constant) and ``quantization`` (:class:`Quantization`).
    ``operators``: dicts with ``op`` (``"CONV_2D"``), ``inputs``/``outputs`` (tensor indices,
    -1 = omitted), optional ``options`` (snake_case fields as :class:`TFLiteOperator` has them,
    enums by name) and ``version``.
    """
    import flatbuffers

    s = schema()
    dtype_codes = {v.lower(): k for k, v in _enum_names(s.TensorType).items()}
    op_codes = {v: k for k, v in _enum_names(s.BuiltinOperator).items()}
    enums = {f: {v: k for k, v in table.items()} for f, table in _enum_fields(s).items()}
    model = s.ModelT()
    model.version = SCHEMA_VERSION
    model.description = "built by workbench.backends.tflite_model.build_tflite"
    empty = s.BufferT()
    model.buffers = [empty]
    sg = s.SubGraphT()
    sg.tensors = []
    for spec in tensors:
        t = s.TensorT()
        t.name = str(spec["name"])
        t.shape = [int(d) for d in spec["shape"]]
        t.type = dtype_codes[str(spec.get("dtype", "float32"))]
        t.buffer = 0
        if spec.get("data") is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(spec["data"]).tobytes(), dtype=np.uint8)
            t.buffer = len(model.buffers)
            model.buffers.append(b)
        q = spec.get("quantization")
        if q is not None:
            qp = s.QuantizationParametersT()
            qp.scale = [float(x) for x in q.scale]
            qp.zeroPoint = [int(x) for x in q.zero_point]
            qp.quantizedDimension = int(q.axis)
            t.quantization = qp
        sg.tensors.append(t)
    codes: dict[tuple[str, int], int] = {}
    model.operatorCodes = []
    sg.operators = []
    for spec in operators:
        name, version = str(spec["op"]), int(spec.get("version", 1))
        if (name, version) not in codes:
            c = s.OperatorCodeT()
            c.builtinCode = op_codes[name]
            c.deprecatedBuiltinCode = min(op_codes[name], 127)
            c.version = version
            codes[(name, version)] = len(model.operatorCodes)
            model.operatorCodes.append(c)
        o = s.OperatorT()
        o.opcodeIndex = codes[(name, version)]
        o.inputs = [int(i) for i in spec["inputs"]]
        o.outputs = [int(i) for i in spec["outputs"]]
        opts = dict(spec.get("options") or {})
        kind = spec.get("options_type", _OPTIONS_OF.get(name, "".join(
            p.capitalize() for p in name.split("_")) + "Options"))
        if opts or (kind and hasattr(s, kind + "T")):
            if not kind:
                raise ValueError(f"{name} takes no builtin options")
            obj = getattr(s, kind + "T")()
            for k, v in opts.items():
                if k in enums and isinstance(v, str):
                    v = enums[k][v] if v in enums[k] else enums[k][v.upper()]
                attr = _camel(k)
                if not hasattr(obj, attr):
                    raise ValueError(f"{kind} has no field {k!r}")
                setattr(obj, attr, v)
            o.builtinOptionsType = getattr(s.BuiltinOptions, kind)
            o.builtinOptions = obj
        sg.operators.append(o)
    sg.inputs = [int(i) for i in inputs]
    sg.outputs = [int(i) for i in outputs]
    sg.name = "main"
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())

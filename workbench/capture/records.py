"""Records of one inference: what each op did, and the graph for drawing.

These are plain frozen dataclasses with JSON round-trips (no pickle anywhere), produced by every
backend's ``trace()`` and kept in an :class:`~workbench.capture.trace.InferenceRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LayerRecord", "Quantization", "GraphEdge", "jsonable", "DEQUANTIZED_SUFFIX"]

#: a quantized tensor is stored raw under its name and dequantized (float32) under name + this
DEQUANTIZED_SUFFIX = ":dequantized"


def jsonable(value: Any) -> Any:
    """Turn attribute values (numpy scalars/arrays, bytes, tuples) into JSON-safe values.

    Arrays larger than 64 elements become a short description: records carry attributes for
    reading, the tensors themselves live in the TensorStore.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 64:
            return jsonable(value.tolist())
        return {"array": list(value.shape), "dtype": value.dtype.name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``.

    ``scale`` and ``zero_point`` have one entry per channel along ``axis`` (or one entry).
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    def _broadcast(self, ndim: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero_point) as arrays of ``dtype`` that broadcast along ``axis`` of an
        ``ndim``-dimensional tensor."""
        s = np.asarray(self.scale, dtype=dtype)
        z = np.asarray(self.zero_point, dtype=dtype)
        if s.size > 1:
            shape = [1] * ndim
            shape[self.axis] = s.size
            s, z = s.reshape(shape), z.reshape(shape)
        return s, z

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        s, z = self._broadcast(q.ndim, np.float32)
        return (q.astype(np.float32) - z) * s

    def quantize(self, real: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
        """Real values -> integers of ``dtype``: ``round(real / scale) + zero_point``, rounded half
        away from zero as TFLite's QUANTIZE does, clipped to the dtype's range."""
        dt = np.dtype(dtype)
        if dt.kind not in "iu":
            raise ValueError(f"cannot quantize to {dt}: an integer dtype is needed")
        x = np.asarray(real, dtype=np.float64)
        s, z = self._broadcast(x.ndim, np.float64)
        v = x / s
        info = np.iinfo(dt)
        return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z, info.min, info.max).astype(dt)

    def to_json(self) -> dict[str, Any]:
        return {"scale": list(self.scale), "zero_point": list(self.zero_point), "axis": self.axis}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Quantization":
        return cls(tuple(d["scale"]), tuple(d["zero_point"]), int(d.get("axis", 0)))


@dataclass(frozen=True)
class LayerRecord:
    """One executed op.

    ``index`` is the execution order; ``inputs``/``outputs`` are tensor names (keys of the
    TensorStore when captured); ``output_shapes``/``output_dtypes`` describe each output;
    ``quantization`` maps tensor names to their :class:`Quantization`; ``time_ms`` is the op's
    own time when the backend can tell (onnxruntime's profiler, LiteRT's op profiling), else None.
    """

    index: int
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict)
    output_shapes: tuple[tuple[int, ...], ...] = ()
    output_dtypes: tuple[str, ...] = ()
    quantization: dict[str, Quantization] = field(default_factory=dict)
    time_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        # built field by field: dataclasses.asdict deep-copies every attribute (slow on big graphs)
        return {
            "index": self.index, "op_type": self.op_type, "name": self.name,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "attributes": jsonable(self.attributes),
            "output_shapes": [list(s) for s in self.output_shapes],
            "output_dtypes": list(self.output_dtypes),
            "quantization": {k: q.to_json() for k, q in self.quantization.items()},
            "time_ms": self.time_ms,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "LayerRecord":
        return cls(
            index=int(d["index"]),
            op_type=str(d["op_type"]),
            name=str(d["name"]),
            inputs=tuple(d.get("inputs", ())),
            outputs=tuple(d.get("outputs", ())),
            attributes=dict(d.get("attributes", {})),
            output_shapes=tuple(tuple(int(x) for x in s) for s in d.get("output_shapes", ())),
            output_dtypes=tuple(d.get("output_dtypes", ())),
            quantization={k: Quantization.from_json(v) for k, v in d.get("quantization", {}).items()},
            time_ms=d.get("time_ms"),
        )


@dataclass(frozen=True)
class GraphEdge:
    """A tensor flowing from one op (``src`` index, -1 = graph input) to another (``dst``)."""

    src: int
    dst: int
    tensor: str

"""Compare two inference records tensor by tensor (backend parity, deployed vs faithful).

    rows = compare_records(reference_record, onnxruntime_record)
    first_divergent_layer(reference_record, onnxruntime_record, rtol=1e-4)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .records import DEQUANTIZED_SUFFIX
from .trace import InferenceRecord

__all__ = ["TensorDiff", "compare_records", "first_divergent_layer"]


@dataclass(frozen=True)
class TensorDiff:
    """Difference of one tensor present in both records.

    ``max_rel`` is the max abs difference relative to the larger of the two tensors' max
    magnitudes (so near-zero elements do not blow it up); ``layer`` is the producing op's index
    in record ``a`` (-1 for graph inputs). For a quantized tensor both are in real units (its
    dequantized values) and ``lsb`` is the max difference of the raw integers, in quantization
    steps (None for other tensors).
    """

    tensor: str
    layer: int
    op_type: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    lsb: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {"layer": self.layer, "op_type": self.op_type, "tensor": self.tensor, "shape": self.shape,
                "max_abs": self.max_abs, "max_rel": self.max_rel, "lsb": self.lsb}


def _producers(record: InferenceRecord) -> dict[str, tuple[int, str]]:
    out = {name: (-1, "input") for name in record.inputs}
    for layer in record.layers:
        for t in layer.outputs:
            out[t] = (layer.index, layer.op_type)
    return out


def _kept(record: InferenceRecord, name: str) -> bool:
    return name in record.store and record.store.is_kept(name)


def _max_diff(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max(initial=0.0))


def compare_records(a: InferenceRecord, b: InferenceRecord) -> list[TensorDiff]:
    """Every tensor kept in both records with equal shapes, in ``a``'s execution order.

    A tensor both records also keep dequantized (``name + DEQUANTIZED_SUFFIX``) is compared on
    those real values, with the raw difference in ``lsb``."""
    prod = _producers(a)
    rows: list[TensorDiff] = []
    for name, (index, op_type) in prod.items():
        if not (_kept(a, name) and _kept(b, name)):
            continue
        x, y = np.asarray(a.store[name]), np.asarray(b.store[name])
        lsb = None
        real = name + DEQUANTIZED_SUFFIX
        if _kept(a, real) and _kept(b, real):
            if x.shape == y.shape and x.dtype.kind in "iu" and y.dtype.kind in "iu":
                lsb = int(round(_max_diff(x, y)))
            x, y = np.asarray(a.store[real]), np.asarray(b.store[real])
        if x.shape != y.shape or x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
            continue
        max_abs = _max_diff(x, y)
        scale = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)), 1e-12)
        rows.append(TensorDiff(name, index, op_type, tuple(x.shape), max_abs, max_abs / scale, lsb))
    rows.sort(key=lambda r: r.layer)
    return rows


def first_divergent_layer(a: InferenceRecord, b: InferenceRecord, rtol: float = 1e-4) -> TensorDiff | None:
    """The earliest tensor whose relative difference exceeds ``rtol`` (None if all agree)."""
    for row in compare_records(a, b):
        if row.max_rel > rtol:
            return row
    return None

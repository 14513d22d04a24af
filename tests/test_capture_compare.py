"""compare_records / first_divergent_layer on records with known differences."""

from __future__ import annotations

import numpy as np

from workbench.capture import InferenceRecord, LayerRecord, TensorStore, compare_records, first_divergent_layer


def _record(values: dict[str, np.ndarray]) -> InferenceRecord:
    store = TensorStore()
    for k, v in values.items():
        store.put(k, v)
    layers = (
        LayerRecord(0, "Conv", "conv", ("x",), ("a",)),
        LayerRecord(1, "Relu", "relu", ("a",), ("b",)),
        LayerRecord(2, "Add", "add", ("b", "a"), ("c",)),
    )
    return InferenceRecord("m", "test", "t", ("x",), ("c",), layers, store)


def test_known_differences_are_found_in_execution_order():
    rng = np.random.default_rng(0)
    base = {k: rng.normal(size=(2, 3)).astype(np.float32) for k in "xabc"}
    other = {k: v.copy() for k, v in base.items()}
    other["b"][1, 2] += 0.5
    other["c"] = other["c"] * 2  # shape kept, every element changes
    rows = compare_records(_record(base), _record(other))
    assert [r.tensor for r in rows] == ["x", "a", "b", "c"]
    assert rows[0].max_abs == 0 and rows[1].max_abs == 0
    assert np.isclose(rows[2].max_abs, 0.5, atol=1e-6)
    scale = max(np.abs(base["b"]).max(), np.abs(other["b"]).max())
    assert np.isclose(rows[2].max_rel, 0.5 / scale, rtol=1e-5)
    assert rows[3].max_abs == float(np.abs(base["c"]).max())
    first = first_divergent_layer(_record(base), _record(other), rtol=1e-3)
    assert first is not None and first.tensor == "b" and first.layer == 1 and first.op_type == "Relu"
    assert first_divergent_layer(_record(base), _record(base)) is None


def test_tensors_missing_or_of_other_shape_are_skipped():
    base = {k: np.ones((2, 2), np.float32) for k in "xabc"}
    other = dict(base)
    other["a"] = np.ones((3,), np.float32)
    del other["c"]
    assert [r.tensor for r in compare_records(_record(base), _record(other))] == ["x", "b"]

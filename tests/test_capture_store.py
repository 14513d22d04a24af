"""TensorStore, TensorStats, CaptureFilter and saved traces, against slow plain-Python oracles."""

from __future__ import annotations

import json
import math
import shutil
from bisect import bisect_right
from pathlib import Path

import numpy as np
import pytest

from workbench.capture import (
    HIST_BINS,
    CaptureFilter,
    InferenceRecord,
    LayerRecord,
    TensorStore,
    Trace,
    compute_stats,
    open_trace,
)
from workbench.capture.store import TensorStats
from workbench.errors import CaptureError, TraceFormatError


# -- a slow oracle for the stats ----------------------------------------------------------------------
def oracle_stats(a: np.ndarray) -> dict:
    """Stats by plain Python loops over the elements (floats as Python floats, i.e. float64)."""
    values = [float(v) for v in np.asarray(a).reshape(-1).tolist()]
    finite = [v for v in values if math.isfinite(v)]
    out = {
        "nan_count": sum(1 for v in values if math.isnan(v)),
        "inf_count": sum(1 for v in values if math.isinf(v)),
        "zero_fraction": (sum(1 for v in values if v == 0) / len(values)) if values else 0.0,
    }
    if not finite:
        return out | {"min": math.nan, "max": math.nan, "mean": math.nan, "std": math.nan, "hist_counts": ()}
    lo, hi = min(finite), max(finite)
    scale = max(abs(lo), abs(hi)) or 1.0  # scaled so that squares of values near 1e308 stay finite
    unit = [v / scale for v in finite]
    mean_u = math.fsum(unit) / len(unit)
    mean = mean_u * scale
    std = math.sqrt(math.fsum((u - mean_u) ** 2 for u in unit) / len(unit)) * scale
    counts = [0] * HIST_BINS
    if hi > lo:
        half = 1.0 if math.isfinite(hi - lo) else 0.5  # spans past 1.8e308 are binned in halves
        a, b = lo * half, hi * half
        edges = [(a + (b - a) / HIST_BINS * k) / half for k in range(HIST_BINS + 1)]
        for v in finite:  # bins are [e_k, e_k+1), the last one closed
            counts[min(bisect_right(edges, v) - 1, HIST_BINS - 1)] += 1
    else:
        counts[0] = len(finite)
    return out | {"min": lo, "max": hi, "mean": mean, "std": std, "hist_counts": tuple(counts)}


def _same(a: float, b: float, rel: float = 1e-6) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def same_stats(a: TensorStats, b: TensorStats) -> bool:
    """Field-by-field equality where NaN equals NaN (stats of empty or all-NaN tensors)."""
    for k, va in vars(a).items():
        vb = getattr(b, k)
        if isinstance(va, float) and math.isnan(va):
            if not (isinstance(vb, float) and math.isnan(vb)):
                return False
        elif va != vb:
            return False
    return True


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    f = rng.normal(0, 3, (4, 5, 6)).astype(np.float32)
    with_bad = f.copy()
    with_bad[0, 0, :3] = [np.nan, np.inf, -np.inf]
    with_bad[1, 1, 1] = np.nan
    with_bad[2, 2, :4] = 0.0
    on_edges = np.arange(0, 33, dtype=np.float32)  # values exactly on the bin edges of [0, 32]
    return {
        "float32": f,
        "float32_nan_inf_zero": with_bad,
        "float64": rng.uniform(-1, 1, 300),
        "float16": rng.normal(0, 1, 200).astype(np.float16),
        "int8": rng.integers(-128, 128, 500).astype(np.int8),
        "uint8": rng.integers(0, 256, (10, 10, 3)).astype(np.uint8),
        "int64": rng.integers(-(2**40), 2**40, 100),
        "bool": rng.random(77) > 0.3,
        "on_bin_edges": on_edges,
        "ints_on_edges": np.arange(-16, 17, dtype=np.int32),
        "float_edges": np.linspace(0.1, 0.7, HIST_BINS + 1),  # each value sits on a bin edge
        "constant": np.full((3, 3), 7.5, np.float32),
        "all_nan": np.full(5, np.nan, np.float32),
        "only_inf": np.array([np.inf, -np.inf, 1.0], np.float32),
        "scalar": np.array(3.0, np.float32),
        "empty": np.zeros((0, 4), np.float32),
        "huge_float64": np.array([-1.7e308, 0.0, 1.7e308]),
        "large_float32": np.concatenate([rng.normal(5, 2, 70_000), [np.nan, np.inf]]).astype(np.float32),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_stats_match_slow_oracle(case):
    a = _cases()[case]
    s = compute_stats(a)
    want = oracle_stats(a)
    assert s.shape == a.shape and s.dtype == a.dtype.name and s.nbytes == a.nbytes
    assert s.nan_count == want["nan_count"] and s.inf_count == want["inf_count"]
    assert _same(s.zero_fraction, want["zero_fraction"])
    for k in ("min", "max"):
        assert _same(getattr(s, k), want[k]), (k, getattr(s, k), want[k])
    rel = 1e-3 if a.dtype == np.float16 else 1e-6
    assert _same(s.mean, want["mean"], rel), (s.mean, want["mean"])
    assert _same(s.std, want["std"], rel), (s.std, want["std"])
    if a.size and want["hist_counts"]:
        assert s.hist_counts == want["hist_counts"]
        assert len(s.hist_edges) == HIST_BINS + 1
        assert all(math.isfinite(e) for e in s.hist_edges)
        assert sum(s.hist_counts) == a.size - want["nan_count"] - want["inf_count"]
    else:
        assert s.hist_counts == ()


@pytest.mark.parametrize("seed", range(20))
def test_histogram_equals_numpy_on_values_at_bin_edges(seed):
    from workbench.capture.store import _histogram

    rng = np.random.default_rng(seed)
    lo, hi = sorted(rng.uniform(-100, 100, 2))
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    f = np.concatenate([edges, rng.uniform(lo, hi, 200), np.nextafter(edges, -np.inf)[1:]])
    counts, got_edges = _histogram(f, float(f.min()), float(f.max()))
    want, want_edges = np.histogram(f, HIST_BINS, range=(float(f.min()), float(f.max())))
    np.testing.assert_array_equal(counts, want)
    np.testing.assert_array_equal(got_edges, want_edges)


def test_stats_json_round_trip_keeps_nan():
    s = compute_stats(np.full(4, np.nan, np.float32))
    back = TensorStats.from_json(json.loads(json.dumps(s.to_json())))
    assert back.nan_count == 4 and math.isnan(back.mean)
    s2 = compute_stats(np.arange(10, dtype=np.int16))
    assert TensorStats.from_json(json.loads(json.dumps(s2.to_json()))) == s2


# -- the store in memory and on disk ----------------------------------------------------------------
ARRAYS = {
    "img": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    "feat/conv:0": np.random.default_rng(1).normal(size=(1, 8, 5, 5)).astype(np.float32),
    "mask": np.array([True, False, True]),
    "idx": np.array([[1, -2], [3, 4]], np.int64),
    "half": np.linspace(-1, 1, 7).astype(np.float16),
    "scalar": np.array(2.5, np.float64),
    "empty": np.zeros((0, 3), np.float32),
    "../evil name": np.ones(2, np.float32),
}


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_store_put_get_and_lazy_stats(mode, tmp_path):
    store = TensorStore(None if mode == "memory" else tmp_path / "s")
    assert store.mode == mode
    for name, a in ARRAYS.items():
        store.put(name, a)
    store.put("dropped", np.arange(6.0).reshape(2, 3), keep=False)
    assert store.names() == [*ARRAYS, "dropped"] and len(store) == len(ARRAYS) + 1
    for name, a in ARRAYS.items():
        assert store.shape(name) == a.shape and store.dtype(name) == a.dtype.name
        assert not store.has_stats(name)  # stats stay out of the capture's hot path
        np.testing.assert_array_equal(store[name], a)
        assert store[name].dtype == a.dtype
        assert same_stats(store.stats(name), compute_stats(a))
        assert store.has_stats(name)
    assert store.has_stats("dropped") and not store.is_kept("dropped")
    assert store.stats("dropped").max == 5.0
    with pytest.raises(CaptureError, match="stats only"):
        store["dropped"]
    with pytest.raises(CaptureError, match="no tensor"):
        store["nope"]
    assert store.get("dropped") is None and store.get("nope", 1) == 1
    assert store.nbytes == sum(a.nbytes for a in ARRAYS.values())
    rows = store.table()
    assert [r["tensor"] for r in rows] == store.names() and rows[-1]["kept"] is False
    if mode == "disk":
        files = sorted(p.name for p in (tmp_path / "s").iterdir())
        assert len(files) == len(ARRAYS) and all(f.endswith(".npy") and "/" not in f for f in files)
        assert isinstance(store["feat/conv:0"], np.memmap)


def test_memory_store_keeps_the_array_itself():
    a = np.zeros(3)
    store = TensorStore()
    store.put("a", a)
    assert store["a"] is a


def test_disk_store_rejects_object_arrays(tmp_path):
    store = TensorStore(tmp_path)
    with pytest.raises(CaptureError, match="pickle"):
        store.put("strings", np.array(["a", None], dtype=object))


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_save_and_reopen_memory_maps_every_tensor(mode, tmp_path):
    store = TensorStore(None if mode == "memory" else tmp_path / "live")
    for name, a in ARRAYS.items():
        store.put(name, a)
    store.put("dropped", np.arange(5, dtype=np.int32), keep=False)
    store.stats("img")  # a stat computed before saving is saved with the index
    out = store.save(tmp_path / "saved")
    index = json.loads((out / "index.json").read_text())
    assert index["tensors"]["img"]["stats"] is not None
    assert index["tensors"]["dropped"]["file"] is None and index["tensors"]["dropped"]["stats"]["max"] == 4
    back = TensorStore.open(out)
    assert back.names() == store.names() and back.mode == "disk"
    for name, a in ARRAYS.items():
        got = back[name]
        if a.size:
            assert isinstance(got, np.memmap) and not got.flags.writeable
        np.testing.assert_array_equal(got, a)
        assert got.dtype == a.dtype and same_stats(back.stats(name), compute_stats(a))
    assert not back.is_kept("dropped") and same_stats(back.stats("dropped"), compute_stats(np.arange(5, dtype=np.int32)))
    with_stats = TensorStore.open(store.save(tmp_path / "full", with_stats=True))
    assert all(with_stats.has_stats(n) for n in with_stats)


def test_flush_writes_the_index_of_a_disk_store(tmp_path):
    store = TensorStore(tmp_path / "d")
    store.put("x", np.arange(3))
    store.flush()
    assert TensorStore.open(tmp_path / "d").names() == ["x"]
    with pytest.raises(CaptureError):
        TensorStore().flush()


# -- CaptureFilter -------------------------------------------------------------------------------
def test_capture_filter_parsing_and_selection():
    assert CaptureFilter.parse("all") == CaptureFilter() == CaptureFilter.parse(None)
    assert CaptureFilter.parse("stats").stats_only
    f = CaptureFilter(op_types={"Conv", "Relu"}, name_pattern="stage2")
    assert CaptureFilter.parse(f) is f
    assert f.selects("Conv", "backbone/stage2/conv", "t0")
    assert f.selects("Relu", "x", "stage2_out")  # the pattern may match the tensor name
    assert not f.selects("Conv", "stage1/conv", "t1")
    assert not f.selects("Add", "stage2/add", "t2")
    assert CaptureFilter(op_types="Conv").op_types == frozenset({"Conv"})  # a string is one op type
    assert CaptureFilter(op_types=["Conv"]) == CaptureFilter(op_types=frozenset({"Conv"}))
    assert hash(CaptureFilter(op_types=["Conv"])) == hash(CaptureFilter(op_types={"Conv"}))
    with pytest.raises(CaptureError, match="regex"):
        CaptureFilter(name_pattern="(")
    with pytest.raises(CaptureError):
        CaptureFilter.parse("everything")


# -- malformed folders -------------------------------------------------------------------------------
def _saved_store(tmp_path: Path) -> Path:
    store = TensorStore()
    store.put("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    store.put("b", np.ones(4, np.int64))
    return store.save(tmp_path / "st")


def _edit_index(folder: Path, fn) -> None:
    doc = json.loads((folder / "index.json").read_text())
    doc = fn(doc)
    (folder / "index.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))


BAD_INDEX = {
    "not_json": lambda d: "{not json",
    "a_list": lambda d: [1, 2],
    "wrong_format": lambda d: d | {"format": "something-else"},
    "newer_version": lambda d: d | {"version": 99},
    "tensors_not_object": lambda d: d | {"tensors": [1]},
    "entry_not_object": lambda d: d | {"tensors": {"a": 3}},
    "missing_shape": lambda d: d | {"tensors": {"a": {"dtype": "float32", "kept": True, "file": "00000_a.npy"}}},
    "negative_dim": lambda d: _set(d, "a", shape=[-2, 3]),
    "text_dim": lambda d: _set(d, "a", shape=["2", 3]),
    "bad_dtype": lambda d: _set(d, "a", dtype="float99"),
    "object_dtype": lambda d: _set(d, "a", dtype="object"),
    "path_traversal": lambda d: _set(d, "a", file="../../etc/passwd"),
    "absolute_path": lambda d: _set(d, "a", file="/etc/passwd"),
    "dotdot": lambda d: _set(d, "a", file=".."),
    "kept_without_file": lambda d: _set(d, "a", file=None),
    "bad_stats": lambda d: _set(d, "a", stats={"min": 1}),
}


def _set(doc: dict, name: str, **kw) -> dict:
    doc["tensors"][name].update(kw)
    return doc


@pytest.mark.parametrize("case", list(BAD_INDEX))
def test_malformed_index_is_a_trace_format_error(tmp_path, case):
    folder = _saved_store(tmp_path)
    _edit_index(folder, BAD_INDEX[case])
    with pytest.raises(TraceFormatError):
        TensorStore.open(folder)


def test_missing_index_is_a_trace_format_error(tmp_path):
    with pytest.raises(TraceFormatError, match="no index.json"):
        TensorStore.open(tmp_path)


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "other_shape", "pickled"])
def test_damaged_tensor_files_raise_on_access(tmp_path, damage):
    folder = _saved_store(tmp_path)
    f = folder / "00000_a.npy"
    if damage == "missing":
        f.unlink()
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[:-8])
    elif damage == "garbage":
        f.write_bytes(b"\x00garbage" * 20)
    elif damage == "other_shape":
        np.save(f, np.zeros((3, 2), np.float32))
    else:
        np.save(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    store = TensorStore.open(folder)
    np.testing.assert_array_equal(store["b"], np.ones(4))  # the others stay readable
    with pytest.raises(TraceFormatError):
        store["a"]


# -- InferenceRecord and Trace ------------------------------------------------------------------------
def _record(store: TensorStore | None = None) -> InferenceRecord:
    store = store or TensorStore()
    store.put("x", np.arange(4, dtype=np.float32))
    store.put("h", np.arange(4, dtype=np.float32) * 2)
    store.put("y", np.arange(4, dtype=np.float32) * 2 + 1)
    layers = (
        LayerRecord(0, "Mul", "mul", ("x", "two"), ("h",), {"note": np.array([1, 2])}, ((4,),), ("float32",), time_ms=0.5),
        LayerRecord(1, "Add", "add", ("h", "one"), ("y",), {"alpha": float("inf")}, ((4,),), ("float32",)),
    )
    return InferenceRecord("m", "test", "deployed", ("x",), ("y",), layers, store,
                           timings={"total_ms": 1.0}, notes={"k": np.float32(2)})


def test_record_save_and_open_round_trip(tmp_path):
    rec = _record(TensorStore(tmp_path / "live"))
    assert [(e.src, e.dst, e.tensor) for e in rec.edges] == [(-1, 0, "x"), (0, 1, "h")]
    folder = rec.save(tmp_path / "trace")
    back = open_trace(folder).inference
    assert back.layers[0].attributes == {"note": [1, 2]} and back.layers[1].attributes == {"alpha": "inf"}
    assert back.layers[0].time_ms == 0.5 and back.layers[1].time_ms is None
    assert back.edges == rec.edges and back.timings == {"total_ms": 1.0} and back.notes == {"k": 2.0}
    np.testing.assert_array_equal(back.output(), [1, 3, 5, 7])
    assert back.layer("add").index == 1 and back.find(op_type="Mul")[0].name == "mul"


BAD_RECORD = {
    "not_json": "{",
    "a_list": "[]",
    "missing_layers": json.dumps({"model_id": "m", "backend": "b", "mode": "x", "inputs": [], "outputs": []}),
    "layer_without_index": None,  # filled in below
    "bad_edges": None,
}


@pytest.mark.parametrize("case", list(BAD_RECORD))
def test_malformed_record_json_is_a_trace_format_error(tmp_path, case):
    folder = _record().save(tmp_path / "t")
    rj = folder / "inference" / "record.json"
    doc = json.loads(rj.read_text())
    if case == "layer_without_index":
        del doc["layers"][0]["index"]
        text = json.dumps(doc)
    elif case == "bad_edges":
        doc["edges"] = [[1, 2]]
        text = json.dumps(doc)
    else:
        text = BAD_RECORD[case]
    rj.write_text(text)
    with pytest.raises(TraceFormatError):
        open_trace(folder)


@pytest.mark.parametrize("trace_json", [
    "{", "[]", json.dumps({"format": "nope"}),
    json.dumps({"format": "workbench-trace", "records": "inference"}),
    json.dumps({"format": "workbench-trace", "records": ["../x"]}),
    json.dumps({"format": "workbench-trace", "records": ["missing"]}),
    json.dumps({"format": "workbench-trace", "records": [], "meta": [1]}),
    json.dumps({"format": "workbench-trace", "records": [], "frame": {"id": "f"}}),  # frame.npy missing
])
def test_malformed_trace_json_is_a_trace_format_error(tmp_path, trace_json):
    folder = _record().save(tmp_path / "t")
    (folder / "trace.json").write_text(trace_json)
    with pytest.raises(TraceFormatError):
        open_trace(folder)


def test_trace_without_record_tensors_is_a_trace_format_error(tmp_path):
    folder = _record().save(tmp_path / "t")
    shutil.rmtree(folder / "inference" / "tensors")
    with pytest.raises(TraceFormatError):
        open_trace(folder)


def test_trace_rejects_bad_record_names(tmp_path):
    with pytest.raises(CaptureError):
        Trace(records={"../up": _record()}).save(tmp_path / "t")


def test_layer_record_json_has_every_field_and_round_trips():
    import dataclasses

    from workbench.capture import Quantization

    layer = LayerRecord(3, "Conv", "c", ("x", "w"), ("y",), {"pads": (1, 1), "w": np.ones(3, np.float32)},
                        ((1, 2, 3, 3),), ("int8",), {"y": Quantization((0.5,), (3,), 1)}, 1.25)
    d = json.loads(json.dumps(layer.to_json()))
    assert set(d) == {f.name for f in dataclasses.fields(LayerRecord)}
    back = LayerRecord.from_json(d)
    assert back == dataclasses.replace(layer, attributes={"pads": [1, 1], "w": [1.0, 1.0, 1.0]})


def test_disk_reads_reuse_a_live_map_and_unmap_dropped_ones(tmp_path):
    store = TensorStore(tmp_path)
    store.put("a", np.arange(1000, dtype=np.float32))
    first = store["a"]
    assert store["a"] is first  # still held: the same map
    del first
    assert store._entry("a").mapped() is None  # dropped by the caller: unmapped, not cached
    again = store["a"]
    assert isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(again, np.arange(1000))

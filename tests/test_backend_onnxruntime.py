"""The onnxruntime backend: run(), trace() with full capture, filters, disk stores, bad files.

Independent truth: the ``onnx`` package's own reference evaluator (pure numpy, one class per
op) for the zoo's MTCNN nets, a numpy Conv/Relu/Gelu chain for a hand-made graph, and plain
onnxruntime runs of a truncated copy of the graph.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import workbench
from workbench.backends.onnxruntime import OnnxRuntimeSession, parse_profile
from workbench.capture import CaptureFilter, TensorStore, compute_stats, open_trace
from workbench.errors import CaptureError, InputError, ModelLoadError

MTCNN = {"mtcnn-pnet": (1, 30, 40, 3), "mtcnn-rnet": (2, 24, 24, 3), "mtcnn-onet": (1, 48, 48, 3)}


@pytest.fixture(scope="module")
def sessions() -> dict[str, OnnxRuntimeSession]:
    return {mid: workbench.load_model(mid, backend="onnxruntime") for mid in MTCNN}


def _input(mid: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, MTCNN[mid]).astype(np.float32)


# -- a hand-made graph with a numpy oracle ------------------------------------------------------------
RNG = np.random.default_rng(7)
W1 = RNG.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32)
B1 = RNG.normal(0, 0.1, (3,)).astype(np.float32)
W2 = RNG.normal(0, 0.5, (3, 3, 1, 1)).astype(np.float32)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """Slow-but-plain 2-D convolution, stride 1: x [N,C,H,W], w [O,C,kh,kw] -> [N,O,H',W']."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0], xp.shape[2] - kh + 1, xp.shape[3] - kw + 1))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + out.shape[2], j:j + out.shape[3]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.float64))
    return out + (0 if b is None else b.astype(np.float64)[None, :, None, None])


def handmade_oracle(x: np.ndarray) -> dict[str, np.ndarray]:
    c1 = _conv(x, W1, B1, 1)
    r1 = np.maximum(c1, 0)
    c2 = _conv(r1, W2, None, 0)
    a = r1 + c2
    g = 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
    m = g.mean(axis=(2, 3))
    return {"c1": c1, "r1": r1, "c2": c2, "a": a, "g": g, "m": m, "scale": np.float32(2.0),
            "y": m * 2.0, "shp": np.array(g.shape, dtype=np.int64)}


def make_handmade(path: Path, *, ir_version: int = 8) -> Path:
    """Conv -> Relu (unnamed) -> Conv -> Add -> com.microsoft.Gelu -> ReduceMean -> Mul; Shape."""
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),  # no name: the backend names it
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["r1", "c2"], ["a"], name="add"),
        helper.make_node("Gelu", ["a"], ["g"], name="gelu", domain="com.microsoft"),  # no ONNX shape inference
        helper.make_node("ReduceMean", ["g"], ["m"], name="pool", axes=[2, 3], keepdims=0),
        helper.make_node("Constant", [], ["scale"], name="two", value=numpy_helper.from_array(np.array(2.0, np.float32))),
        helper.make_node("Mul", ["m", "scale"], ["y"], name="scaled"),
        helper.make_node("Shape", ["g"], ["shp"], name="shape"),
    ]
    graph = helper.make_graph(
        nodes, "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("shp", TensorProto.INT64, [4])],
        initializer=[numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(B1, "B1"), numpy_helper.from_array(W2, "W2")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        ir_version=ir_version,
    )
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> OnnxRuntimeSession:
    p = make_handmade(tmp_path_factory.mktemp("hm") / "handmade.onnx")
    return workbench.load_model(str(p), backend="onnxruntime")


# -- specs and run ---------------------------------------------------------------------------------
def test_specs_come_from_the_graph(sessions, handmade):
    pnet = sessions["mtcnn-pnet"]
    assert [s.name for s in pnet.input_specs] == ["input_1"]
    assert pnet.input_specs[0].shape == (0, 0, 0, 3) and pnet.input_specs[0].dtype == "float32"
    assert [s.name for s in sessions["mtcnn-onet"].output_specs] == ["dense_5", "dense_6", "softmax_2"]
    assert handmade.input_specs[0].shape == (0, 2, 6, 6)
    assert [(s.name, s.dtype) for s in handmade.output_specs] == [("y", "float32"), ("shp", "int64")]


def test_run_matches_numpy_oracle(handmade):
    x = RNG.normal(0, 1, (2, 2, 6, 6)).astype(np.float32)
    out = handmade.run(x)
    want = handmade_oracle(x)
    np.testing.assert_allclose(out["y"], want["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["shp"], [2, 3, 6, 6])


# -- trace: captured values against independent truth --------------------------------------------
@pytest.mark.parametrize("mid", list(MTCNN))
@pytest.mark.parametrize("mode", ["deployed", "unoptimized"])
def test_every_captured_tensor_matches_onnx_reference_evaluator(sessions, mid, mode):
    s = sessions[mid]
    x = _input(mid)
    rec = s.trace(x, mode=mode)
    ref = ReferenceEvaluator(s.model).run(None, {s.input_names[0]: x}, intermediate=True)
    model = onnx.load(str(s.path))
    assert [layer.op_type for layer in rec.layers] == [n.op_type for n in model.graph.node]
    assert [layer.index for layer in rec.layers] == list(range(len(model.graph.node)))
    n_checked = 0
    for layer in rec.layers:
        for t, shape, dtype in zip(layer.outputs, layer.output_shapes, layer.output_dtypes):
            got = rec.store[t]
            assert got.shape == shape == ref[t].shape, t
            assert dtype == "float32"
            scale = max(1.0, float(np.abs(ref[t]).max()))
            np.testing.assert_allclose(got, ref[t], rtol=0, atol=2e-5 * scale, err_msg=f"{mid} {mode} {t}")
            n_checked += 1
    assert n_checked == len(model.graph.node)
    assert rec.mode == mode and rec.backend == "onnxruntime" and rec.model_id == mid
    assert rec.timings["total_ms"] > 0


def test_handmade_capture_matches_numpy(handmade):
    x = RNG.normal(0, 1, (1, 2, 6, 6)).astype(np.float32)
    want = handmade_oracle(x)
    for mode in ("deployed", "unoptimized"):
        rec = handmade.trace(x, mode=mode)
        assert [layer.name for layer in rec.layers] == [
            "conv1", "Relu_1", "conv2", "add", "gelu", "pool", "two", "scaled", "shape"]
        for name, value in want.items():
            got = rec.store[name]
            assert got.dtype == np.asarray(value).dtype.type(0).astype(got.dtype).dtype
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-5, err_msg=f"{mode} {name}")
        gelu = rec.layer("gelu")
        assert gelu.output_shapes == ((1, 3, 6, 6),) and gelu.output_dtypes == ("float32",)
        assert rec.layer("shape").output_dtypes == ("int64",)
        assert rec.layer("conv1").attributes["pads"] == [1, 1, 1, 1]
        assert rec.layer("two").attributes["value"] == 2.0  # a tensor attribute, JSON-safe
        assert [(e.src, e.dst, e.tensor) for e in rec.edges if e.dst == 3] == [(1, 3, "r1"), (2, 3, "c2")]


@pytest.mark.parametrize("tensor", ["convolution_output3", "p_re_lu_9/add:0", "flatten_1/Reshape:0", "p_re_lu_11/add:0", "dense_5"])
def test_captured_tensor_equals_a_truncated_graph_run_as_deployed(sessions, tensor, tmp_path):
    """The capture of tensor t equals plain onnxruntime (default optimizations) on a copy of
    the graph cut so that t is its output."""
    import onnxruntime as ort

    s = sessions["mtcnn-onet"]
    x = _input("mtcnn-onet", seed=3)
    rec = s.trace(x, mode="deployed")
    cut = tmp_path / "cut.onnx"
    onnx.utils.extract_model(str(s.path), str(cut), ["input_3"], [tensor], check_model=False)
    want = ort.InferenceSession(str(cut), providers=["CPUExecutionProvider"]).run(None, {"input_3": x})[0]
    np.testing.assert_allclose(rec.store[tensor], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mid", list(MTCNN))
def test_trace_outputs_equal_run_and_modes_agree(sessions, mid):
    s = sessions[mid]
    x = _input(mid, seed=1)
    run = s.run(x)
    dep = s.trace(x, mode="deployed")
    unopt = s.trace(x, mode="unoptimized")
    assert set(dep.outputs) == set(run)
    for name, value in run.items():
        np.testing.assert_allclose(dep.output(name), value, rtol=1e-5, atol=1e-5)
    assert dep.store.names() == unopt.store.names()
    for name in dep.store:
        np.testing.assert_allclose(dep.store[name], unopt.store[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_inputs_are_stored_as_a_copy(sessions):
    s = sessions["mtcnn-onet"]
    x = _input("mtcnn-onet")
    rec = s.trace(x)
    kept = x.copy()
    x[...] = 0
    np.testing.assert_array_equal(rec.store["input_3"], kept)


def test_dynamic_input_sizes_give_fresh_shapes(sessions):
    s = sessions["mtcnn-pnet"]
    small = s.trace(np.zeros((1, 12, 12, 3), np.float32))
    big = s.trace(np.zeros((1, 40, 30, 3), np.float32))
    assert small.layer(small.layers[-1].index).output_shapes != big.layer(big.layers[-1].index).output_shapes
    assert small.output("softmax").shape == (1, 1, 1, 2) and big.output("softmax").shape[1:3] == (15, 10)


def test_capture_session_is_cached_and_model_is_left_unedited(sessions):
    s = sessions["mtcnn-rnet"]
    n_outputs = len(s.model.graph.output)
    x = _input("mtcnn-rnet")
    s.trace(x)
    n_sessions = len(s._sessions)
    for _ in range(3):
        s.trace(x)
    s.trace(x, capture=CaptureFilter(op_types={"Conv"}))
    assert len(s._sessions) == n_sessions + 1
    assert len(s.model.graph.output) == n_outputs


# -- filters ------------------------------------------------------------------------------------------
def test_filter_by_op_type_keeps_inputs_outputs_and_selected(sessions):
    s = sessions["mtcnn-onet"]
    x = _input("mtcnn-onet")
    full = s.trace(x)
    rec = s.trace(x, capture=CaptureFilter(op_types={"Conv"}))
    conv_outputs = {t for layer in full.layers if layer.op_type == "Conv" for t in layer.outputs}
    assert set(rec.store) == {"input_3"} | conv_outputs | set(s.output_names)
    for t in conv_outputs:
        np.testing.assert_array_equal(rec.store[t], full.store[t])
    assert len(rec.layers) == len(full.layers)  # every op is recorded, captured or not
    prelu = rec.find(op_type="PRelu")[0]
    assert prelu.outputs[0] not in rec.store
    # not captured: the shape ONNX inference knows, -1 for the symbolic batch dim
    (static,), (actual,) = prelu.output_shapes, full.layer(prelu.index).output_shapes
    assert static[0] == -1 and static[1:] == actual[1:]
    with pytest.raises(CaptureError):
        rec.store[prelu.outputs[0]]


def test_filter_by_name_pattern(sessions):
    s = sessions["mtcnn-onet"]
    rec = s.trace(_input("mtcnn-onet"), capture=CaptureFilter(name_pattern=r"^conv2d_(9|10)$"))
    captured = set(rec.store) - {"input_3"} - set(s.output_names)
    assert captured == {t for layer in rec.layers if layer.name in ("conv2d_9", "conv2d_10") for t in layer.outputs}
    assert len(captured) == 2


def test_stats_only_drops_values_but_keeps_exact_stats(sessions):
    s = sessions["mtcnn-onet"]
    x = _input("mtcnn-onet")
    full = s.trace(x)
    rec = s.trace(x, capture="stats")
    assert set(rec.store) == set(full.store)
    for name in rec.store:
        if name in s.output_names or name == "input_3":
            assert rec.store.is_kept(name)
            continue
        assert not rec.store.is_kept(name)
        with pytest.raises(CaptureError, match="stats only"):
            rec.store[name]
        assert rec.store.stats(name) == compute_stats(full.store[name])
    assert rec.store.nbytes < full.store.nbytes / 5


# -- disk store ---------------------------------------------------------------------------------------
def test_disk_store_round_trip_without_the_model(tmp_path, handmade):
    x = RNG.normal(0, 1, (1, 2, 6, 6)).astype(np.float32)
    mem = handmade.trace(x)
    rec = handmade.trace(x, store=tmp_path / "live")
    assert rec.store.mode == "disk" and (tmp_path / "live" / "index.json").is_file()
    reopened_live = TensorStore.open(tmp_path / "live")
    assert reopened_live.names() == mem.store.names()
    rec.save(tmp_path / "saved")

    model_copy = tmp_path / "gone.onnx"
    shutil.copy(handmade.path, model_copy)
    model_copy.unlink()  # the saved trace needs no model file
    back = open_trace(tmp_path / "saved").inference
    assert back.model_id == rec.model_id and back.mode == rec.mode and back.backend == "onnxruntime"
    assert [layer.to_json() for layer in back.layers] == [layer.to_json() for layer in mem.layers]
    assert back.edges == mem.edges
    for name in mem.store:
        arr = back.store[name]
        assert isinstance(arr, np.memmap)
        np.testing.assert_array_equal(arr, mem.store[name])
        assert back.store.stats(name) == compute_stats(mem.store[name])


@pytest.mark.parametrize("mid", ["mtcnn-onet", "handmade"])
def test_streamed_capture_in_segments_equals_one_run(tmp_path, sessions, handmade, mid):
    """A tiny chunk cuts the graph into many sub-models run one after the other; every tensor
    (the contrib-op Gelu output crossing a cut included) must equal the one-run capture."""
    s = handmade if mid == "handmade" else sessions[mid]
    x = (RNG.normal(0, 1, (1, 2, 6, 6)) if mid == "handmade" else _input(mid)).astype(np.float32)
    for mode in ("deployed", "unoptimized"):
        one = s.trace(x, mode=mode)
        rec = s.trace(x, store=tmp_path / mode, chunk_mb=1e-4, mode=mode)
        assert rec.notes["capture"]["runs"] > 3
        assert rec.store.names() == one.store.names()
        for name in one.store:
            # sub-models may pick other conv algorithms / layouts than the whole graph
            scale = max(1.0, float(np.abs(one.store[name]).max()))
            np.testing.assert_allclose(rec.store[name], one.store[name], rtol=0, atol=2e-5 * scale, err_msg=name)
        assert [layer.output_shapes for layer in rec.layers] == [layer.output_shapes for layer in one.layers]
    stats = s.trace(x, store=tmp_path / "stats", chunk_mb=1e-4, capture="stats")
    assert {n for n in stats.store if stats.store.is_kept(n)} == {*s.input_names, *s.output_names}
    assert len(stats.store) == len(one.store)
    with pytest.raises(CaptureError, match="chunk_mb"):
        s.trace(x, chunk_mb=-1)


def test_disk_store_streams_by_default_and_memory_store_runs_once(tmp_path, sessions):
    s = sessions["mtcnn-onet"]
    x = _input("mtcnn-onet")
    assert s.trace(x).notes["capture"]["runs"] == 1
    assert s.trace(x, store=tmp_path / "a").notes["capture"]["runs"] == 1  # 1 MB: below the default chunk
    assert s.trace(x, store=tmp_path / "b", chunk_mb=0.25).notes["capture"]["runs"] > 1


# -- profiling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["deployed", "unoptimized"])
@pytest.mark.parametrize("mid", list(MTCNN))
def test_profiler_times_map_to_nodes(sessions, mid, mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = sessions[mid]
    plain = s.trace(_input(mid))
    assert all(layer.time_ms is None for layer in plain.layers)
    rec = s.trace(_input(mid), mode=mode, profile=True)
    timed = [layer for layer in rec.layers if layer.time_ms is not None]
    assert len(timed) >= 0.9 * len(rec.layers)
    assert all(layer.time_ms >= 0 for layer in timed)
    assert rec.timings["kernel_ms"] >= sum(layer.time_ms for layer in timed) - 1e-9
    assert list(tmp_path.iterdir()) == []  # no profile files left behind
    run = s.run(_input(mid))
    for name, value in run.items():
        np.testing.assert_allclose(rec.output(name), value, rtol=1e-5, atol=1e-5)


def test_parse_profile_maps_nchwc_names_and_uses_the_last_run():
    from workbench.backends.onnx_graph_edit import GraphNode

    nodes = [GraphNode(0, "Conv", "", "conv", ("x",), ("c",), {}), GraphNode(1, "Relu", "", "relu", ("c",), ("r",), {})]
    ev = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 10, "dur": 5000},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
        {"cat": "Node", "name": "c_nchwc_kernel_time", "ts": 210, "dur": 2000},
        {"cat": "Node", "name": "relu_kernel_time", "ts": 220, "dur": 500},
        {"cat": "Node", "name": "relu_fence_before", "ts": 220, "dur": 7},
        {"cat": "Node", "name": "ReorderOutput_token_3_kernel_time", "ts": 230, "dur": 300,
         "args": {"op_name": "ReorderOutput"}},
    ]
    times, unmapped = parse_profile(ev, nodes)
    assert times == {"conv": 2.0, "relu": 0.5}
    assert unmapped == {"ReorderOutput": 0.3}
    # a Transpose folded into a layout reorder: the reorder that produces its output is its time,
    # but a reorder producing the output of a node with its own kernel stays capture overhead
    nodes.append(GraphNode(2, "Transpose", "", "tr", ("r",), ("t",), {}))
    ev.append({"cat": "Node", "name": "ReorderOutput_token_9_kernel_time", "ts": 240, "dur": 400,
               "args": {"op_name": "ReorderOutput"}})
    times, unmapped = parse_profile(ev, nodes, {"ReorderOutput_token_9": ["t"], "ReorderOutput_token_3": ["r"]})
    assert times == {"conv": 2.0, "relu": 0.5, "tr": 0.4}
    assert unmapped == {"ReorderOutput": 0.3}


# -- bad inputs and bad options --------------------------------------------------------------------
def test_wrong_inputs_raise_input_error_with_expected_shape(sessions):
    s = sessions["mtcnn-rnet"]
    with pytest.raises(InputError, match=r"expected \?x24x24x3"):
        s.trace(np.zeros((1, 48, 48, 3), np.float32))
    with pytest.raises(InputError, match="expected float32"):
        s.run(np.zeros((1, 24, 24, 3), np.float64))
    bad = np.zeros((1, 24, 24, 3), np.float32)
    bad[0, 3, 3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        s.trace(bad)
    with pytest.raises(InputError, match="expects inputs"):
        s.run({"nope": bad})


def test_input_too_small_for_the_model_is_an_input_error(sessions):
    with pytest.raises(InputError, match="onnxruntime failed"):
        sessions["mtcnn-pnet"].trace(np.zeros((1, 4, 4, 3), np.float32))


def test_optimized_false_makes_unoptimized_the_default_mode(handmade):
    s = workbench.load_model(str(handmade.path), backend="onnxruntime", optimized=False, intra_op_threads=1)
    x = np.zeros((1, 2, 6, 6), np.float32)
    assert s.trace(x).mode == "unoptimized" and s.trace(x, mode="deployed").mode == "deployed"
    assert s.trace(x).notes["capture"]["optimization"] == "ORT_DISABLE_ALL"


def test_unavailable_provider_is_a_clear_error(handmade):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="not available"):
        workbench.load_model(str(handmade.path), backend="onnxruntime", providers=("NoSuchExecutionProvider",))


def test_bad_trace_options(sessions):
    s = sessions["mtcnn-onet"]
    with pytest.raises(CaptureError, match="capture mode"):
        s.trace(_input("mtcnn-onet"), mode="fast")
    with pytest.raises(CaptureError, match="unknown trace options"):
        s.trace(_input("mtcnn-onet"), profiling=True)


# -- bad model files ---------------------------------------------------------------------------------
def _bad_files(tmp: Path) -> dict[str, Path]:
    onet = workbench.zoo.load("mtcnn-onet").path.read_bytes()
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    files = {
        "empty": b"",
        "truncated": onet[: len(onet) // 2],
        "truncated_tail": onet[:-7],
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "png": png + b"\x00" * 64,
        "text": b"this is not a model\n" * 10,
    }
    out = {}
    for name, data in files.items():
        p = tmp / f"{name}.onnx"
        p.write_bytes(data)
        out[name] = p
    return out


@pytest.mark.parametrize("kind", ["empty", "truncated", "truncated_tail", "random", "png", "text"])
def test_bad_model_files_raise_model_load_error(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ModelLoadError) as info:
        workbench.load_model(str(path), backend="onnxruntime")
    assert info.value.hint  # says what to do


def test_missing_external_data_is_a_model_load_error(tmp_path):
    model = onnx.load(str(make_handmade(tmp_path / "m.onnx")))
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    assert workbench.load_model(str(tmp_path / "ext.onnx"), backend="onnxruntime").run(
        np.zeros((1, 2, 6, 6), np.float32))["shp"].tolist() == [1, 3, 6, 6]
    os.remove(tmp_path / "ext.data")
    with pytest.raises(ModelLoadError, match="external data"):
        workbench.load_model(str(tmp_path / "ext.onnx"), backend="onnxruntime")


def test_model_newer_than_onnxruntime_is_a_model_load_error(tmp_path):
    path = make_handmade(tmp_path / "new.onnx", ir_version=onnx.IR_VERSION + 5)
    with pytest.raises(ModelLoadError):
        workbench.load_model(str(path), backend="onnxruntime")


def test_invalid_graph_is_a_model_load_error(tmp_path):
    node = helper.make_node("Relu", ["missing"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    p = tmp_path / "invalid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(p))
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        workbench.load_model(str(p), backend="onnxruntime")


# -- the big model (slow) ------------------------------------------------------------------------------
@pytest.mark.slow
def test_big_640_model_capture_streams_to_disk(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from make_big_onnx import make_big_onnx

    s = workbench.load_model(str(make_big_onnx()), backend="onnxruntime")
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 640, 640)).astype(np.float32)
    rec = s.trace(x, store=tmp_path / "big", profile=True)
    assert len(rec.layers) >= 500
    assert sum(layer.time_ms is not None for layer in rec.layers) >= 0.9 * len(rec.layers)
    back = open_trace(rec.save(tmp_path / "saved")).inference
    np.testing.assert_allclose(back.output(), s.run(x)[s.output_names[0]], rtol=1e-4, atol=1e-4)
    assert len(back.store) == len(rec.store) > 500

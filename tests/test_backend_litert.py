"""LiteRT backend: deployed run(), faithful trace(), capture filters, persistence, hostile files.

Truth used here: the card's declared output dims; the deployed (XNNPACK) outputs of run();
NumPy re-computations of captured layers from the captured inputs and the weights read from
the file by TFLiteGraph (no LiteRT involved); a separate builtin-kernel interpreter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from workbench import zoo
from workbench.backends import litert, load_model
from workbench.backends.litert import DEPLOYED_SUFFIX, DEQUANTIZED_SUFFIX, runtime
from workbench.backends.tflite_model import build_tflite, parse_tflite, read_tflite, schema
from workbench.capture import CaptureFilter, Quantization, open_trace
from workbench.errors import InputError, ModelLoadError

MODELS = ["blazeface-short", "blazeface-full"]


@pytest.fixture(scope="module")
def sessions() -> dict:
    return {m: load_model(m, backend="litert") for m in MODELS}


def _input(session, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, session.input_specs[0].shape).astype(np.float32)


@pytest.fixture(scope="module")
def traces(sessions) -> dict:
    return {m: (_input(s), s.trace(_input(s))) for m, s in sessions.items()}


# -- run() and trace() ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_run_outputs_have_the_card_shapes(model: str, sessions) -> None:
    s = sessions[model]
    out = s.run(_input(s))
    assert [o.name for o in s.card.outputs] == list(out)
    for spec in s.card.outputs:
        assert out[spec.name].shape == spec.shape and out[spec.name].dtype == np.float32
        assert np.isfinite(out[spec.name]).all()


@pytest.mark.parametrize("model", MODELS)
def test_faithful_outputs_match_deployed_within_recorded_difference(model: str, sessions, traces) -> None:
    s = sessions[model]
    x, rec = traces[model]
    deployed = s.run(x)
    diffs = rec.notes["deployed_vs_faithful"]
    assert set(diffs) == set(deployed) == set(rec.outputs)
    for name, dep in deployed.items():
        faithful = rec.output(name)
        max_abs = float(np.abs(dep.astype(np.float64) - faithful).max())
        assert diffs[name]["max_abs"] == pytest.approx(max_abs, rel=1e-6, abs=1e-12)
        assert diffs[name]["max_rel"] == pytest.approx(max_abs / np.abs(faithful).max(), rel=1e-6, abs=1e-12)
        assert max_abs < 1e-3, f"{model} {name}: deployed vs faithful {max_abs}"
        np.testing.assert_array_equal(rec.tensor(name + DEPLOYED_SUFFIX), dep)
    print(f"\n{model} deployed_vs_faithful: {diffs}")


@pytest.mark.parametrize("model", MODELS)
def test_trace_records_every_op_in_order(model: str, sessions, traces) -> None:
    s = sessions[model]
    _, rec = traces[model]
    graph = s.graph
    assert [layer.op_type for layer in rec.layers] == [op.op for op in graph.operators]
    assert rec.layers[2].attributes["padding"] == "SAME" and rec.layers[2].op_type == "CONV_2D"
    assert all(layer.time_ms is None for layer in rec.layers) and "profiler" in rec.notes["op_time"]
    for layer in rec.layers:
        assert layer.name == layer.outputs[0]
        for name, shape in zip(layer.outputs, layer.output_shapes):
            assert rec.store.shape(name) == shape
    assert rec.mode == "faithful" and rec.timings["total_ms"] > 0


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _np_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str, depthwise: bool) -> np.ndarray:
    """NHWC convolution in float64 from sliding windows; w is OHWI (or 1HWC for depthwise)."""
    kh, kw = w.shape[1], w.shape[2]
    if padding == "SAME":
        (pt, pb), (pl, pr) = _same_pads(x.shape[1], kh, stride), _same_pads(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    win = sliding_window_view(x.astype(np.float64), (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    if depthwise:
        return np.einsum("nhwcij,ijc->nhwc", win, w[0].astype(np.float64)) + b
    return np.einsum("nhwcij,oijc->nhwo", win, w.astype(np.float64)) + b


def _weights(graph, key: str) -> np.ndarray:
    """The constant behind a (DEQUANTIZE output) tensor, read from the file, as float."""
    t = graph.tensor(key)
    if t.data is not None:
        return t.data.astype(np.float64)
    producer = next(op for op in graph.operators if t.index in op.outputs)
    assert producer.op == "DEQUANTIZE"
    return graph.tensors[producer.inputs[0]].data.astype(np.float64)


@pytest.mark.parametrize("model", MODELS)
def test_captured_layers_equal_independent_numpy(model: str, sessions, traces) -> None:
    s = sessions[model]
    _, rec = traces[model]
    g = s.graph
    checked: dict[str, int] = {}
    for layer in rec.layers:
        got = np.asarray(rec.tensor(layer.outputs[0]), dtype=np.float64)
        ins = [np.asarray(rec.tensor(k), dtype=np.float64) if k in rec.store else None for k in layer.inputs]
        a = layer.attributes
        if layer.op_type in ("CONV_2D", "DEPTHWISE_CONV_2D") and checked.get(layer.op_type, 0) < 4:
            assert a["stride_h"] == a["stride_w"] and a["fused_activation_function"] == "NONE"
            want = _np_conv(ins[0], _weights(g, layer.inputs[1]), _weights(g, layer.inputs[2]), a["stride_h"],
                            a["padding"], layer.op_type == "DEPTHWISE_CONV_2D")
        elif layer.op_type == "ADD":
            want = ins[0] + ins[1]
        elif layer.op_type == "RELU":
            want = np.maximum(ins[0], 0)
        elif layer.op_type == "MAX_POOL_2D":
            n, h, w, c = ins[0].shape
            assert (a["filter_height"], a["filter_width"], a["stride_h"], a["stride_w"]) == (2, 2, 2, 2)
            assert a["padding"] == "VALID" or h % 2 == w % 2 == 0  # SAME pads nothing here
            want = ins[0][:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        elif layer.op_type == "PAD":
            want = np.pad(ins[0], g.tensor(layer.inputs[1]).data.tolist())
        elif layer.op_type == "DEQUANTIZE":
            want = g.tensor(layer.inputs[0]).data.astype(np.float64)
        elif layer.op_type == "RESIZE_BILINEAR":
            assert a["half_pixel_centers"] and not a["align_corners"]
            want = _np_bilinear_half_pixel(ins[0], *g.tensor(layer.inputs[1]).data.tolist())
        elif layer.op_type in ("RESHAPE", "CONCATENATION"):
            want = (ins[0].reshape(got.shape) if layer.op_type == "RESHAPE"
                    else np.concatenate(ins, axis=a["axis"]))
        else:
            continue
        err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
        assert err < 1e-5, f"{model} {layer.op_type} {layer.name!r}: error {err:.3g} vs numpy"
        checked[layer.op_type] = checked.get(layer.op_type, 0) + 1
    assert checked.get("CONV_2D", 0) >= 4 and checked.get("DEPTHWISE_CONV_2D", 0) >= 4 and checked.get("ADD", 0) > 10


def _np_bilinear_half_pixel(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize (TF2 semantics), separable, in float64."""
    def axis_weights(n_in: int, n_out: int) -> np.ndarray:
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        m = np.zeros((n_out, n_in))
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        np.add.at(m, (np.arange(n_out), lo), 1 - (src - lo))
        np.add.at(m, (np.arange(n_out), hi), src - lo)
        return m
    return np.einsum("ph,nhwc,qw->npqc", axis_weights(x.shape[1], oh), x, axis_weights(x.shape[2], ow))


# -- capture filters, persistence, pinning ------------------------------------------------------------


def test_stats_only_keeps_values_of_graph_inputs_and_outputs_only(sessions, traces) -> None:
    s = sessions["blazeface-short"]
    x, full = traces["blazeface-short"]
    rec = s.trace(x, capture="stats")
    io = set(rec.inputs) | set(rec.outputs) | {k + DEPLOYED_SUFFIX for k in rec.outputs}
    assert set(rec.store.names()) == set(full.store.names())
    for name in rec.store.names():
        assert rec.store.is_kept(name) == (name in io), name
        st = rec.store.stats(name)
        want = np.asarray(full.tensor(name))
        assert st.shape == want.shape and st.max == pytest.approx(float(want.max()), rel=1e-6, abs=1e-6)


def test_filters_by_op_type_and_name(sessions, traces) -> None:
    s = sessions["blazeface-short"]
    x, full = traces["blazeface-short"]
    io = set(full.inputs) | set(full.outputs) | {k + DEPLOYED_SUFFIX for k in full.outputs}
    rec = s.trace(x, capture=CaptureFilter(op_types={"CONV_2D"}))
    conv_outs = {layer.outputs[0] for layer in full.layers if layer.op_type == "CONV_2D"}
    assert set(rec.store.names()) - io == conv_outs
    assert len(rec.layers) == len(full.layers)  # every op is still recorded, only tensors are filtered
    rec = s.trace(x, capture=CaptureFilter(name_pattern=r"^depthwise_conv2d_1$"))
    assert set(rec.store.names()) - io == {"depthwise_conv2d_1"}
    np.testing.assert_array_equal(rec.tensor("depthwise_conv2d_1"), full.tensor("depthwise_conv2d_1"))


def test_save_and_reopen_without_the_model(sessions, traces, tmp_path: Path) -> None:
    _, rec = traces["blazeface-short"]
    folder = rec.save(tmp_path / "trace")
    back = open_trace(folder).inference
    assert back.layers == rec.layers and back.edges == rec.edges
    assert back.notes["deployed_vs_faithful"] == rec.notes["deployed_vs_faithful"]
    assert back.store.names() == rec.store.names()
    for name in ("input", "conv2d", "regressors", "classificators" + DEPLOYED_SUFFIX):
        np.testing.assert_array_equal(back.tensor(name), rec.tensor(name))


def test_trace_streams_to_disk(sessions, traces, tmp_path: Path) -> None:
    s = sessions["blazeface-short"]
    x, full = traces["blazeface-short"]
    rec = s.trace(x, store=tmp_path / "tensors")
    assert rec.store.mode == "disk" and (tmp_path / "tensors" / "index.json").is_file()
    assert len(list((tmp_path / "tensors").glob("*.npy"))) == len(full.store)
    np.testing.assert_array_equal(rec.tensor("activation_5"), full.tensor("activation_5"))


def test_live_records_keep_their_own_values(sessions) -> None:
    """Zero-copy views must never be overwritten by a later trace (pool, then copies)."""
    s = load_model("blazeface-short", backend="litert", max_pinned=2)
    rt = runtime()
    ref = rt.interpreter(model_content=Path(s.path).read_bytes(),
                         experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ref.allocate_tensors()
    xs = [_input(s, seed) for seed in (10, 11, 12, 13)]
    recs = [s.trace(x) for x in xs]
    assert [r.notes["capture"] for r in recs] == ["zero-copy views"] * 2 + ["copies"] * 2
    for x, r in zip(xs, recs):
        ref.set_tensor(s.graph.inputs[0], x)
        ref.invoke()
        np.testing.assert_array_equal(r.tensor("input"), x)
        want = ref.get_tensor(s.graph.tensor("classificators").index)
        np.testing.assert_array_equal(r.output("classificators"), want)
        with pytest.raises(ValueError):
            r.tensor("conv2d")[0, 0, 0, 0] = 1.0  # captured arrays are read-only
    del recs, r
    assert s.trace(xs[0]).notes["capture"] == "zero-copy views"  # a freed interpreter is reused
    # stats-only and disk records read the interpreter's tensors but do not pin it
    kept = [s.trace(xs[1], capture="stats"), s.trace(xs[2], capture="stats")]
    assert [r.notes["capture"] for r in kept] == ["stats only"] * 2
    views = [s.trace(x) for x in xs[:2]]
    assert [r.notes["capture"] for r in views] == ["zero-copy views"] * 2
    np.testing.assert_array_equal(kept[0].tensor("input"), xs[1])


def test_quantized_tensors_are_kept_raw_and_dequantized(tmp_path: Path) -> None:
    q_in, q_out = Quantization((0.05,), (3,), 0), Quantization((0.1,), (-2,), 0)
    tensors = [
        {"name": "x", "shape": [1, 4, 4, 2], "dtype": "float32"},
        {"name": "xq", "shape": [1, 4, 4, 2], "dtype": "int8", "quantization": q_in},
        {"name": "yq", "shape": [1, 4, 4, 2], "dtype": "int8", "quantization": q_out},
        {"name": "y", "shape": [1, 4, 4, 2], "dtype": "float32"},
    ]
    ops = [{"op": "QUANTIZE", "inputs": [0], "outputs": [1]},
           {"op": "ADD", "inputs": [1, 1], "outputs": [2], "options": {"fused_activation_function": "RELU"}},
           {"op": "DEQUANTIZE", "inputs": [2], "outputs": [3]}]
    path = tmp_path / "int8_add.tflite"
    path.write_bytes(build_tflite(tensors, ops, [0], [3]))
    s = load_model(path, backend="litert")
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype(np.float32)
    rec = s.trace(x)
    raw = np.asarray(rec.tensor("yq"))
    assert raw.dtype == np.int8
    np.testing.assert_allclose(rec.tensor("yq" + DEQUANTIZED_SUFFIX), (raw.astype(np.float32) + 2) * 0.1, rtol=1e-6)
    add = rec.layer("yq")
    for key, q in (("yq", q_out), ("xq", q_in)):  # the file stores float32 scales
        assert add.quantization[key].zero_point == q.zero_point
        assert add.quantization[key].scale == pytest.approx(q.scale, rel=1e-7)
    np.testing.assert_allclose(rec.output("y"), (raw.astype(np.float32) + 2) * 0.1, rtol=1e-6)
    assert "dequantized" in rec.notes


def test_bad_inputs_are_refused(sessions) -> None:
    s = sessions["blazeface-short"]
    with pytest.raises(InputError):
        s.run(np.zeros((1, 64, 64, 3), np.float32))
    bad = _input(s)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError):
        s.trace(bad)


# -- hostile files ------------------------------------------------------------------------------------


def _model_with_bad_buffer_offset(data: bytes) -> bytes:
    import flatbuffers

    s = schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    b = next(b for b in model.buffers if b.data is not None and len(b.data))
    b.offset, b.size, b.data = len(data) + 4096, len(b.data), None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _hostile(kind: str, tmp_path: Path) -> Path:
    good = zoo.load("blazeface-short").path.read_bytes()
    rng = np.random.default_rng(5)
    if kind == "truncated":
        data = good[: len(good) // 2]
    elif kind == "random_bytes":
        data = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    elif kind == "tfl3_then_garbage":
        data = b"\x1c\x00\x00\x00TFL3" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    elif kind == "buffer_outside_file":
        data = _model_with_bad_buffer_offset(good)
    elif kind == "onnx_renamed":
        data = zoo.load("mtcnn-pnet").path.read_bytes()
    elif kind == "empty":
        data = b""
    elif kind == "tensor_index_out_of_range":
        data = build_tflite([{"name": "x", "shape": [1, 4]}, {"name": "y", "shape": [1, 4]}],
                            [{"op": "RELU", "inputs": [7], "outputs": [1]}], [0], [1])
    else:
        raise AssertionError(kind)
    p = tmp_path / f"{kind}.tflite"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("kind", ["truncated", "random_bytes", "tfl3_then_garbage", "buffer_outside_file",
                                  "onnx_renamed", "empty", "tensor_index_out_of_range"])
def test_hostile_file_gives_model_load_error(kind: str, tmp_path: Path, sessions) -> None:
    path = _hostile(kind, tmp_path)
    with pytest.raises(ModelLoadError) as err:
        load_model(path, backend="litert")
    assert "TFLite" in str(err.value) and err.value.hint
    # the process survived and still runs models
    s = sessions["blazeface-short"]
    assert s.run(_input(s))["classificators"].shape == (1, 896, 1)


def test_error_messages_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="TFL3"):
        read_tflite(_hostile("onnx_renamed", tmp_path))
    with pytest.raises(ModelLoadError, match="outside the"):
        read_tflite(_hostile("buffer_outside_file", tmp_path))
    with pytest.raises(ModelLoadError, match="out of range"):
        read_tflite(_hostile("tensor_index_out_of_range", tmp_path))
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        read_tflite(_hostile("truncated", tmp_path))


def _fresh_model(tmp_path: Path, tag: str, stride: int = 1) -> Path:
    """A valid-looking one-op model with a unique sha256 (the child check runs once per hash)."""
    data = build_tflite(
        [{"name": "x", "shape": [1, 4, 4, 1]},
         {"name": "w", "shape": [1, 1, 1, 1], "data": np.ones((1, 1, 1, 1), np.float32)},
         {"name": "b", "shape": [1], "data": np.full((1,), len(tag), np.float32)},
         {"name": f"y_{tag}", "shape": [1, 4, 4, 1]}],
        [{"op": "CONV_2D", "inputs": [0, 1, 2], "outputs": [3],
          "options": {"padding": "SAME", "stride_h": stride, "stride_w": stride}}], [0], [3])
    p = tmp_path / f"{tag}.tflite"
    p.write_bytes(data)
    return p


def test_file_that_segfaults_litert_is_caught_in_the_child(tmp_path: Path, sessions) -> None:
    """A structurally valid file (the parser accepts it) whose dequantized-weight tensor declares
    a wrong shape: LiteRT segfaults on it (found by fuzzing). Only the child process dies."""
    import flatbuffers

    s = schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(zoo.load("blazeface-short").path.read_bytes()), 0)
    t = next(t for t in model.subgraphs[0].tensors if t.name == b"depthwise_conv2d_5/Kernel_dequantize")
    t.shape = np.array([1, 3, 3, 16515114], dtype=np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "segfault.tflite"
    path.write_bytes(bytes(builder.Output()))
    parse_tflite(path.read_bytes())  # passes the first line of defence
    with pytest.raises(ModelLoadError, match="crashed"):
        load_model(path, backend="litert")
    assert sessions["blazeface-short"].run(_input(sessions["blazeface-short"]))["regressors"].shape == (1, 896, 16)


def test_runtime_refusal_is_caught_in_the_child(tmp_path: Path) -> None:
    path = _fresh_model(tmp_path, "zero_stride", stride=0)  # passes the parser; the kernel refuses it
    parse_tflite(path.read_bytes())
    with pytest.raises(ModelLoadError, match="refuses"):
        load_model(path, backend="litert")


def test_child_crash_becomes_model_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litert, "_CHILD_CODE", "import os; os.abort()")
    with pytest.raises(ModelLoadError, match="crashed"):
        load_model(_fresh_model(tmp_path, "crash"), backend="litert")
    monkeypatch.setattr(litert, "_CHILD_CODE", "import time; time.sleep(30)")
    monkeypatch.setattr(litert, "CHILD_TIMEOUT_S", 1.0)
    with pytest.raises(ModelLoadError, match="hung"):
        load_model(_fresh_model(tmp_path, "hang"), backend="litert")
    monkeypatch.undo()
    s = load_model(_fresh_model(tmp_path, "fine"), backend="litert")  # a clean child: loads
    x = np.ones((1, 4, 4, 1), np.float32)
    np.testing.assert_allclose(s.run(x)["y_fine"], x + 4)


def test_verified_hashes_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _fresh_model(tmp_path, "cached")
    load_model(path, backend="litert")
    calls = []
    monkeypatch.setattr(litert.subprocess, "run", lambda *a, **k: calls.append(a))
    copy = tmp_path / "copy.tflite"
    shutil.copy(path, copy)
    load_model(copy, backend="litert")
    assert calls == []

"""Deferred NCHWc reorders in the onnxruntime capture (workbench/backends/onnx_nchwc.py).

Truth: a loop that writes the NCHWc memory layout element by element (the layout MLAS
documents: channel c of pixel (h, w) at block c // b, lane c % b), and onnxruntime's own
``ReorderOutput`` kernel through the plain capture session (``defer_reorder=False``).
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench.backends import onnxruntime as ort_backend
from workbench.backends.onnx_nchwc import learn_block, unblock


def block_by_loop(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> NCHWc memory, padded channels zero, as onnxruntime reports it: [N, Cpad, H, W]."""
    n, c, h, w = x.shape
    cpad = -(-c // block) * block
    mem = np.zeros((n, cpad // block, h, w, block), x.dtype)
    for i in range(n):
        for ch in range(c):
            mem[i, ch // block, :, :, ch % block] = x[i, ch]
    return mem.reshape(n, cpad, h, w)


@pytest.mark.parametrize("block", [8, 16])
@pytest.mark.parametrize("channels", [3, 16, 40])
def test_unblock_inverts_the_layout_loop(block, channels):
    x = np.random.default_rng(channels).normal(size=(2, channels, 5, 7)).astype(np.float32)
    got = unblock(block_by_loop(x, block), channels, block)
    assert got.flags.c_contiguous and got.shape == x.shape
    np.testing.assert_array_equal(got, x)


def test_learn_block_finds_the_one_block_and_refuses_to_guess():
    x = np.random.default_rng(0).normal(size=(1, 32, 6, 6)).astype(np.float32)
    assert learn_block(block_by_loop(x, 8), x) == 8
    assert learn_block(block_by_loop(x, 16), x) == 16
    flat = np.ones_like(x)  # every block size reproduces a constant tensor: ambiguous
    assert learn_block(block_by_loop(flat, 8), flat) is None
    assert learn_block(block_by_loop(x, 8)[:, :, :5], x) is None  # shapes that do not fit


@pytest.fixture()
def yolo(monkeypatch):
    # shapes-yolov8 captures ~3 MB: below the size from which reorders are deferred by default
    monkeypatch.setattr(ort_backend, "DEFER_REORDER_MIN_BYTES", 0)
    return workbench.load_model("shapes-yolov8", backend="onnxruntime")


def _frame(session, seed=0):
    spec = session.input_specs[0]
    return np.random.default_rng(seed).uniform(0, 1, spec.shape).astype(np.float32)


def test_deferred_capture_equals_onnxruntime_reorders_bit_for_bit(yolo):
    x = _frame(yolo)
    deferred = yolo.trace(x, fuse_silu=False)
    reordered = yolo.trace(x, defer_reorder=False)
    info = deferred.notes["capture"].get("deferred_reorders")
    if info is None:
        pytest.skip("onnxruntime uses no NCHWc layout on this CPU: nothing is deferred")
    assert info["tensors"] > 20 and info["block"] in (8, 16)
    assert "deferred_reorders" not in reordered.notes["capture"]
    assert list(deferred.store) == list(reordered.store)
    for name in reordered.store:
        a, b = deferred.store[name], reordered.store[name]
        assert a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous, name
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32), err_msg=name)
        assert deferred.store.stats(name) == reordered.store.stats(name)
    for layer_a, layer_b in zip(deferred.layers, reordered.layers):
        assert layer_a.output_shapes == layer_b.output_shapes
    # the graph outputs agree with run() as in any deployed capture
    for name, value in yolo.run(x).items():
        np.testing.assert_allclose(deferred.store[name], value, rtol=1e-4, atol=1e-4)


def test_deferred_tensors_save_as_nchw_and_reopen_without_the_model(yolo, tmp_path):
    x = _frame(yolo, 1)
    rec = yolo.trace(x)
    if "deferred_reorders" not in rec.notes["capture"]:
        pytest.skip("no NCHWc layout on this CPU")
    rec.save(tmp_path / "t")
    back = workbench.open_trace(tmp_path / "t").inference
    want = yolo.trace(x, defer_reorder=False)
    for name in want.store:
        np.testing.assert_array_equal(back.store[name], want.store[name], err_msg=name)


def test_fused_silu_sigmoids_are_recomputed_by_onnxruntime_bit_for_bit(yolo):
    x = _frame(yolo, 3)
    fused = yolo.trace(x)
    plain = yolo.trace(x, defer_reorder=False)
    info = fused.notes["capture"].get("fused_silu")
    if info is None:
        pytest.skip("no NCHWc layout on this CPU: the plain capture runs")
    sigmoids = [layer.outputs[0] for layer in plain.layers if layer.op_type == "Sigmoid"]
    silu = [s for s in sigmoids if any(layer.op_type == "Mul" and s in layer.inputs for layer in plain.layers)]
    assert info["sigmoids"] == len(silu) > 10
    assert list(fused.store) == list(plain.store)
    for name in silu:  # the same kernel on the same input: the same bits
        np.testing.assert_array_equal(fused.store[name], plain.store[name], err_msg=name)
    for name in plain.store:  # the fused Mul (QuickGelu) may differ from Sigmoid then Mul in the last bit
        a, b = fused.store[name], plain.store[name]
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(float(np.abs(b).max()), 1e-6) if b.dtype.kind == "f" and b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * scale, err_msg=name)
    for name, value in yolo.run(x).items():  # and the graph outputs agree with run()
        np.testing.assert_allclose(fused.store[name], value, rtol=1e-5, atol=1e-5)


def test_a_dropped_record_frees_its_tensors_without_the_garbage_collector(yolo):
    import gc
    import weakref

    rec = yolo.trace(_frame(yolo, 4))
    if "fused_silu" not in rec.notes["capture"]:
        pytest.skip("no NCHWc layout on this CPU")
    gc.disable()
    try:
        ref = weakref.ref(rec.store)
        del rec
        assert ref() is None  # no reference cycle through the deferred Sigmoids
    finally:
        gc.enable()


def test_a_layout_that_does_not_check_out_falls_back_to_plain_capture(monkeypatch):
    monkeypatch.setattr(ort_backend, "DEFER_REORDER_MIN_BYTES", 0)
    session = workbench.load_model("shapes-yolov8", backend="onnxruntime")
    monkeypatch.setattr(ort_backend, "learn_block", lambda blocked, nchw: None)
    x = _frame(session, 2)
    want = session.trace(x, defer_reorder=False)
    for _ in range(ort_backend._BLOCK_LEARNING_TRIES + 1):
        got = session.trace(x)
        assert "deferred_reorders" not in got.notes["capture"]
        for name in want.store:
            np.testing.assert_array_equal(got.store[name], want.store[name], err_msg=name)
    assert all(v is None for v in session._blocked.values())  # given up after the tries
    # a blocked tensor whose shape does not fit the learned block is never trusted either
    session2 = workbench.load_model("shapes-yolov8", backend="onnxruntime")
    session2._block_size = None
    monkeypatch.setattr(ort_backend, "learn_block", lambda blocked, nchw: 64)
    got = session2.trace(x)
    assert "deferred_reorders" not in got.notes["capture"]
    for name in want.store:
        np.testing.assert_array_equal(got.store[name], want.store[name], err_msg=name)

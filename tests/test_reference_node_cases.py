"""The reference interpreter against the node test cases that ship with the ``onnx`` package.

Every case whose ops are all in ``SUPPORTED_ONNX_OPS`` must either reproduce the expected
outputs (dtype, shape and values within the case's rtol/atol, onnx's own backend-test
tolerance) or fail at *load time* with ``UnsupportedOpError``. The cases that fail at load are
listed in ``KNOWN_UNSUPPORTED`` with the reason; a new one fails this file, and so does a
listed one that starts to work (so the list stays true). Cases whose ops are not all
registered must fail at load with ``UnsupportedOpError`` too.

``python tests/test_reference_node_cases.py`` prints the counts per op.
"""

from __future__ import annotations

import collections
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")

from workbench.backends.reference import SUPPORTED_ONNX_OPS  # noqa: E402
from workbench.backends.reference.onnx_graph import load_onnx_program  # noqa: E402
from workbench.backends.reference.program import execute  # noqa: E402
from workbench.errors import UnsupportedOpError  # noqa: E402

#: element types the interpreter represents (torch computes with them exactly); a case that
#: touches any other type (uint16/32/64, string, bfloat16, float8, int4, ...) must be refused
REPRESENTABLE = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.UINT8,
    onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
    onnx.TensorProto.BOOL,
}

#: case name -> why the reference refuses it at load time (besides unrepresentable types)
KNOWN_UNSUPPORTED: dict[str, str] = {
    "test_batchnorm_example_training_mode": "BatchNormalization training_mode=1 (batch statistics)",
    "test_batchnorm_epsilon_training_mode": "BatchNormalization training_mode=1 (batch statistics)",
    **{f"test_training_dropout{s}": "Dropout in training mode is random"
       for s in ("", "_mask", "_default", "_default_mask", "_zero_ratio", "_zero_ratio_mask")},
}

#: cases whose expected data contradict the spec, so we follow onnxruntime instead: the test
#: checks that we match onnxruntime there and that the expected data still differ
KNOWN_DEVIATIONS: dict[str, str] = {
    name: "align_corners with a non-integer scale * length: the spec (x_resized * (length_original"
    " - 1) / (length_resized - 1), length_resized = the output's length) and onnxruntime use the"
    " integer output length; onnx's reference implementation uses the fractional scale * length"
    for name in ("test_resize_downsample_scales_linear_align_corners",
                 "test_resize_downsample_scales_cubic_align_corners")
}

#: float16 results are compared within 2 ulp: torch accumulates half-precision reductions
#: (Softmax, MatMul) in float32 and rounds once, numpy rounds every step
FLOAT16_RTOL = 2.0 ** -9


def unrepresentable(case: Any) -> str | None:
    """Why a case cannot run on torch dtypes (None when it can), read from the model itself."""
    g = case.model.graph
    values = [*g.input, *g.output, *g.value_info]
    for v in values:
        if not v.type.HasField("tensor_type"):
            return f"{v.name} is not a tensor"
        if v.type.tensor_type.elem_type not in REPRESENTABLE:
            return f"{v.name} is {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)}"
    for init in g.initializer:
        if init.data_type not in REPRESENTABLE:
            return f"initializer {init.name} is {onnx.TensorProto.DataType.Name(init.data_type)}"
    for n in g.node:
        for a in n.attribute:
            if a.name == "to" and a.i not in REPRESENTABLE:
                return f"{n.op_type} to {onnx.TensorProto.DataType.Name(a.i)}"
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in REPRESENTABLE:
                return f"{n.op_type} attribute {a.name} is {onnx.TensorProto.DataType.Name(a.t.data_type)}"
    return None


@lru_cache(maxsize=1)
def all_cases() -> tuple[Any, ...]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(collect_testcases(None))


def op_types(case: Any) -> set[str]:
    return {n.op_type for n in case.model.graph.node}


def main_op(case: Any) -> str:
    """The op a single-op case is about; multi-node cases (function expansions) share a row."""
    ops = {n.op_type for n in case.model.graph.node}
    return next(iter(ops)) if len(ops) == 1 else "(multi-op graphs: function expansions)"


def supported_cases() -> list[Any]:
    return [c for c in all_cases() if op_types(c) <= SUPPORTED_ONNX_OPS and c.data_sets]


def unsupported_cases() -> list[Any]:
    """One case per op type that is not registered (the first that has only that op missing)."""
    seen: dict[str, Any] = {}
    for c in all_cases():
        missing = op_types(c) - SUPPORTED_ONNX_OPS
        if len(missing) == 1:
            seen.setdefault(next(iter(missing)), c)
    return [seen[k] for k in sorted(seen)]


def _array(a: Any) -> np.ndarray:
    return onnx.numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)


def onnxruntime_outputs(case: Any, inputs: list[Any]) -> list[np.ndarray]:
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    model.ir_version = min(model.ir_version, 10)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: _array(a) for i, a in zip(sess.get_inputs(), inputs)})


def run_case(case: Any) -> str:
    """'passed' or 'unsupported'; raises AssertionError on a wrong answer."""
    try:
        program = load_onnx_program(case.model)
    except UnsupportedOpError:
        return "unsupported"
    names = [s.name for s in program.inputs]
    for inputs, expected in case.data_sets:
        if case.name in KNOWN_DEVIATIONS:
            documented = [_array(e) for e in expected]
            expected = onnxruntime_outputs(case, inputs)
            assert any(not np.allclose(d, e, rtol=case.rtol, atol=case.atol) for d, e in zip(documented, expected))
        feeds = {n: torch.from_numpy(np.array(_array(a), copy=True)) for n, a in zip(names, inputs)}
        with torch.no_grad():
            got = execute(program, feeds)
        assert len(expected) <= len(program.outputs)
        for spec, want in zip(program.outputs, expected):
            out, want = got[spec.name].numpy(), _array(want)
            assert out.dtype == want.dtype, f"{spec.name}: dtype {out.dtype}, expected {want.dtype}"
            assert out.shape == want.shape, f"{spec.name}: shape {out.shape}, expected {want.shape}"
            if want.dtype.kind in "biu":
                np.testing.assert_array_equal(out, want, err_msg=spec.name)
            else:
                rtol = max(case.rtol, FLOAT16_RTOL) if want.dtype == np.float16 else case.rtol
                np.testing.assert_allclose(out, want, rtol=rtol, atol=case.atol, err_msg=spec.name)
    return "passed"


@pytest.mark.parametrize("case", supported_cases(), ids=lambda c: c.name)
def test_node_case(case: Any) -> None:
    outcome = run_case(case)
    why = KNOWN_UNSUPPORTED.get(case.name) or unrepresentable(case)
    if outcome == "unsupported":
        if why is None:
            with pytest.raises(UnsupportedOpError) as info:
                load_onnx_program(case.model)
            pytest.fail(f"{case.name} raises UnsupportedOpError but is not documented: {info.value}")
        pytest.skip(f"refused at load time (documented): {why}")
    assert case.name not in KNOWN_UNSUPPORTED, f"{case.name} works now: remove it from KNOWN_UNSUPPORTED"


@pytest.mark.parametrize("case", unsupported_cases(), ids=lambda c: c.name)
def test_unregistered_op_fails_at_load(case: Any) -> None:
    missing = sorted(op_types(case) - SUPPORTED_ONNX_OPS)
    with pytest.raises(UnsupportedOpError) as info:
        load_onnx_program(case.model)
    assert missing[0] in str(info.value)
    assert "onnxruntime" in str(info.value)  # says what to do next


def test_known_unsupported_names_exist() -> None:
    names = {c.name for c in supported_cases()}
    stale = sorted(set(KNOWN_UNSUPPORTED) - names)
    assert not stale, f"KNOWN_UNSUPPORTED names no supported case: {stale}"


def summary() -> dict[str, collections.Counter]:
    """op -> Counter(passed / unsupported-type / unsupported / failed) over the supported cases."""
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for c in supported_cases():
        try:
            outcome = run_case(c)
        except Exception:  # noqa: BLE001 - counted here, shown by test_node_case
            outcome = "failed"
        if outcome == "unsupported" and c.name not in KNOWN_UNSUPPORTED and unrepresentable(c):
            outcome = "unsupported-type"
        table[main_op(c)][outcome] += 1
    return table


if __name__ == "__main__":
    t = summary()
    total: collections.Counter = collections.Counter()
    keys = ("passed", "unsupported-type", "unsupported", "failed")
    print(f"{'op':40s} " + " ".join(f"{k:>16s}" for k in keys))
    for op in sorted(t):
        total.update(t[op])
        print(f"{op[:40]:40s} " + " ".join(f"{t[op][k]:16d}" for k in keys))
    print(f"{'TOTAL':40s} " + " ".join(f"{total[k]:16d}" for k in keys))

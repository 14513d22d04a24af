"""The reference interpreter's TFLite half, checked against LiteRT itself.

Independent truth is the TFLite runtime: (1) one-op models packed with ``build_tflite`` (no
converter needed) run on LiteRT's builtin kernels and on the reference; every registered op
has cases here (a test checks that); (2) per-layer parity on the zoo models: each reference op
is fed the inputs LiteRT's faithful trace captured and must reproduce LiteRT's captured output;
(3) whole-model parity; (4) gradients checked against finite differences *of LiteRT*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from workbench import zoo
from workbench.backends.litert import runtime
from workbench.backends.reference.program import execute
from workbench.backends.reference.registry import TFLITE_OPS
from workbench.backends.reference.tflite_graph import (
    SUPPORTED_TFLITE_OPS, load_tflite_program, program_from_graph,
)
from workbench.backends.tflite_model import build_tflite, parse_tflite
from workbench.capture import Quantization
from workbench.errors import UnsupportedOpError

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(1234)


# -- one-op models --------------------------------------------------------------------------------


def T(shape: tuple[int, ...] | list[int], dtype: str = "float32", data: Any = None,
      q: Quantization | None = None, name: str | None = None) -> dict[str, Any]:
    """A tensor spec for build_tflite; ``data`` makes it a constant."""
    if data is not None:
        data = np.asarray(data, dtype=dtype)
        shape = data.shape
    return {"name": name, "shape": list(shape), "dtype": dtype, "data": data, "quantization": q}


def C(data: Any, dtype: str = "int32") -> dict[str, Any]:
    return T((), dtype, data)


def one_op(op: str, ins: list[dict | None], outs: list[dict], options: dict | None = None,
           version: int = 1) -> bytes:
    """A model with one op; ``None`` in ``ins`` is an omitted optional input (-1)."""
    tensors: list[dict] = []
    idx_in = []
    for t in ins:
        if t is None:
            idx_in.append(-1)
            continue
        idx_in.append(len(tensors))
        tensors.append(t)
    idx_out = list(range(len(tensors), len(tensors) + len(outs)))
    tensors += outs
    for i, t in enumerate(tensors):
        t["name"] = t["name"] or f"t{i}"
    graph_in = [i for i in idx_in if i >= 0 and tensors[i]["data"] is None]
    return build_tflite(tensors, [{"op": op, "inputs": idx_in, "outputs": idx_out, "options": options or {},
                                   "version": version}], graph_in, idx_out)


def chain(ops: list[tuple[str, list[int], list[int], dict]], tensors: list[dict], inputs: list[int],
          outputs: list[int]) -> bytes:
    for i, t in enumerate(tensors):
        t["name"] = t["name"] or f"t{i}"
    return build_tflite(tensors, [{"op": o, "inputs": i, "outputs": r, "options": opt} for o, i, r, opt in ops],
                        inputs, outputs)


def random_feed(dtype: str, shape: tuple[int, ...], positive: bool = False) -> np.ndarray:
    if dtype.startswith("int"):
        return RNG.integers(-5, 6, size=shape).astype(dtype)
    a = RNG.normal(size=shape).astype(dtype) * 2
    return np.abs(a) + 0.5 if positive else a


def run_litert(data: bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    rt = runtime()
    it = rt.interpreter(model_content=data,
                        experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def run_reference(data: bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    prog = program_from_graph(parse_tflite(data))
    out = execute(prog, {s.name: torch.from_numpy(x) for s, x in zip(prog.inputs, feeds)})
    return [out[s.name].detach().numpy() for s in prog.outputs]


def x(*shape: int) -> dict[str, Any]:
    return T(shape)


def w(*shape: int, dtype: str = "float32") -> dict[str, Any]:
    return T(shape, dtype, RNG.normal(size=shape))


# op -> list of (case id, model bytes builder, positive inputs?, tolerance in LSB-or-relative)
Case = tuple[str, Callable[[], bytes], bool]
CASES: dict[str, list[Case]] = {
    "CONV_2D": [
        ("same_s2_odd_relu6", lambda: one_op("CONV_2D", [x(1, 7, 9, 3), w(4, 3, 3, 3), w(4)], [x(1, 4, 5, 4)],
                                             {"padding": "SAME", "stride_h": 2, "stride_w": 2,
                                              "fused_activation_function": "RELU6"}), False),
        ("valid_dilated", lambda: one_op("CONV_2D", [x(1, 9, 9, 2), w(3, 3, 2, 2), w(3)], [x(1, 5, 7, 3)],
                                                {"padding": "VALID", "stride_h": 1, "stride_w": 1,
                                                 "dilation_h_factor": 2, "dilation_w_factor": 1}), False),
        ("same_5x5_s2_even", lambda: one_op("CONV_2D", [x(1, 8, 8, 3), w(5, 5, 5, 3), w(5)], [x(1, 4, 4, 5)],
                                            {"padding": "SAME", "stride_h": 2, "stride_w": 2}), False),
    ],
    "DEPTHWISE_CONV_2D": [
        ("same_s2_mult2_relu", lambda: one_op("DEPTHWISE_CONV_2D", [x(1, 7, 7, 3), w(1, 3, 3, 6), w(6)],
                                              [x(1, 4, 4, 6)],
                                              {"padding": "SAME", "stride_h": 2, "stride_w": 2, "depth_multiplier": 2,
                                               "fused_activation_function": "RELU"}), False),
        ("valid_s1", lambda: one_op("DEPTHWISE_CONV_2D", [x(1, 6, 5, 4), w(1, 3, 3, 4), w(4)], [x(1, 4, 3, 4)],
                                    {"padding": "VALID", "stride_h": 1, "stride_w": 1, "depth_multiplier": 1}), False),
    ],
    "TRANSPOSE_CONV": [
        ("same_s2", lambda: one_op("TRANSPOSE_CONV", [C([1, 8, 8, 2]), w(2, 3, 3, 3), x(1, 4, 4, 3)], [x(1, 8, 8, 2)],
                                   {"padding": "SAME", "stride_h": 2, "stride_w": 2}), False),
        ("valid_s2_bias", lambda: one_op("TRANSPOSE_CONV", [C([1, 9, 9, 2]), w(2, 3, 3, 3), x(1, 4, 4, 3), w(2)],
                                         [x(1, 9, 9, 2)], {"padding": "VALID", "stride_h": 2, "stride_w": 2},
                                         version=3), False),
        ("same_s2_odd_out", lambda: one_op("TRANSPOSE_CONV", [C([1, 7, 7, 2]), w(2, 4, 4, 3), x(1, 4, 4, 3)],
                                           [x(1, 7, 7, 2)], {"padding": "SAME", "stride_h": 2, "stride_w": 2}), False),
    ],
    "FULLY_CONNECTED": [
        ("bias_relu", lambda: one_op("FULLY_CONNECTED", [x(2, 6), w(4, 6), w(4)], [x(2, 4)],
                                     {"fused_activation_function": "RELU"}), False),
        ("keep_num_dims", lambda: one_op("FULLY_CONNECTED", [x(1, 3, 6), w(5, 6), None], [x(1, 3, 5)],
                                         {"keep_num_dims": True}), False),
        ("flatten", lambda: one_op("FULLY_CONNECTED", [x(1, 2, 2, 3), w(5, 12), w(5)], [x(1, 5)]), False),
    ],
    "MAX_POOL_2D": [
        ("same_3x3_s2", lambda: one_op("MAX_POOL_2D", [x(1, 7, 8, 3)], [x(1, 4, 4, 3)],
                                       {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_height": 3,
                                        "filter_width": 3}), False),
        ("valid_2x2", lambda: one_op("MAX_POOL_2D", [x(1, 6, 6, 2)], [x(1, 3, 3, 2)],
                                     {"padding": "VALID", "stride_h": 2, "stride_w": 2, "filter_height": 2,
                                      "filter_width": 2, "fused_activation_function": "RELU"}), False),
    ],
    "AVERAGE_POOL_2D": [
        ("same_3x3_s2", lambda: one_op("AVERAGE_POOL_2D", [x(1, 7, 8, 3)], [x(1, 4, 4, 3)],
                                       {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_height": 3,
                                        "filter_width": 3}), False),
        ("valid_global", lambda: one_op("AVERAGE_POOL_2D", [x(1, 5, 5, 4)], [x(1, 1, 1, 4)],
                                        {"padding": "VALID", "stride_h": 1, "stride_w": 1, "filter_height": 5,
                                         "filter_width": 5}), False),
    ],
    "RESIZE_BILINEAR": [
        (f"{mode}_{d}", (lambda m=mode, s=size: one_op(
            "RESIZE_BILINEAR", [x(1, 5, 6, 2), C(s)], [x(1, *s, 2)],
            {"align_corners": m == "align", "half_pixel_centers": m == "half"}, version=3 if m == "half" else 1)),
         False)
        for mode in ("align", "half", "legacy") for d, size in (("up", [11, 9]), ("down", [3, 4]))
    ],
    "RESIZE_NEAREST_NEIGHBOR": [
        (f"{mode}_{d}", (lambda m=mode, s=size: one_op(
            "RESIZE_NEAREST_NEIGHBOR", [x(1, 5, 6, 2), C(s)], [x(1, *s, 2)],
            {"align_corners": m == "align", "half_pixel_centers": m == "half"}, version=3 if m == "half" else 1)),
         False)
        for mode in ("align", "half", "legacy") for d, size in (("up", [11, 9]), ("down", [3, 4]))
    ],
    "RESHAPE": [
        ("shape_input", lambda: one_op("RESHAPE", [x(1, 4, 3, 2), C([1, -1, 6])], [x(1, 4, 6)]), False),
        ("options_only", lambda: one_op("RESHAPE", [x(1, 4, 3, 2)], [x(2, 12)], {"new_shape": [2, -1]}), False),
    ],
    "TRANSPOSE": [("perm", lambda: one_op("TRANSPOSE", [x(1, 4, 3, 2), C([0, 3, 1, 2])], [x(1, 2, 4, 3)]), False)],
    "SQUEEZE": [
        ("dims", lambda: one_op("SQUEEZE", [x(1, 4, 1, 2)], [x(4, 2)], {"squeeze_dims": [0, -2]}), False),
        ("all", lambda: one_op("SQUEEZE", [x(1, 4, 1, 2)], [x(4, 2)]), False),
    ],
    "EXPAND_DIMS": [("neg_axis", lambda: one_op("EXPAND_DIMS", [x(4, 3), C([-1])], [x(4, 3, 1)]), False)],
    "CONCATENATION": [
        ("last", lambda: one_op("CONCATENATION", [x(1, 2, 2, 3), x(1, 2, 2, 5)], [x(1, 2, 2, 8)], {"axis": -1}),
         False),
        ("const_axis1", lambda: one_op("CONCATENATION", [x(1, 3, 4), w(1, 2, 4)], [x(1, 5, 4)], {"axis": 1}), False),
    ],
    "SPLIT": [("three", lambda: one_op("SPLIT", [C([-1]), x(1, 2, 6)], [x(1, 2, 2), x(1, 2, 2), x(1, 2, 2)],
                                       {"num_splits": 3}), False)],
    "SPLIT_V": [("minus_one", lambda: one_op("SPLIT_V", [x(1, 7, 2), C([2, -1, 1]), C([1])],
                                             [x(1, 2, 2), x(1, 4, 2), x(1, 1, 2)], {"num_splits": 3}), False)],
    "SLICE": [("size_minus_one", lambda: one_op("SLICE", [x(2, 5, 4), C([1, 1, 0]), C([1, -1, 3])],
                                                [x(1, 4, 3)]), False)],
    "STRIDED_SLICE": [
        ("masks_shrink", lambda: one_op("STRIDED_SLICE", [x(3, 8, 5), C([1, -7, 0]), C([2, 8, 5]), C([1, 2, 1])],
                                        [x(4, 5)], {"begin_mask": 0b100, "end_mask": 0b010,
                                                    "shrink_axis_mask": 0b001}), False),
        ("negative_stride", lambda: one_op("STRIDED_SLICE", [x(2, 7, 3), C([0, -1, 0]), C([2, 0, 3]), C([1, -2, 1])],
                                           [x(2, 3, 3)], {"begin_mask": 0b001}), False),
        ("end_mask_neg", lambda: one_op("STRIDED_SLICE", [x(6, 4), C([-4, 1]), C([0, 3]), C([1, 1])],
                                        [x(4, 2)], {"end_mask": 0b01}), False),
    ],
    "GATHER": [
        ("axis1", lambda: one_op("GATHER", [x(2, 5, 3), C([[4, 0], [2, 2]])], [x(2, 2, 2, 3)], {"axis": 1}), False),
        ("axis0_vector", lambda: one_op("GATHER", [x(6, 2), C([5, 1, 3])], [x(3, 2)], {"axis": 0}), False),
    ],
    "PAD": [("asym", lambda: one_op("PAD", [x(1, 3, 4, 2), C([[0, 0], [1, 2], [0, 1], [0, 3]])], [x(1, 6, 5, 5)]),
             False)],
    "PADV2": [("value", lambda: one_op("PADV2", [x(1, 3, 4, 2), C([[0, 0], [2, 0], [1, 1], [0, 0]]),
                                                 T((), "float32", 1.5)], [x(1, 5, 6, 2)]), False)],
    "CAST": [
        ("float_to_int32", lambda: one_op("CAST", [x(3, 4)], [T((3, 4), "int32")],
                                          {"in_data_type": "float32", "out_data_type": "int32"}), False),
        ("int32_to_float", lambda: one_op("CAST", [T((3, 4), "int32")], [x(3, 4)],
                                          {"in_data_type": "int32", "out_data_type": "float32"}), False),
    ],
    "MEAN": [("hw_keep", lambda: one_op("MEAN", [x(1, 4, 5, 3), C([1, 2])], [x(1, 1, 1, 3)], {"keep_dims": True}),
              False)],
    "SUM": [("last", lambda: one_op("SUM", [x(2, 3, 4), C([-1])], [x(2, 3)], {"keep_dims": False}), False)],
    "REDUCE_MAX": [("axis1", lambda: one_op("REDUCE_MAX", [x(2, 3, 4), C([1])], [x(2, 4)]), False)],
    "REDUCE_MIN": [("axis02", lambda: one_op("REDUCE_MIN", [x(2, 3, 4), C([0, 2])], [x(1, 3, 1)],
                                             {"keep_dims": True}), False)],
    "REDUCE_PROD": [("axis1", lambda: one_op("REDUCE_PROD", [x(2, 3, 4), C([1])], [x(2, 4)]), False)],
    "LEAKY_RELU": [("alpha", lambda: one_op("LEAKY_RELU", [x(2, 8)], [x(2, 8)], {"alpha": 0.1}), False)],
    "PRELU": [("channel_alpha", lambda: one_op("PRELU", [x(1, 3, 3, 4), w(1, 1, 4)], [x(1, 3, 3, 4)]), False)],
    "SOFTMAX": [("beta", lambda: one_op("SOFTMAX", [x(2, 10)], [x(2, 10)], {"beta": 0.5}), False)],
    "LOG_SOFTMAX": [("plain", lambda: one_op("LOG_SOFTMAX", [x(2, 10)], [x(2, 10)]), False)],
    "GELU": [(f"approx_{a}", (lambda a=a: one_op("GELU", [x(2, 16)], [x(2, 16)], {"approximate": a})), False)
             for a in (False, True)],
    "QUANTIZE": [],  # covered by the quantized chains below
    "DEQUANTIZE": [
        ("float16_weights", lambda: chain(
            [("DEQUANTIZE", [0], [1], {}), ("ADD", [2, 1], [3], {})],
            [T((2, 3), "float16", RNG.normal(size=(2, 3))), x(2, 3), x(2, 3), x(2, 3)], [2], [3]), False),
        ("int8_per_channel_weights", lambda: chain(
            [("DEQUANTIZE", [0], [1], {}),
             ("CONV_2D", [2, 1, 4], [3], {"padding": "SAME", "stride_h": 1, "stride_w": 1})],
            [T((3, 1, 1, 2), "int8", RNG.integers(-127, 128, size=(3, 1, 1, 2)),
               q=Quantization((0.02, 0.05, 0.01), (0, 0, 0), 0)), x(3, 1, 1, 2), x(1, 4, 4, 2), x(1, 4, 4, 3), w(3)],
            [2], [3]), False),
    ],
}
for _op in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"):
    CASES[_op] = [
        ("broadcast", (lambda o=_op: one_op(o, [x(1, 3, 4, 3), w(3)], [x(1, 3, 4, 3)])), False),
        ("same_shape_relu" if _op in ("ADD", "SUB", "MUL") else "same_shape",
         (lambda o=_op: one_op(o, [x(2, 5), x(2, 5)], [x(2, 5)],
                               {"fused_activation_function": "RELU"} if o in ("ADD", "SUB", "MUL") else None)),
         False),
    ]
CASES["DIV"] = [("positive", lambda: one_op("DIV", [x(2, 5), x(2, 5)], [x(2, 5)]), True),
                ("int32_trunc", lambda: one_op("DIV", [T((2, 5), "int32"), C(np.array([[3, -2, 4, 5, -3]] * 2))],
                                               [T((2, 5), "int32")]), False)]
CASES["POW"] = [("positive", lambda: one_op("POW", [x(2, 5), x(2, 5)], [x(2, 5)]), True)]
for _op in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "ABS", "NEG",
            "EXP", "SQUARE"):
    CASES[_op] = [("plain", (lambda o=_op: one_op(o, [x(3, 7)], [x(3, 7)])), False)]
for _op in ("LOG", "SQRT", "RSQRT"):
    CASES[_op] = [("positive", (lambda o=_op: one_op(o, [x(3, 7)], [x(3, 7)])), True)]

PARAMS = [pytest.param(op, cid, build, pos, id=f"{op}-{cid}") for op, cases in CASES.items()
          for cid, build, pos in cases]


def test_every_registered_op_has_cases() -> None:
    quant_chains = {"QUANTIZE"}
    missing = sorted(op for op in TFLITE_OPS if not CASES.get(op) and op not in quant_chains)
    assert not missing, f"registered TFLite ops without a LiteRT parity case: {missing}"
    assert SUPPORTED_TFLITE_OPS == frozenset(TFLITE_OPS)


@pytest.mark.parametrize("op,cid,build,positive", PARAMS)
def test_op_matches_litert(op: str, cid: str, build: Callable[[], bytes], positive: bool) -> None:
    data = build()
    graph = parse_tflite(data)
    feeds = [random_feed(graph.tensors[i].dtype, graph.tensors[i].shape, positive) for i in graph.inputs]
    want = run_litert(data, feeds)
    got = run_reference(data, feeds)
    for a, b in zip(want, got):
        assert a.shape == b.shape, f"{op}/{cid}: shape {b.shape}, LiteRT {a.shape}"
        assert a.dtype == b.dtype, f"{op}/{cid}: dtype {b.dtype}, LiteRT {a.dtype}"
        scale = max(1.0, float(np.abs(a).max()) if a.size else 1.0)
        err = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
        assert err <= 1e-5 * scale, f"{op}/{cid}: max abs error {err:.3g} (scale {scale:.3g})"


# -- quantized (int8) ops: fake quantization lands within one LSB of LiteRT's integer kernels -----


def _q(scale: float, zp: int) -> Quantization:
    return Quantization((scale,), (zp,), 0)


def _int8_chain(op: str, ins_q: list[dict], out_q: Quantization, options: dict | None = None,
                out_shape: tuple[int, ...] | None = None) -> bytes:
    """float inputs -> QUANTIZE -> op (int8) -> DEQUANTIZE -> float output."""
    tensors: list[dict] = []
    ops: list[tuple[str, list[int], list[int], dict]] = []
    op_inputs, graph_in = [], []
    for t in ins_q:
        if t["data"] is not None:
            op_inputs.append(len(tensors))
            tensors.append(t)
            continue
        f = len(tensors)
        tensors.append(T(t["shape"]))
        tensors.append(T(t["shape"], "int8", q=t["quantization"]))
        ops.append(("QUANTIZE", [f], [f + 1], {}))
        graph_in.append(f)
        op_inputs.append(f + 1)
    shape = out_shape or tuple(ins_q[0]["shape"])
    o = len(tensors)
    tensors += [T(shape, "int8", q=out_q), T(shape)]
    ops.append((op, op_inputs, [o], options or {}))
    ops.append(("DEQUANTIZE", [o], [o + 1], {}))
    return chain(ops, tensors, graph_in, [o + 1])


QUANT_CASES = {
    "ADD": lambda: _int8_chain("ADD", [T((1, 4, 4, 3), q=_q(0.05, 3)), T((1, 4, 4, 3), q=_q(0.04, -2))],
                               _q(0.08, 1)),
    "MUL": lambda: _int8_chain("MUL", [T((2, 8), q=_q(0.05, 0)), T((2, 8), q=_q(0.03, 5))], _q(0.01, 0)),
    "MAX_POOL_2D": lambda: _int8_chain("MAX_POOL_2D", [T((1, 6, 6, 2), q=_q(0.05, 0))], _q(0.05, 0),
                                       {"padding": "VALID", "stride_h": 2, "stride_w": 2, "filter_height": 2,
                                        "filter_width": 2}, (1, 3, 3, 2)),
    "AVERAGE_POOL_2D": lambda: _int8_chain("AVERAGE_POOL_2D", [T((1, 6, 6, 2), q=_q(0.05, 0))], _q(0.05, 0),
                                           {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_height": 3,
                                            "filter_width": 3}, (1, 3, 3, 2)),
    "LOGISTIC": lambda: _int8_chain("LOGISTIC", [T((2, 8), q=_q(0.05, 0))], _q(1 / 256, -128)),
    "RESHAPE": lambda: _int8_chain("RESHAPE", [T((2, 8), q=_q(0.05, 0))], _q(0.05, 0), {"new_shape": [4, 4]},
                                   (4, 4)),
    "CONV_2D": lambda: _int8_chain(
        "CONV_2D",
        [T((1, 5, 5, 2), q=_q(0.05, 0)),
         T((3, 3, 3, 2), "int8", RNG.integers(-127, 128, size=(3, 3, 3, 2)),
           q=Quantization((0.01, 0.02, 0.015), (0, 0, 0), 0)),
         T((3,), "int32", RNG.integers(-500, 500, size=3), q=Quantization((0.0005, 0.001, 0.00075), (0, 0, 0), 0))],
        _q(0.1, -3), {"padding": "SAME", "stride_h": 1, "stride_w": 1}, (1, 5, 5, 3)),
}


@pytest.mark.parametrize("op", sorted(QUANT_CASES))
def test_int8_op_within_one_lsb_of_litert(op: str) -> None:
    data = QUANT_CASES[op]()
    graph = parse_tflite(data)
    feeds = [random_feed("float32", graph.tensors[i].shape) for i in graph.inputs]
    want, got = run_litert(data, feeds)[0], run_reference(data, feeds)[0]
    out_q = next(t.quantization for t in graph.tensors if t.is_quantized and t.index == graph.operators[-1].inputs[0])
    lsb = out_q.scale[0]
    err = np.abs(want - got).max()
    assert err <= 1.01 * lsb, f"int8 {op}: error {err:.4g} > 1 LSB ({lsb:.4g})"
    assert np.mean(np.abs(want - got) < 1e-6) > 0.9, f"int8 {op}: fewer than 90% of values exact"


# -- zoo models: per-layer and whole-model parity, gradients --------------------------------------


def _zoo_models() -> list[str]:
    return ["blazeface-short", "blazeface-full"]


@pytest.fixture(scope="module")
def zoo_traces() -> dict[str, Any]:
    """Faithful LiteRT traces (capture all) of the zoo models on a fixed input."""
    from workbench.backends import load_model

    out = {}
    for m in _zoo_models():
        s = load_model(m, backend="litert", compare_deployed=False)
        xin = np.random.default_rng(7).uniform(-1, 1, s.input_specs[0].shape).astype(np.float32)
        out[m] = (s, xin, s.trace(xin))
    return out


@pytest.mark.parametrize("model", _zoo_models())
def test_per_layer_parity_with_litert(model: str, zoo_traces: dict[str, Any]) -> None:
    session, _, rec = zoo_traces[model]
    prog = load_tflite_program(session.path)
    assert [n.info.op_type for n in prog.nodes] == [layer.op_type for layer in rec.layers]
    worst: dict[str, float] = {}
    for node in prog.nodes:
        args = [None if not k else (prog.constants[k] if k in prog.constants else torch.from_numpy(
            np.array(rec.store[k]))) for k in node.info.inputs]
        outs = node.fn(*args)
        for k, y in zip(node.info.outputs, outs):
            want = np.asarray(rec.store[k])
            got = y.detach().numpy()
            assert got.shape == want.shape, f"{node.info.name}: shape {got.shape} vs {want.shape}"
            scale = max(float(np.abs(want).max()), 1e-6)
            rel = float(np.abs(got - want).max()) / scale
            worst[node.info.op_type] = max(worst.get(node.info.op_type, 0.0), rel)
            assert rel < 1e-4, f"{model} {node.info.op_type} {node.info.name!r}: error {rel:.3g} of the tensor's scale"
    print(f"\n{model} per-layer max error / tensor scale by op: " +
          ", ".join(f"{k}={v:.2g}" for k, v in sorted(worst.items())))


def _parity_models() -> list[Any]:
    models: list[Any] = [m for m in _zoo_models()]
    extra = REPO / "models" / "shapes-cls.tflite"
    models.append(pytest.param(str(extra), marks=pytest.mark.skipif(not extra.is_file(),
                                                                    reason="models/shapes-cls.tflite not trained yet")))
    return models


@pytest.mark.parametrize("model", _parity_models())
def test_whole_model_parity(model: str) -> None:
    path = zoo.load(model).path if not model.endswith(".tflite") else Path(model)
    data = Path(path).read_bytes()
    prog = load_tflite_program(path)
    graph = parse_tflite(data)
    feeds = []
    for i in graph.inputs:
        t = graph.tensors[i]
        feeds.append(np.random.default_rng(3).uniform(-1, 1, t.shape).astype(t.dtype) if t.dtype.startswith("float")
                     else np.random.default_rng(3).integers(0, 255, t.shape).astype(t.dtype))
    want = run_litert(data, feeds)
    got = execute(prog, {s.name: torch.from_numpy(f) for s, f in zip(prog.inputs, feeds)})
    for t_idx, a in zip(graph.outputs, want):
        t = graph.tensors[t_idx]
        b = got[t.key].detach().numpy()
        if t.is_quantized:
            a = t.quantization.dequantize(a)
        err = float(np.abs(a - b).max()) / max(float(np.abs(a).max()), 1e-6)
        print(f"\n{Path(str(model)).name} output {t.key}: max error / scale {err:.2g}")
        assert err < 1e-4


def test_gradient_matches_litert_finite_differences(zoo_traces: dict[str, Any]) -> None:
    """d(sum of scores)/d(input) from the reference, against a central difference of LiteRT."""
    session, xin, _ = zoo_traces["blazeface-short"]
    prog = load_tflite_program(session.path)
    xt = torch.from_numpy(xin.copy()).requires_grad_(True)
    out = execute(prog, {prog.inputs[0].name: xt})
    score = out["classificators"].sum()
    score.backward()
    g = xt.grad.numpy()
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    rt = runtime()
    it = rt.interpreter(model_content=Path(session.path).read_bytes(),
                        experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    out_idx = session.graph.tensor("classificators").index

    def f(a: np.ndarray) -> float:
        it.set_tensor(session.graph.inputs[0], a.astype(np.float32))
        it.invoke()
        return float(it.get_tensor(out_idx).astype(np.float64).sum())

    rng = np.random.default_rng(11)
    for _ in range(3):
        v = rng.normal(size=xin.shape)
        v /= np.linalg.norm(v)
        eps = 1e-2
        fd = (f(xin + eps * v) - f(xin - eps * v)) / (2 * eps)
        an = float((g.astype(np.float64) * v).sum())
        assert abs(fd - an) <= 0.03 * abs(an) + 1e-3, f"directional derivative {an:.5g}, LiteRT FD {fd:.5g}"


def test_gradient_flows_through_full_range_model() -> None:
    prog = load_tflite_program(zoo.load("blazeface-full").path)
    xt = torch.zeros(prog.inputs[0].shape, requires_grad=True)
    out = execute(prog, {prog.inputs[0].name: xt})
    sum(o.sum() for o in out.values()).backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0


# -- unsupported ------------------------------------------------------------------------------------


def test_unsupported_op_names_op_node_and_litert() -> None:
    data = chain([("RELU", [0], [1], {}), ("ARG_MAX", [1, 2], [3], {"output_type": "int32"})],
                 [x(2, 5), x(2, 5), C([1]), T((2,), "int32", name="argmax_out")], [0], [3])
    with pytest.raises(UnsupportedOpError) as err:
        program_from_graph(parse_tflite(data))
    msg = str(err.value)
    assert "ARG_MAX" in msg and "argmax_out" in msg and "backend='litert'" in msg
    run_litert(data, [np.ones((2, 5), np.float32)])  # LiteRT itself runs it: the model is fine


@pytest.mark.parametrize("op,options,ins,outs", [
    ("STRIDED_SLICE", {"ellipsis_mask": 1}, [x(2, 3), C([0, 0]), C([1, 1]), C([1, 1])], [x(1, 1)]),
    ("STRIDED_SLICE", {"new_axis_mask": 2}, [x(2, 3), C([0, 0]), C([1, 1]), C([1, 1])], [x(1, 1)]),
    ("CONV_2D", {"fused_activation_function": "SIGN_BIT"}, [x(1, 3, 3, 1), w(1, 1, 1, 1), None], [x(1, 3, 3, 1)]),
    ("GATHER", {"batch_dims": 1}, [x(2, 3), C([[0], [1]])], [x(2, 1)]),
    ("FULLY_CONNECTED", {"weights_format": "SHUFFLED4x16INT8"}, [x(1, 4), w(4, 4), None], [x(1, 4)]),
])
def test_unsupported_options_are_refused(op: str, options: dict, ins: list, outs: list) -> None:
    data = one_op(op, ins, outs, options)
    with pytest.raises(UnsupportedOpError, match=op):
        program_from_graph(parse_tflite(data))

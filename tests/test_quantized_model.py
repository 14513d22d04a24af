"""The zoo's real int8 model (shapes-cls-int8): raw and dequantized tensors on LiteRT and on the
reference interpreter, checked against LiteRT's own quantization parameters and kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.backends.litert import runtime
from workbench.capture import DEQUANTIZED_SUFFIX, Quantization, compare_records
from workbench.data.shapes import make_cue_dataset

MODEL = "shapes-cls-int8"


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    images = make_cue_dataset(4, "heldout", seed=1, size=64).images
    return images.astype(np.float32)[:, None] / np.float32(255.0)  # (4, 1, 64, 64, 3)


@pytest.fixture(scope="module")
def traces(frames: np.ndarray) -> list[tuple]:
    lite = wb.load_model(MODEL, backend="litert")
    ref = wb.load_model(MODEL, backend="reference")
    return [(lite.trace(x), ref.trace(x)) for x in frames]


@pytest.fixture(scope="module")
def litert_details() -> dict[str, dict]:
    """Tensor details as LiteRT itself reports them (not our flatbuffer parser)."""
    rt = runtime()
    it = rt.interpreter(model_path=str(wb.zoo.load(MODEL).path),
                        experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return {d["name"]: d for d in it.get_tensor_details()}


def test_model_is_int8_between_float_edges(traces: list[tuple]) -> None:
    rec = traces[0][0]
    ops = [layer.op_type for layer in rec.layers]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE" and ops.count("CONV_2D") == 4
    inner = [layer for layer in rec.layers if layer.op_type not in ("DEQUANTIZE",)]
    assert all(layer.output_dtypes == ("int8",) for layer in inner)


def test_litert_keeps_raw_and_dequantized_with_litert_parameters(traces: list[tuple], litert_details: dict) -> None:
    rec = traces[0][0]
    checked = 0
    for layer in rec.layers:
        for name in layer.outputs:
            if layer.output_dtypes[0] != "int8":
                continue
            raw, real = rec.store[name], rec.store[name + DEQUANTIZED_SUFFIX]
            assert raw.dtype == np.int8 and real.dtype == np.float32
            qp = litert_details[name.split("#")[0]]["quantization_parameters"]
            scale, zp = qp["scales"], qp["zero_points"]
            assert layer.quantization[name].scale == pytest.approx(tuple(scale), rel=1e-7)
            assert layer.quantization[name].zero_point == tuple(int(z) for z in zp)
            want = (raw.astype(np.float64) - zp[0]) * scale[0]
            np.testing.assert_allclose(real, want, rtol=1e-6, atol=1e-7 * scale[0])
            checked += 1
    assert checked == 10


def _round_half_away(v: float) -> int:
    return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def test_quantize_matches_litert_quantize_kernel(traces: list[tuple], frames: np.ndarray) -> None:
    for (rec, _), x in zip(traces, frames):
        layer = rec.layers[0]
        q = layer.quantization[layer.outputs[0]]
        got = q.quantize(x, "int8")
        np.testing.assert_array_equal(got, rec.store[layer.outputs[0]])  # LiteRT's QUANTIZE output
    # and a scalar loop for rounding ties and clipping
    q = Quantization((0.5,), (3,), 0)
    values = np.array([-70.0, -1.25, -0.25, 0.25, 0.75, 1.0, 62.0, 70.0])
    want = [min(127, max(-128, _round_half_away(v / 0.5) + 3)) for v in values]
    assert q.quantize(values, "int8").tolist() == want
    with pytest.raises(ValueError, match="integer dtype"):
        q.quantize(values, "float32")


def test_reference_stores_quantized_tensors_like_litert(traces: list[tuple]) -> None:
    lite, ref = traces[0]
    assert [layer.output_dtypes for layer in ref.layers] == [layer.output_dtypes for layer in lite.layers]
    for layer in ref.layers[:-1]:
        name = layer.outputs[0]
        raw, real = ref.store[name], ref.store[name + DEQUANTIZED_SUFFIX]
        assert raw.dtype == np.int8
        # the reference's real values lie on TFLite's grid: dequantizing the raw gives them back
        np.testing.assert_allclose(layer.quantization[name].dequantize(raw), real, rtol=0, atol=1e-6)


def test_each_reference_op_is_within_one_step_of_litert(traces: list[tuple]) -> None:
    """Every op in isolation: the reference node fed LiteRT's own (dequantized) inputs lands
    within one quantization step of LiteRT's integer kernel."""
    import torch

    program = wb.load_model(MODEL, backend="reference").program
    for lite, _ in traces:
        steps = []
        for node in program.nodes:
            info = node.info
            args = []
            for k in info.inputs:
                if not k or k in info.constants:
                    args.append(info.constants.get(k) if k else None)
                else:
                    real = k + DEQUANTIZED_SUFFIX if k + DEQUANTIZED_SUFFIX in lite.store else k
                    args.append(torch.from_numpy(np.array(lite.store[real])))
            out = node.fn(*args)[0].detach().numpy()
            name = info.outputs[0]
            if name in info.quantization:
                got = info.quantization[name].quantize(out, "int8").astype(np.int64)
                steps.append(int(np.abs(got - lite.store[name].astype(np.int64)).max()))
            else:  # the float output of DEQUANTIZE
                np.testing.assert_allclose(out, lite.store[name], rtol=1e-6, atol=0)
        assert len(steps) == 10 and max(steps) <= 1, steps


def test_whole_reference_model_stays_within_three_steps(traces: list[tuple]) -> None:
    """Run end to end, the per-op steps accumulate a little through the four convolutions."""
    worst = 0
    for lite, ref in traces:
        rows = compare_records(lite, ref)
        quantized = [r for r in rows if r.lsb is not None]
        assert len(quantized) == 10
        for r in quantized:
            a = lite.store[r.tensor].astype(np.int64)
            b = ref.store[r.tensor].astype(np.int64)
            assert r.lsb == int(np.abs(a - b).max())  # compare_records' lsb, recomputed
            worst = max(worst, r.lsb)
            q = lite.layers[r.layer].quantization[r.tensor]
            assert r.max_abs <= r.lsb * q.scale[0] + 1e-6  # real-valued difference follows the raw one
        out = lite.outputs[0]
        out_scale = lite.layers[-1].quantization[lite.layers[-1].inputs[0]].scale[0]
        np.testing.assert_allclose(ref.store[out], lite.store[out], rtol=0, atol=out_scale * 1.001)
        assert int(np.argmax(ref.store[out])) == int(np.argmax(lite.store[out]))
    assert worst <= 3, f"reference drifted {worst} quantization steps from LiteRT's integer kernels"


def test_saved_quantized_trace_reopens(traces: list[tuple], tmp_path: Path) -> None:
    lite = traces[0][0]
    from workbench.capture import Trace, open_trace

    Trace(records={"model": lite}).save(tmp_path / "t")
    back = open_trace(tmp_path / "t").inference
    name = lite.layers[3].outputs[0]
    np.testing.assert_array_equal(back.store[name], lite.store[name])
    np.testing.assert_array_equal(back.store[name + DEQUANTIZED_SUFFIX], lite.store[name + DEQUANTIZED_SUFFIX])
    assert back.layers[3].quantization[name] == lite.layers[3].quantization[name]


# -- gradient attribution on the int8 model: parity is judged in quantization steps ---------------

def test_output_step_is_the_dequantized_tensors_scale(litert_details: dict) -> None:
    from workbench.explain.api import output_steps

    program = wb.load_model(MODEL, backend="reference").program
    steps = output_steps(program)
    (name, (q, step)), = steps.items()
    assert q is None  # a float output, made by DEQUANTIZE
    fc = litert_details["StatefulPartitionedCall_1:01"]["quantization_parameters"]
    assert step == pytest.approx(float(fc["scales"][0]), rel=1e-7)


def _one_step_image() -> tuple[np.ndarray, float, float]:
    """A held-out image on which the reference's output is one step off LiteRT's (1% of them)."""
    lite = wb.load_model(MODEL, backend="litert")
    ref = wb.load_model(MODEL, backend="reference")
    for image in make_cue_dataset(100, "heldout", seed=1).images:
        x = image[None].astype(np.float32) / np.float32(255.0)
        out = lite.run(x)[lite.output_names[0]]
        diff = float(np.abs(out - ref.run(x)[ref.output_names[0]]).max())
        if diff > 0:
            return image, diff, float(np.abs(out).max())
    pytest.fail("no held-out image with a one-step output difference among the first 100")


def test_gradients_accept_one_quantization_step_and_refuse_two(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.errors import ParityError
    from workbench.explain import api

    image, diff, biggest = _one_step_image()
    result = wb.Pipeline.from_card(MODEL).run(wb.Frame(image, id="one-step"))
    a = wb.explain(result, 0, "saliency", quality=False, store=False)
    (step,) = a.parity["quantization_step"].values()
    assert a.parity["max_abs_diff"] == pytest.approx(diff) and diff == pytest.approx(step, rel=1e-5)
    assert diff > 1e-3 * max(1.0, biggest)  # the plain float tolerance would have refused it

    real = api.reference_session

    class TwoStepsOff:
        def __init__(self, s: object) -> None:
            self.s = s

        def __getattr__(self, k: str) -> object:
            return getattr(self.s, k)

        def run(self, inputs: dict) -> dict:
            return {k: v + 2 * step for k, v in self.s.run(inputs).items()}

    monkeypatch.setattr(api, "reference_session", lambda card: TwoStepsOff(real(card)))
    with pytest.raises(ParityError, match="one quantization step"):
        wb.explain(result, 0, "saliency", quality=False, store=False)


def test_integer_graph_output_is_one_step_of_its_own_grid(tmp_path: Path) -> None:
    """float -> QUANTIZE -> int8 output: the step is the output's own scale, and LiteRT's raw
    integers dequantized agree with the reference's real values within it."""
    from workbench.backends.reference.program import execute
    from workbench.backends.reference.tflite_graph import load_tflite_program
    from workbench.backends.tflite_model import build_tflite
    from workbench.explain.api import output_steps

    import torch

    q = Quantization((0.05,), (3,), 0)
    data = build_tflite(
        [{"name": "x", "shape": [2, 8], "dtype": "float32", "data": None, "quantization": None},
         {"name": "xq", "shape": [2, 8], "dtype": "int8", "data": None, "quantization": q}],
        [{"op": "QUANTIZE", "inputs": [0], "outputs": [1], "options": {}}], [0], [1])
    path = tmp_path / "quantize.tflite"
    path.write_bytes(data)
    program = load_tflite_program(path)
    (name, (got_q, step)), = output_steps(program).items()
    assert name == "xq" and got_q.zero_point == (3,) and step == pytest.approx(0.05, rel=1e-7)
    x = np.random.default_rng(5).normal(size=(2, 8)).astype(np.float32)
    rt = runtime()
    it = rt.interpreter(model_content=data, experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    raw = it.get_tensor(it.get_output_details()[0]["index"])
    real = execute(program, {"x": torch.from_numpy(x)})["xq"].numpy()
    assert raw.dtype == np.int8
    np.testing.assert_allclose(q.dequantize(raw), real, rtol=0, atol=0.05 * 1.001)
    np.testing.assert_array_equal(q.quantize(real, "int8"), raw)

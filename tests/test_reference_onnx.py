"""The reference backend on the ONNX zoo, checked layer by layer against onnxruntime.

onnxruntime is run here directly (every node output added as a graph output with
onnx.helper), independent of the workbench's onnxruntime backend. Every node output must
agree within 1e-4 of the tensor's scale; graph outputs must be close; gradients must flow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

ort = pytest.importorskip("onnxruntime")

from workbench import zoo  # noqa: E402
from workbench.backends import load_model  # noqa: E402
from workbench.backends.reference import ReferenceSession, SUPPORTED_ONNX_OPS  # noqa: E402
from workbench.capture import CaptureFilter  # noqa: E402
from workbench.errors import InputError, ModelLoadError, UnsupportedOpError, ZooError  # noqa: E402

#: inputs whose dims the card's input size does not pin (P-Net is fully convolutional)
INPUT_SHAPES = {"mtcnn-pnet": (1, 37, 53, 3)}
REL_TOL = 1e-4


def onnx_cards() -> list[zoo.ModelCard]:
    return [c for c in zoo.list_cards() if c.format == "onnx"]


def zoo_model(card: zoo.ModelCard) -> zoo.ZooModel:
    try:
        return zoo.load(card, fetch_missing=False)
    except ZooError as exc:
        pytest.skip(f"{card.id} is not available here: {exc.message}")


def example_input(session: ReferenceSession, seed: int = 0) -> np.ndarray:
    """A random input of the model's shape (card size for dynamic H/W, batch 1)."""
    spec = session.input_specs[0]
    shape = INPUT_SHAPES.get(session.card.id)
    if shape is None:
        shape = list(spec.shape or ())
        card_in = session.card.input
        if card_in is not None and 0 in shape[1:]:
            w, h = card_in.size
            hw = (1, 2) if card_in.layout == "NHWC" else (2, 3)
            shape[hw[0]], shape[hw[1]] = shape[hw[0]] or h, shape[hw[1]] or w
        shape = [d or 1 for d in shape]
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(spec.dtype or np.float32)


def ort_all_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime with every node output marked as a graph output: tensor name -> value."""
    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in have:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                have.add(name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def scaled_error(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(max abs difference, that divided by the tensor's scale max|theirs|)."""
    if ours.size == 0:
        return 0.0, 0.0
    diff = float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max())
    scale = float(np.abs(theirs).max())
    return diff, diff / max(scale, 1e-12)


@pytest.fixture(params=[c.id for c in onnx_cards()])
def session(request: pytest.FixtureRequest) -> ReferenceSession:
    card = zoo.get_card(request.param)
    zm = zoo_model(card)
    return ReferenceSession(zm.card, zm.path)


def test_public_names() -> None:
    import workbench.backends.reference as ref

    assert set(ref.__all__) == {"ReferenceSession", "SUPPORTED_ONNX_OPS", "SUPPORTED_TFLITE_OPS"}
    assert all(hasattr(ref, name) for name in ref.__all__)
    assert isinstance(ref.SUPPORTED_ONNX_OPS, frozenset) and {"Conv", "Resize", "Softmax"} <= ref.SUPPORTED_ONNX_OPS
    assert isinstance(ref.SUPPORTED_TFLITE_OPS, frozenset)
    assert load_model("mtcnn-rnet", backend="reference").backend == "reference"


def test_every_layer_matches_onnxruntime(session: ReferenceSession, record_property) -> None:  # type: ignore[no-untyped-def]
    x = example_input(session)
    feeds = {session.input_names[0]: x}
    theirs = ort_all_outputs(session.path, feeds)
    rec = session.trace(feeds)
    assert len(rec.layers) == len(onnx.load(str(session.path)).graph.node)
    worst = (0.0, 0.0, "")
    for layer in rec.layers:
        for name in layer.outputs:
            ours, ref = rec.store[name], theirs[name]
            assert ours.dtype == ref.dtype and ours.shape == ref.shape, (layer.name, name)
            if ours.dtype.kind in "biu":
                np.testing.assert_array_equal(ours, ref, err_msg=f"{layer.op_type} {layer.name}")
                continue
            abs_err, rel_err = scaled_error(ours, ref)
            where = f"{layer.op_type} {layer.name} -> {name}"
            assert rel_err < REL_TOL, f"{where}: max abs {abs_err:.3g}, rel {rel_err:.3g}"
            worst = max(worst, (rel_err, abs_err, name))
    for name in session.output_names:
        np.testing.assert_allclose(rec.store[name], theirs[name], rtol=1e-4, atol=1e-5)
    record_property("parity", json.dumps({"model": session.card.id, "max_rel": worst[0], "max_abs": worst[1]}))


def test_run_equals_trace_and_onnxruntime(session: ReferenceSession) -> None:
    x = example_input(session, seed=1)
    out = session.run(x)
    rec = session.trace(x, capture="stats")
    ref = ort_all_outputs(session.path, {session.input_names[0]: x})
    for name in session.output_names:
        np.testing.assert_array_equal(out[name], rec.output(name))
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-4, atol=1e-5)


def test_trace_records_every_op(session: ReferenceSession, tmp_path: Path) -> None:
    x = example_input(session)
    model = onnx.load(str(session.path))
    rec = session.trace(x, capture=CaptureFilter(op_types={"Conv"}), store=tmp_path / "t")
    assert rec.backend == "reference" and rec.mode == "reference"
    assert [l.op_type for l in rec.layers] == [n.op_type for n in model.graph.node]  # already sorted
    assert all(l.time_ms is not None and l.time_ms >= 0 for l in rec.layers)
    assert rec.timings["total_ms"] >= rec.timings["ops_ms"] * 0.5
    conv_outputs = {o for l in rec.layers if l.op_type == "Conv" for o in l.outputs}
    kept = set(rec.store.names()) - set(rec.inputs) - set(rec.outputs)
    assert kept == conv_outputs - set(rec.outputs)
    for layer in rec.layers:
        assert len(layer.output_shapes) == len(layer.outputs) == len(layer.output_dtypes)
    assert (tmp_path / "t" / "index.json").is_file()


def test_forward_torch_matches_run(session: ReferenceSession) -> None:
    x = example_input(session)
    outs = session.forward_torch({session.input_names[0]: torch.from_numpy(x)})
    ref = session.run(x)
    for name in session.output_names:
        np.testing.assert_array_equal(outs[name].detach().numpy(), ref[name])


def test_gradients_through_onet() -> None:
    zm = zoo_model(zoo.get_card("mtcnn-onet"))
    s = ReferenceSession(zm.card, zm.path)
    x = torch.from_numpy(example_input(s, seed=3)).requires_grad_(True)
    kept: dict[str, torch.Tensor] = {}

    def capture(info, outputs):  # type: ignore[no-untyped-def]
        if info.op_type == "Conv":
            outputs[0].retain_grad()
            kept[info.name] = outputs[0]
        return None

    outs = s.forward_torch({s.input_names[0]: x}, capture=capture)
    score = outs["softmax_2"][0, 1]
    score.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert kept and all(t.grad is not None and t.grad.abs().sum() > 0 for t in kept.values())
    # the gradient is the real one: compare a directional derivative with central differences
    v = torch.from_numpy(np.random.default_rng(4).standard_normal(x.shape).astype(np.float32))
    v /= v.norm()
    h = 1e-2
    with torch.no_grad():
        plus = s.forward_torch({s.input_names[0]: (x + h * v)})["softmax_2"][0, 1]
        minus = s.forward_torch({s.input_names[0]: (x - h * v)})["softmax_2"][0, 1]
    numeric = float(plus - minus) / (2 * h)
    analytic = float((x.grad * v).sum())
    assert numeric == pytest.approx(analytic, rel=0.05, abs=1e-4)


def test_capture_can_replace_an_intermediate() -> None:
    zm = zoo_model(zoo.get_card("mtcnn-rnet"))
    s = ReferenceSession(zm.card, zm.path)
    x = torch.from_numpy(example_input(s))
    first_conv = next(n.info.name for n in s.program.nodes if n.info.op_type == "Conv")

    def zero_first_conv(info, outputs):  # type: ignore[no-untyped-def]
        return [torch.zeros_like(outputs[0])] if info.name == first_conv else None

    patched = s.forward_torch({s.input_names[0]: x}, capture=zero_first_conv)
    plain = s.forward_torch({s.input_names[0]: x})
    assert not torch.allclose(patched["dense_2"], plain["dense_2"])
    with pytest.raises(InputError):
        s.forward_torch({"nope": x})


def test_caches_made_in_inference_mode_still_allow_gradients(tmp_path: Path) -> None:
    """Per-shape caches (resize weights, pooling divisors, Shape outputs) are made outside
    inference mode, so a run under torch.inference_mode() does not break a later backward."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 10, 9])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 1.5])
    nodes = [
        helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1),
        helper.make_node("Resize", ["p", "", "scales"], ["y"], mode="linear"),
    ]
    model = _model(helper.make_graph(nodes, "g", [x], [y], [scales]), 19)
    s = load_model(_save(model, tmp_path / "m.onnx"), backend="reference")
    xv = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2, 5, 6)).astype(np.float32))
    with torch.inference_mode():
        s.forward_torch({"x": xv})
    xg = xv.clone().requires_grad_(True)
    s.forward_torch({"x": xg})["y"].square().sum().backward()
    fresh = load_model(tmp_path / "m.onnx", backend="reference")
    xf = xv.clone().requires_grad_(True)
    fresh.forward_torch({"x": xf})["y"].square().sum().backward()
    assert xg.grad is not None and xf.grad is not None
    torch.testing.assert_close(xg.grad, xf.grad)


# -- refusals ------------------------------------------------------------------------------------


def _model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _einsum_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu0"),
        helper.make_node("Einsum", ["r"], ["y"], name="my_einsum", equation="ij->ji"),
    ]
    return _model(helper.make_graph(nodes, "g", [x], [y]), 17)


def test_unsupported_op_fails_at_load_naming_the_node(tmp_path: Path) -> None:
    assert "Einsum" not in SUPPORTED_ONNX_OPS
    path = _save(_einsum_model(), tmp_path / "einsum.onnx")
    with pytest.raises(UnsupportedOpError) as info:
        load_model(path, backend="reference")
    msg = str(info.value)
    assert "Einsum" in msg and "my_einsum" in msg and "backend='onnxruntime'" in msg


def test_unsupported_attribute_fails_at_load(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])
    bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn_train", training_mode=1)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [1], [1.0]) for n in "sbmv"]
    model = _model(helper.make_graph([bn], "g", [x], [y], inits), 15)
    with pytest.raises(UnsupportedOpError, match="bn_train.*training_mode"):
        load_model(_save(model, tmp_path / "bn.onnx"), backend="reference")


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12\xff\xff\xff\xff\x0f"])
def test_bad_model_files_raise_model_load_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError):
        load_model(path, backend="reference")


def test_truncated_and_invalid_models_raise_model_load_error(tmp_path: Path) -> None:
    good = zoo_model(zoo.get_card("mtcnn-rnet")).path.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelLoadError):
        load_model(path, backend="reference")
    model = _einsum_model()
    model.graph.node[1].input[0] = "missing_tensor"  # reads a tensor nothing produces
    with pytest.raises(ModelLoadError):
        load_model(_save(model, tmp_path / "dangling.onnx"), backend="reference")


def test_wrong_input_shape_is_an_input_error() -> None:
    zm = zoo_model(zoo.get_card("mtcnn-onet"))
    s = ReferenceSession(zm.card, zm.path)
    with pytest.raises(InputError):
        s.run(np.zeros((1, 24, 24, 3), np.float32))
    with pytest.raises(InputError):
        s.run(np.zeros((1, 48, 48, 3), np.float64))


def test_runtime_shape_failure_names_the_node(tmp_path: Path) -> None:
    """An input that fits the declared (dynamic) shape but not the graph -> InputError naming the node."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [3, 3])
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_to_3x3")
    model = _model(helper.make_graph([node], "g", [x], [y], [shape]), 17)
    s = load_model(_save(model, tmp_path / "r.onnx"), backend="reference")
    with pytest.raises(InputError, match="reshape_to_3x3"):
        s.run(np.zeros((2, 4), np.float32))


def test_float64_and_integer_graphs_keep_their_dtypes(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])
    i = helper.make_tensor_value_info("i", TensorProto.INT32, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 2])
    j = helper.make_tensor_value_info("j", TensorProto.INT32, [2, 3])
    w = helper.make_tensor("w", TensorProto.DOUBLE, [3, 2], np.arange(6) / 7.0)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Div", ["i", "k"], ["j"])]
    k = helper.make_tensor("k", TensorProto.INT32, [1], [-2])
    model = _model(helper.make_graph(nodes, "g", [x, i], [y, j], [w, k]), 17)
    s = load_model(_save(model, tmp_path / "d.onnx"), backend="reference")
    xv = np.random.default_rng(0).standard_normal((2, 3))
    iv = np.array([[-7, -6, -1], [0, 5, 7]], np.int32)
    out = s.run({"x": xv, "i": iv})
    assert out["y"].dtype == np.float64 and out["j"].dtype == np.int32
    np.testing.assert_allclose(out["y"], xv @ (np.arange(6).reshape(3, 2) / 7.0), rtol=1e-15)
    np.testing.assert_array_equal(out["j"], np.trunc(iv / -2).astype(np.int32))  # C-style division


# -- random op configurations against onnxruntime ------------------------------------------------


def _one_node_model(op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray], n_out: int,
                    opset: int, **attrs: object) -> onnx.ModelProto:
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
           for k, v in inputs.items()]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, [*inputs, *consts], outs, name=f"the_{op.lower()}", **attrs)
    out_vis = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs]
    graph = helper.make_graph([node], "g", vis, out_vis, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9  # what onnxruntime 1.31 reads (onnx 1.23 writes 12)
    return onnx.shape_inference.infer_shapes(model)


def _random_configs(seed: int, n: int) -> list[tuple[str, onnx.ModelProto, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = ["MaxPool", "AveragePool", "Conv", "ConvTranspose", "Resize"][i % 5]
        h, w = int(rng.integers(5, 12)), int(rng.integers(5, 12))
        c = int(rng.choice([2, 4]))
        x = rng.standard_normal((1, c, h, w)).astype(np.float32)
        k = [int(rng.integers(1, 4)), int(rng.integers(2, 4))]
        strides = [int(rng.integers(1, 4)), int(rng.integers(1, 3))]
        auto_pad = str(rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
        pads = [int(rng.integers(0, kk)) for kk in k] + [int(rng.integers(0, kk)) for kk in k]
        # SAME with a dilated window is refused (runtimes disagree), see test_same_with_dilation_...
        dil = [int(rng.integers(1, 3)), 1] if auto_pad in ("NOTSET", "VALID") else [1, 1]
        attrs: dict[str, object] = {"kernel_shape": k, "strides": strides, "auto_pad": auto_pad}
        if auto_pad == "NOTSET":
            attrs["pads"] = pads
        if kind in ("MaxPool", "AveragePool"):
            if auto_pad == "NOTSET":
                attrs["ceil_mode"] = int(rng.integers(0, 2))
            attrs["dilations"] = dil
            n_out = 1
            if kind == "AveragePool":
                attrs["count_include_pad"] = int(rng.integers(0, 2))
            elif rng.random() < 0.5 and dil == [1, 1]:
                n_out = 2
            out.append((f"{kind}-{i}", _one_node_model(kind, {"x": x}, {}, n_out, 19, **attrs), {"x": x}))
        elif kind == "Conv":
            group = int(rng.choice([1, c]))
            wt = rng.standard_normal((c * 2, c // group, *k)).astype(np.float32)
            b = rng.standard_normal(c * 2).astype(np.float32)
            attrs.update(group=group, dilations=dil)
            out.append((f"{kind}-{i}", _one_node_model(kind, {"x": x}, {"w": wt, "b": b}, 1, 17, **attrs), {"x": x}))
        elif kind == "ConvTranspose":
            group = int(rng.choice([1, c]))
            wt = rng.standard_normal((c, 3 // 1 * (1 if group == 1 else 1), *k)).astype(np.float32)
            b = rng.standard_normal(wt.shape[1] * group).astype(np.float32)
            attrs.update(group=group, dilations=dil)
            attrs.pop("auto_pad")
            if auto_pad == "NOTSET" and rng.random() < 0.5:
                attrs["output_padding"] = [int(rng.integers(0, s)) for s in strides]
            if auto_pad != "NOTSET" or rng.random() < 0.3:
                attrs.pop("pads", None)
                attrs["output_shape"] = [h * strides[0] + int(rng.integers(-1, 1)), w * strides[1]]
            out.append((f"{kind}-{i}", _one_node_model(kind, {"x": x}, {"w": wt, "b": b}, 1, 17, **attrs), {"x": x}))
        else:
            mode = str(rng.choice(["nearest", "linear", "cubic"]))
            ctm = str(rng.choice(["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]))
            r_attrs: dict[str, object] = {"mode": mode, "coordinate_transformation_mode": ctm}
            if mode == "nearest":
                r_attrs["nearest_mode"] = str(rng.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]))
            if mode == "cubic":
                r_attrs["exclude_outside"] = int(rng.integers(0, 2))
            if rng.random() < 0.5:
                sh, sw = rng.choice([0.5, 0.75, 1.5, 2.0, 3.0]), rng.choice([0.6, 1.0, 1.7, 2.0])
                scales = np.array([1, 1, sh, sw], np.float32)
                consts = {"roi": np.zeros(0, np.float32), "scales": scales}
            else:
                sizes = np.array([1, c, int(rng.integers(3, 20)), int(rng.integers(3, 20))], np.int64)
                consts = {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32), "sizes": sizes}
            out.append((f"Resize-{i}", _one_node_model("Resize", {"x": x}, consts, 1, 19, **r_attrs), {"x": x}))
    return out


@pytest.mark.parametrize("label,model,feeds", _random_configs(seed=7, n=100),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_random_op_configs_match_onnxruntime(label: str, model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    from workbench.backends.reference.onnx_graph import load_onnx_program
    from workbench.backends.reference.program import execute

    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        theirs = sess.run(None, feeds)
    except Exception as exc:  # a configuration onnxruntime itself rejects
        pytest.skip(f"onnxruntime rejects it: {str(exc)[-160:]}")
    program = load_onnx_program(model)
    with torch.no_grad():
        ours = execute(program, {k: torch.from_numpy(v) for k, v in feeds.items()})
    attrs = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
    for spec, ref in zip(program.outputs, theirs):
        got = ours[spec.name].numpy()
        assert got.shape == ref.shape, (attrs, got.shape, ref.shape)
        if ref.dtype.kind in "iu":
            np.testing.assert_array_equal(got, ref, err_msg=str(attrs))
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5, err_msg=str(attrs))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "Conv"])
def test_same_with_dilation_is_refused(op: str) -> None:
    from workbench.backends.reference.onnx_graph import load_onnx_program

    x = np.zeros((1, 2, 8, 8), np.float32)
    consts = {"w": np.zeros((2, 2, 3, 3), np.float32)} if op == "Conv" else {}
    attrs = {"auto_pad": "SAME_UPPER", "dilations": [2, 2]}
    if op != "Conv":
        attrs["kernel_shape"] = [3, 3]
    with pytest.raises(UnsupportedOpError, match="dilations"):
        load_onnx_program(_one_node_model(op, {"x": x}, consts, 1, 19 if op != "Conv" else 17, **attrs))

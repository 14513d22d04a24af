"""Every registered attribution method on the shapes classifier, checked against loop oracles
and its own capability flags; hooks and patches are gone afterwards; typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.errors import ExplainError, ParityError, UnsupportedOpError, ZooError
from workbench.explain import method_ids
from workbench.explain.methods import get_method
from workbench.pipeline import Pipeline

#: small parameters so that every method runs in about a second on a 64 x 64 input
SMALL = {
    "occlusion": {"window": 16, "stride": 16},
    "feature-ablation": {"n_segments": 8},
    "kernel-shap": {"n_segments": 8, "n_samples": 32},
    "lime": {"n_segments": 8, "n_samples": 32},
    "d-rise": {"n_masks": 64},
    "integrated-gradients": {"n_steps": 8},
}


def _cls_model() -> str:
    try:
        wb.zoo.path("shapes-cls")
    except ZooError as exc:
        pytest.skip(f"shapes-cls is not available ({exc.message})")
    return "shapes-cls"


@pytest.fixture(scope="module")
def cue_image() -> np.ndarray:
    ds = wb.data.shapes.make_cue_dataset(12, "heldout", seed=1)
    i = int(np.flatnonzero(ds.cue_present & (ds.labels != 0))[0])
    return ds.images[i]


@pytest.fixture(scope="module")
def cls_result(cue_image):
    return Pipeline.from_card(_cls_model()).run(wb.Frame(cue_image, id="cue"))


def _f(result, x_img: torch.Tensor, cls: int = 0) -> np.ndarray:
    """Softmax score of ``cls`` for image-view batches, one deployed run per example (oracle)."""
    sess = wb.load_model("shapes-cls")
    out = []
    for x in x_img.numpy():
        z = sess.run({sess.input_names[0]: x[None].astype(np.float32)})["logits"][0].astype(np.float64)
        e = np.exp(z - z.max())
        out.append(e[cls] / e.sum())
    return np.array(out)


def _image(result) -> torch.Tensor:
    from workbench.explain.subject import build_subject
    from workbench.explain.targets import resolve_target

    return build_subject(result, resolve_target(result, 0)).image


@pytest.mark.parametrize("method", method_ids())
def test_every_method_keeps_its_promises(cls_result, method):
    cls = get_method(method)
    a = wb.explain(cls_result, 0, method, quality=False, store=False, **SMALL.get(method, {}))
    assert a.method == method and a.target.kind == "class" and a.target.index == 0
    assert a.input_map.shape == ((64, 64, 3) if cls.per_channel else (64, 64))
    assert a.frame_map.shape == a.input_map.shape  # stretch 64 -> 64: frame = input
    assert np.isfinite(a.input_map).all() and np.abs(a.input_map).sum() > 0
    assert a.backend == ("reference" if cls.needs_gradients else "onnxruntime")
    assert (a.parity is not None) == cls.needs_gradients
    assert (a.convergence_delta is not None) == cls.has_convergence_delta
    assert ("layer" in a.notes) == cls.is_layer_method
    assert a.seconds > 0 and a.target_value == pytest.approx(a.target.score, rel=1e-4)


def test_public_names_resolve():
    from workbench import explain as fn  # the function; the package is sys.modules["workbench.explain"]

    pkg = __import__("sys").modules["workbench.explain"]
    assert callable(fn) and fn is pkg.explain
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None


def test_method_ids_are_the_command_line_ids():
    assert method_ids() == ["occlusion", "feature-ablation", "kernel-shap", "lime", "d-rise", "saliency",
                            "integrated-gradients", "input-x-gradient", "guided-backprop", "grad-cam"]


def test_unknown_method_and_parameter_are_typed_errors(cls_result):
    with pytest.raises(ExplainError, match="unknown attribution method 'gradcam'") as exc:
        wb.explain(cls_result, 0, "gradcam")
    assert "grad-cam" in str(exc.value) and "occlusion" in str(exc.value)
    with pytest.raises(ExplainError, match=r"unknown parameter\(s\) \['windw'\]"):
        wb.explain(cls_result, 0, "occlusion", windw=4)


def test_occlusion_matches_a_loop_oracle(cls_result):
    a = wb.explain(cls_result, 0, "occlusion", window=16, stride=16, quality=False, store=False)
    img = _image(cls_result)
    gray = 0.5  # shapes-cls maps pixels to [0, 1]: pixel 127.5 is 0.5
    base = _f(cls_result, img)[0]
    want = np.zeros((64, 64))
    for y in range(0, 64, 16):
        for x in range(0, 64, 16):
            occ = img.clone()
            occ[:, :, y:y + 16, x:x + 16] = gray
            want[y:y + 16, x:x + 16] = base - _f(cls_result, occ)[0]
    np.testing.assert_allclose(a.input_map, want, atol=2e-5)


@pytest.mark.parametrize("window, stride", [(8, 4), (8, 6), (10, 7)])
def test_occlusion_equals_captums(cls_result, window, stride):
    """Our batched Occlusion is Captum's Occlusion (window over all channels), made fast."""
    from captum.attr import Occlusion as CaptumOcclusion

    from workbench.explain.api import forward_for, make_baseline
    from workbench.explain.scores import score_fn
    from workbench.explain.subject import build_subject
    from workbench.explain.targets import resolve_target

    t = resolve_target(cls_result, 0)
    s = build_subject(cls_result, t)
    fwd = forward_for(get_method("occlusion"), s, t, score_fn(s, t))
    base = make_baseline(s, "gray")
    want = CaptumOcclusion(fwd).attribute(s.image, sliding_window_shapes=(3, window, window),
                                          strides=(3, stride, stride), baselines=base, perturbations_per_eval=16)
    a = wb.explain(cls_result, 0, "occlusion", window=window, stride=stride, quality=False, store=False)
    want = torch.nan_to_num(want[0, 0]).numpy()  # Captum: 0 / 0 where no window reaches
    np.testing.assert_allclose(a.input_map, want, rtol=1e-4, atol=1e-6)


def test_feature_ablation_matches_a_loop_oracle(cls_result):
    from skimage.segmentation import slic

    a = wb.explain(cls_result, 0, "feature-ablation", n_segments=8, quality=False, store=False)
    img = _image(cls_result)
    seg = slic(img[0].permute(1, 2, 0).numpy(), n_segments=8, compactness=10.0, sigma=1.0, start_label=0, channel_axis=-1)
    base = _f(cls_result, img)[0]
    for s in np.unique(seg):
        x = img.clone()
        x[0, :, torch.from_numpy(seg == s)] = 0.5
        np.testing.assert_allclose(a.input_map[seg == s], base - _f(cls_result, x)[0], atol=2e-5)


def test_d_rise_matches_a_loop_over_its_masks(cls_result):
    from workbench.explain.methods.rise import rise_masks

    a = wb.explain(cls_result, 0, "d-rise", n_masks=20, grid=4, p=0.5, seed=3, quality=False, store=False)
    img = _image(cls_result)
    masks = rise_masks(20, (64, 64), 4, 0.5, torch.Generator().manual_seed(3))  # batch of 64 > 20: one draw
    assert masks.shape == (20, 1, 64, 64) and float(masks.min()) >= 0 and float(masks.max()) <= 1
    want = np.zeros((64, 64))
    for m in masks:
        want += _f(cls_result, img * m + 0.5 * (1 - m))[0] * m[0].numpy()
    np.testing.assert_allclose(a.input_map, want / (20 * 0.5), rtol=1e-4, atol=1e-5)


def test_integrated_gradients_is_complete(cls_result):
    a = wb.explain(cls_result, 0, "integrated-gradients", n_steps=32, quality=False, store=False)
    img = _image(cls_result)
    gap = _f(cls_result, img)[0] - _f(cls_result, torch.zeros_like(img))[0]  # baseline: black = 0
    assert float(a.input_map.sum()) == pytest.approx(gap, abs=abs(a.convergence_delta) + 1e-3)
    assert abs(a.convergence_delta) < 0.05


def test_noise_tunnel_wraps_gradient_methods(cls_result):
    plain = wb.explain(cls_result, 0, "saliency", quality=False, store=False)
    nt = wb.explain(cls_result, 0, "saliency", noise_tunnel="smoothgrad", nt_samples=4, quality=False, store=False)
    assert nt.params["noise_tunnel"] == "smoothgrad" and np.isfinite(nt.input_map).all()
    assert not np.allclose(nt.input_map, plain.input_map)
    cam = wb.explain(cls_result, 0, "grad-cam", noise_tunnel="smoothgrad", nt_samples=3, quality=False, store=False)
    assert cam.input_map.shape == (64, 64)
    with pytest.raises(ExplainError, match="noise_tunnel must be one of"):
        wb.explain(cls_result, 0, "saliency", noise_tunnel="blur", quality=False, store=False)


def _reference_model(result):
    from workbench.explain.forward import ReferenceModel, reference_session
    from workbench.explain.scores import score_fn
    from workbench.explain.subject import build_subject
    from workbench.explain.targets import resolve_target

    t = resolve_target(result, 0)
    s = build_subject(result, t)
    return ReferenceModel(reference_session(s.card), s.layout, score_fn(s, t), s.image), s


@pytest.mark.parametrize("method", ["guided-backprop", "grad-cam", "saliency"])
def test_hooks_and_patches_are_removed_even_on_errors(cls_result, method):
    model, subject = _reference_model(cls_result)
    program = model.program
    nodes, consts = [n.fn for n in program.nodes], dict(program.constants)
    m = get_method(method)(model, subject)
    m.attribute(subject.image, torch.zeros_like(subject.image))
    assert model.is_clean()

    calls = {"n": 0}
    score = model.score

    def failing(outs, layers):
        calls["n"] += 1
        raise RuntimeError("boom inside the forward")

    model.score = failing
    with pytest.raises(RuntimeError, match="boom"):
        get_method(method)(model, subject).attribute(subject.image, torch.zeros_like(subject.image))
    model.score = score
    assert calls["n"] >= 1 and model.is_clean()
    assert [n.fn for n in program.nodes] == nodes and all(program.constants[k] is v for k, v in consts.items())


def test_guided_backprop_clamps_gradients_at_relus(cls_result):
    """Guided backprop differs from the plain gradient, and with every ReLU probe clamped its
    map equals the gradient computed with a hand-written guided ReLU (independent oracle)."""
    model, subject = _reference_model(cls_result)
    gbp = wb.explain(cls_result, 0, "guided-backprop", quality=False, store=False)
    sal = wb.explain(cls_result, 0, "saliency", abs=False, quality=False, store=False)
    assert not np.allclose(gbp.input_map, sal.input_map)

    class Guided(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):  # type: ignore[override]
            (x,) = ctx.saved_tensors
            return g.clamp(min=0) * (x > 0)

    from workbench.backends.reference.program import Node, Program, execute

    p = model.program
    nodes = [Node(n.info, (lambda *a, n=n: (Guided.apply(a[0]),))) if n.info.op_type == "Relu" else n for n in p.nodes]
    x = subject.image.clone().requires_grad_(True)
    outs = execute(Program(p.fmt, p.inputs, p.outputs, p.constants, nodes, p.quantization), {model.input_name: x})
    model.score(outs, {}).sum().backward()
    np.testing.assert_allclose(gbp.input_map, x.grad[0].permute(1, 2, 0).numpy(), rtol=1e-4, atol=1e-7)


def test_parity_refusal_names_the_difference_and_the_tolerance(cls_result, monkeypatch):
    from workbench.explain import api  # (`import workbench.explain.api as api` finds the function wb.explain)

    real = api.reference_session

    class Drifting:
        def __init__(self, s):
            self.s = s

        def __getattr__(self, k):
            return getattr(self.s, k)

        def run(self, inputs):
            return {k: v + 0.05 for k, v in self.s.run(inputs).items()}

    monkeypatch.setattr(api, "reference_session", lambda card: Drifting(real(card)))
    with pytest.raises(ParityError, match=r"max \|diff\| = 0\.05 on output 'logits', tolerance 0\.0[0-9]+") as exc:
        wb.explain(cls_result, 0, "saliency", quality=False, store=False)
    assert "perturbation method" in str(exc.value)
    a = wb.explain(cls_result, 0, "saliency", parity_tolerance=0.1, quality=False, store=False)
    assert a.parity["max_abs_diff"] == pytest.approx(0.05, abs=1e-4) and a.parity["tolerance"] == 0.1


def test_gradient_method_on_a_model_the_reference_cannot_run(tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("Einsum", ["images"], ["e"], equation="bchw->bchw"),
             helper.make_node("GlobalAveragePool", ["e"], ["g"]),
             helper.make_node("Flatten", ["g"], ["logits"])]
    model = helper.make_model(helper.make_graph(nodes, "einsum", [x], [y]), opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "einsum.onnx")
    (tmp_path / "einsum-cls.toml").write_text(
        'id = "einsum-cls"\nname = "e"\ntask = "classification"\nformat = "onnx"\nlabels = ["r", "g", "b"]\n'
        '[source]\nkind = "file"\nfile = "einsum.onnx"\n'
        '[input]\nname = "images"\nsize = [16, 16]\nlayout = "NCHW"\ncolor = "RGB"\ndtype = "float32"\nrange = [0.0, 1.0]\n'
        '[[outputs]]\nname = "logits"\ntensor_id = "classification-logits"\ndims = [1, 3]\ndtype = "float32"\n'
        '[decoder]\nid = "classification"\n')
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path))  # explain() finds the card by the result's model id
    res = Pipeline.from_card("einsum-cls").run(np.zeros((16, 16, 3), np.uint8) + 90)
    with pytest.raises(UnsupportedOpError, match="Einsum") as exc:
        wb.explain(res, 0, "integrated-gradients", quality=False)
    assert "perturbation method" in str(exc.value) and "occlusion" in str(exc.value)
    a = wb.explain(res, 0, "occlusion", window=8, stride=8, quality=False)  # the deployed model still works
    assert a.backend == "onnxruntime" and a.input_map.shape == (16, 16)


def test_layer_and_output_targets(cls_result):
    """A layer target (a channel's mean activation) runs on the reference backend for every method
    kind; an output-element target equals the raw logit."""
    ref = wb.load_model("shapes-cls", backend="reference")
    layer = [n.info.name for n in ref.program.nodes if n.info.op_type == "Conv"][1]
    x = _image(cls_result)
    from workbench.backends.reference.program import execute

    acts = {}
    execute(ref.program, {"images": x}, lambda info, outs: acts.__setitem__(info.name, outs[0]))
    want = float(acts[layer][0, 3].mean())
    for method, kw in (("saliency", {}), ("occlusion", {"window": 16, "stride": 16})):
        a = wb.explain(cls_result, {"layer": layer, "channel": 3}, method, quality=False, store=False, **kw)
        assert a.target.kind == "layer" and a.backend == "reference" and a.parity is not None
        assert a.target_value == pytest.approx(want, rel=1e-5)
    logit = ref.run(x.numpy())["logits"][0, 2]
    a = wb.explain(cls_result, {"output": "logits", "index": [2]}, "occlusion", window=16, stride=16, quality=False)
    assert a.target_value == pytest.approx(float(logit), rel=1e-5) and a.backend == "onnxruntime"
    from workbench.errors import InputError, TargetError

    with pytest.raises(TargetError, match="no layer named 'nope'"):
        wb.explain(cls_result, {"layer": "nope"}, "saliency", quality=False)
    with pytest.raises(TargetError, match=r"index \[7\] out of range for output 'logits'"):
        wb.explain(cls_result, {"output": "logits", "index": [7]}, "occlusion", quality=False)
    with pytest.raises(TargetError, match="class index 9 out of range: the model has 3 classes"):
        wb.explain(cls_result, {"class": 9}, "occlusion", quality=False)
    with pytest.raises(InputError, match="takes a FrameResult"):
        wb.explain(None, 0)


def test_detector_perturbations_batch_into_few_backend_calls():
    """shapes-yolov8 fixes batch 1 in its file; the runner's batched copy must agree with one-by-one
    runs and carry the 225 occlusion windows (+ the unperturbed input) in 4 calls."""
    from workbench.errors import CapsError

    try:
        wb.zoo.path("shapes-yolov8")
        result = Pipeline.from_card("shapes-yolov8").run(wb.data.shapes_frame(3))
    except (ZooError, CapsError) as exc:
        pytest.skip(f"shapes-yolov8 is not usable here ({str(exc).splitlines()[0]})")
    if not len(result.detections):
        pytest.skip("no detection on this scene")
    a = wb.explain(result, 0, "occlusion", window=16, stride=8, quality=False, store=False)
    assert a.notes["perturbations"] == 225 and a.notes["backend_calls"] == 4
    assert a.target_value == pytest.approx(a.target.score, abs=0.02)  # the box matches itself
    heat = a.input_heatmap
    x1, y1, x2, y2 = (int(v) for v in a.target.box)
    inside = heat[max(y1, 0):y2, max(x1, 0):x2].mean()
    assert inside > heat.mean()  # occluding the object lowers its own box's score the most
    from workbench.explain.forward import deployed_session, runner_for

    runner = runner_for(deployed_session(wb.zoo.get_card("shapes-yolov8"), "onnxruntime"),
                        np.zeros((1, 3, 128, 128), np.float32))
    assert runner.mode == "batched"

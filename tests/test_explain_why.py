"""Why was this box suppressed, or missed? (workbench.explain.why) and the explain CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench as wb
from workbench.boxes import box_iou
from workbench.cli import main
from workbench.decisions import Fate
from workbench.errors import TargetError
from workbench.explain import why_missed, why_suppressed
from workbench.pipeline import Pipeline


@pytest.fixture(scope="module")
def face_result():
    return Pipeline.from_card("blazeface-short").run(wb.data.sample_frame("astronaut"))


def test_why_suppressed_attributes_the_loser_and_the_winner(face_result):
    log = face_result.log
    merged = np.flatnonzero(log.fate == Fate.MERGED)
    assert len(merged)  # BlazeFace's weighted NMS merges the face's neighbours
    r = int(merged[np.argmax(log.score[merged])])
    w = why_suppressed(face_result, r, "d-rise", n_masks=48)
    assert w.fate == "MERGED" and w.by == int(log.by[r]) and log.fate[w.by] == Fate.KEPT
    assert w.candidate.target.log_row == r and w.suppressor.target.log_row == w.by
    assert w.iou == pytest.approx(float(log.iou[r]))
    t = face_result.primary.transforms["input"][0]
    np.testing.assert_allclose(w.candidate_box, t.boxes_to_frame(log.boxes[r][None])[0])
    # each map explains its own box: the candidate's own score is what the target reproduces
    assert w.candidate.target_value == pytest.approx(float(log.score[r]), abs=1e-3)
    assert w.suppressor.target_value == pytest.approx(float(log.score[w.by]), abs=1e-3)
    assert w.candidate.heatmap.shape == w.suppressor.heatmap.shape == (512, 512)
    fig = w.plot(face_result.frame.image)
    assert len(fig.axes) == 2
    kept = int(log.kept()[0])
    with pytest.raises(TargetError, match="was not suppressed: its fate is KEPT"):
        why_suppressed(face_result, kept)


def test_why_missed_finds_the_best_nearby_candidate(face_result):
    log = face_result.log
    t = face_result.primary.transforms["input"][0]
    boxes = t.boxes_to_frame(log.boxes)
    face = face_result.detections.frame_boxes[0]
    far = box_iou(face[None], boxes)[0] == 0
    below = np.flatnonzero(far & (log.fate == Fate.BELOW_SCORE))
    r = int(below[np.argmax(log.score[below])])  # the best candidate away from the face
    gt = boxes[r] + np.array([1.0, -1.0, 1.0, 2.0])  # a "ground truth" object it almost covers
    m = why_missed(face_result, gt, method="occlusion", window=16, stride=16)
    near = np.flatnonzero(box_iou(gt[None], boxes)[0] >= 0.3)
    assert m.row == int(near[np.argmax(log.score[near])])
    assert m.fate == Fate(int(log.fate[m.row])).name and m.score == pytest.approx(float(log.score[m.row]))
    assert m.attribution.target.log_row == m.row
    if m.fate == "BELOW_SCORE":
        assert m.score <= log.params.score_threshold and "threshold" in m.explanation()
    with pytest.raises(TargetError, match="not missed"):
        why_missed(face_result, face)
    with pytest.raises(TargetError, match="no candidate has IoU"):
        why_missed(face_result, [0, 0, 3, 3], min_iou=0.9)


def test_cli_explain_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["explain", "--model", "blazeface-short", "--image", "sample:astronaut", "--method", "d-rise",
               "--param", "n_masks=32", "--param", "sanity_steps=1", "--out", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"method", "target", "map", "sanity", "faithfulness", "seconds"} <= set(doc)
    assert doc["method"] == "d-rise" and doc["target"]["kind"] == "detection" and doc["target"]["rank"] == 0
    m = np.load(doc["map"])
    assert m.shape == (512, 512) and np.isfinite(m).all()
    assert "deletion_auc" in doc["faithfulness"] and len(doc["sanity"]["spearman_abs"]) == 1
    back = wb.open_result(out)
    assert list(back.attributions) == ["d-rise-det-0"]
    np.testing.assert_array_equal(back.attributions["d-rise-det-0"].frame_map, m)


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown attribution method 'nope'"),
    (["--method", "occlusion", "--target", "4"], "K=4 out of range"),
    (["--method", "occlusion", "--layer", "x"], "--layer applies to layer methods"),
])
def test_cli_explain_errors(tmp_path, capsys, args, message):
    rc = main(["explain", "--model", "blazeface-short", "--image", "sample:astronaut", "--out", str(tmp_path / "o"),
               "--quality", "none", *args])
    assert rc == 2 and message in capsys.readouterr().err

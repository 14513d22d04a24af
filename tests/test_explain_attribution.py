"""Attribution records: frame mapping against a supersampling oracle, save/open with the
FrameResult, overlays, targets and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.errors import TargetError
from workbench.explain.attribution import Attribution, input_to_frame
from workbench.explain.targets import Target, resolve_target
from workbench.pipeline import Pipeline
from workbench.preprocess import Transform, crop_transform
from workbench.result import open_result


def _oracle(m: np.ndarray, t: Transform, frame_size: tuple[int, int], k: int = 16) -> np.ndarray:
    """Mean of the input map over each frame pixel's footprint, by k x k point sampling (slow)."""
    fw, fh = frame_size
    out = np.zeros((fh, fw))
    sub = (np.arange(k) + 0.5) / k
    for y in range(fh):
        for x in range(fw):
            pts = np.stack(np.meshgrid(x + sub, y + sub), -1).reshape(-1, 2)
            q = t.to_input(pts)
            ix, iy = np.floor(q[:, 0]).astype(int), np.floor(q[:, 1]).astype(int)
            inside = (ix >= 0) & (iy >= 0) & (ix < m.shape[1]) & (iy < m.shape[0])
            vals = np.zeros(len(q))
            vals[inside] = m[iy[inside], ix[inside]]
            out[y, x] = vals.mean()
    return out


@pytest.mark.parametrize("t, frame", [
    (Transform("letterbox", (24, 16), (12, 12), (0.5, 0.5), (0.0, 2.0)), (24, 16)),     # shrink + pad
    (Transform("stretch", (8, 6), (16, 12), (2.0, 2.0), (0.0, 0.0)), (8, 6)),           # enlarge
    (crop_transform((20, 20), (4, 6, 12, 14), (16, 16)), (20, 20)),                      # crop: zeros outside
])
def test_input_to_frame_is_the_footprint_mean(t, frame):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(t.input_size[1], t.input_size[0]))
    got = input_to_frame(m, t, frame)
    np.testing.assert_allclose(got, _oracle(m, t, frame), atol=1e-5)
    rgb = np.stack([m, 2 * m, -m], -1)
    np.testing.assert_allclose(input_to_frame(rgb, t, frame)[..., 1], 2 * got, atol=1e-5)


@pytest.fixture(scope="module")
def face_result():
    frame = wb.data.sample_frame("astronaut")
    return Pipeline.from_card("blazeface-short").run(frame)


def test_targets_resolve_and_explain_out_of_range(face_result):
    t = resolve_target(face_result, 0)
    det = face_result.detections
    assert t.kind == "detection" and t.rank == 0 and t.score == pytest.approx(float(det.scores.max()))
    np.testing.assert_allclose(t.frame_box, det.frame_boxes[int(np.argmax(det.scores))])
    with pytest.raises(TargetError, match=r"K=5 out of range: .* kept 1 detection"):
        resolve_target(face_result, 5)
    with pytest.raises(TargetError, match="rows"):
        resolve_target(face_result, {"row": 10**6})
    r = int(face_result.log.kept()[0])
    row = resolve_target(face_result, {"row": r})
    # a row is the candidate itself; detection K is the kept output box (blended by weighted NMS)
    assert row.rank == 0 and row.box == pytest.approx(tuple(face_result.log.boxes[r]))
    assert Target.from_json(t.to_json()) == t


def test_explain_stores_saves_and_reopens_with_the_result(face_result, tmp_path):
    a = wb.explain(face_result, 0, "d-rise", n_masks=64, quality="faithfulness")
    assert a.name in face_result.attributions
    assert a.frame_map.shape == (512, 512) and a.input_map.shape == (128, 128)
    assert a.backend == "litert" and a.target_value == pytest.approx(a.target.score, abs=0.06)
    over = a.overlay(face_result.frame.image)
    assert over.shape == (512, 512, 3) and over.dtype == np.uint8
    face_result.save(tmp_path / "r")
    back = open_result(tmp_path / "r")
    assert list(back.attributions) == list(face_result.attributions)
    b = back.attributions[a.name]
    assert isinstance(b, Attribution) and b.equals(a)
    assert b.faithfulness["deletion_auc"] == a.faithfulness["deletion_auc"]
    assert back.equals(face_result)


def test_frame_map_of_a_crop_is_zero_outside_the_crop():
    frame = wb.data.sample_frame("astronaut")
    res = Pipeline.from_card("mtcnn").run(frame)
    a = wb.explain(res, 0, "occlusion", quality=False, store=False)
    x1, y1, x2, y2 = a.notes["crop_box"]
    assert a.input_map.shape == (48, 48)
    outside = np.ones(a.heatmap.shape, bool)
    outside[max(y1, 0):y2, max(x1, 0):x2] = False
    assert np.all(a.heatmap[outside] == 0) and np.abs(a.heatmap[~outside]).sum() > 0

"""IoUTracker on synthetic trajectories, with loop oracles for the IoU matrix and greedy matching."""

from __future__ import annotations


import numpy as np
import pytest

from workbench.errors import InputError
from workbench.meta import ObjectDetectionMtd, RelationMeta, RelationType, TrackingMtd
from workbench.track import IoUTracker, Track, greedy_match, iou_matrix, track_ids

DT = 0.1  # seconds per frame


def frame(objects: dict[str, tuple[float, float, float, float]], label="car", seed=0) -> RelationMeta:
    """A frame's meta with one detection per named object, in shuffled order."""
    meta = RelationMeta()
    names = list(objects)
    np.random.default_rng(seed).shuffle(names)
    for name in names:
        lab = label if isinstance(label, str) else label[name]
        meta.add(ObjectDetectionMtd(objects[name], lab, 0.9, source={"object": name}))
    return meta


def box(x, y, size=30.0):
    return (x, y, x + size, y + size)


def tracked(meta: RelationMeta) -> dict[str, int]:
    """Ground-truth object name -> track id, through detection -RELATE_TO-> tracking."""
    return {meta[d].source["object"]: t for d, t in track_ids(meta).items()}


def trackings(meta: RelationMeta) -> dict[int, TrackingMtd]:
    return {m.track_id: m for _, m in meta.of_kind(TrackingMtd)}


def run(tracker: IoUTracker, frames: list[dict], **kw) -> list[RelationMeta]:
    metas = []
    for k, objects in enumerate(frames):
        meta = frame(objects, seed=k, **kw)
        added = tracker.update(meta, k * DT)
        assert sorted(added) == [i for i, _ in meta.of_kind(TrackingMtd)]
        metas.append(meta)
    return metas


# ---------------------------------------------------------------------------------- oracles

def iou_loop(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - iw * ih
            out[i, j] = iw * ih / union if union > 0 else 0.0
    return out


def greedy_loop(score, threshold):
    pairs = sorted(((-score[r, c], r, c) for r in range(score.shape[0]) for c in range(score.shape[1])))
    used_r, used_c, out = set(), set(), []
    for s, r, c in pairs:
        if -s >= threshold and r not in used_r and c not in used_c:
            out.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return out


def random_boxes(rng, n):
    xy = rng.integers(0, 40, size=(n, 2)).astype(float)
    wh = rng.integers(0, 20, size=(n, 2)).astype(float)  # zero-size boxes included
    return np.hstack([xy, xy + wh])


@pytest.mark.parametrize("seed", range(10))
def test_iou_matrix_matches_loop(seed):
    rng = np.random.default_rng(seed)
    a, b = random_boxes(rng, 7), random_boxes(rng, 5)
    np.testing.assert_allclose(iou_matrix(a, b), iou_loop(a, b), rtol=0, atol=1e-12)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (7, 0)
    # boxes exactly at the threshold: 50% overlap of equal boxes gives IoU 1/3
    assert iou_matrix([box(0, 0, 30)], [box(15, 0, 30)])[0, 0] == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(20))
def test_greedy_match_matches_loop(seed):
    rng = np.random.default_rng(seed)
    score = np.round(rng.random((int(rng.integers(0, 7)), int(rng.integers(0, 7)))), 1)  # ties
    threshold = float(rng.choice([0.1, 0.3, 0.5]))
    rows, cols = greedy_match(score, threshold)
    assert list(zip(rows.tolist(), cols.tolist())) == greedy_loop(score, threshold)


# ------------------------------------------------------------------------------ trajectories

def test_one_moving_object_keeps_its_id_and_timestamps():
    tracker = IoUTracker()
    metas = run(tracker, [{"a": box(10 + 5 * k, 20 + 2 * k)} for k in range(10)])
    for k, meta in enumerate(metas):
        assert tracked(meta) == {"a": 0}
        trk = trackings(meta)[0]
        assert (trk.first_seen, trk.last_seen, trk.lost) == (0.0, pytest.approx(k * DT), False)
        (t_id, _), = meta.of_kind(TrackingMtd)
        assert meta.relation(0, t_id) == RelationType.RELATE_TO  # detection -> tracking
        assert meta.relation(t_id, 0) == RelationType.NONE
    (t,) = tracker.tracks
    assert isinstance(t, Track) and t.track_id == 0 and t.hits == 10 and t.misses == 0
    assert t.velocity == pytest.approx((5.0, 2.0, 5.0, 2.0))


@pytest.mark.parametrize("path_b, swaps_without_prediction", [
    (lambda k: box(160 - 8 * k, 56), False),  # head on, 6 px apart vertically
    (lambda k: box(80, -20 + 8 * k), True),   # perpendicular: crosses a's path at frame ~10
])
def test_two_crossing_objects_keep_their_ids(path_b, swaps_without_prediction):
    frames = [{"a": box(8 * k, 50), "b": path_b(k)} for k in range(21)]
    assert max(iou_matrix([f["a"]], [f["b"]])[0, 0] for f in frames) > 0.5  # they do overlap
    metas = run(IoUTracker(), frames)
    first = tracked(metas[0])
    assert sorted(first.values()) == [0, 1]
    for meta in metas:
        assert tracked(meta) == first
    # the constant-velocity prediction is what keeps the perpendicular crossing apart
    plain = run(IoUTracker(predict=False), frames)
    assert any(tracked(m) != first for m in plain) == swaps_without_prediction


def test_disappearing_object_is_declared_lost_and_a_new_one_gets_a_new_id():
    a, b = box(100, 100), box(300, 50)
    frames = [{"a": a}] * 5 + [{}] * 3 + [{"b": b}] * 2 + [{"a": a, "b": b}]
    tracker = IoUTracker(max_lost=3)
    metas = run(tracker, frames)
    for k in range(5):
        assert tracked(metas[k]) == {"a": 0}
    for k in (5, 6):  # coasting: still reported, not lost, last seen at frame 4, no detection
        trk = trackings(metas[k])
        assert list(trk) == [0] and not trk[0].lost
        assert trk[0].last_seen == pytest.approx(0.4) and trk[0].first_seen == 0.0
    lost = trackings(metas[7])[0]  # third miss in a row: declared lost in this frame
    assert lost.lost and lost.last_seen == pytest.approx(0.4)
    assert metas[7].related(metas[7].of_kind(TrackingMtd)[0][0], direction="in") == []
    assert tracked(metas[8]) == {"b": 1} and list(trackings(metas[8])) == [1]
    assert trackings(metas[8])[1].first_seen == pytest.approx(0.8)
    assert tracked(metas[10]) == {"a": 2, "b": 1}  # a lost track is never revived
    assert [t.track_id for t in tracker.tracks] == [1, 2]


def test_short_occlusion_keeps_the_id_at_the_predicted_place():
    frames = [{"a": box(10 * k, 0)} if k not in (3, 4) else {} for k in range(9)]
    tracker = IoUTracker(max_lost=3)
    metas = run(tracker, frames)
    assert [tracked(m).get("a") for m in metas] == [0, 0, 0, None, None, 0, 0, 0, 0]
    assert not any(t.lost for m in metas for t in trackings(m).values())
    assert trackings(metas[4])[0].last_seen == pytest.approx(0.2)
    assert trackings(metas[5])[0].last_seen == pytest.approx(0.5)
    assert tracker.tracks[0].velocity == pytest.approx((10.0, 0.0, 10.0, 0.0))
    # without prediction the object is 30 px past its last box after the gap: a new track
    ids = [tracked(m).get("a") for m in run(IoUTracker(max_lost=3, predict=False), frames)]
    assert ids == [0, 0, 0, None, None, 1, 1, 1, 1]


def test_non_overlapping_detection_starts_a_new_track_and_labels_gate_matching():
    metas = run(IoUTracker(), [{"a": box(0, 0)}, {"b": box(100, 100)}])
    assert tracked(metas[1]) == {"b": 1}
    assert set(trackings(metas[1])) == {0, 1}  # track 0 coasts
    same_place = [{"a": box(0, 0)}, {"b": box(0, 0)}]
    labels = {"a": "car", "b": "person"}
    tr = IoUTracker()
    m = [tr.update(frame(f, label=labels), k * DT) for k, f in enumerate(same_place)]
    assert [t.track_id for t in tr.tracks] == [0, 1] and len(m[1]) == 2
    tr = IoUTracker(match_labels=False)
    for k, f in enumerate(same_place):
        meta = frame(f, label=labels)
        tr.update(meta, k * DT)
    assert tracked(meta) == {"b": 0}


def test_min_hits_confirms_before_reporting():
    frames = [{"a": box(0, 0)}, {}, {"a": box(0, 0)}, {"a": box(1, 0)}, {"a": box(2, 0)}]
    tracker = IoUTracker(min_hits=3)
    metas = run(tracker, frames)
    assert [trackings(m) for m in metas[:4]] == [{}] * 4  # the first tentative track died at frame 1
    trk = trackings(metas[4])
    assert list(trk) == [1] and trk[1].first_seen == pytest.approx(0.2)
    assert tracked(metas[4]) == {"a": 1}
    assert tracker.tracks[0].confirmed


def test_many_objects_with_shuffled_detections():
    rng = np.random.default_rng(3)
    start = rng.uniform(0, 400, size=(6, 2)) + np.arange(6)[:, None] * 80  # spread out
    vel = rng.uniform(-4, 4, size=(6, 2))
    frames = [{str(i): box(*(start[i] + k * vel[i])) for i in range(6)} for k in range(30)]
    metas = run(IoUTracker(), frames)
    assert all(tracked(m) == tracked(metas[0]) for m in metas)
    assert sorted(tracked(metas[0]).values()) == list(range(6))


# ----------------------------------------------------------------------------- bad input

def test_bad_parameters_and_timestamps_raise_input_error():
    for kw in ({"iou_threshold": 0.0}, {"iou_threshold": 1.5}, {"max_lost": 0}, {"min_hits": 0}):
        with pytest.raises(InputError):
            IoUTracker(**kw)
    tr = IoUTracker()
    tr.update(frame({"a": box(0, 0)}), 1.0)
    for t in (1.0, 0.5, float("nan"), float("inf")):
        with pytest.raises(InputError):
            tr.update(frame({"a": box(0, 0)}), t)
    with pytest.raises(InputError):
        tr.update("not a meta", 2.0)  # type: ignore[arg-type]
    assert tr.update(RelationMeta(), 2.0) == [0] and tr.tracks[0].misses == 1
    tr.reset()
    assert tr.tracks == () and tr.update(frame({"a": box(0, 0)}), 0.0) == [1]
    with pytest.raises(Exception):
        tr.tracks[0].track_id = 5  # frozen

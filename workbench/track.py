"""An IoU tracker: gives detections stable ids across frames (like GStreamer's ``ioutracker``).

Per frame, :meth:`IoUTracker.update` reads the :class:`~workbench.meta.ObjectDetectionMtd` of
that frame's :class:`~workbench.meta.RelationMeta`, predicts each live track's box with a
constant velocity (pixels per frame, from its last two matches), matches tracks to detections
greedily by best IoU (same label only, by default) and writes one
:class:`~workbench.meta.TrackingMtd` per confirmed live track into the meta:

- matched:  ``lost=False``, ``last_seen`` = this frame, and ``detection -RELATE_TO-> tracking``
  (the direction GStreamer's ioutracker uses);
- coasting (unmatched, fewer than ``max_lost`` misses in a row): ``lost=False``, ``last_seen``
  unchanged, no relation;
- declared lost (the ``max_lost``-th miss in a row): ``lost=True``, no relation; the track is
  then dropped and never revived: an object that comes back gets a new id.

New tracks start from unmatched detections. A track is *confirmed* after ``min_hits`` matches in
consecutive frames; a tentative track that misses a frame is dropped without a trace, and
tentative tracks write no TrackingMtd. Track ids count up from 0 and are never reused.
Rotation of boxes is ignored (axis-aligned IoU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .meta import ObjectDetectionMtd, RelationMeta, RelationType, TrackingMtd

__all__ = ["IoUTracker", "Track", "iou_matrix", "greedy_match", "track_ids"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a[N, 4]`` and ``b[M, 4]`` in (x1, y1, x2, y2) -> ``float64[N, M]``.

    Pairs whose union is empty (two zero-area boxes) get 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def greedy_match(score: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching of ``score[T, D]``: take the best pair, remove its row and
    column, repeat while the best is ``>= threshold``. Ties go to the lower row, then column.

    Returns ``(rows[K], cols[K])`` in the order they were taken.
    """
    work = np.where(score >= threshold, score, -np.inf).astype(np.float64)
    rows: list[int] = []
    cols: list[int] = []
    for _ in range(min(work.shape)):  # one vectorized argmax per match
        r, c = divmod(int(np.argmax(work)), work.shape[1])
        if work[r, c] == -np.inf:
            break
        rows.append(r)
        cols.append(c)
        work[r, :] = -np.inf
        work[:, c] = -np.inf
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def track_ids(meta: RelationMeta) -> dict[int, int]:
    """Detection mtd id -> track id, read from ``detection -RELATE_TO-> TrackingMtd``."""
    out: dict[int, int] = {}
    for det_id, _ in meta.of_kind(ObjectDetectionMtd):
        trk = meta.related(det_id, RelationType.RELATE_TO, kind=TrackingMtd)
        if trk:
            out[det_id] = meta[trk[0]].track_id  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True)
class Track:
    """A live track: last matched ``box`` (x1, y1, x2, y2), ``velocity`` of the box corners in
    pixels per frame, timestamps in seconds, ``misses`` = frames in a row without a match."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]
    velocity: tuple[float, float, float, float]
    first_seen: float
    last_seen: float
    hits: int
    misses: int
    confirmed: bool


class IoUTracker:
    """Greedy IoU tracker with constant-velocity prediction (see the module docstring).

    ``iou_threshold`` in (0, 1]: least IoU between a predicted box and a detection to match;
    ``max_lost`` >= 1: misses in a row after which a track is declared lost;
    ``min_hits`` >= 1: matches needed to confirm a track; ``match_labels``: only match
    detections of the track's label; ``predict``: use constant-velocity prediction.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_lost: int = 5,
        min_hits: int = 1,
        *,
        match_labels: bool = True,
        predict: bool = True,
    ) -> None:
        if not 0.0 < float(iou_threshold) <= 1.0:
            raise InputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if int(max_lost) < 1 or int(min_hits) < 1:
            raise InputError(f"max_lost and min_hits must be >= 1, got {max_lost} and {min_hits}")
        self.iou_threshold = float(iou_threshold)
        self.max_lost = int(max_lost)
        self.min_hits = int(min_hits)
        self.match_labels = match_labels
        self.predict = predict
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again from 0."""
        self._next_id = 0
        self._last_time = -np.inf
        self._ids = np.zeros(0, np.int64)
        self._labels = np.zeros(0, object)
        self._boxes = np.zeros((0, 4))
        self._vel = np.zeros((0, 4))
        self._first = np.zeros(0)
        self._last = np.zeros(0)
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Live tracks (tentative and confirmed), by track id."""
        return tuple(
            Track(int(i), str(lab), tuple(map(float, b)), tuple(map(float, v)), float(f), float(l),
                  int(h), int(m), bool(h >= self.min_hits))  # type: ignore[arg-type]
            for i, lab, b, v, f, l, h, m in zip(self._ids, self._labels, self._boxes, self._vel,
                                                self._first, self._last, self._hits, self._misses)
        )

    def predicted_boxes(self) -> np.ndarray:
        """``float64[T, 4]``: where each live track is expected in the next frame."""
        if not self.predict:
            return self._boxes.copy()
        return self._boxes + self._vel * (self._misses[:, None] + 1)

    def update(self, meta: RelationMeta, timestamp: float) -> list[int]:
        """Track one frame's detections; returns the ids of the TrackingMtds added to ``meta``."""
        if not isinstance(meta, RelationMeta):
            raise InputError(f"update() needs a RelationMeta, got {type(meta).__name__}")
        t = float(timestamp)
        if not np.isfinite(t) or t <= self._last_time:
            raise InputError(
                f"timestamps must be finite and increase from frame to frame: got {timestamp} "
                f"after {self._last_time}",
                hint="call update() once per frame, in order; reset() before a new video",
            )
        self._last_time = t

        dets = meta.of_kind(ObjectDetectionMtd)
        det_ids = np.array([i for i, _ in dets], dtype=np.int64)
        det_boxes = np.array([d.box for _, d in dets], dtype=np.float64).reshape(-1, 4)
        det_labels = np.array([d.label for _, d in dets], dtype=object)

        score = iou_matrix(self.predicted_boxes(), det_boxes)
        if self.match_labels:
            score[self._labels[:, None] != det_labels[None, :]] = 0.0
        rows, cols = greedy_match(score, self.iou_threshold)

        # matched tracks: velocity over the frames since their last match
        elapsed = (self._misses[rows] + 1)[:, None]
        self._vel[rows] = (det_boxes[cols] - self._boxes[rows]) / elapsed
        self._boxes[rows] = det_boxes[cols]
        self._last[rows] = t
        self._hits[rows] += 1
        matched = np.zeros(len(self._ids), bool)
        matched[rows] = True
        self._misses = np.where(matched, 0, self._misses + 1)
        matched_det = np.full(len(self._ids), -1, np.int64)
        matched_det[rows] = det_ids[cols]

        confirmed = self._hits >= self.min_hits
        lost = ~matched & confirmed & (self._misses >= self.max_lost)
        keep = matched | (confirmed & ~lost)  # tentative tracks die at their first miss
        emit = confirmed.copy()

        added: list[int] = []
        for k in np.flatnonzero(emit):
            mtd_id = meta.add(TrackingMtd(int(self._ids[k]), float(self._first[k]), float(self._last[k]),
                                          lost=bool(lost[k])))
            if matched[k]:
                meta.relate(int(matched_det[k]), mtd_id, RelationType.RELATE_TO)
            added.append(mtd_id)
        self._select(keep)

        # unmatched detections start new tracks
        new = np.ones(len(det_ids), bool)
        new[cols] = False
        n_new = int(new.sum())
        ids = np.arange(self._next_id, self._next_id + n_new, dtype=np.int64)
        self._next_id += n_new
        self._ids = np.r_[self._ids, ids]
        self._labels = np.r_[self._labels, det_labels[new]]
        self._boxes = np.r_[self._boxes, det_boxes[new]]
        self._vel = np.r_[self._vel, np.zeros((n_new, 4))]
        self._first = np.r_[self._first, np.full(n_new, t)]
        self._last = np.r_[self._last, np.full(n_new, t)]
        self._hits = np.r_[self._hits, np.ones(n_new, np.int64)]
        self._misses = np.r_[self._misses, np.zeros(n_new, np.int64)]
        if self.min_hits <= 1:
            for track_id, det_id in zip(ids, det_ids[new]):
                mtd_id = meta.add(TrackingMtd(int(track_id), t, t))
                meta.relate(int(det_id), mtd_id, RelationType.RELATE_TO)
                added.append(mtd_id)
        return added

    def _select(self, keep: np.ndarray) -> None:
        for name in ("_ids", "_labels", "_boxes", "_vel", "_first", "_last", "_hits", "_misses"):
            setattr(self, name, getattr(self, name)[keep])

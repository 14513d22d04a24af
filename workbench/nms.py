"""Non-maximum suppression variants that log every decision (pure NumPy).

Each function returns a :class:`~workbench.decisions.DecisionLog` with one row per candidate.

Common semantics (the same in every method, and the same as OpenCV ``dnn.NMSBoxes``, ONNX
``NonMaxSuppression``, torchvision ``nms`` and YOLOv5):

* score filter: a candidate takes part iff ``score > score_threshold`` (strict; the threshold is
  compared in the scores' dtype, so float32 scores are compared with ``float32(threshold)`` as
  OpenCV does). ``None`` = no filter.
* ranking: by score, descending; equal scores keep input order (lower row first), as OpenCV's
  ``std::stable_sort`` and ONNX.
* ``top_k``: only the first ``top_k`` ranked candidates enter NMS (the rest: CUT_BY_TOPK), as
  OpenCV's ``top_k`` and YOLOv5's ``max_nms``.
* overlap: a box is suppressed (merged) iff ``IoU > iou_threshold`` (strict); IoU is computed in
  float64; degenerate (zero-area) boxes have IoU 0 with everything.
* ``class_agnostic=False``: boxes interact only with boxes of the same class (an exact class mask,
  not the coordinate-offset trick, so IoUs are not perturbed by large offsets); ranking, top_k and
  max_detections stay global, as in YOLOv5.
* ``max_detections``: stop once that many boxes are kept; candidates still undecided are
  CUT_BY_MAX_DETECTIONS (ONNX's ``max_output_boxes_per_class`` per class, YOLOv5's ``max_det``).

Agreement with the references (tests/test_nms.py): ``greedy_nms`` returns exactly what
``cv2.dnn.NMSBoxes`` / ``NMSBoxesBatched`` and the ONNX ``NonMaxSuppression`` node test cases
return, ties and boxes sitting exactly at the IoU threshold included. Two known edges: OpenCV
calls two zero-area boxes identical (IoU 1; here 0), and OpenCV rounds the IoU to float32
(``1 - float(1 - IoU)``) before comparing, so an IoU within ~3e-8 of the threshold, but not
equal to it, could be decided differently there.

Complexity: one Python iteration per *kept* box. With few candidates (at most ``_PAIR_MAX``
same-class pairs) the IoUs of all same-class pairs are computed at once and each iteration
only marks the boxes its kept box overlaps; otherwise each iteration computes one IoU row
against the later boxes of its class (torchvision's CPU kernel is the same loop in C++).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from .boxes import as_boxes
from .decisions import PARAM_NAMES, DecisionLog, Fate, NmsParams
from .errors import InputError

__all__ = ["greedy_nms", "weighted_nms", "soft_nms", "replay", "run_nms", "NMS_METHODS"]

_KEPT, _SUPPRESSED, _MERGED = int(Fate.KEPT), int(Fate.SUPPRESSED), int(Fate.MERGED)
_BELOW, _TOPK, _CUTMAX = int(Fate.BELOW_SCORE), int(Fate.CUT_BY_TOPK), int(Fate.CUT_BY_MAX_DETECTIONS)

# Greedy and weighted NMS first list every same-class pair of ranked candidates (i < j) and its
# IoU, when there are at most this many pairs; above it they compute one IoU row per kept box.
# Both strategies give identical logs (a test forces each).
_PAIR_MAX = 1 << 17


@dataclass(frozen=True)
class _Candidates:
    boxes: np.ndarray  # [N, 4] float64, finite
    score: np.ndarray  # [N] float32 or float64, finite
    classes: np.ndarray  # [N] int64
    source_index: np.ndarray  # [N] int64
    raw_score: np.ndarray  # [N] float
    cell: np.ndarray | None
    extra: np.ndarray | None


def _vector(v: Any, n: int, name: str, kind: str) -> np.ndarray:
    arr = np.asarray(v)
    if arr.shape != (n,):
        raise InputError(f"{name}: expected shape [{n}] (one per box), got {list(arr.shape)}")
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected a numeric array, got {arr.dtype}")
    if kind == "int":
        if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise InputError(f"{name}: expected integers, got non-integral values")
        return arr.astype(np.int64, copy=False)
    return arr


def _candidates(boxes: Any, scores: Any, classes: Any = None, source_index: Any = None,
                cell: Any = None, raw_score: Any = None, extra: Any = None) -> _Candidates:
    b = as_boxes(boxes)
    n = len(b)
    s = _vector(scores, n, "scores", "float")
    if s.dtype != np.float32 and s.dtype != np.float64:
        s = s.astype(np.float64)
    if not np.isfinite(s).all():
        bad = ~np.isfinite(s)
        raise InputError(f"scores: {int(bad.sum())} of {n} rows hold NaN or Inf "
                         f"(first rows: {np.flatnonzero(bad)[:5].tolist()})",
                         hint="drop or repair those candidates before NMS")
    cls = np.zeros(n, np.int64) if classes is None else _vector(classes, n, "classes", "int")
    src = np.arange(n) if source_index is None else _vector(source_index, n, "source_index", "int")
    raw = np.full(n, np.nan) if raw_score is None else _vector(raw_score, n, "raw_score", "float")
    if cell is not None:
        cell = np.asarray(cell)
        if cell.ndim == 1:
            cell = cell[:, None]
        if cell.ndim != 2 or len(cell) != n or cell.dtype.kind not in "iu":
            raise InputError(f"cell: expected an int array of shape [{n}, k], got {cell.dtype} {list(cell.shape)}")
        cell = cell.astype(np.int64, copy=False)
    if extra is not None:
        extra = np.asarray(extra, dtype=np.float64)
        if extra.ndim == 1:
            extra = extra[:, None]
        if extra.ndim != 2 or len(extra) != n:
            raise InputError(f"extra: expected shape [{n}, E] (e.g. keypoints flattened), got {list(extra.shape)}")
        if not np.isfinite(extra).all():
            raise InputError(f"extra: {int((~np.isfinite(extra).all(axis=1)).sum())} of {n} rows hold NaN or Inf")
    return _Candidates(b, s, cls, src, raw, cell, extra)


class _Ranked:
    """The candidates that passed the score filter and top_k, sorted by score (position p)."""

    def __init__(self, c: _Candidates, rows: np.ndarray, class_agnostic: bool, overlap: str = "iou") -> None:
        self.m = len(rows)
        self.coords = np.ascontiguousarray(c.boxes[rows].T)  # [4, m]: rows x1, y1, x2, y2
        self.x1, self.y1, self.x2, self.y2 = self.coords
        self.area = np.maximum(self.x2 - self.x1, 0) * np.maximum(self.y2 - self.y1, 0)
        self.score = c.score[rows].astype(np.float64)
        self.cls = None if class_agnostic else c.classes[rows]
        self.min_area = overlap == "min"  # overlap = intersection / the smaller area (MTCNN 'Min')

    def _denominator(self, p: Any, q: Any, inter: np.ndarray) -> np.ndarray:
        if self.min_area:
            return np.minimum(self.area[p], self.area[q])
        return self.area[p] + self.area[q] - inter

    def iou(self, p: Any, q: Any) -> np.ndarray:
        """IoU of positions ``p`` and ``q`` (ints, slices or index arrays that broadcast)."""
        w = np.minimum(self.x2[p], self.x2[q]) - np.maximum(self.x1[p], self.x1[q])
        h = np.minimum(self.y2[p], self.y2[q]) - np.maximum(self.y1[p], self.y1[q])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        union = self._denominator(p, q, inter)
        out = np.zeros(inter.shape)
        np.divide(inter, union, out=out, where=union > 0)
        return out

    def pair_iou(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """IoU of position pairs ``(i[P], j[P])`` -> ``[P]`` (bit-identical to :meth:`iou`)."""
        bi, bj = self.coords.take(i, axis=1), self.coords.take(j, axis=1)  # [4, P], C-contiguous
        wh = np.minimum(bi[2:], bj[2:]) - np.maximum(bi[:2], bj[:2])
        np.maximum(wh, 0, out=wh)
        inter = wh[0] * wh[1]
        union = self._denominator(i, j, inter)
        out = np.zeros(len(inter))
        np.divide(inter, union, out=out, where=union > 0)
        return out

    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions grouped by class -> ``g[m]`` (ascending inside a class), ``e[m]`` (where each
        position sits in ``g``) and ``end[m]`` (the end of its class block in ``g``)."""
        m = self.m
        if self.cls is None:
            ar = np.arange(m)
            return ar, ar, np.full(m, m)
        g = self.cls.argsort(kind="stable")
        e = np.empty(m, np.int64)
        e[g] = np.arange(m)
        return g, e, self.cls[g].searchsorted(self.cls, side="right")

    def pairs(self, max_pairs: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Every same-class pair of positions ``(i, j)``, ``i < j``, sorted by ``i`` -> ``(i[P], j[P])``.

        None if there would be more than ``max_pairs``.
        """
        m = self.m
        if m < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.cls is None and m * (m - 1) // 2 > max_pairs:
            return None
        g, e, end = self.groups()
        n_after = end - e - 1  # per position: same-class positions after it
        total = int(n_after.sum())
        if total > max_pairs:
            return None
        first = np.arange(m).repeat(n_after)
        offset = np.arange(total) - (n_after.cumsum() - n_after - e - 1).repeat(n_after)
        return first, g[offset]


@dataclass
class _Core:
    """What an NMS core decided about the ``m`` ranked candidates (positions, sparse).

    ``kept[K]`` in output order; ``removed[R]`` (SUPPRESSED or MERGED, ``fate``) with the position
    ``by[R]`` of the kept box that removed it, their ``iou[R]`` and the iteration ``t[R]`` of
    ``by``; ``weight[m]`` (or None). Ranked positions in neither list are CUT_BY_MAX_DETECTIONS.
    """

    kept: np.ndarray
    removed: np.ndarray
    by: np.ndarray
    iou: np.ndarray
    t: np.ndarray
    fate: int
    weight: np.ndarray | None = None


def _select_by_pairs(r: _Ranked, p_: NmsParams, fate: int, pairs: tuple[np.ndarray, np.ndarray]) -> _Core:
    """Greedy selection from the list of overlapping same-class pairs (few candidates)."""
    m = r.m
    limit = m if p_.max_detections is None else p_.max_detections
    i, j = pairs
    ov = r.pair_iou(i, j)
    hit = (ov > p_.iou_threshold).nonzero()[0]
    i, j, ov = i[hit], j[hit], ov[hit]
    bounds = i.searchsorted(np.arange(m + 1)).tolist()  # pairs of p: bounds[p]:bounds[p+1]
    alive = np.ones(m, bool)
    kept: list[int] = []
    p = 0
    while m and len(kept) < limit:
        kept.append(p)
        alive[p] = False
        if bounds[p + 1] > bounds[p]:
            alive[j[bounds[p]:bounds[p + 1]]] = False
        p = int(alive.argmax())  # every position before p is decided: the first alive is next
        if not alive[p]:
            break
    kept_a = np.array(kept, dtype=np.int64)
    # who removed whom: the first kept box overlapping it. Pairs are sorted by i and a stable
    # sort by j keeps that, so the first pair of each j holds the earliest kept i.
    t_of = np.full(m, -1, np.int64)
    t_of[kept_a] = np.arange(len(kept_a))
    sel = (t_of[i] >= 0).nonzero()[0]
    sel = sel[j[sel].argsort(kind="stable")]
    js = j[sel]
    first = np.ones(len(js), bool)
    first[1:] = js[1:] != js[:-1]
    sel = sel[first]
    by = i[sel]
    return _Core(kept_a, j[sel], by, ov[sel], t_of[by], fate)


def _select_by_rows(r: _Ranked, p_: NmsParams, fate: int) -> _Core:
    """Greedy selection computing one IoU row per kept box against the later boxes of its
    class (many candidates)."""
    m = r.m
    limit = m if p_.max_detections is None else p_.max_detections
    g, e, end = r.groups()
    e_l, end_l = e.tolist(), end.tolist()
    alive = np.ones(m, bool)
    kept: list[int] = []
    removed, ious = [], []
    p = 0
    while m and len(kept) < limit:
        kept.append(p)
        alive[p] = False
        # the later boxes of p's class: a slice when class-agnostic (cheaper than a gather)
        after = slice(p + 1, None) if r.cls is None else g[e_l[p] + 1:end_l[p]]
        row = r.iou(p, after)
        hit = (row > p_.iou_threshold) & alive[after]
        q = hit.nonzero()[0] + (p + 1) if r.cls is None else after[hit]
        removed.append(q)
        ious.append(row[hit])
        alive[q] = False
        p = int(alive.argmax())
        if not alive[p]:
            break
    return _sparse_core(kept, removed, ious, fate)


def _sparse_core(kept: list[int], removed: list[np.ndarray], ious: list[np.ndarray], fate: int,
                 weight: np.ndarray | None = None) -> _Core:
    """A _Core from per-iteration lists (``removed[t]``: positions removed by ``kept[t]``)."""
    kept_a = np.array(kept, dtype=np.int64)
    counts = [len(q) for q in removed]
    t = np.repeat(np.arange(len(removed)), counts)
    rem = np.concatenate(removed) if removed else np.zeros(0, np.int64)
    iou = np.concatenate(ious) if ious else np.zeros(0)
    return _Core(kept_a, rem, kept_a[t], iou, t, fate, weight)


def _select(r: _Ranked, p_: NmsParams, fate: int) -> _Core:
    pairs = r.pairs(_PAIR_MAX)
    if pairs is not None:
        return _select_by_pairs(r, p_, fate, pairs)
    return _select_by_rows(r, p_, fate)


def _greedy_core(r: _Ranked, p_: NmsParams) -> _Core:
    return _select(r, p_, _SUPPRESSED)


def _weighted_core(r: _Ranked, p_: NmsParams) -> _Core:
    # MediaPipe's WEIGHTED groups are exactly greedy NMS's suppression sets: the best remaining
    # box takes every remaining box with IoU > threshold. Only the output differs (a blend).
    core = _select(r, p_, _MERGED)
    k = len(core.kept)
    members = np.concatenate([core.kept, core.removed])
    g = np.concatenate([np.arange(k), core.t])
    s = r.score[members]
    total = np.bincount(g, weights=s, minlength=k)[g]
    size = np.bincount(g, minlength=k)[g]
    # a group whose scores are all 0 gets an unweighted mean (MediaPipe would divide by zero)
    w = np.divide(s, total, out=1.0 / size, where=total > 0)
    core.weight = np.full(r.m, np.nan)
    core.weight[members] = w
    return core


def _soft_core(r: _Ranked, p_: NmsParams) -> _Core:
    m = r.m
    limit = m if p_.max_detections is None else p_.max_detections
    s0 = r.score
    s = s0.copy()
    alive = np.ones(m, bool)
    thr = p_.score_threshold
    gaussian = p_.decay == "gaussian"
    kept: list[int] = []
    removed, ious = [], []
    weight = np.full(m, np.nan)

    def ratio(idx: Any) -> Any:
        return np.divide(s[idx], s0[idx], out=np.ones(np.shape(idx)), where=s0[idx] != 0)

    n_alive = m
    while n_alive and len(kept) < limit:
        # the highest *current* score; ties -> the earlier rank (argmax takes the first)
        p = int(np.argmax(np.where(alive, s, -np.inf)))
        kept.append(p)
        weight[p] = ratio(p)
        alive[p] = False
        idx = alive.nonzero()[0]
        n_alive = len(idx)
        ov = r.iou(p, idx)
        if gaussian:
            w = np.exp(-(ov * ov) / p_.sigma)
        else:
            w = np.where(ov > p_.iou_threshold, 1.0 - ov, 1.0)
        if r.cls is not None:
            w = np.where(r.cls[idx] == r.cls[p], w, 1.0)
        s[idx] *= w
        drop = (s[idx] <= thr) if thr is not None else np.zeros(len(idx), bool)
        d = idx[drop]
        removed.append(d)
        ious.append(ov[drop])
        weight[d] = ratio(d)
        alive[d] = False
        n_alive -= len(d)
    still = alive.nonzero()[0]  # undecided at max_detections: their decay so far
    weight[still] = ratio(still)
    return _sparse_core(kept, removed, ious, _SUPPRESSED, weight)


_CORES: dict[str, Callable[[_Ranked, NmsParams], _Core]] = {
    "greedy": _greedy_core,
    "weighted": _weighted_core,
    "soft": _soft_core,
}
NMS_METHODS = tuple(_CORES)


def _run(p: NmsParams, c: _Candidates) -> DecisionLog:
    n = len(c.score)
    score = c.score
    if p.score_threshold is None:
        passed = np.arange(n)
        below = passed[:0]
    else:
        ok = score > score.dtype.type(p.score_threshold)
        passed = ok.nonzero()[0]
        below = (~ok).nonzero()[0]
    ranked = passed[(-score[passed]).argsort(kind="stable")]
    if p.top_k is not None and p.top_k < len(ranked):
        ranked, cut = ranked[:p.top_k], ranked[p.top_k:]
    else:
        cut = ranked[:0]
    if p.method != "greedy" and len(ranked) and score[ranked[-1]] < 0:
        raise InputError(f"{p.method} NMS weighs boxes by their scores and needs scores >= 0; "
                         f"{int((score[ranked] < 0).sum())} candidates have negative scores",
                         hint="apply the activation (sigmoid/softmax) first, or use greedy_nms")
    r = _Ranked(c, ranked, p.class_agnostic, p.overlap)
    core = _CORES[p.method](r, p)

    m, k = len(ranked), len(core.kept)
    kept_rows, removed_rows = ranked[core.kept], ranked[core.removed]
    fate = np.full(n, _BELOW, np.int8)
    fate[cut] = _TOPK
    fate[ranked] = _CUTMAX
    fate[kept_rows] = _KEPT
    fate[removed_rows] = core.fate
    by = np.full(n, -1, np.int64)
    by[removed_rows] = ranked[core.by]
    iou = np.full(n, np.nan)
    iou[removed_rows] = core.iou
    weight = np.full(n, np.nan)
    if core.weight is not None:
        weight[ranked] = core.weight
    rank = np.full(n, -1, np.int64)
    rank[kept_rows] = np.arange(k)
    # decision order: score filter, then kept box t followed by what it removed (2t, 2t+1), then
    # the max_detections cut; a stable sort keeps rank order inside each step
    step = np.full(m, 2 * m + 2, np.int64)
    step[core.kept] = 2 * np.arange(k)
    step[core.removed] = 2 * core.t + 1
    order = np.empty(n, np.int64)
    order[np.concatenate([below, cut, ranked[step.argsort(kind="stable")]])] = np.arange(n)
    return DecisionLog(source_index=c.source_index, raw_score=c.raw_score, score=score, boxes=c.boxes,
                       classes=c.classes, fate=fate, by=by, iou=iou, weight=weight, rank=rank, order=order,
                       params=p, cell=c.cell, extra=c.extra)


def run_nms(params: NmsParams, boxes: Any, scores: Any, *, classes: Any = None, source_index: Any = None,
            cell: Any = None, raw_score: Any = None, extra: Any = None) -> DecisionLog:
    """Run the NMS that ``params`` names on ``boxes[N, 4]`` (xyxy) and ``scores[N]``."""
    return _run(params, _candidates(boxes, scores, classes, source_index, cell, raw_score, extra))


def greedy_nms(boxes: Any, scores: Any, iou_threshold: float, score_threshold: float | None = None, *,
               classes: Any = None, class_agnostic: bool = True, top_k: int | None = None,
               max_detections: int | None = None, source_index: Any = None, cell: Any = None,
               raw_score: Any = None, extra: Any = None, overlap: str = "iou") -> DecisionLog:
    """Classic greedy NMS: keep the best box, suppress every box with ``IoU > iou_threshold``, repeat.

    ``boxes[N, 4]`` xyxy, ``scores[N]``; optional per-candidate ``classes[N]``, ``source_index[N]``,
    ``cell[N, k]``, ``raw_score[N]``, ``extra[N, E]`` are carried into the log. Matches
    ``cv2.dnn.NMSBoxes`` (for boxes of positive area) and ONNX ``NonMaxSuppression`` exactly.
    ``overlap="min"`` compares intersection / the smaller area instead of IoU (MTCNN's ``'Min'``).
    """
    p = NmsParams("greedy", float(iou_threshold), _opt_float(score_threshold), top_k, max_detections,
                  bool(class_agnostic), overlap=overlap)
    return run_nms(p, boxes, scores, classes=classes, source_index=source_index, cell=cell,
                   raw_score=raw_score, extra=extra)


def weighted_nms(boxes: Any, scores: Any, iou_threshold: float, score_threshold: float | None = None, *,
                 classes: Any = None, class_agnostic: bool = True, top_k: int | None = None,
                 max_detections: int | None = None, source_index: Any = None, cell: Any = None,
                 raw_score: Any = None, extra: Any = None) -> DecisionLog:
    """MediaPipe's WEIGHTED NMS (``NonMaxSuppressionCalculator``, used by BlazeFace).

    Take the best remaining box; every remaining box with ``IoU > iou_threshold`` (strict, as
    MediaPipe's ``similarity > min_suppression_threshold``) is MERGED into it; the output box (and
    ``extra``, e.g. keypoints) is the score-weighted mean of the group, the output score the best
    box's own. The overlap is true IoU, MediaPipe's ``overlap_type: INTERSECTION_OVER_UNION``
    (its face-detection graphs: threshold 0.3, WEIGHTED); its ``JACCARD`` type divides by the
    area of the enclosing box instead and is not reproduced. ``log.weight`` holds each member's
    share ``score / sum(group scores)``; ``log.output_boxes`` / ``log.output_extra`` the blends.

    Differences from MediaPipe, all at edges: ties keep input order (MediaPipe's ``std::sort`` is
    not stable); the score filter runs first (MediaPipe's graphs filter in TensorsToDetections);
    a zero-area best box is kept as is and NMS goes on (MediaPipe outputs it and stops, dropping
    every remaining box); ``max_detections`` is honoured (MediaPipe's weighted path ignores
    ``max_num_detections``).
    """
    p = NmsParams("weighted", float(iou_threshold), _opt_float(score_threshold), top_k, max_detections,
                  bool(class_agnostic))
    return run_nms(p, boxes, scores, classes=classes, source_index=source_index, cell=cell,
                   raw_score=raw_score, extra=extra)


def soft_nms(boxes: Any, scores: Any, iou_threshold: float = 0.3, score_threshold: float | None = 0.001, *,
             method: str = "linear", sigma: float = 0.5, classes: Any = None, class_agnostic: bool = True,
             top_k: int | None = None, max_detections: int | None = None, source_index: Any = None,
             cell: Any = None, raw_score: Any = None, extra: Any = None) -> DecisionLog:
    """Soft-NMS (Bodla et al., 2017): decay overlapping scores instead of deleting boxes.

    Repeatedly keep the box with the highest *current* score and multiply every remaining score by
    ``1 - IoU`` if ``IoU > iou_threshold`` (``method="linear"``) or by ``exp(-IoU**2 / sigma)``
    (``"gaussian"``; ``iou_threshold`` unused). A box whose decayed score falls to
    ``<= score_threshold`` is SUPPRESSED (``by`` = the kept box whose decay pushed it under, ``iou``
    = their IoU). ``weight`` = decayed / original score; ``log.output_scores`` are decayed scores.
    """
    p = NmsParams("soft", float(iou_threshold), _opt_float(score_threshold), top_k, max_detections,
                  bool(class_agnostic), decay=method, sigma=float(sigma))
    return run_nms(p, boxes, scores, classes=classes, source_index=source_index, cell=cell,
                   raw_score=raw_score, extra=extra)


_ALIASES = {"iou": "iou_threshold", "score": "score_threshold"}


def replay(log: DecisionLog, **changes: Any) -> DecisionLog:
    """Recompute every decision of ``log`` with some parameters changed, without the model.

    ``changes`` are :class:`NmsParams` fields (``iou_threshold`` / ``iou``, ``score_threshold`` /
    ``score``, ``top_k``, ``max_detections``, ``class_agnostic``, ``sigma``, ``decay``); pass
    ``None`` to lift a limit. Candidates filtered out when the log was made were still logged, so
    a lower score threshold brings them back.
    """
    if not isinstance(log, DecisionLog):
        raise InputError(f"replay needs a DecisionLog, got {type(log).__name__}")
    resolved = {_ALIASES.get(k, k): v for k, v in changes.items()}
    unknown = set(resolved) - set(PARAM_NAMES)
    if unknown:
        raise InputError(f"replay: unknown parameter(s) {sorted(unknown)}",
                         hint=f"use any of {sorted(PARAM_NAMES)} (or the short names iou=, score=)")
    for k in ("iou_threshold", "sigma"):
        if resolved.get(k) is not None:
            resolved[k] = float(resolved[k])
    if "score_threshold" in resolved:
        resolved["score_threshold"] = _opt_float(resolved["score_threshold"])
    params = replace(log.params, **resolved)
    c = _Candidates(log.boxes, log.score, log.classes, log.source_index, log.raw_score, log.cell, log.extra)
    return replace(_run(params, c), meta=dict(log.meta))


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(f"score_threshold must be a number or None, got {v!r}") from None

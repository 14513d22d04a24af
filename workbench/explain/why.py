"""Why was this box suppressed, or missed?

* :func:`why_suppressed`: a candidate the decision log marks SUPPRESSED (or MERGED) and the kept
  box that removed it are attributed with the same method, to be shown side by side: which
  pixels make the winner win, which support the loser.
* :func:`why_missed`: for a ground-truth object with no kept box, the best-scoring candidate near
  it (IoU >= ``min_iou``) is attributed, with its fate (below the score threshold, suppressed by
  which box, cut by top-k...).

Both work on a detector stage's log and on MTCNN's O-Net log (each candidate on its own crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..boxes import box_iou
from ..decisions import DecisionLog, Fate
from ..errors import TargetError
from .attribution import Attribution

if TYPE_CHECKING:
    from ..result import FrameResult, StageRecord

__all__ = ["WhySuppressed", "WhyMissed", "why_suppressed", "why_missed", "candidate_frame_boxes"]


def _stage_and_log(result: "FrameResult", stage: str | None) -> tuple["StageRecord", DecisionLog]:
    st = result[stage] if stage is not None else result.primary
    if st is None:
        raise TargetError("this result has no stage with a decision log")
    log = st.logs.get("onet") if st.kind == "mtcnn" else st.log
    if log is None:
        raise TargetError(f"stage {st.name!r} has no decision log (a classifier?)")
    return st, log


def candidate_frame_boxes(st: "StageRecord", log: DecisionLog) -> np.ndarray:
    """Every log row's box in frame pixels ``[N, 4]`` (MTCNN's O-Net log is in frame pixels)."""
    if st.kind == "mtcnn" or not len(log):
        return np.asarray(log.boxes, dtype=np.float64)
    return st.transforms["input"][0].boxes_to_frame(log.boxes)


def _draw(ax: Any, image: np.ndarray, a: Attribution, box: np.ndarray, title: str, colour: str) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(a.overlay(image))
    x1, y1, x2, y2 = (float(v) for v in box)
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=2))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


@dataclass(frozen=True, eq=False)
class WhySuppressed:
    """A suppressed (or merged) candidate and the kept box that removed it, both attributed."""

    candidate: Attribution
    suppressor: Attribution
    row: int
    by: int
    iou: float
    fate: str
    candidate_box: np.ndarray
    suppressor_box: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "by": self.by, "iou": self.iou, "fate": self.fate,
                "candidate": {**self.candidate.summary(), "box": self.candidate_box.tolist()},
                "suppressor": {**self.suppressor.summary(), "box": self.suppressor_box.tolist()}}

    def plot(self, image: np.ndarray) -> Any:
        """A matplotlib figure: the suppressor's map and the candidate's map side by side."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
        _draw(axes[0], image, self.suppressor, self.suppressor_box,
              f"kept row {self.by}: {self.suppressor.target.score:.3f}", "lime")
        _draw(axes[1], image, self.candidate, self.candidate_box,
              f"row {self.row} {self.fate} (IoU {self.iou:.2f}): {self.candidate.target.score:.3f}", "red")
        fig.suptitle(f"{self.candidate.method}: why row {self.row} lost to row {self.by}", fontsize=10)
        fig.tight_layout()
        return fig


@dataclass(frozen=True, eq=False)
class WhyMissed:
    """The best candidate near a missed ground-truth box, attributed, with its fate."""

    attribution: Attribution
    row: int
    fate: str
    score: float
    iou: float
    by: int
    gt_box: np.ndarray
    candidate_box: np.ndarray
    score_threshold: float | None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "fate": self.fate, "score": self.score, "iou_with_gt": self.iou, "by": self.by,
                "score_threshold": self.score_threshold, "gt_box": self.gt_box.tolist(),
                "candidate_box": self.candidate_box.tolist(), "attribution": self.attribution.summary()}

    def explanation(self) -> str:
        """One sentence on why the object has no kept box."""
        if self.fate == "BELOW_SCORE":
            return (f"the best candidate near it (row {self.row}, IoU {self.iou:.2f}) scored {self.score:.3f}, "
                    f"not above the threshold {self.score_threshold}")
        if self.fate in ("SUPPRESSED", "MERGED"):
            return (f"the best candidate near it (row {self.row}, score {self.score:.3f}) was {self.fate.lower()} by "
                    f"row {self.by}")
        return f"the best candidate near it (row {self.row}, score {self.score:.3f}) ended {self.fate}"

    def plot(self, image: np.ndarray) -> Any:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        fig, ax = plt.subplots(figsize=(5, 5))
        _draw(ax, image, self.attribution, self.candidate_box, f"row {self.row} {self.fate}: {self.score:.3f}", "red")
        x1, y1, x2, y2 = (float(v) for v in self.gt_box)
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1.5, ls="--"))
        fig.tight_layout()
        return fig


def why_suppressed(result: "FrameResult", row: int, method: str = "occlusion", *, stage: str | None = None,
                   **params: Any) -> WhySuppressed:
    """Attribute a suppressed/merged candidate ``row`` and the box that removed it (same method
    and parameters; quality checks off unless ``quality=`` is given)."""
    from .api import explain

    st, log = _stage_and_log(result, stage)
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)) or not 0 <= int(row) < len(log):
        raise TargetError(f"candidate row {row!r} out of range: the decision log of {st.name!r} has {len(log)} rows")
    r = int(row)
    fate = Fate(int(log.fate[r]))
    by = int(log.by[r])
    if fate not in (Fate.SUPPRESSED, Fate.MERGED) or by < 0:
        suppressed = np.flatnonzero(np.isin(log.fate, [Fate.SUPPRESSED, Fate.MERGED]) & (log.by >= 0))
        raise TargetError(f"row {r} was not suppressed: its fate is {fate.name}",
                          hint=f"suppressed or merged rows: {suppressed[:12].tolist()}"
                               + (" ..." if len(suppressed) > 12 else "") if len(suppressed) else
                          "no candidate was suppressed in this log")
    params.setdefault("quality", False)
    boxes = candidate_frame_boxes(st, log)
    cand = explain(result, {"row": r, "stage": st.name}, method, **params)
    winner = explain(result, {"row": by, "stage": st.name}, method, **params)
    return WhySuppressed(cand, winner, r, by, float(log.iou[r]), fate.name, boxes[r], boxes[by])


def why_missed(result: "FrameResult", box: Any, label: Any = None, method: str = "occlusion", *,
               stage: str | None = None, min_iou: float = 0.3, match_iou: float = 0.5, **params: Any) -> WhyMissed:
    """Explain a ground-truth object (``box`` in frame pixels, optional ``label`` / class index)
    that no kept box matches at IoU >= ``match_iou``: attribute the best-scoring candidate with
    IoU >= ``min_iou`` (of that class when given)."""
    from .api import explain

    st, log = _stage_and_log(result, stage)
    gt = np.asarray(box, dtype=np.float64).reshape(-1)
    if gt.shape != (4,) or not np.isfinite(gt).all() or gt[2] <= gt[0] or gt[3] <= gt[1]:
        raise TargetError(f"box must be (x1, y1, x2, y2) in frame pixels, got {box!r}")
    det = st.detections
    cls = None
    if label is not None:
        labels = tuple(det.labels) if det is not None else ()
        cls = labels.index(label) if isinstance(label, str) and label in labels else label
        if not isinstance(cls, (int, np.integer)):
            raise TargetError(f"unknown label {label!r}", hint=f"labels: {list(labels)}")
    if det is not None and len(det):
        ious = box_iou(gt[None], det.frame_boxes)[0]
        same = np.ones(len(det), bool) if cls is None else det.classes == cls
        hit = np.flatnonzero((ious >= match_iou) & same)
        if len(hit):
            raise TargetError(f"the object is not missed: kept detection {int(hit[0])} matches it with IoU "
                              f"{float(ious[hit[0]]):.2f}", hint="explain that detection instead")
    boxes = candidate_frame_boxes(st, log)
    if not len(log):
        raise TargetError(f"the decision log of {st.name!r} is empty: the model proposed nothing")
    ious = box_iou(gt[None], boxes)[0]
    near = ious >= min_iou
    if cls is not None:
        near &= log.classes == cls
    rows = np.flatnonzero(near)
    if not len(rows):
        where = " (MTCNN: only candidates that reached O-Net are logged there)" if st.kind == "mtcnn" else ""
        raise TargetError(f"no candidate has IoU >= {min_iou} with {gt.tolist()}{where}; best IoU is "
                          f"{float(ious.max()):.2f}", hint="lower min_iou")
    r = int(rows[np.argmax(log.score[rows])])
    params.setdefault("quality", False)
    a = explain(result, {"row": r, "stage": st.name}, method, **params)
    return WhyMissed(a, r, Fate(int(log.fate[r])).name, float(log.score[r]), float(ious[r]), int(log.by[r]), gt,
                     boxes[r], log.params.score_threshold)

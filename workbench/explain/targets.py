"""What an attribution explains: a :class:`Target`, resolved from a FrameResult.

Kinds of targets::

    class       a classifier's class (its score after the card's activation, or its logit)
    detection   one box: the score of the candidate that best matches it, IoU x class score
                (as D-RISE), so pixels that destroy the box lower the target
    output      one element of a raw output tensor
    layer       a layer's mean activation (one channel or all), for layer and neuron questions

:func:`resolve_target` accepts what a user types: ``None`` (the top class / the best detection),
an int ``K`` (the K-th kept detection by score, or the class index of a classifier), a label, or a
dict: ``{"class": c}``, ``{"detection": K}``, ``{"row": r}`` (a candidate of the stage's decision
log, kept or not), ``{"box": [x1, y1, x2, y2], "class": c}`` (frame pixels), ``{"output": name,
"index": [...]}``, ``{"layer": name, "channel": c}``; each may add ``"stage"`` and ``"decode"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import ExplainError, TargetError

if TYPE_CHECKING:
    from ..decisions import DecisionLog
    from ..result import FrameResult, StageRecord

__all__ = ["Target", "TARGET_KINDS", "resolve_target", "detection_order"]

TARGET_KINDS = ("class", "detection", "output", "layer")
_BOX = tuple[float, float, float, float]


@dataclass(frozen=True)
class Target:
    """One explained quantity. ``stage``/``decode``: whose model input is explained (a cascade
    stage has one decode per crop; for MTCNN ``decode`` is the O-Net log row, i.e. the crop).

    ``box`` is in model-input pixels, ``frame_box`` in frame pixels (x1, y1, x2, y2); ``index`` is
    the class; ``score`` what the deployed model gave it; ``rank`` = K (detections by score);
    ``log_row`` the candidate's row in the stage's DecisionLog.
    """

    kind: str
    stage: str
    decode: int = 0
    index: int | None = None
    label: str | None = None
    box: _BOX | None = None
    frame_box: _BOX | None = None
    score: float | None = None
    rank: int | None = None
    log_row: int | None = None
    output: str | None = None
    element: tuple[int, ...] | None = None
    layer: str | None = None
    channel: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise TargetError(f"unknown target kind {self.kind!r}", hint=f"use one of {TARGET_KINDS}")
        if self.kind == "detection" and (self.box is None or self.index is None):
            raise TargetError("a detection target needs a box and a class index")

    def describe(self) -> str:
        """One line for titles and logs."""
        if self.kind == "class":
            return f"class {self.index} ({self.label})"
        if self.kind == "detection":
            what = f"detection #{self.rank}" if self.rank is not None else f"candidate row {self.log_row}"
            s = f" {self.score:.3f}" if self.score is not None else ""
            return f"{what}: {self.label}{s}"
        if self.kind == "output":
            return f"output {self.output}{list(self.element or ())}"
        return f"layer {self.layer}" + (f" channel {self.channel}" if self.channel is not None else "")

    def slug(self) -> str:
        """A short file-name-safe name: ``class-0``, ``det-1``, ``row-37``, ``out-logits``."""
        if self.kind == "class":
            return f"class-{self.index}"
        if self.kind == "detection":
            base = f"det-{self.rank}" if self.rank is not None else f"row-{self.log_row}"
            return base if self.decode == 0 or self.log_row is not None else f"{base}-d{self.decode}"
        if self.kind == "output":
            return "out-" + "".join(c if c.isalnum() else "_" for c in str(self.output))[:40]
        name = "".join(c if c.isalnum() else "_" for c in str(self.layer))[-40:]
        return f"layer-{name}" + (f"-c{self.channel}" if self.channel is not None else "")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v is not None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Target":
        kw = dict(d)
        for k in ("box", "frame_box", "element"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        try:
            return cls(**kw)
        except TypeError as exc:
            raise TargetError(f"not a Target dict: {exc}") from None


def detection_order(scores: np.ndarray) -> np.ndarray:
    """Kept detections ordered by score, best first (ties: output order) -> indices ``[K]``."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _box(v: Any, what: str) -> _BOX:
    try:
        b = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        b = ()
    if len(b) != 4 or not all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
        raise TargetError(f"{what} must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {v!r}")
    return b  # type: ignore[return-value]


def _class_index(labels: tuple[str, ...], c: Any, n: int) -> int:
    if isinstance(c, str):
        if c in labels:
            return labels.index(c)
        raise TargetError(f"unknown class label {c!r}", hint=f"labels: {list(labels)}")
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
        raise TargetError(f"class must be an index or a label, got {c!r}")
    if not 0 <= int(c) < n:
        shown = ", ".join(f"{i}: {lab}" for i, lab in enumerate(labels[:n])) if labels else f"0..{n - 1}"
        raise TargetError(f"class index {int(c)} out of range: the model has {n} classes ({shown})")
    return int(c)


def _pick_stage(result: "FrameResult", stage: str | None) -> "StageRecord":
    if stage is not None:
        return result[stage]
    st = result.primary
    if st is None:
        raise TargetError("this result has no stage that decoded anything; nothing to explain",
                          hint="run a pipeline with a model stage first")
    return st


def resolve_target(result: "FrameResult", target: Any = None, stage: str | None = None) -> Target:
    """A :class:`Target` from what the user gave (see the module docstring)."""
    if isinstance(target, Target):
        return target
    spec: dict[str, Any]
    if target is None:
        spec = {}
    elif isinstance(target, Mapping):
        spec = dict(target)
    elif isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        spec = {"k": int(target)}
    elif isinstance(target, str):
        spec = {"class": target}
    else:
        raise TargetError(f"cannot use {target!r} as a target",
                          hint="pass an int K, a label, a dict such as {'box': [...], 'class': 0} or a Target")
    st = _pick_stage(result, spec.pop("stage", stage))
    if st.kind == "mtcnn":
        return _mtcnn_target(st, spec)
    decode = int(spec.pop("decode", 0))
    if not 0 <= decode < len(st.decodes):
        raise TargetError(f"stage {st.name!r} has {len(st.decodes)} decode(s), no decode {decode}",
                          hint="a cascade stage has one decode per crop")
    d = st.decodes[decode]
    common = {"stage": st.name, "decode": decode}
    if "output" in spec:
        el = spec.get("index", ())
        el = (int(el),) if isinstance(el, (int, np.integer)) else tuple(int(i) for i in el)
        return Target("output", output=str(spec["output"]), element=el, **common)
    if "layer" in spec:
        ch = spec.get("channel")
        return Target("layer", layer=str(spec["layer"]), channel=None if ch is None else int(ch), **common)
    if d.classification is not None:
        c = d.classification
        n = len(c.scores)
        labels = tuple(c.label_of(i) for i in range(n))
        if "k" in spec or "class" in spec:
            idx = _class_index(labels, spec.get("class", spec.get("k")), n)
        elif not spec:
            idx = int(c.top[0]) if len(c.top) else int(np.argmax(c.scores))
        else:
            raise TargetError(f"a classifier's target is a class, got {spec}", hint="pass the class index or label")
        return Target("class", index=idx, label=labels[idx], score=float(c.scores[idx]), **common)
    if d.detections is None:
        raise TargetError(f"stage {st.name!r} decoded neither classes nor detections")
    return _detection_target(st, decode, spec, common)


def _transform(st: "StageRecord", decode: int) -> Any:
    ts = st.transforms.get("input", ())
    if decode >= len(ts):
        raise ExplainError(f"stage {st.name!r} has no input transform for decode {decode}")
    return ts[decode]


def _detection_target(st: "StageRecord", decode: int, spec: dict[str, Any], common: dict[str, Any]) -> Target:
    d = st.decodes[decode]
    det = d.detections
    assert det is not None
    log = d.log
    labels = det.labels
    t = _transform(st, decode)
    n_classes = max(len(labels), int(det.classes.max()) + 1 if len(det) else 1,
                    int(log.classes.max()) + 1 if log is not None and len(log) else 1)
    if "box" in spec:
        fb = _box(spec["box"], "target box")
        c = _class_index(labels, spec.get("class", 0), n_classes)
        box = tuple(float(v) for v in t.to_input(np.asarray(fb).reshape(2, 2)).reshape(4))
        return Target("detection", index=c, label=_label(labels, c), box=box,  # type: ignore[arg-type]
                      frame_box=fb, **common)
    if "row" in spec:
        r = _row(log, spec["row"], st.name)
        assert log is not None
        box = tuple(float(v) for v in log.boxes[r])
        fb = tuple(float(v) for v in t.boxes_to_frame(log.boxes[r][None])[0])
        c = int(log.classes[r])
        rank = int(log.rank[r]) if log.rank[r] >= 0 else None
        k = None
        if rank is not None:
            k = int(np.flatnonzero(detection_order(det.scores) == rank)[0])
        return Target("detection", index=c, label=_label(labels, c), box=box, frame_box=fb,  # type: ignore[arg-type]
                      score=float(log.score[r]), rank=k, log_row=r, **common)
    k = int(spec.pop("k", spec.pop("detection", 0)))
    if spec:
        raise TargetError(f"unknown target keys {sorted(spec)}",
                          hint="use class, detection, row, box, output, layer, stage or decode")
    return _kth(det, k, st.name, common)


def _kth(det: Any, k: int, stage: str, common: dict[str, Any], log_rows: np.ndarray | None = None) -> Target:
    n = len(det)
    if n == 0:
        raise TargetError(f"stage {stage!r} kept no detections: there is nothing to explain at K={k}",
                          hint="explain a candidate instead: target={'row': r} or workbench.explain.why_missed")
    if not 0 <= k < n:
        raise TargetError(f"target K={k} out of range: stage {stage!r} kept {n} detection(s) (K = 0..{n - 1})")
    i = int(detection_order(det.scores)[k])
    c = int(det.classes[i])
    return Target("detection", index=c, label=det.label_of(i),
                  box=tuple(float(v) for v in det.boxes[i]),  # type: ignore[arg-type]
                  frame_box=tuple(float(v) for v in det.frame_boxes[i]),  # type: ignore[arg-type]
                  score=float(det.scores[i]), rank=k, log_row=int(det.log_rows[i]) if det.log_rows[i] >= 0 else None,
                  **common)


def _label(labels: tuple[str, ...], c: int) -> str:
    return labels[c] if 0 <= c < len(labels) else str(c)


def _row(log: "DecisionLog | None", r: Any, stage: str) -> int:
    if log is None:
        raise TargetError(f"stage {stage!r} has no decision log; candidate rows cannot be explained")
    if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)) or not 0 <= int(r) < len(log):
        raise TargetError(f"candidate row {r!r} out of range: the decision log of {stage!r} has {len(log)} rows")
    return int(r)


def _mtcnn_target(st: "StageRecord", spec: dict[str, Any]) -> Target:
    """MTCNN faces are explained through O-Net on their crop (decode = the O-Net log row)."""
    log = st.logs.get("onet")
    det = st.detections
    if log is None or det is None:
        raise TargetError(f"stage {st.name!r} has no O-Net log; cannot explain its faces")
    transforms = st.transforms.get("onet", ())
    if "row" in spec:
        r = _row(log, spec.pop("row"), f"{st.name}/onet")
    elif "box" in spec:
        from ..boxes import box_iou

        fb = _box(spec.pop("box"), "target box")
        if not len(log):
            raise TargetError("O-Net saw no crops on this frame; no candidate is near that box")
        r = int(np.argmax(box_iou(np.asarray([fb]), log.boxes)[0]))
    else:
        spec.pop("class", None)
        k = int(spec.pop("k", spec.pop("detection", 0)))
        t = _kth(det, k, st.name, {"stage": st.name})
        assert t.log_row is not None
        r = t.log_row
    if r >= len(transforms):
        raise ExplainError(f"stage {st.name!r} has no O-Net crop transform for row {r}")
    tr = transforms[r]
    fb = tuple(float(v) for v in log.boxes[r])
    box = tuple(float(v) for v in tr.to_input(np.asarray(fb).reshape(2, 2)).reshape(4))
    rank = None
    if log.rank[r] >= 0:
        order = detection_order(det.scores)
        rank = int(np.flatnonzero(det.log_rows[order] == r)[0])
    c = 1  # MTCNN's classes: background, face
    return Target("detection", stage=st.name, decode=r, index=c, label=_label(det.labels, c),
                  box=box, frame_box=fb, score=float(log.score[r]), rank=rank, log_row=r)  # type: ignore[arg-type]


def with_stage(target: Target, stage: str) -> Target:
    return replace(target, stage=stage)

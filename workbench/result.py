"""FrameResult: everything a pipeline recorded for one frame, saved and reopened without the model.

A :class:`FrameResult` holds the frame, the :class:`~workbench.meta.RelationMeta` (the analytics
results and their relations), one :class:`StageRecord` per pipeline stage (its decode results
with their :class:`~workbench.decisions.DecisionLog` s, the preprocessing / crop
:class:`~workbench.preprocess.Transform` s, extra arrays and notes) and the
:class:`~workbench.capture.Trace` of every inference the stages made (empty when the pipeline ran
with ``trace=False``).

Saved layout (JSON + .npy/.npz, never pickle)::

    folder/trace.json, frame.npy, <record>/...   the Trace (see workbench.capture.trace)
    folder/result.json                           stages: names, kinds, models, transforms, notes...
    folder/meta.json                             the RelationMeta
    folder/logs/<stage>/<name>.json              every DecisionLog, exact
    folder/stages/<stage>.npz                    the stage's arrays (detections, extra arrays)
    folder/attributions/<name>/                  attribution maps (workbench.explain), if any

``open_result(folder)`` (or :meth:`FrameResult.open`) reopens all of it; tensors stay memory-mapped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .capture import Trace, open_trace
from .capture.trace import read_json_doc
from .capture.records import jsonable
from .decisions import DecisionLog
from .decoders.base import Classification, DecodeResult, Detections
from .errors import InputError, MetaError, TraceFormatError
from .media import Frame
from .meta import RelationMeta
from .preprocess import Transform

__all__ = ["StageRecord", "FrameResult", "open_result"]

_FORMAT = "workbench.frame_result"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(f"{what} {name!r} must be a plain name (letters, digits, _ . -)")
    return name


@dataclass(frozen=True, eq=False)
class StageRecord:
    """What one pipeline stage did for one frame.

    ``kind``: "detector", "mtcnn", "cascade", "tracker", ...; ``model``: the model id(s);
    ``decodes``: one :class:`DecodeResult` per model input (a cascade: one per crop);
    ``transforms``: frame -> model-input transforms by name ("input": one per decode; MTCNN:
    "pnet-<level>", "rnet", "onet"); ``logs``: every DecisionLog of the stage by name (the decodes'
    logs included); ``mtd_ids``: the Mtds each decode added to the meta; ``parents``: a
    cascade's parent detection (Mtd id) per decode; ``records``: names of this stage's
    InferenceRecords in the trace; ``arrays``: extra arrays (e.g. MTCNN crop boxes); ``notes``:
    JSON values (preprocessing steps, timings, parameters).
    """

    name: str
    kind: str
    model: str | None = None
    backend: str | None = None
    decodes: tuple[DecodeResult, ...] = ()
    transforms: dict[str, tuple[Transform, ...]] = field(default_factory=dict)
    logs: dict[str, DecisionLog] = field(default_factory=dict)
    mtd_ids: tuple[tuple[int, ...], ...] = ()
    parents: tuple[int, ...] = ()
    records: tuple[str, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "stage name")
        for key in self.logs:
            _check_name(key, "log name")

    @property
    def detections(self) -> Detections | None:
        """The first decode's detections (None if it has none)."""
        return self.decodes[0].detections if self.decodes else None

    @property
    def log(self) -> DecisionLog | None:
        """The first decode's DecisionLog."""
        return self.decodes[0].log if self.decodes else None

    def equals(self, other: "StageRecord") -> bool:
        """Same content (arrays, logs, transforms, ids, notes) as ``other``."""
        if not isinstance(other, StageRecord):
            return False
        same = (self.name, self.kind, self.model, self.backend, self.mtd_ids, self.parents, self.records) == (
            other.name, other.kind, other.model, other.backend, other.mtd_ids, other.parents, other.records)
        same = same and self.transforms == other.transforms and jsonable(self.notes) == jsonable(other.notes)
        same = same and set(self.logs) == set(other.logs) and all(self.logs[k].equals(other.logs[k]) for k in self.logs)
        same = same and set(self.arrays) == set(other.arrays) and all(
            _same_array(self.arrays[k], other.arrays[k]) for k in self.arrays)
        return same and len(self.decodes) == len(other.decodes) and all(
            _same_decode(a, b) for a, b in zip(self.decodes, other.decodes))


def _same_array(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _same_decode(a: DecodeResult, b: DecodeResult) -> bool:
    if a.decoder != b.decoder or jsonable(a.extra) != jsonable(b.extra):
        return False
    if (a.log is None) != (b.log is None) or (a.log is not None and not a.log.equals(b.log)):  # type: ignore[arg-type]
        return False
    for x, y, names in ((a.detections, b.detections, _DET_ARRAYS), (a.classification, b.classification, _CLS_ARRAYS)):
        if (x is None) != (y is None):
            return False
        if x is not None and not (x.labels == y.labels and all(_same_array(getattr(x, n), getattr(y, n)) for n in names)):
            return False
    if a.detections is not None and a.detections.keypoint_names != b.detections.keypoint_names:  # type: ignore[union-attr]
        return False
    return not (a.classification is not None and a.classification.activation != b.classification.activation)  # type: ignore[union-attr]


_DET_ARRAYS = ("boxes", "frame_boxes", "scores", "classes", "log_rows", "keypoints", "frame_keypoints")
_CLS_ARRAYS = ("scores", "logits", "top")


@dataclass(eq=False)
class FrameResult:
    """Everything recorded for one frame: frame, meta, stages (decodes, logs, transforms), trace."""

    frame: Frame
    meta: RelationMeta
    stages: dict[str, StageRecord]
    trace: Trace
    pipeline: str = "pipeline"
    timings: dict[str, float] = field(default_factory=dict)
    #: attribution maps by name (workbench.explain), saved under attributions/<name>/
    attributions: dict[str, Any] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------------
    def __getitem__(self, stage: str) -> StageRecord:
        try:
            return self.stages[stage]
        except KeyError:
            raise InputError(f"no stage {stage!r} in this result", hint=f"stages: {list(self.stages)}") from None

    def __iter__(self) -> Iterator[StageRecord]:
        return iter(self.stages.values())

    @property
    def primary(self) -> StageRecord | None:
        """The first stage that decoded something (the detector of a detector + cascade)."""
        for st in self.stages.values():
            if st.decodes:
                return st
        return None

    @property
    def detections(self) -> Detections | None:
        """The primary stage's detections."""
        p = self.primary
        return p.detections if p is not None else None

    @property
    def log(self) -> DecisionLog | None:
        """The primary stage's DecisionLog (the NMS that produced :attr:`detections`)."""
        p = self.primary
        return p.log if p is not None else None

    def decisions(self) -> dict[str, int]:
        """``{fate: count}`` of the primary DecisionLog (empty without one)."""
        return self.log.counts() if self.log is not None else {}

    def logs(self) -> dict[str, DecisionLog]:
        """Every DecisionLog of every stage, keyed ``"<stage>/<name>"``."""
        return {f"{st.name}/{k}": v for st in self.stages.values() for k, v in st.logs.items()}

    def to_json(self) -> dict[str, Any]:
        """``{"detections": [{"box", "score", "label", "keypoints"}], "decisions": {fate: count}}``.

        Boxes and keypoints in original-frame pixels (what ``workbench detect --json`` prints).
        """
        dets = self.detections
        rows = dets.to_json() if dets is not None else []
        for r in rows:
            r.setdefault("keypoints", [])
        return {"detections": rows, "decisions": self.decisions()}

    def equals(self, other: "FrameResult") -> bool:
        """Same frame pixels, meta, stages (logs, transforms, arrays) and trace record names."""
        if not isinstance(other, FrameResult):
            return False
        return (np.array_equal(self.frame.image, other.frame.image) and self.meta == other.meta
                and list(self.stages) == list(other.stages)
                and all(self.stages[k].equals(other.stages[k]) for k in self.stages)
                and list(self.trace.records) == list(other.trace.records)
                and list(self.attributions) == list(other.attributions))

    def __repr__(self) -> str:
        return (f"FrameResult({self.frame.id!r}, stages={list(self.stages)}, {self.meta!r}, "
                f"records={list(self.trace.records)})")

    # -- persistence -----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write everything to ``folder``; reopen with :func:`open_result` (no model needed)."""
        root = Path(folder)
        trace = Trace(records=self.trace.records, frame=self.frame,
                      meta={**self.trace.meta, "frame_result": True, "pipeline": self.pipeline})
        trace.save(root)
        (root / "meta.json").write_text(self.meta.to_json())
        stages_doc = []
        for st in self.stages.values():
            arrays: dict[str, np.ndarray] = {f"arrays.{k}": np.asarray(v) for k, v in st.arrays.items()}
            decodes = []
            for i, d in enumerate(st.decodes):
                decodes.append(_decode_doc(d, i, st, arrays))
            log_dir = root / "logs" / st.name
            log_dir.mkdir(parents=True, exist_ok=True)
            for k, lg in st.logs.items():
                (log_dir / f"{k}.json").write_text(lg.to_json())
            if arrays:
                (root / "stages").mkdir(exist_ok=True)
                np.savez(root / "stages" / f"{st.name}.npz", **arrays)
            stages_doc.append({
                "name": st.name, "kind": st.kind, "model": st.model, "backend": st.backend,
                "decodes": decodes,
                "transforms": {k: [t.as_dict() for t in ts] for k, ts in st.transforms.items()},
                "logs": list(st.logs), "mtd_ids": [list(ids) for ids in st.mtd_ids],
                "parents": list(st.parents), "records": list(st.records),
                "arrays": list(st.arrays), "notes": jsonable(st.notes),
            })
        doc = {"format": _FORMAT, "version": 1, "pipeline": self.pipeline, "timings": jsonable(self.timings),
               "stages": stages_doc}
        if self.attributions:
            from .explain.attribution import save_attributions

            save_attributions(self.attributions, root)
        tmp = root / "result.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, root / "result.json")
        return root

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "FrameResult":
        return open_result(folder)


def _decode_doc(d: DecodeResult, i: int, st: StageRecord, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """JSON part of one decode; its arrays go into ``arrays`` under ``decode<i>.*``."""
    doc: dict[str, Any] = {"decoder": d.decoder, "extra": jsonable(d.extra), "log": None,
                           "detections": None, "classification": None}
    if d.log is not None:
        key = next((k for k, lg in st.logs.items() if lg is d.log), None)
        if key is None:
            raise InputError(f"stage {st.name!r}: decode {i}'s log is not in the stage's logs",
                             hint="put every decode's log into StageRecord.logs")
        doc["log"] = key
    if d.detections is not None:
        det = d.detections
        doc["detections"] = {"labels": list(det.labels),
                             "keypoint_names": None if det.keypoint_names is None else list(det.keypoint_names)}
        for n in _DET_ARRAYS:
            v = getattr(det, n)
            if v is not None:
                arrays[f"decode{i}.det.{n}"] = np.asarray(v)
    if d.classification is not None:
        c = d.classification
        doc["classification"] = {"labels": list(c.labels), "activation": c.activation}
        for n in _CLS_ARRAYS:
            arrays[f"decode{i}.cls.{n}"] = np.asarray(getattr(c, n))
    return doc


def open_result(folder: str | os.PathLike) -> FrameResult:
    """Reopen a saved :class:`FrameResult`: trace, meta, stages, logs, transforms; no model needed."""
    root = Path(folder)
    trace = open_trace(root)
    doc = read_json_doc(root / "result.json", _FORMAT, "frame result", "is this a trace saved by FrameResult.save()?")
    try:
        meta = RelationMeta.from_json((root / "meta.json").read_text())
    except (OSError, MetaError) as exc:
        raise TraceFormatError(f"cannot read {root / 'meta.json'}: {exc}") from exc
    if trace.frame is None:
        raise TraceFormatError(f"{root} holds no frame", hint="save it with FrameResult.save()")
    stages: dict[str, StageRecord] = {}
    try:
        for s in doc["stages"]:
            name = _check_name(s["name"], "stage name")
            logs = {k: DecisionLog.from_json((root / "logs" / name / f"{_check_name(k, 'log name')}.json").read_text())
                    for k in s.get("logs", [])}
            npz = root / "stages" / f"{name}.npz"
            arrays: dict[str, np.ndarray] = {}
            if npz.is_file():
                with np.load(npz, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            decodes = tuple(_decode_from(d, i, arrays, logs) for i, d in enumerate(s.get("decodes", [])))
            stages[name] = StageRecord(
                name=name, kind=str(s["kind"]), model=s.get("model"), backend=s.get("backend"), decodes=decodes,
                transforms={k: tuple(Transform.from_dict(t) for t in ts) for k, ts in s.get("transforms", {}).items()},
                logs=logs, mtd_ids=tuple(tuple(int(i) for i in ids) for ids in s.get("mtd_ids", [])),
                parents=tuple(int(p) for p in s.get("parents", [])), records=tuple(s.get("records", [])),
                arrays={k: arrays[f"arrays.{k}"] for k in s.get("arrays", [])}, notes=dict(s.get("notes", {})),
            )
    except (KeyError, TypeError, ValueError, OSError, InputError) as exc:
        raise TraceFormatError(f"{root} holds a malformed frame result: {exc}") from exc
    from .explain.attribution import open_attributions

    return FrameResult(frame=trace.frame, meta=meta, stages=stages, trace=trace,
                       pipeline=str(doc.get("pipeline", "pipeline")), timings=dict(doc.get("timings", {})),
                       attributions=open_attributions(root))


def _decode_from(d: dict[str, Any], i: int, arrays: dict[str, np.ndarray], logs: dict[str, DecisionLog]) -> DecodeResult:
    det = cls = None
    if d.get("detections") is not None:
        a = {n: arrays.get(f"decode{i}.det.{n}") for n in _DET_ARRAYS}
        kn = d["detections"].get("keypoint_names")
        det = Detections(boxes=a["boxes"], frame_boxes=a["frame_boxes"], scores=a["scores"], classes=a["classes"],
                         labels=tuple(d["detections"]["labels"]), log_rows=a["log_rows"], keypoints=a["keypoints"],
                         frame_keypoints=a["frame_keypoints"], keypoint_names=None if kn is None else tuple(kn))
    if d.get("classification") is not None:
        c = d["classification"]
        cls = Classification(scores=arrays[f"decode{i}.cls.scores"], logits=arrays[f"decode{i}.cls.logits"],
                             top=arrays[f"decode{i}.cls.top"], labels=tuple(c["labels"]), activation=c["activation"])
    log = logs[d["log"]] if d.get("log") is not None else None
    return DecodeResult(decoder=d["decoder"], detections=det, classification=cls, log=log, extra=dict(d.get("extra", {})))

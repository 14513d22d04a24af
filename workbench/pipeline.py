"""Pipelines: small stages composed into an analytics pipeline (seed 004's elements).

A :class:`Pipeline` runs its stages in order on one frame and returns a
:class:`~workbench.result.FrameResult`. Every stage reads the frame and what the earlier stages
put into the frame's :class:`~workbench.meta.RelationMeta`, and returns a
:class:`~workbench.result.StageRecord` (its decodes, DecisionLogs, transforms, notes)::

    ModelStage     preprocess (card) -> inference (backend) -> decoder (card) -> Mtds
    MtcnnStage     the MTCNN cascade (P-Net pyramid -> R-Net -> O-Net) -> face Mtds
    CascadeStage   crop every detection of an earlier stage -> second model -> results related
                   to their detection: detection -CONTAIN-> result, result -IS_PART_OF-> detection
    TrackerStage   IoU tracker: detection -RELATE_TO-> TrackingMtd, ids stable across frames

    >>> p = Pipeline.from_card("blazeface-short").cascade("mtcnn-onet")     # doctest: +SKIP
    >>> result = p.run(frame, trace="all")                                  # doctest: +SKIP

``Pipeline.from_card("mtcnn")`` (also ``"mtcnn-pnet"``) is the MTCNN cascade built from the three
``mtcnn-*`` cards; ``mtcnn`` is an alias, not a card. A decoder may take over preprocessing with a
``prepare_input(image, box)`` method when its model needs conventions a card cannot state (MTCNN's
transposed layout and INTER_AREA crops); otherwise the card's ``[input]`` is used.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from .capture import InferenceRecord, Trace
from .decoders import Decoder, decoder_for_card
from .decoders.base import DecodeResult
from .decoders.mtcnn import MTCNN_CARDS, MtcnnDetector, MtcnnParams
from .errors import InputError
from .media import Frame
from .meta import ObjectDetectionMtd, RelationMeta, RelationType
from .preprocess import Transform, crop_image, crop_transform, infer_input_spec, preprocess
from .result import FrameResult, StageRecord
from .track import IoUTracker
from .zoo import ModelCard, get_card

__all__ = [
    "Pipeline", "Stage", "ModelStage", "MtcnnStage", "CascadeStage", "TrackerStage", "FrameContext",
    "MTCNN_ALIASES",
]

#: ids that name the whole MTCNN cascade
MTCNN_ALIASES = ("mtcnn", MTCNN_CARDS["pnet"])
_TRACE_MODES = (False, None, "all", "stats")


@dataclass
class FrameContext:
    """What the stages share while one frame runs: the frame, its meta, the trace so far."""

    frame: Frame
    meta: RelationMeta
    trace: str | bool
    records: dict[str, InferenceRecord] = field(default_factory=dict)
    stages: dict[str, StageRecord] = field(default_factory=dict)


class Stage(ABC):
    """One pipeline element. Subclasses write :meth:`process`; ``reset`` forgets state."""

    kind: ClassVar[str] = "stage"

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def process(self, ctx: FrameContext) -> StageRecord:
        """Run on ``ctx.frame``; add results to ``ctx.meta`` and records to ``ctx.records``."""

    def reset(self) -> None:
        """Forget state kept across frames (trackers)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ----------------------------------------------------------------------------- model stages

def _infer(session: Any, x: np.ndarray, trace: str | bool, ctx: FrameContext, record_name: str
           ) -> tuple[dict[str, np.ndarray], str | None]:
    """One inference; with ``trace`` the InferenceRecord goes into the trace under ``record_name``."""
    feed = {session.input_names[0]: x}
    if trace:
        rec = session.trace(feed, capture=trace)
        ctx.records[record_name] = rec
        return {n: np.asarray(rec.store[n]) for n in session.output_names}, record_name
    return session.run(feed), None


def _steps(transform: Transform | None, spec: Any) -> dict[str, Any]:
    """The preprocessing steps, as JSON (resize, colour, normalisation, layout, dtype)."""
    out: dict[str, Any] = {"spec": asdict(spec) if spec is not None else None}
    if transform is not None:
        out["transform"] = transform.as_dict()
    return out


class ModelStage(Stage):
    """A model with its card's preprocessing and decoder: frame -> Mtds (one decode per frame)."""

    kind = "detector"

    def __init__(self, model: str | ModelCard, backend: str | None = None, *, decoder: Decoder | None = None,
                 name: str | None = None, **decoder_overrides: Any) -> None:
        from .backends import load_model

        self.card = get_card(model)
        super().__init__(name or self.card.id)
        self.session = load_model(self.card, backend=backend)
        self.decoder = decoder if decoder is not None else decoder_for_card(self.card, **decoder_overrides)

    def prepare(self, image: np.ndarray, box: Sequence[float] | None = None) -> tuple[np.ndarray, Transform]:
        """Model input and the frame -> input transform for the whole image or an (integer) ``box``."""
        prep = getattr(self.decoder, "prepare_input", None)
        if prep is not None:
            return prep(image, box)
        spec = self.card.input or infer_input_spec(self.session.input_specs[0])
        if box is None:
            return preprocess(image, spec)
        crop = crop_image(image, box)
        x, t = preprocess(crop, spec)
        return x, crop_transform((image.shape[1], image.shape[0]), box).then(t)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        return self.decoder.decode(outputs, transform, specs=self.card.outputs)

    def process(self, ctx: FrameContext) -> StageRecord:
        t0 = time.perf_counter()
        x, transform = self.prepare(ctx.frame.image)
        outputs, rec = _infer(self.session, x, ctx.trace, ctx, self.name)
        result = self.decode(outputs, transform)
        ids = result.add_to(ctx.meta, source={"model": self.card.id, "stage": self.name})
        logs = {"nms": result.log} if result.log is not None else {}
        return StageRecord(
            self.name, self.kind, self.card.id, self.session.backend, (result,), {"input": (transform,)}, logs,
            (tuple(ids),), (), (rec,) if rec else (),
            notes={"preprocess": _steps(transform, self.card.input), "decoder": self.decoder.id,
                   "ms": (time.perf_counter() - t0) * 1e3},
        )


class MtcnnStage(Stage):
    """The MTCNN cascade as one stage (see :mod:`workbench.decoders.mtcnn`)."""

    kind = "mtcnn"

    def __init__(self, backend: str | None = None, params: MtcnnParams | None = None, *, name: str = "mtcnn",
                 detector: MtcnnDetector | None = None, **overrides: Any) -> None:
        super().__init__(name)
        self.detector = detector if detector is not None else MtcnnDetector(backend, params, **overrides)

    def process(self, ctx: FrameContext) -> StageRecord:
        res = self.detector.detect(ctx.frame, trace=ctx.trace)
        records = []
        for rec_name, rec in res.records.items():
            full = f"{self.name}.{rec_name}"
            ctx.records[full] = rec
            records.append(full)
        decode = DecodeResult("mtcnn", res.detections, log=res.onet.log, extra={"counts": res.counts()})
        ids = decode.add_to(ctx.meta, source={"model": "mtcnn", "stage": self.name})
        transforms: dict[str, tuple[Transform, ...]] = {f"pnet-{lv.index}": (lv.transform,) for lv in res.levels}
        transforms.update(rnet=res.rnet.transforms, onet=res.onet.transforms)
        arrays = {"level_scales": np.array([lv.scale for lv in res.levels]),
                  "level_sizes": np.array([lv.size for lv in res.levels], dtype=np.int64).reshape(-1, 2),
                  "proposals": res.proposals, "rnet_crops": res.rnet.crop_boxes, "rnet_out": res.rnet.out_boxes,
                  "onet_crops": res.onet.crop_boxes, "onet_out": res.onet.out_boxes}
        backend = self.detector.sessions["pnet"].backend
        return StageRecord(
            self.name, self.kind, "+".join(MTCNN_CARDS.values()), backend, (decode,), transforms, res.logs(),
            (tuple(ids),), (), tuple(records), arrays,
            notes={"params": asdict(self.detector.params), "timings": res.timings, "counts": res.counts(),
                   "preprocess": {"resize": "INTER_AREA (workbench.resize.resize_area)",
                                  "normalize": "(pixel - 127.5) * 0.0078125, float64 -> float32",
                                  "layout": "NHWC of the transposed image (N, W, H, 3)", "color": "RGB"}},
        )


class CascadeStage(Stage):
    """Crop each detection of an earlier stage and run a second model on the crop.

    ``parent``: the stage whose detections are cropped (default: the last stage before this one
    that made detections); ``labels``: only parents with these labels; ``expand``: grow the box
    around its centre by this factor; ``square``: make it square first. Crops are cut on integer
    pixels (zero padding outside the frame). Each result is related to its parent:
    ``parent -CONTAIN-> result`` and ``result -IS_PART_OF-> parent``.
    """

    kind = "cascade"

    def __init__(self, model: str | ModelCard | ModelStage, backend: str | None = None, *, parent: str | None = None,
                 labels: Sequence[str] | None = None, expand: float = 1.0, square: bool = False,
                 name: str | None = None, max_crops: int | None = None, **decoder_overrides: Any) -> None:
        self.model = model if isinstance(model, ModelStage) else ModelStage(model, backend, **decoder_overrides)
        super().__init__(name or f"{self.model.card.id}-cascade")
        if not (isinstance(expand, (int, float)) and expand > 0):
            raise InputError(f"expand must be > 0, got {expand!r}")
        self.parent = parent
        self.labels = None if labels is None else tuple(labels)
        self.expand = float(expand)
        self.square = square
        self.max_crops = max_crops

    def _parent_stage(self, ctx: FrameContext) -> StageRecord:
        if self.parent is not None:
            if self.parent not in ctx.stages:
                raise InputError(f"cascade {self.name!r}: no earlier stage {self.parent!r}",
                                 hint=f"earlier stages: {list(ctx.stages)}")
            return ctx.stages[self.parent]
        for st in reversed(list(ctx.stages.values())):
            if any(d.detections is not None for d in st.decodes):
                return st
        raise InputError(f"cascade {self.name!r} needs an earlier stage that detects objects",
                         hint="start the pipeline with a detector: Pipeline.from_card(...).cascade(...)")

    def crop_box(self, box: Sequence[float], frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The integer crop box (pixel edges) for a parent box: squared / expanded as configured."""
        x1, y1, x2, y2 = (float(v) for v in box)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        if self.square:
            w = h = max(w, h)
        w, h = max(w * self.expand, 1.0), max(h * self.expand, 1.0)
        bx1, by1 = int(np.floor(cx - w / 2)), int(np.floor(cy - h / 2))
        return bx1, by1, bx1 + max(1, int(round(w))), by1 + max(1, int(round(h)))

    def process(self, ctx: FrameContext) -> StageRecord:
        t0 = time.perf_counter()
        parent = self._parent_stage(ctx)
        parent_ids = [i for ids in parent.mtd_ids for i in ids
                      if isinstance(ctx.meta[i], ObjectDetectionMtd)
                      and (self.labels is None or ctx.meta[i].label in self.labels)]  # type: ignore[attr-defined]
        if self.max_crops is not None:
            parent_ids = parent_ids[: self.max_crops]
        img = ctx.frame.image
        decodes, transforms, mtd_ids, records, logs, boxes = [], [], [], [], {}, []
        for k, pid in enumerate(parent_ids):
            det: ObjectDetectionMtd = ctx.meta[pid]  # type: ignore[assignment]
            box = self.crop_box(det.box, ctx.frame.size)
            x, transform = self.model.prepare(img, box)
            outputs, rec = _infer(self.model.session, x, ctx.trace, ctx, f"{self.name}.{k}")
            result = self.model.decode(outputs, transform)
            ids = result.add_to(ctx.meta, source={"model": self.model.card.id, "stage": self.name, "parent": pid})
            for i in ids:
                ctx.meta.relate(pid, i, RelationType.CONTAIN)
                ctx.meta.relate(i, pid, RelationType.IS_PART_OF)
            decodes.append(result)
            transforms.append(transform)
            mtd_ids.append(tuple(ids))
            boxes.append(box)
            if rec:
                records.append(rec)
            if result.log is not None:
                logs[f"crop-{k}"] = result.log
        return StageRecord(
            self.name, self.kind, self.model.card.id, self.model.session.backend, tuple(decodes),
            {"input": tuple(transforms)}, logs, tuple(mtd_ids), tuple(parent_ids), tuple(records),
            {"crop_boxes": np.array(boxes, dtype=np.int64).reshape(-1, 4)},
            notes={"parent_stage": parent.name, "expand": self.expand, "square": self.square,
                   "labels": None if self.labels is None else list(self.labels), "decoder": self.model.decoder.id,
                   "ms": (time.perf_counter() - t0) * 1e3},
        )


class TrackerStage(Stage):
    """An :class:`~workbench.track.IoUTracker` over the frames a pipeline runs, in order."""

    kind = "tracker"

    def __init__(self, tracker: IoUTracker | None = None, *, name: str = "tracker", **tracker_kw: Any) -> None:
        super().__init__(name)
        self.tracker = tracker if tracker is not None else IoUTracker(**tracker_kw)

    def reset(self) -> None:
        self.tracker.reset()

    def process(self, ctx: FrameContext) -> StageRecord:
        ids = self.tracker.update(ctx.meta, ctx.frame.timestamp)
        return StageRecord(self.name, self.kind, None, None, (), {}, {}, (tuple(ids),),
                           notes={"timestamp": ctx.frame.timestamp, "live_tracks": len(self.tracker.tracks),
                                  "iou_threshold": self.tracker.iou_threshold})


# ------------------------------------------------------------------------------- the pipeline

class Pipeline:
    """Stages run in order on each frame; see the module docstring."""

    def __init__(self, stages: Sequence[Stage], name: str = "pipeline") -> None:
        stages = list(stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise InputError("a Pipeline needs one or more Stage objects")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise InputError(f"stage names must be unique, got {names}", hint="pass name=... to a stage")
        self.stages = stages
        self.name = name

    @classmethod
    def from_card(cls, model: str | ModelCard, backend: str | None = None, **decoder_overrides: Any) -> "Pipeline":
        """A one-stage pipeline for a model card (or ``"mtcnn"``: the MTCNN cascade)."""
        if isinstance(model, str) and model in MTCNN_ALIASES:
            return cls([MtcnnStage(backend, **decoder_overrides)], name="mtcnn")
        stage = ModelStage(model, backend, **decoder_overrides)
        return cls([stage], name=stage.card.id)

    def add(self, stage: Stage) -> "Pipeline":
        """A new pipeline with ``stage`` appended (this one is unchanged)."""
        return Pipeline([*self.stages, stage], name=f"{self.name}+{stage.name}")

    def cascade(self, model: str | ModelCard, backend: str | None = None, **kw: Any) -> "Pipeline":
        """Append a :class:`CascadeStage` (crop each detection -> ``model``)."""
        return self.add(CascadeStage(model, backend, **kw))

    def track(self, tracker: IoUTracker | None = None, **kw: Any) -> "Pipeline":
        """Append a :class:`TrackerStage`."""
        return self.add(TrackerStage(tracker, **kw))

    def reset(self) -> None:
        for s in self.stages:
            s.reset()

    def run(self, frame: Frame | np.ndarray, trace: str | bool = False) -> FrameResult:
        """Run every stage on one frame. ``trace``: False (``run()`` only), "all" (keep every
        intermediate tensor) or "stats" (their statistics)."""
        if trace not in _TRACE_MODES:
            raise InputError(f"trace must be False, 'all' or 'stats', got {trace!r}")
        if not isinstance(frame, Frame):
            frame = Frame(frame)
        ctx = FrameContext(frame, RelationMeta(), trace or False)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        for stage in self.stages:
            ts = time.perf_counter()
            ctx.stages[stage.name] = stage.process(ctx)
            timings[f"{stage.name}_ms"] = (time.perf_counter() - ts) * 1e3
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        tr = Trace(records=dict(ctx.records), frame=frame, meta={"pipeline": self.name, "trace": trace or False})
        return FrameResult(frame, ctx.meta, dict(ctx.stages), tr, self.name, timings)

    def run_sequence(self, frames: Iterable[Frame | np.ndarray], trace: str | bool = False) -> list[FrameResult]:
        """Run over frames in order after :meth:`reset` (trackers start afresh). Arrays become
        frames with timestamps 0, 1, 2, ... (seconds)."""
        self.reset()
        out = []
        for i, f in enumerate(frames):
            if not isinstance(f, Frame):
                f = Frame(f, id=f"frame-{i}", timestamp=float(i))
            out.append(self.run(f, trace=trace))
        return out

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: " + " -> ".join(f"{s.kind}:{s.name}" for s in self.stages) + ">"

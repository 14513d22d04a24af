"""Tensor decoders: model-specific decoding + NMS, selected by tensor caps.

A decoder subclasses :class:`Decoder`, declares the caps it accepts (:meth:`Decoder.caps`, may
depend on its parameters) and writes only ``_decode``. The public :meth:`Decoder.decode` checks
the arriving tensors against the caps (a :class:`~workbench.errors.CapsError` shows the expected
caps next to what arrived) and maps results back to original-frame pixels with the
preprocessing :class:`~workbench.preprocess.Transform`.

    @register_decoder("yolov8")
    class YoloV8Decoder(Decoder): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..decisions import DecisionLog
from ..errors import CapsError, WorkbenchError
from ..meta import ClassificationMtd, ObjectDetectionMtd, RelationMeta
from ..preprocess import Transform
from ..tensors import CapsReport, TensorCaps, TensorSpec, check_caps

__all__ = [
    "Decoder", "Detections", "Classification", "DecodeResult", "DECODERS", "register_decoder",
    "get_decoder", "select_decoder", "DecoderSelection",
]

#: decoder id -> class, filled by ``@register_decoder``.
DECODERS: dict[str, type["Decoder"]] = {}


def register_decoder(decoder_id: str) -> Callable[[type["Decoder"]], type["Decoder"]]:
    def deco(cls: type[Decoder]) -> type[Decoder]:
        if decoder_id in DECODERS:
            raise RuntimeError(f"decoder {decoder_id!r} registered twice")
        cls.id = decoder_id
        DECODERS[decoder_id] = cls
        return cls

    return deco


@dataclass(frozen=True, eq=False)
class Detections:
    """Kept detections, structure of arrays, ``K`` rows, in output order.

    ``boxes`` are xyxy in model-input pixels, ``frame_boxes`` the same in original-frame pixels;
    ``keypoints[K, P, 2]`` / ``frame_keypoints`` likewise (None when the model has none);
    ``log_rows[K]`` are the rows of the decision log they came from (-1 if no log).
    """

    boxes: np.ndarray
    frame_boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    labels: tuple[str, ...]
    log_rows: np.ndarray
    keypoints: np.ndarray | None = None
    frame_keypoints: np.ndarray | None = None
    keypoint_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def label_of(self, k: int) -> str:
        c = int(self.classes[k])
        return self.labels[c] if 0 <= c < len(self.labels) else str(c)

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"box": [x1, y1, x2, y2], "score", "label", "keypoints": [[x, y], ...]}]`` (frame pixels)."""
        out = []
        for k in range(len(self)):
            row: dict[str, Any] = {
                "box": [round(float(v), 2) for v in self.frame_boxes[k]],
                "score": round(float(self.scores[k]), 5),
                "label": self.label_of(k),
            }
            if self.frame_keypoints is not None:
                row["keypoints"] = [[round(float(x), 2), round(float(y), 2)] for x, y in self.frame_keypoints[k]]
            out.append(row)
        return out


@dataclass(frozen=True, eq=False)
class Classification:
    """Class scores of a classifier: ``scores[C]`` (after activation), ``top[k]`` class ids."""

    scores: np.ndarray
    logits: np.ndarray
    top: np.ndarray
    labels: tuple[str, ...]
    activation: str

    def label_of(self, c: int) -> str:
        return self.labels[c] if 0 <= c < len(self.labels) else str(c)


@dataclass(frozen=True, eq=False)
class DecodeResult:
    """What one decoder call produced: detections and/or a classification, and the NMS log."""

    decoder: str
    detections: Detections | None = None
    classification: Classification | None = None
    log: DecisionLog | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_to(self, meta: RelationMeta, source: Mapping[str, Any] | None = None) -> list[int]:
        """Add Mtds for the results to ``meta``; returns their ids (detections in rank order)."""
        ids: list[int] = []
        src = dict(source or {})
        if self.classification is not None:
            c = self.classification
            ids.append(meta.add(ClassificationMtd(labels=tuple(c.label_of(i) for i in range(len(c.scores))),
                                                  scores=c.scores)))
        if self.detections is not None:
            d = self.detections
            for k in range(len(d)):
                kp = None if d.frame_keypoints is None else d.frame_keypoints[k]
                ids.append(meta.add(ObjectDetectionMtd(
                    box=tuple(float(v) for v in d.frame_boxes[k]), label=d.label_of(k),
                    confidence=float(d.scores[k]), keypoints=kp,
                    keypoint_names=d.keypoint_names if kp is not None else None,
                    source={**src, "decoder": self.decoder, "log_row": int(d.log_rows[k]), "rank": k},
                )))
        return ids


class Slots(dict):
    """role -> array handed to :meth:`Decoder._decode`; ``specs``: role -> the
    :class:`TensorSpec` that filled the slot (tensor-id, dims in its dims-order, dtype)."""

    specs: dict[str, TensorSpec]


class Decoder(ABC):
    """Base class: caps check + coordinate mapping around a model-specific ``_decode``."""

    id: ClassVar[str] = "?"

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        self.labels = tuple(labels)
        self.params = dict(params)

    @classmethod
    def from_card(cls, card: Any, **overrides: Any) -> "Decoder":
        """The decoder a model card names, with the card's params (and labels) plus overrides."""
        params = {**(card.decoder.params if card.decoder else {}), **overrides}
        return cls(labels=card.labels, **params)

    @abstractmethod
    def caps(self) -> tuple[TensorCaps, ...]:
        """The caps of the tensors this decoder reads, one per slot (roles name the slots)."""

    def check(self, specs: Sequence[TensorSpec]) -> CapsReport:
        return check_caps(specs, self.caps())

    def decode(
        self,
        outputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
        transform: Transform | None = None,
        specs: Sequence[TensorSpec] | None = None,
    ) -> DecodeResult:
        """Decode raw output tensors.

        ``outputs``: model output name -> array (or a list in model order); ``specs``: what the
        tensors are (tensor-ids, dims-order), usually the card's ``outputs``; when omitted the
        arrays' own row-major specs are used. ``transform`` maps model-input coordinates back to
        the frame (identity when None).
        """
        if isinstance(outputs, Mapping):
            names = list(outputs)
            arrays = [np.asarray(outputs[n]) for n in names]
        else:
            arrays = [np.asarray(a) for a in outputs]
            names = [f"output{i}" for i in range(len(arrays))]
        if specs is None:
            offered = [TensorSpec.from_array(a, name=n) for a, n in zip(arrays, names)]
        else:
            by_name = {s.name: s for s in specs}
            offered = []
            for i, (a, n) in enumerate(zip(arrays, names)):
                s = by_name.get(n) or (specs[i] if i < len(specs) else None)
                tid = s.tensor_id if s is not None else None
                order = s.dims_order if s is not None else "row-major"
                offered.append(TensorSpec.from_array(a, tensor_id=tid, dims_order=order, name=n))
        report = self.check(offered)
        if not report.ok:
            raise CapsError(
                f"decoder {self.id!r} cannot read these tensors:\n{report.explain()}\n"
                f"  expected: " + "\n            ".join(f"{c.role}: {c}" for c in self.caps())
                + "\n  arrived:  " + "\n            ".join(str(s) + f" ({s.name})" for s in offered),
                hint="check the card's [[outputs]] and [decoder] or pick another decoder",
            )
        slots = Slots({c.role: arrays[report.assignment[c.role]] for c in self.caps()})
        slots.specs = {c.role: offered[report.assignment[c.role]] for c in self.caps()}
        t = transform or Transform("stretch", (1, 1), (1, 1), (1.0, 1.0), (0.0, 0.0))
        return self._decode(slots, t)

    @abstractmethod
    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        """``tensors``: role -> array, already checked against :meth:`caps` (a :class:`Slots`:
        ``tensors.specs[role]`` is the spec that arrived, e.g. to read its ``dims_order``)."""


def get_decoder(decoder_id: str, **params: Any) -> Decoder:
    """A registered decoder by id."""
    from . import _load_all

    _load_all()
    try:
        cls = DECODERS[decoder_id]
    except KeyError:
        raise WorkbenchError(
            f"unknown decoder {decoder_id!r}", hint=f"registered decoders: {', '.join(sorted(DECODERS))}"
        ) from None
    return cls(**params)


@dataclass(frozen=True)
class DecoderSelection:
    """Outcome of :func:`select_decoder`: the chosen id and, for every candidate, why not."""

    decoder_id: str | None
    reasons: dict[str, tuple[str, ...]]

    def explain(self) -> str:
        lines = [f"chosen: {self.decoder_id}"] if self.decoder_id else ["no decoder fits:"]
        for did, why in self.reasons.items():
            if why:
                lines.append(f"  {did}: " + "; ".join(why))
        return "\n".join(lines)


def select_decoder(output_specs: Sequence[TensorSpec], candidates: Mapping[str, Decoder] | None = None) -> DecoderSelection:
    """Pick the decoder whose caps the outputs fit (subset check); explain every failure.

    ``candidates``: id -> configured decoder; by default every registered decoder with its
    default parameters. Raises :class:`CapsError` with the explanation when nothing fits.
    """
    from . import _load_all

    _load_all()
    if candidates is None:
        candidates = {}
        for did, cls in sorted(DECODERS.items()):
            try:
                candidates[did] = cls()  # type: ignore[call-arg]
            except (TypeError, WorkbenchError):
                continue  # needs parameters (e.g. anchors): only selectable when configured
    reasons: dict[str, tuple[str, ...]] = {}
    chosen = None
    for did, dec in candidates.items():
        rep = dec.check(list(output_specs))
        reasons[did] = rep.problems
        if rep.ok and chosen is None:
            chosen = did
    sel = DecoderSelection(chosen, reasons)
    if chosen is None:
        raise CapsError(f"no decoder accepts these tensors\n{sel.explain()}",
                        hint="write the card's [[outputs]] tensor_id / dims_order, or configure a decoder")
    return sel

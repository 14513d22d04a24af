"""DecisionLog: what NMS decided about every candidate, and why.

One row per candidate the decoder produced (structure of arrays, ``N`` rows). The row index is
the candidate's position in the decoder's flat candidate list handed to NMS; ``source_index``
says where it came from in the raw output tensor (anchor or grid-cell index).

Fates (small int codes of :class:`Fate`)::

    BELOW_SCORE             score <= score_threshold (never entered NMS)
    CUT_BY_TOPK             passed the score filter but ranked below top_k
    SUPPRESSED              removed by a kept box (`by`) at IoU `iou`; soft-NMS: decayed to <= score_threshold
    MERGED                  weighted NMS: absorbed into kept box `by` with blend weight `weight`
    KEPT                    an output detection, `rank` 0.. in output order
    CUT_BY_MAX_DETECTIONS   still undecided when max_detections boxes were kept

``order`` is a permutation of ``0..N-1``: the step at which each decision was made. Score-filter
decisions come first (BELOW_SCORE in row order, then CUT_BY_TOPK by score), then NMS one kept box
at a time, each followed by the boxes it suppressed or absorbed, then CUT_BY_MAX_DETECTIONS.

A log holds its own candidates and parameters, so :func:`workbench.nms.replay` recomputes every
decision for new thresholds without the model, and ``to_json``/``from_json`` round-trip it exactly
(no pickle).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from enum import IntEnum
from functools import cached_property
from typing import Any, Iterator

import numpy as np

from .errors import InputError, TraceFormatError

__all__ = ["Fate", "NmsParams", "Decision", "DecisionLog", "METHODS", "OVERLAPS"]

METHODS = ("greedy", "weighted", "soft")
"""NMS methods a log can record; :func:`workbench.nms.replay` dispatches on them."""

OVERLAPS = ("iou", "min")
"""Overlap measures: intersection over union, or over the smaller area (MTCNN's 'Min')."""


class Fate(IntEnum):
    """What happened to one candidate (stored as ``int8`` in :attr:`DecisionLog.fate`)."""

    KEPT = 0
    SUPPRESSED = 1
    MERGED = 2
    BELOW_SCORE = 3
    CUT_BY_TOPK = 4
    CUT_BY_MAX_DETECTIONS = 5


@dataclass(frozen=True)
class NmsParams:
    """The parameters an NMS run used; enough to replay it.

    ``score_threshold``: a candidate takes part iff ``score > score_threshold`` (strict, as
    OpenCV, ONNX and YOLOv5); ``None`` = no score filter. ``iou_threshold``: a box is suppressed
    (merged) iff ``IoU > iou_threshold`` (strict, as OpenCV, ONNX, torchvision and MediaPipe).
    ``top_k``: at most this many candidates (best scores) enter NMS. ``max_detections``: stop
    once this many boxes are kept. ``decay``/``sigma``: soft-NMS only ("linear" | "gaussian").
    ``overlap``: what ``iou_threshold`` is compared with: ``"iou"`` (intersection over union) or
    ``"min"`` (intersection over the smaller box's area, MTCNN's last-stage ``'Min'``).
    """

    method: str
    iou_threshold: float
    score_threshold: float | None = None
    top_k: int | None = None
    max_detections: int | None = None
    class_agnostic: bool = True
    decay: str | None = None
    sigma: float | None = None
    overlap: str = "iou"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"NMS method must be one of {METHODS}, got {self.method!r}")
        if self.overlap not in OVERLAPS:
            raise InputError(f"NMS overlap must be one of {OVERLAPS}, got {self.overlap!r}")
        if not (isinstance(self.iou_threshold, (int, float, np.floating, np.integer))
                and not isinstance(self.iou_threshold, bool) and math.isfinite(self.iou_threshold)):
            raise InputError(f"iou_threshold must be a finite number, got {self.iou_threshold!r}")
        if self.score_threshold is not None and not (
                isinstance(self.score_threshold, (int, float, np.floating, np.integer))
                and not math.isnan(self.score_threshold)):
            raise InputError(f"score_threshold must be a number or None, got {self.score_threshold!r}")
        for name in ("top_k", "max_detections"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
                raise InputError(f"{name} must be a non-negative int or None, got {v!r}")
        # normalise numpy scalars so that the parameters are plain JSON values
        for name in ("top_k", "max_detections"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "iou_threshold", float(self.iou_threshold))
        if self.score_threshold is not None:
            object.__setattr__(self, "score_threshold", float(self.score_threshold))
        object.__setattr__(self, "class_agnostic", bool(self.class_agnostic))
        if self.method == "soft":
            if self.decay not in ("linear", "gaussian"):
                raise InputError(f"soft-NMS decay must be 'linear' or 'gaussian', got {self.decay!r}")
            if self.decay == "gaussian" and not (isinstance(self.sigma, (int, float, np.floating)) and self.sigma > 0):
                raise InputError(f"gaussian soft-NMS needs sigma > 0, got {self.sigma!r}")
            if self.sigma is not None:
                object.__setattr__(self, "sigma", float(self.sigma))


@dataclass(frozen=True)
class Decision:
    """One step of an NMS run, as :meth:`DecisionLog.steps` yields them."""

    step: int
    row: int
    fate: Fate
    by: int
    iou: float
    weight: float
    text: str


@dataclass(frozen=True, eq=False)
class DecisionLog:
    """Every candidate NMS saw, and its fate. Structure of arrays, ``N`` rows.

    ``boxes[N, 4]`` are decoded xyxy in model-input pixels; ``cell[N, k]`` (optional) the anchor /
    grid-cell coordinates the decoder reports; ``raw_score[N]`` the logit before activation (NaN
    when unknown); ``extra[N, E]`` (optional) per-candidate floats such as keypoints, which weighted
    NMS blends like the box. ``by[N]`` is a *row* index (-1 when not suppressed/merged), ``iou[N]``
    the IoU with ``by`` (NaN otherwise), ``weight[N]`` the blend weight (weighted NMS; the kept box
    has its own share) or the final decayed-score ratio (soft-NMS; NaN otherwise), ``rank[N]`` the
    0-based output position of a KEPT row (-1 otherwise).
    """

    source_index: np.ndarray
    raw_score: np.ndarray
    score: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    fate: np.ndarray
    by: np.ndarray
    iou: np.ndarray
    weight: np.ndarray
    rank: np.ndarray
    order: np.ndarray
    params: NmsParams
    cell: np.ndarray | None = None
    extra: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.score)
        shapes = {
            "source_index": (n,), "raw_score": (n,), "score": (n,), "boxes": (n, 4), "classes": (n,),
            "fate": (n,), "by": (n,), "iou": (n,), "weight": (n,), "rank": (n,), "order": (n,),
        }
        for name, shape in shapes.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise InputError(f"DecisionLog.{name}: expected shape {list(shape)}, got {list(got)}")
        for name in ("cell", "extra"):
            v = getattr(self, name)
            if v is not None and (np.ndim(v) != 2 or len(v) != n):
                raise InputError(f"DecisionLog.{name}: expected shape [{n}, k] or None, got {list(np.shape(v))}")

    # ----------------------------------------------------------------------------- basic views
    def __len__(self) -> int:
        return len(self.score)

    @property
    def method(self) -> str:
        return self.params.method

    @cached_property
    def _kept(self) -> np.ndarray:
        idx = np.flatnonzero(self.fate == Fate.KEPT)
        return idx[np.argsort(self.rank[idx], kind="stable")]

    def kept(self) -> np.ndarray:
        """Row indices of the KEPT candidates, in output order (by ``rank``) -> ``[K]``."""
        return self._kept.copy()

    def counts(self) -> dict[str, int]:
        """``{fate name: count}`` for every fate (zeros included)."""
        c = np.bincount(self.fate.astype(np.int64), minlength=len(Fate))
        return {f.name: int(c[f]) for f in Fate}

    @property
    def kept_boxes(self) -> np.ndarray:
        """The KEPT candidates' own boxes (not blended) in output order -> ``[K, 4]``."""
        return self.boxes[self._kept]

    @cached_property
    def _blend(self) -> tuple[np.ndarray, np.ndarray | None]:
        kept = self._kept
        if self.params.method != "weighted":
            return self.boxes[kept], (None if self.extra is None else self.extra[kept])
        # Each kept box blends itself and every row MERGED into it with the logged weights.
        group = np.full(len(self), -1, dtype=np.int64)
        group[kept] = np.arange(len(kept))
        merged = np.flatnonzero(self.fate == Fate.MERGED)
        group[merged] = group[self.by[merged]]
        rows = np.flatnonzero(group >= 0)
        g, w = group[rows], self.weight[rows]

        def blend(values: np.ndarray) -> np.ndarray:
            out = np.zeros((len(kept), values.shape[1]), dtype=np.float64)
            np.add.at(out, g, values[rows] * w[:, None])
            return out

        return blend(self.boxes), (None if self.extra is None else blend(self.extra))

    @property
    def output_boxes(self) -> np.ndarray:
        """Boxes of the output detections ``[K, 4]``: blended for weighted NMS, else the kept boxes."""
        return self._blend[0]

    @property
    def output_extra(self) -> np.ndarray | None:
        """``extra`` (e.g. keypoints) of the output detections ``[K, E]``, blended like the boxes."""
        return self._blend[1]

    @property
    def output_scores(self) -> np.ndarray:
        """Scores of the output detections ``[K]``: soft-NMS reports the decayed score."""
        kept = self._kept
        if self.params.method == "soft":
            return self.score[kept] * self.weight[kept]
        return self.score[kept]

    @property
    def output_classes(self) -> np.ndarray:
        return self.classes[self._kept]

    # ------------------------------------------------------------------------------ explaining
    def explain(self, i: int) -> str:
        """One sentence saying what happened to row ``i`` and why."""
        n = len(self)
        if not (isinstance(i, (int, np.integer)) and -n <= i < n):
            raise InputError(f"explain: row must be an int in [0, {n}), got {i!r}")
        i = int(i) % n
        p, f = self.params, Fate(int(self.fate[i]))
        s = float(self.score[i])
        who = f"#{i}"
        if f is Fate.KEPT:
            text = f"{who} kept, rank {int(self.rank[i])}, score {s:.4g}, class {int(self.classes[i])}"
            if p.method == "soft":
                text += f" (score decayed to {s * float(self.weight[i]):.4g}, x{float(self.weight[i]):.3g})"
            elif p.method == "weighted":
                text += f" (its own weight in the blend {float(self.weight[i]):.3g})"
            return text
        if f is Fate.BELOW_SCORE:
            return f"{who} below the score threshold: {s:.4g} <= {p.score_threshold}"
        if f is Fate.CUT_BY_TOPK:
            return f"{who} cut by top_k={p.top_k} (score {s:.4g})"
        if f is Fate.CUT_BY_MAX_DETECTIONS:
            return f"{who} never decided: max_detections={p.max_detections} boxes were already kept (score {s:.4g})"
        j, iou = int(self.by[i]), float(self.iou[i])
        ov = "IoU" if p.overlap == "iou" else "overlap/min-area"
        if f is Fate.MERGED:
            return (f"{who} merged into #{j} at {ov} {iou:.2f} > {p.iou_threshold:g}, "
                    f"weight {float(self.weight[i]):.3g} in the blend")
        if p.method == "soft":
            w = float(self.weight[i])
            return (f"{who} suppressed by #{j} at {ov} {iou:.2f}: score decayed {s:.4g} -> {s * w:.4g} "
                    f"(x{w:.3g}) <= {p.score_threshold}")
        return f"{who} suppressed by #{j} at {ov} {iou:.2f} > {p.iou_threshold:g}"

    def steps(self, *, skip_filtered: bool = False) -> Iterator[Decision]:
        """Decisions in the order they were made (``order``), one :class:`Decision` each.

        ``skip_filtered`` leaves out BELOW_SCORE and CUT_BY_TOPK rows (the score filter).
        """
        for i in np.argsort(self.order, kind="stable"):
            f = Fate(int(self.fate[i]))
            if skip_filtered and f in (Fate.BELOW_SCORE, Fate.CUT_BY_TOPK):
                continue
            yield Decision(int(self.order[i]), int(i), f, int(self.by[i]), float(self.iou[i]),
                           float(self.weight[i]), self.explain(int(i)))

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per candidate, for ``pandas.DataFrame(log.to_rows())``."""
        cols = self.to_columns()
        names = list(cols)
        return [dict(zip(names, vals)) for vals in zip(*(cols[k].tolist() for k in names))]

    def to_columns(self) -> dict[str, np.ndarray]:
        """Column name -> ``[N]`` array (boxes split into x1..y2, fate as its name)."""
        cols: dict[str, np.ndarray] = {
            "row": np.arange(len(self)), "source_index": self.source_index,
            "raw_score": self.raw_score, "score": self.score,
            "x1": self.boxes[:, 0], "y1": self.boxes[:, 1], "x2": self.boxes[:, 2], "y2": self.boxes[:, 3],
            "class": self.classes,
            "fate": np.array([f.name for f in Fate], dtype=object)[self.fate.astype(np.int64)],
            "by": self.by, "iou": self.iou, "weight": self.weight, "rank": self.rank, "order": self.order,
        }
        if self.cell is not None:
            for k in range(self.cell.shape[1]):
                cols[f"cell{k}"] = self.cell[:, k]
        if self.extra is not None:
            for k in range(self.extra.shape[1]):
                cols[f"extra{k}"] = self.extra[:, k]
        return cols

    def to_dataframe(self):  # -> pandas.DataFrame; pandas imported lazily
        import pandas as pd

        return pd.DataFrame(self.to_columns())

    # ---------------------------------------------------------------------------------- JSON
    _ARRAYS = ("source_index", "raw_score", "score", "boxes", "classes", "fate", "by", "iou",
               "weight", "rank", "order", "cell", "extra")

    def to_json(self, indent: int | None = None) -> str:
        """Exact JSON text (floats as shortest repr, NaN as null, +-Inf as strings; no pickle)."""
        arrays = {}
        for name in self._ARRAYS:
            v = getattr(self, name)
            arrays[name] = None if v is None else _encode_array(v)
        doc = {"format": "workbench.DecisionLog", "version": 1, "params": asdict(self.params),
               "meta": self.meta, "arrays": arrays}
        return json.dumps(doc, indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "DecisionLog":
        """Inverse of :meth:`to_json`; raises :class:`TraceFormatError` on malformed text."""
        try:
            doc = json.loads(text)
            if doc.get("format") != "workbench.DecisionLog":
                raise ValueError(f"format is {doc.get('format')!r}, not 'workbench.DecisionLog'")
            if doc.get("version") != 1:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            params = NmsParams(**doc["params"])
            arrays = {k: (None if v is None else _decode_array(v)) for k, v in doc["arrays"].items()}
            missing = set(cls._ARRAYS) - set(arrays)
            if missing:
                raise ValueError(f"missing arrays {sorted(missing)}")
            return cls(params=params, meta=dict(doc.get("meta") or {}), **arrays)
        except TraceFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
            raise TraceFormatError(f"not a valid DecisionLog JSON: {exc}",
                                   hint="write it with DecisionLog.to_json()") from None

    def equals(self, other: "DecisionLog") -> bool:
        """True if both logs hold identical arrays (NaN == NaN), parameters and meta."""
        if not isinstance(other, DecisionLog) or self.params != other.params or self.meta != other.meta:
            return False
        for name in self._ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return False
            if a is not None and (a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f")):
                return False
        return True


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        flat = a.astype(np.float64).ravel()
        data: list[Any] = flat.tolist()
        bad = np.flatnonzero(~np.isfinite(flat))
        for i in bad.tolist():  # only the non-finite entries (usually few); JSON has no NaN/Inf
            v = flat[i]
            data[i] = None if np.isnan(v) else ("inf" if v > 0 else "-inf")
    elif a.dtype.kind in "iub":
        data = a.ravel().tolist()
    else:
        raise InputError(f"cannot write a {a.dtype} array to DecisionLog JSON")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": data}


def _decode_array(d: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    if dtype.kind not in "fiub":
        raise ValueError(f"unsupported dtype {dtype}")
    data = d["data"]
    if dtype.kind == "f":
        data = [math.nan if v is None else (math.inf if v == "inf" else -math.inf if v == "-inf" else v)
                for v in data]
    return np.asarray(data, dtype=np.float64 if dtype.kind == "f" else dtype).astype(dtype).reshape(d["shape"])


# Field names, for replay(**changes) validation in nms.py.
PARAM_NAMES = tuple(f.name for f in fields(NmsParams))

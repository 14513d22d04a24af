"""Analytics results and the relations between them (GstAnalyticsRelationMeta).

A :class:`RelationMeta` holds one frame's analytics results, the *Mtds*, and a dense, directed,
typed adjacency matrix between them. An Mtd's id is its index in the meta (0, 1, 2, ...), as
``gst_analytics_mtd_get_id`` gives. ``adjacency[a, b]`` holds the :class:`RelationType` bit
flags of the relation ``a -> b``.

Mtd types are frozen records registered by kind (``@register_mtd("object_detection")``):

- :class:`ClassificationMtd`   labels + ``scores[K]`` (+ optional ``class_ids[K]``)
- :class:`ObjectDetectionMtd`  ``box`` (x1, y1, x2, y2) in ORIGINAL-frame pixels, label,
  confidence, optional ``keypoints[P, 2]`` (NaN row = keypoint absent) and a ``source`` dict
  (decoder id, model id, decision-log row: JSON values only)
- :class:`TrackingMtd`         track id, first/last seen timestamps, lost flag
- :class:`SegmentationMtd`     ``mask[H, W]`` of integer region ids

Relation conventions used by the workbench (directions matter for :meth:`RelationMeta.path`):

- a second-stage result on a crop of a detection: ``detection -CONTAIN-> result`` and
  ``result -IS_PART_OF-> detection``;
- the tracker (as GStreamer's ``ioutracker``): ``detection -RELATE_TO-> tracking``.

Differences from GStreamer: a relation of an Mtd with itself is refused; ``max_span <= 0``
means unbounded (GStreamer: negative = unbounded, 0 or 1 = direct only).
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterator, TypeVar

import numpy as np

from .errors import InputError, MetaError

__all__ = [
    "RelationType",
    "Mtd",
    "ClassificationMtd",
    "ObjectDetectionMtd",
    "TrackingMtd",
    "SegmentationMtd",
    "RelationMeta",
    "MTD_TYPES",
    "register_mtd",
]

FORMAT = "workbench.relation_meta/1"


class RelationType(enum.IntFlag):
    """Relation bit flags, with GStreamer's values (``GstAnalyticsRelTypes``).

    ``ANY`` is a query mask matching every relation type.
    """

    NONE = 0
    IS_PART_OF = 2
    CONTAIN = 4
    RELATE_TO = 8
    ANY = IS_PART_OF | CONTAIN | RELATE_TO


def _relation_type(value: object, *, allow_none: bool = True) -> RelationType:
    try:
        v = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        v = -1
    if v < 0 or v & ~int(RelationType.ANY) or (v == 0 and not allow_none):
        raise MetaError(
            f"invalid relation type {value!r}",
            hint="use RelationType.CONTAIN, IS_PART_OF, RELATE_TO (or a | of them)",
        )
    return RelationType(v)


# ---------------------------------------------------------------------------------- Mtd types

MTD_TYPES: dict[str, type["Mtd"]] = {}
M = TypeVar("M", bound="type[Mtd]")


def register_mtd(kind: str) -> Callable[[M], M]:
    """Class decorator: register an Mtd type under ``kind`` (its name in JSON)."""

    def deco(cls: M) -> M:
        if kind in MTD_TYPES:
            raise MetaError(f"an Mtd type is already registered as {kind!r}")
        cls.kind = kind
        MTD_TYPES[kind] = cls
        return cls

    return deco


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return bool(a == b)


class Mtd:
    """Base of analytics results: frozen, array-holding records compared by value.

    Arrays are copied and made read-only on construction. Subclasses are frozen dataclasses
    declared with ``eq=False`` and registered with :func:`register_mtd`.
    """

    kind: ClassVar[str] = ""
    __hash__ = None  # type: ignore[assignment]  # holds arrays: compared by value, not hashable

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``kind`` + fields; arrays lossless, masks run-length encoded)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = _rle_encode(v) if f.metadata.get("rle") else _array_encode(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Mtd":
        """Inverse of :meth:`to_dict`; dispatches on ``data["kind"]``."""
        if not isinstance(data, dict) or data.get("kind") not in MTD_TYPES:
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise MetaError(
                f"unknown Mtd kind {kind!r}",
                hint=f"known kinds: {sorted(MTD_TYPES)}; register new ones with @register_mtd",
            )
        sub = MTD_TYPES[data["kind"]]
        kwargs = {k: _array_decode(v) for k, v in data.items() if k != "kind"}
        try:
            return sub(**kwargs)
        except TypeError as exc:
            raise MetaError(f"malformed {data['kind']} Mtd: {exc}") from None


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if a.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    return _readonly(a)


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"{name} must be finite, got {v}", hint="drop NaN/Inf results upstream")
    return v


def _box(name: str, value: Any) -> tuple[float, float, float, float]:
    try:
        b = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be 4 numbers (x1, y1, x2, y2), got {value!r}") from None
    if b.size != 4 or not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
        raise InputError(
            f"{name} must be 4 finite numbers (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1, got {value!r}",
            hint="boxes are corners in original-frame pixels; convert (x, y, w, h) first",
        )
    return tuple(float(x) for x in b)  # type: ignore[return-value]


def _json_value(name: str, value: Any) -> Any:
    """Normalize to plain JSON values (numpy scalars -> Python, tuples -> lists)."""
    if isinstance(value, dict):
        return {str(k): _json_value(name, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_value(name, value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        raise InputError(f"{name} holds a non-finite float {value}", hint="store it as a string")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise InputError(
        f"{name} holds a {type(value).__name__}, which is not a JSON value",
        hint="keep only str/int/float/bool/None, lists and dicts in it",
    )


@register_mtd("classification")
@dataclass(frozen=True, eq=False)
class ClassificationMtd(Mtd):
    """Classification result: ``labels[K]``, ``scores[K]`` (float), optional ``class_ids[K]``."""

    labels: tuple[str, ...]
    scores: np.ndarray
    class_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        labels = tuple(str(x) for x in self.labels)
        scores = _float_array("scores", self.scores, 1)
        if len(labels) != scores.shape[0] or not np.isfinite(scores).all():
            raise InputError(
                f"classification needs one finite score per label: {len(labels)} labels, "
                f"scores of shape {scores.shape}"
            )
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "scores", scores)
        if self.class_ids is not None:
            ids = np.asarray(self.class_ids)
            if ids.dtype.kind not in "iu" or ids.shape != scores.shape:
                raise InputError(f"class_ids must be integers of shape {scores.shape}, got {ids.dtype} {ids.shape}")
            object.__setattr__(self, "class_ids", _readonly(ids))

    @property
    def top(self) -> tuple[str, float]:
        """(label, score) of the highest score."""
        i = int(np.argmax(self.scores))
        return self.labels[i], float(self.scores[i])


@register_mtd("object_detection")
@dataclass(frozen=True, eq=False)
class ObjectDetectionMtd(Mtd):
    """One detected object.

    ``box`` = (x1, y1, x2, y2) in ORIGINAL-frame pixels (decoders undo the preprocessing
    transform first); ``rotation`` in radians around the box centre; ``keypoints[P, 2]`` (x, y) in
    original-frame pixels, a NaN row meaning "not present"; ``source`` is where it came from
    (decoder id, model id, decision-log row) with JSON values only.
    """

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    rotation: float = 0.0
    keypoints: np.ndarray | None = None
    keypoint_names: tuple[str, ...] | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _box("box", self.box))
        object.__setattr__(self, "label", str(self.label))
        object.__setattr__(self, "confidence", _finite("confidence", self.confidence))
        object.__setattr__(self, "rotation", _finite("rotation", self.rotation))
        if self.keypoints is not None:
            kp = _float_array("keypoints", self.keypoints, 2)
            if kp.shape[1] != 2 or np.isinf(kp).any():
                raise InputError(f"keypoints must be (P, 2) finite or NaN (absent), got shape {kp.shape}")
            object.__setattr__(self, "keypoints", kp)
        if self.keypoint_names is not None:
            names = tuple(str(n) for n in self.keypoint_names)
            if self.keypoints is None or len(names) != self.keypoints.shape[0]:
                raise InputError(f"{len(names)} keypoint_names need keypoints of shape ({len(names)}, 2)")
            object.__setattr__(self, "keypoint_names", names)
        if not isinstance(self.source, dict):
            raise InputError(f"source must be a dict, got {type(self.source).__name__}")
        object.__setattr__(self, "source", _json_value("source", self.source))

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return x1, y1, x2 - x1, y2 - y1


@register_mtd("tracking")
@dataclass(frozen=True, eq=False)
class TrackingMtd(Mtd):
    """One track seen in this frame: id, first/last seen timestamps (seconds), lost flag."""

    track_id: int
    first_seen: float
    last_seen: float
    lost: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.track_id, bool) or not isinstance(self.track_id, (int, np.integer)) or self.track_id < 0:
            raise InputError(f"track_id must be an integer >= 0, got {self.track_id!r}")
        object.__setattr__(self, "track_id", int(self.track_id))
        first, last = _finite("first_seen", self.first_seen), _finite("last_seen", self.last_seen)
        if last < first:
            raise InputError(f"last_seen ({last}) is before first_seen ({first})")
        object.__setattr__(self, "first_seen", first)
        object.__setattr__(self, "last_seen", last)
        object.__setattr__(self, "lost", bool(self.lost))


SEGMENTATION_TYPES = ("semantic", "instance")


@register_mtd("segmentation")
@dataclass(frozen=True, eq=False)
class SegmentationMtd(Mtd):
    """Segmentation: ``mask[H, W]`` of integer region ids.

    ``masks_type`` "semantic" (ids are classes) or "instance" (ids are objects); ``box`` is where
    the mask lies in the original frame (x1, y1, x2, y2), ``None`` = the whole frame.
    """

    mask: np.ndarray = field(metadata={"rle": True})
    region_ids: tuple[int, ...] = ()
    masks_type: str = "semantic"
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.dtype == bool:
            m = m.astype(np.uint8)
        if m.ndim != 2 or m.dtype.kind not in "iu":
            raise InputError(f"mask must be a (H, W) integer array, got {m.dtype} {m.shape}")
        object.__setattr__(self, "mask", _readonly(m))
        object.__setattr__(self, "region_ids", tuple(int(r) for r in self.region_ids))
        if self.masks_type not in SEGMENTATION_TYPES:
            raise InputError(f"masks_type must be one of {SEGMENTATION_TYPES}, got {self.masks_type!r}")
        if self.box is not None:
            object.__setattr__(self, "box", _box("box", self.box))


# ---------------------------------------------------------------------------- array encodings

def _array_encode(a: np.ndarray) -> dict[str, Any]:
    data = a.reshape(-1).tolist()
    if a.dtype.kind == "f":  # NaN -> null (strict JSON); np.array(None, float) reads back NaN
        data = [None if x != x else x for x in data]
    return {"__ndarray__": "list", "dtype": a.dtype.str, "shape": list(a.shape), "data": data}


def _rle_encode(a: np.ndarray) -> dict[str, Any]:
    """Run-length encode a flattened integer array: values and run lengths, base64 bytes."""
    flat = a.reshape(-1)
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]]) if flat.size else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, flat.size]).astype("<i8")
    values = flat[starts].astype(a.dtype.newbyteorder("<"))
    return {"__ndarray__": "rle", "dtype": a.dtype.str, "shape": list(a.shape),
            "values": _b64(values), "lengths": _b64(lengths)}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


def _array_decode(v: Any) -> Any:
    if not (isinstance(v, dict) and "__ndarray__" in v):
        return v
    try:
        dtype, shape = np.dtype(v["dtype"]), tuple(int(s) for s in v["shape"])
        if v["__ndarray__"] == "rle":
            values = np.frombuffer(base64.b64decode(v["values"]), dtype=dtype.newbyteorder("<"))
            lengths = np.frombuffer(base64.b64decode(v["lengths"]), dtype="<i8")
            if len(values) != len(lengths) or (lengths < 0).any() or lengths.sum() != np.prod(shape):
                raise ValueError(f"runs do not add up to shape {shape}")
            return np.repeat(values, lengths).astype(dtype).reshape(shape)
        return np.array(v["data"], dtype=dtype).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise MetaError(f"malformed encoded array: {exc}", hint="the JSON was edited or truncated") from None


# ------------------------------------------------------------------------------ RelationMeta

class RelationMeta:
    """One frame's Mtds plus a directed, typed adjacency matrix between them.

    ``add`` returns the new Mtd's id (its index). The matrix is stored with a capacity that
    doubles, so adding n Mtds costs O(n^2) in total, not per add.
    """

    def __init__(self) -> None:
        self._mtds: list[Mtd] = []
        self._adj = np.zeros((8, 8), dtype=np.uint8)

    # -- building
    def add(self, mtd: Mtd) -> int:
        """Append an Mtd; returns its id."""
        if not isinstance(mtd, Mtd) or type(mtd).kind not in MTD_TYPES:
            raise MetaError(
                f"can only add registered Mtd records, got {type(mtd).__name__}",
                hint="use ClassificationMtd, ObjectDetectionMtd, TrackingMtd, SegmentationMtd",
            )
        n = len(self._mtds)
        if n == self._adj.shape[0]:
            grown = np.zeros((2 * n, 2 * n), dtype=np.uint8)
            grown[:n, :n] = self._adj
            self._adj = grown
        self._mtds.append(mtd)
        return n

    def relate(self, a: int, b: int, type: RelationType | int = RelationType.RELATE_TO) -> None:
        """Set the relation ``a -> b`` (overwrites, as GStreamer; ``NONE`` removes it)."""
        a, b = self._id(a), self._id(b)
        if a == b:
            raise MetaError(f"an Mtd cannot be related to itself (id {a})")
        self._adj[a, b] = _relation_type(type)

    # -- reading
    def __len__(self) -> int:
        return len(self._mtds)

    def __getitem__(self, mtd_id: int) -> Mtd:
        return self._mtds[self._id(mtd_id)]

    def __iter__(self) -> Iterator[Mtd]:
        return iter(self._mtds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RelationMeta):
            return NotImplemented
        return self._mtds == other._mtds and np.array_equal(self.adjacency, other.adjacency)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for m in self._mtds:
            kinds[m.kind] = kinds.get(m.kind, 0) + 1
        parts = ", ".join(f"{k}={v}" for k, v in kinds.items())
        return f"RelationMeta({len(self)} mtds: {parts or 'none'}; {self.relations().shape[0]} relations)"

    @property
    def adjacency(self) -> np.ndarray:
        """Read-only ``uint8[n, n]`` view; ``adjacency[a, b]`` = RelationType flags of a -> b."""
        n = len(self._mtds)
        view = self._adj[:n, :n]
        view.flags.writeable = False
        return view

    def relation(self, a: int, b: int) -> RelationType:
        """The relation flags of ``a -> b`` (``NONE`` if unrelated)."""
        return RelationType(int(self._adj[self._id(a), self._id(b)]))

    def relations(self) -> np.ndarray:
        """All relations as ``int64[E, 3]`` rows (a, b, type flags), sorted by (a, b)."""
        a, b = np.nonzero(self.adjacency)
        return np.stack([a, b, self.adjacency[a, b]], axis=1).astype(np.int64)

    def id_of(self, mtd: Mtd) -> int:
        """Id of this very Mtd object (identity, not equality)."""
        for i, m in enumerate(self._mtds):
            if m is mtd:
                return i
        raise MetaError(f"this {type(mtd).__name__} is not in the meta", hint="use the id add() returned")

    def of_kind(self, kind: type[Mtd]) -> list[tuple[int, Mtd]]:
        """``(id, mtd)`` pairs of every Mtd of this type, in id order."""
        return [(i, m) for i, m in enumerate(self._mtds) if isinstance(m, kind)]

    def related(
        self,
        mtd: int | Mtd,
        type: RelationType | int = RelationType.ANY,
        kind: type[Mtd] | None = None,
        direction: str = "out",
    ) -> list[int]:
        """Ids directly related to ``mtd``: ``out`` = ``mtd -> x``, ``in`` = ``x -> mtd``.

        Only relations sharing a flag with ``type`` count; ``kind`` keeps one Mtd type.
        """
        i = self.id_of(mtd) if isinstance(mtd, Mtd) else self._id(mtd)
        mask = int(_relation_type(type))
        if direction == "out":
            row = self.adjacency[i]
        elif direction == "in":
            row = self.adjacency[:, i]
        else:
            raise MetaError(f"direction must be 'out' or 'in', got {direction!r}")
        ids = np.flatnonzero(row & mask).tolist()
        return [j for j in ids if kind is None or isinstance(self._mtds[j], kind)]

    def path(
        self, a: int, b: int, max_span: int = 0, types: RelationType | int = RelationType.ANY
    ) -> list[int] | None:
        """A shortest relation path ``[a, ..., b]`` following directed relations of ``types``.

        Breadth-first search as ``gst_analytics_relation_meta_exist``: at most ``max_span``
        relations (1 = direct only; 0 or negative = unbounded); ``a == b`` finds the shortest
        cycle through ``a``. Returns ``None`` when no such path exists.
        """
        a, b = self._id(a), self._id(b)
        mask = int(_relation_type(types))
        edges = (self.adjacency & mask) != 0
        n = edges.shape[0]
        span = n if max_span <= 0 else min(int(max_span), n)
        parent = np.full(n, -1, dtype=np.int64)
        reached = np.zeros(n, dtype=bool)  # `a` itself is not reached until a cycle returns to it
        frontier = np.array([a])
        for _ in range(span):
            hits = edges[frontier]  # [F, n]
            new = hits.any(axis=0) & ~reached
            if not new.any():
                return None
            new_ids = np.flatnonzero(new)
            parent[new_ids] = frontier[np.argmax(hits[:, new_ids], axis=0)]
            reached |= new
            if reached[b]:
                out = [b]
                while len(out) == 1 or out[-1] != a:
                    out.append(int(parent[out[-1]]))
                return out[::-1]
            frontier = new_ids
        return None

    def _id(self, mtd_id: Any) -> int:
        if isinstance(mtd_id, (bool, np.bool_)) or not isinstance(mtd_id, (int, np.integer)):
            raise MetaError(f"Mtd ids are integers, got {mtd_id!r}")
        if not 0 <= int(mtd_id) < len(self._mtds):
            raise MetaError(
                f"unknown Mtd id {mtd_id}: this meta holds ids 0..{len(self._mtds) - 1}",
                hint="use the id that add() returned for this meta",
            )
        return int(mtd_id)

    # -- export
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: format tag, Mtds in id order, relations as [a, b, type] rows."""
        return {"format": FORMAT, "mtds": [m.to_dict() for m in self._mtds],
                "relations": self.relations().tolist()}

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON text (no NaN tokens, no pickle); :meth:`from_json` restores it exactly."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RelationMeta":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise MetaError(f"not a serialized RelationMeta (format {got!r}, expected {FORMAT!r})")
        if not isinstance(data.get("mtds", []), list) or not isinstance(data.get("relations", []), list):
            raise MetaError("a serialized RelationMeta needs lists under 'mtds' and 'relations'")
        meta = cls()
        for m in data.get("mtds", []):
            meta.add(Mtd.from_dict(m))
        for row in data.get("relations", []):
            if not (isinstance(row, list) and len(row) == 3):
                raise MetaError(f"a relation must be [a, b, type], got {row!r}")
            meta.relate(row[0], row[1], row[2])
        return meta

    @classmethod
    def from_json(cls, text: str) -> "RelationMeta":
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise MetaError(f"RelationMeta JSON cannot be parsed: {exc}") from None
        return cls.from_dict(data)

    def to_coco(self, image_id: int, category_ids: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """COCO detection results, one per ObjectDetectionMtd in id order.

        ``bbox`` = [x, y, w, h]; ``keypoints`` = flat [x, y, v] * P with v = 2 (present) or
        0 (absent, x = y = 0). Without ``category_ids`` labels are numbered 1.. in sorted order,
        which is only consistent within this frame: pass a mapping when exporting a data set.
        """
        dets = [m for _, m in self.of_kind(ObjectDetectionMtd)]
        if category_ids is None:
            category_ids = {lab: i + 1 for i, lab in enumerate(sorted({d.label for d in dets}))}
        missing = sorted({d.label for d in dets} - set(category_ids))
        if missing:
            raise InputError(f"category_ids has no id for labels {missing}", hint="add them to the mapping")
        out = []
        for d in dets:  # type: ObjectDetectionMtd
            rec: dict[str, Any] = {"image_id": image_id, "category_id": int(category_ids[d.label]),
                                   "bbox": list(d.xywh), "score": d.confidence}
            if d.keypoints is not None:
                present = ~np.isnan(d.keypoints).any(axis=1)
                kp = np.where(present[:, None], d.keypoints, 0.0)
                rec["keypoints"] = np.column_stack([kp, 2.0 * present]).reshape(-1).tolist()
            if d.rotation:
                rec["rotation"] = d.rotation
            out.append(rec)
        return out

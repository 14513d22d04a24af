"""SSD with the TFLite ``TFLite_Detection_PostProcess`` op: the model decodes and suppresses itself.

Four tensors, told apart by tensor-id (their order in the model does not matter):

============================  ==========  =================================================
tensor-id                     dims        meaning
============================  ==========  =================================================
``tflite-detection-boxes``    [1, N, 4]   (ymin, xmin, ymax, xmax), normalized to [0, 1]
``tflite-detection-classes``  [1, N]      class index (float), 0 = first class *after* the
                                          background the op skips
``tflite-detection-scores``   [1, N]      score of that class, sorted descending
``tflite-detection-count``    [1]         how many of the N rows are valid
============================  ==========  =================================================

``class_offset`` (required, no default) maps the op's class index to the card's labels:
``label = labels[class + class_offset]``; 1 when the label map starts with a background entry
(e.g. ``"???"`` in the COCO SSD MobileNet ``labelmap.txt``), 0 when it does not.

The model's internal NMS is invisible: the candidates it suppressed never leave the model. The
DecisionLog therefore holds the ``count`` valid rows it returned (``source_index`` = row,
``raw_score`` NaN, no cell), each KEPT or BELOW_SCORE (score <= ``score_threshold``); its
params say greedy NMS at IoU 1.0, which suppresses nothing, so replaying it at a lower IoU
applies a second NMS on top of the model's. Rows from ``count`` to ``N`` are padding, not
logged. Boxes with swapped corners are put in order. Coordinates are scaled to model-input
pixels by ``input_size`` ([width, height]; default the transform's input size, else they stay
normalized: ``log.meta["units"]`` says which).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..boxes import order_corners, yxyx_to_xyxy
from ..errors import CapsError, InputError
from ..nms import greedy_nms
from ..preprocess import Transform
from ..tensors import TensorCaps, TensorSpec
from ._common import Param, detections_from_log, input_size_of, parse_params
from .base import DecodeResult, Decoder, register_decoder

__all__ = ["SsdPostprocessDecoder", "BOXES_ID", "CLASSES_ID", "SCORES_ID", "COUNT_ID"]

BOXES_ID = "tflite-detection-boxes"
CLASSES_ID = "tflite-detection-classes"
SCORES_ID = "tflite-detection-scores"
COUNT_ID = "tflite-detection-count"

PARAMS = (
    Param("class_offset", "int", minimum=0,
          doc="class_offset = 1 when labels[0] is a background entry the op skips, else 0"),
    Param("score_threshold", "float", 0.5, optional=True, doc="a row is kept iff score > score_threshold"),
    Param("input_size", "size", None, optional=True, doc="model input [width, height] (pixels)"),
)


@register_decoder("ssd-postprocess")
class SsdPostprocessDecoder(Decoder):
    """The 4 outputs of ``TFLite_Detection_PostProcess`` -> detections + a KEPT/BELOW_SCORE log."""

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        super().__init__(labels, **params)
        self.p = parse_params("ssd-postprocess", PARAMS, params)
        self._caps = self._make_caps()

    def caps(self) -> tuple[TensorCaps, ...]:
        return self._caps

    def _make_caps(self) -> tuple[TensorCaps, ...]:
        return (
            TensorCaps.of(TensorSpec(BOXES_ID, (1, 0, 4), "row-major", "float32"), role="boxes"),
            TensorCaps.of(TensorSpec(CLASSES_ID, (1, 0), "row-major", "float32"), role="classes"),
            TensorCaps.of(TensorSpec(SCORES_ID, (1, 0), "row-major", "float32"), role="scores"),
            TensorCaps.of(TensorSpec(COUNT_ID, (1,), "row-major", "float32"), role="count"),
        )

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        boxes, classes, scores = tensors["boxes"][0], tensors["classes"][0], tensors["scores"][0]
        n = len(boxes)
        if len(classes) != n or len(scores) != n:
            raise CapsError(f"ssd-postprocess: boxes have {n} rows, classes {len(classes)}, scores {len(scores)}; "
                            "the op gives all three the same N", hint="check the card's [[outputs]] tensor_ids")
        c = float(tensors["count"][0])
        if not (np.isfinite(c) and c == int(c) and 0 <= c <= n):
            raise InputError(f"ssd-postprocess: count is {c}, expected an integer in [0, {n}]")
        k = int(c)
        cls = classes[:k]
        if not np.isfinite(cls).all():
            raise InputError("ssd-postprocess: the classes tensor holds NaN or Inf")
        cls = np.rint(cls).astype(np.int64) + self.p["class_offset"]
        size = input_size_of(self.p["input_size"], transform)
        xyxy = order_corners(yxyx_to_xyxy(boxes[:k].astype(np.float64)))
        if size is not None:
            xyxy = xyxy * np.array([size[0], size[1], size[0], size[1]], dtype=np.float64)
        log = greedy_nms(xyxy, scores[:k], iou_threshold=1.0, score_threshold=self.p["score_threshold"],
                         classes=cls, class_agnostic=True, source_index=np.arange(k))
        log.meta.update({"decoder": self.id, "rows": n, "count": k, "class_offset": self.p["class_offset"],
                         "units": "pixels" if size is not None else "normalized",
                         "nms": "done inside the model (TFLite_Detection_PostProcess); the candidates "
                                "it suppressed are not visible, every row it returned is logged"})
        return DecodeResult(self.id, detections=detections_from_log(log, transform, self.labels), log=log)

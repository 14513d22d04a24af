"""YOLOv8 (anchor-free, no objectness): one tensor, 4 box values + C class scores per candidate.

What the tensor means (tensor-id ``yolov8-boxes-scores``): a table of ``N`` candidates x
``4 + C`` values ``(cx, cy, w, h, s_0 .. s_{C-1})``, boxes in model-input pixels, class scores
already through the sigmoid, batch 1. Ultralytics exports it in two memory layouts, and the
tensor's **dims-order** says which one arrived (seed 004's YOLOv8 example), never its sizes:

==========================  ======================  ===============================================
card ``dims_order``         card ``dims``           memory = numpy shape
==========================  ======================  ===============================================
``"col-major"``             ``[N, 4 + C, 1]``       ``[1, 4 + C, N]``: planar, all cx then all cy
                                                    ... (ultralytics' default ONNX/TFLite export)
``"row-major"``             ``[1, N, 4 + C]``       ``[1, N, 4 + C]``: one candidate's values are
                                                    contiguous (exports with the output transposed)
==========================  ======================  ===============================================

Both list the logical table the same way (candidates, then values); col-major lists dims
innermost first, so ``[N, 4 + C, 1]`` is the numpy shape ``[1, 4 + C, N]`` read backwards. A card
that writes the default export as row-major ``[1, 4 + C, N]`` is rejected (when the labels fix
``C``) with a hint to write it as col-major, rather than being read as ``4 + C`` candidates.

Decoding: class = argmax of the scores, score = that class's score, boxes cxcywh -> xyxy in
float32 (as the model computed them), then NMS (class-aware greedy by default) over *every*
candidate, so the DecisionLog has ``N`` rows: ``source_index`` = the candidate's column,
``cell`` = (level, gy, gx) when the strides are known (param ``strides``, or the standard
(8, 16, 32) / (8, 16) when one of them accounts for exactly ``N`` at the input size),
``raw_score`` = NaN (the model outputs probabilities, not logits).

Parameters: ``score_threshold`` (0.25), ``iou_threshold`` (0.7, ultralytics' default),
``class_agnostic`` (false), ``max_detections`` (300), ``top_k`` (30000), ``nms`` (greedy |
weighted | soft), ``strides``, ``input_size`` ([width, height], default the transform's).
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

__all__ = ["YoloV8Decoder", "TENSOR_ID"]

TENSOR_ID = "yolov8-boxes-scores"

PARAMS = tuple(Param(p.name, p.kind, 0.7, minimum=0.0, doc=p.doc) if p.name == "iou_threshold" else p
               for p in NMS_PARAMS) + (
    Param("strides", "int-list", None, optional=True, minimum=1, doc="feature-map strides, level order"),
    Param("input_size", "size", None, optional=True, doc="model input [width, height] for the cells"),
)


def planar_hint(report: CapsReport, specs: Sequence[TensorSpec], tensor_id: str, extra: int, what: str) -> CapsReport:
    """Add a hint when a tensor of ``tensor_id`` arrived row-major but is shaped like the planar
    layout (``[1, extra + C, N]`` with ``extra + C < N``)."""
    if report.ok:
        return report
    for s in specs:
        if s.tensor_id == tensor_id and s.dims_order == "row-major" and s.dims and len(s.dims) == 3:
            _, a, b = s.dims
            if a > extra and b > a:
                hint = (f"hint: {s.name or tensor_id!r} looks like the planar layout [1, {what}, N] = "
                        f"[1, {a}, {b}]; declare it dims_order='col-major', dims=[{b}, {a}, 1]")
                return CapsReport(False, report.assignment, report.problems + (hint,))
    return report


@register_decoder("yolov8")
class YoloV8Decoder(Decoder):
    """``[1, 4 + C, N]`` (col-major caps) or ``[1, N, 4 + C]`` (row-major caps) -> detections + log."""

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        super().__init__(labels, **params)
        self.p = parse_params("yolov8", PARAMS, params)
        self.nms = nms_params(self.p)
        self._caps = self._make_caps()

    def caps(self) -> tuple[TensorCaps, ...]:
        return self._caps

    def _make_caps(self) -> tuple[TensorCaps, ...]:
        v = 4 + len(self.labels) if self.labels else 0
        return (TensorCaps.of(
            TensorSpec(TENSOR_ID, (0, v, 1), "col-major", "float32"),
            TensorSpec(TENSOR_ID, (1, 0, v), "row-major", "float32"),
            role="predictions"),)

    def check(self, specs: Sequence[TensorSpec]) -> CapsReport:
        return planar_hint(super().check(specs), specs, TENSOR_ID, 4, "4 + C")

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        x = tensors["predictions"]
        planar = tensors.specs["predictions"].dims_order == "col-major"  # type: ignore[attr-defined]
        table = x[0].T if planar else x[0]  # [N, 4 + C]
        n, v = table.shape
        if v < 5:
            raise CapsError(f"yolov8: {v} values per candidate, need 4 box values and at least one class score",
                            hint="check the card's [[outputs]] dims and dims_order")
        scores_all = table[:, 4:]
        classes = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(n), classes]
        boxes = cxcywh_to_xyxy(table[:, :4])
        cells, strides = grid_cells(n, input_size_of(self.p["input_size"], transform), self.p["strides"],
                                    1, anchor_major=False)
        log = run_nms(self.nms, boxes, scores, classes=classes, source_index=np.arange(n),
                      cell=None if cells is None else cells[:, [0, 2, 3]])
        log.meta.update({"decoder": self.id, "layout": "planar" if planar else "interleaved",
                         "cell": None if cells is None else ["level", "gy", "gx"],
                         "strides": None if strides is None else list(strides)})
        return DecodeResult(self.id, detections=detections_from_log(log, transform, self.labels), log=log)

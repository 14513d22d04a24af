"""Train the shapes detector with a YOLOv8 output layout and export it to ONNX.

    /tmp/v1/bin/python models/train/train_shapes_yolov8.py [--quick]

Writes ``models/shapes-yolov8.onnx`` and rewrites ``models/shapes-yolov8.toml`` (sha256,
held-out mAP@0.5 computed by ``evaluate.py`` from the exported file, wall time).

Model: a tiny conv pyramid (strides 8 and 16 at 128x128 -> 16*16 + 8*8 = 320 cells) with
YOLOv8-style decoupled, anchor-free heads. Each cell predicts distances (left, top, right,
bottom) from its centre as ``softplus(raw) * stride`` (no DFL) and one sigmoid score per
class (no objectness). The exported graph includes the decoding, so ``output0`` is
``[1, 4 + C, 320]``: rows 0..3 = (cx, cy, w, h) in input pixels, rows 4.. = class scores.

Training: fresh generator scenes every step (split seed 0, never repeated), static
centre-sampling assignment (a cell is positive for a box when its centre is inside the box,
within 2.5 strides of the box centre, on the level that suits the box size), BCE on the
class scores with an IoU-quality target, GIoU loss on the boxes.
"""

from __future__ import annotations

import common  # noqa: I001  (first: sets OMP_WAIT_POLICY before torch loads)
import torch
import torch.nn.functional as F
from torch import nn

from common import NUM_CLASSES, ConvBlock, TinyPyramid, anchor_points, box_iou_pairs

MODEL_ID = "shapes-yolov8"
SIZE = 128
STRIDES = (8, 16)
# Which level learns which box size (longest side, pixels); the band 22..34 uses both.
LEVEL_RANGES = {8: (0.0, 34.0), 16: (22.0, 1e9)}
CENTER_RADIUS = 2.5
STEPS = 600


class DecoupledHead(nn.Module):
    """YOLOv8-style head for one level: separate box and class branches."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.box = nn.Sequential(ConvBlock(c, c, 3), nn.Conv2d(c, 4, 1))
        self.cls = nn.Sequential(ConvBlock(c, c, 3), nn.Conv2d(c, num_classes, 1))
        nn.init.constant_(self.cls[-1].bias, -4.0)  # start with low scores (focal-loss prior)
        nn.init.constant_(self.box[-1].bias, 0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.box(x).flatten(2)  # (B, 4, HW)
        c = self.cls(x).flatten(2)  # (B, C, HW)
        return b, c


class ShapesYoloV8(nn.Module):
    """Returns (boxes (B, N, 4) x1y1x2y2 pixels, class logits (B, N, C))."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.pyramid = TinyPyramid(48, 64)
        self.heads = nn.ModuleList([DecoupledHead(48, num_classes), DecoupledHead(64, num_classes)])
        points, strides = anchor_points(SIZE, STRIDES)
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("strides", strides[:, None], persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [head(f) for head, f in zip(self.heads, self.pyramid(x))]
        raw = torch.cat([o[0] for o in outs], dim=2).transpose(1, 2)  # (B, N, 4)
        logits = torch.cat([o[1] for o in outs], dim=2).transpose(1, 2)  # (B, N, C)
        ltrb = F.softplus(raw) * self.strides
        boxes = torch.cat([self.points - ltrb[..., :2], self.points + ltrb[..., 2:]], dim=-1)
        return boxes, logits


class ExportYoloV8(nn.Module):
    """The deployed graph: ``output0`` = [1, 4 + C, N] with (cx, cy, w, h, scores...)."""

    def __init__(self, model: ShapesYoloV8) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        boxes, logits = self.model(images)
        xy = (boxes[..., :2] + boxes[..., 2:]) * 0.5
        wh = boxes[..., 2:] - boxes[..., :2]
        return torch.cat([xy, wh, logits.sigmoid()], dim=-1).transpose(1, 2)


def assign(points: torch.Tensor, strides: torch.Tensor, targets: torch.Tensor, batch: int):
    """Positive (image, cell, target row) triples for targets (M, 6) = (b, label, x1, y1, x2, y2).

    Boxes in one scene never overlap, so a cell is positive for at most one box.
    """
    b, boxes = targets[:, 0].long(), targets[:, 2:]
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    side = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values
    px, py, s = points[None, :, 0], points[None, :, 1], strides[None, :, 0]
    inside = (px > boxes[:, None, 0]) & (px < boxes[:, None, 2]) & (py > boxes[:, None, 1]) & (py < boxes[:, None, 3])
    near = ((px - centre[:, None, 0]).abs() <= CENTER_RADIUS * s) & ((py - centre[:, None, 1]).abs() <= CENTER_RADIUS * s)
    level_ok = torch.zeros_like(inside)
    for stride, (lo, hi) in LEVEL_RANGES.items():
        level_ok |= (s == stride) & (side[:, None] >= lo) & (side[:, None] <= hi)
    mask = inside & near & level_ok
    # Every box gets at least its nearest cell on a suitable level.
    dist = (px - centre[:, None, 0]) ** 2 + (py - centre[:, None, 1]) ** 2
    nearest = torch.where(level_ok, dist, torch.full_like(dist, 1e9)).argmin(dim=1)
    mask[torch.arange(len(boxes)), nearest] = True
    t_idx, cell = mask.nonzero(as_tuple=True)
    return b[t_idx], cell, t_idx


def detection_loss(model: ShapesYoloV8, outputs: tuple[torch.Tensor, torch.Tensor], targets: torch.Tensor):
    """Class BCE (IoU-quality targets) over all cells + GIoU on positives; returns (loss, parts)."""
    boxes, logits = outputs
    img, cell, t_idx = assign(model.points, model.strides, targets, boxes.shape[0])
    pred = boxes[img, cell]
    gt = targets[t_idx, 2:]
    iou, giou = box_iou_pairs(pred, gt)
    cls_target = torch.zeros_like(logits)
    # Quality target: scores learn to rank well-localised boxes first (helps mAP after NMS).
    cls_target[img, cell, targets[t_idx, 1].long()] = iou.detach().clamp(min=0.05)
    n_pos = max(1, len(t_idx))
    loss_cls = F.binary_cross_entropy_with_logits(logits, cls_target, reduction="sum") / n_pos
    loss_box = (1.0 - giou).mean() if len(t_idx) else boxes.sum() * 0.0
    return loss_cls + 5.0 * loss_box, {"cls": loss_cls.item(), "box": loss_box.item()}


def main() -> None:
    common.train_detector_main(__doc__, MODEL_ID, ShapesYoloV8, detection_loss, ExportYoloV8, make_card, STEPS, SIZE)


def make_card(onnx_path, train_seconds: float) -> dict:
    n = sum((SIZE // s) ** 2 for s in STRIDES)
    return {
        "id": MODEL_ID,
        "name": "Shapes YOLOv8-layout detector",
        "task": "detection",
        "format": "onnx",
        "description": (
            "Tiny anchor-free detector trained on synthetic circles, squares and triangles "
            "(workbench.data.shapes). YOLOv8 output layout: decoupled heads at strides 8 and 16 "
            f"({n} cells), boxes as (cx, cy, w, h) in input pixels from softplus distances "
            "(no DFL), per-class sigmoid scores, no objectness."
        ),
        "labels": list(common.SHAPE_CLASSES),
        "source": common.training_source("models/train/train_shapes_yolov8.py", onnx_path),
        "input": common.nchw_input(SIZE),
        "outputs": [
            {
                "name": "output0",
                "tensor_id": "yolov8-boxes-scores",
                # numpy shape [1, 4+C, N]; the yolov8 decoder tells this layout from the
                # transposed [1, N, 4+C] by dims-order, so it is declared col-major
                "dims": [n, 4 + NUM_CLASSES, 1],
                "dims_order": "col-major",
                "dtype": "float32",
            }
        ],
        "decoder": {"id": "yolov8", "params": {"score_threshold": 0.25, "iou_threshold": 0.5}},
        "training": {"command": "python models/train/train_shapes_yolov8.py"},
        "metrics": {
            "heldout_images": 300,
            "heldout_seed": 1,
            "train_seconds": train_seconds,
        },
    }


if __name__ == "__main__":
    main()

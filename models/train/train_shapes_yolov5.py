"""Train the shapes detector with a YOLOv5 output layout (anchors, objectness) and export it.

    /tmp/v1/bin/python models/train/train_shapes_yolov5.py [--quick]

Writes ``models/shapes-yolov5.onnx`` and rewrites ``models/shapes-yolov5.toml`` (sha256,
held-out mAP@0.5 computed by ``evaluate.py`` from the exported file, wall time).

Model: the same tiny conv pyramid as the YOLOv8-layout model (strides 8 and 16 at 128x128)
with YOLOv5 coupled heads and 3 anchors per level (:data:`ANCHORS`), so
N = 3 * (16*16 + 8*8) = 960 predictions, ordered level by level, then anchor, then row-major
cell, as YOLOv5's ``Detect`` exports them. The exported graph includes YOLOv5's decoding:
``xy = (2 * sigmoid(t_xy) - 0.5 + cell) * stride``, ``wh = (2 * sigmoid(t_wh)) ** 2 * anchor``,
objectness and class probabilities are sigmoids. ``output0`` = ``[1, 960, 5 + C]``:
(cx, cy, w, h, objectness, class probabilities) with boxes in input pixels.

Training follows YOLOv5's target building: a box is matched to every anchor whose size ratio
is below 4, at its centre cell and the two neighbouring cells nearest to the centre;
GIoU loss on the boxes, BCE on class probabilities of matched predictions, BCE on objectness
everywhere with the IoU of the matched prediction as target.
"""

from __future__ import annotations

import common  # noqa: I001  (first: sets OMP_WAIT_POLICY before torch loads)
import torch
import torch.nn.functional as F
from torch import nn

from common import NUM_CLASSES, ConvBlock, TinyPyramid, box_iou_pairs

MODEL_ID = "shapes-yolov5"
SIZE = 128
STRIDES = (8, 16)
ANCHORS = (
    ((12.0, 12.0), (20.0, 20.0), (28.0, 28.0)),  # stride 8
    ((30.0, 30.0), (40.0, 40.0), (52.0, 52.0)),  # stride 16
)
ANCHOR_RATIO = 4.0
STEPS = 600
LEVEL_BALANCE = (4.0, 1.0)  # objectness loss weight per level, as YOLOv5 (P3 weighs more)


class ShapesYoloV5(nn.Module):
    """Returns the raw head outputs, one (B, A, H, W, 5 + C) tensor per level."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_outputs = 5 + num_classes
        self.pyramid = TinyPyramid(48, 64)
        na = len(ANCHORS[0])
        self.heads = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(c, c, 3), nn.Conv2d(c, na * self.num_outputs, 1))
                for c in (48, 64)
            ]
        )
        for head, stride in zip(self.heads, STRIDES):
            bias = head[-1].bias.data.view(na, -1)
            bias[:, 4] = -4.5  # objectness prior: few objects per image (YOLOv5's _initialize_biases)
            bias[:, 5:] = -1.0
        for level, (stride, anchors) in enumerate(zip(STRIDES, ANCHORS)):
            n = SIZE // stride
            yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
            self.register_buffer(f"grid{level}", torch.stack([xx, yy], dim=-1)[None, None], persistent=False)
            self.register_buffer(f"anchors{level}", torch.tensor(anchors).view(1, na, 1, 1, 2), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for head, f in zip(self.heads, self.pyramid(x)):
            y = head(f)
            b, _, h, w = y.shape
            outs.append(y.view(b, -1, self.num_outputs, h, w).permute(0, 1, 3, 4, 2).contiguous())
        return outs

    def decode_boxes(self, level: int, raw: torch.Tensor) -> torch.Tensor:
        """(..., 4) raw box outputs at ``level`` -> (cx, cy, w, h) pixels, same leading shape."""
        grid, anchors = getattr(self, f"grid{level}"), getattr(self, f"anchors{level}")
        xy = (raw[..., :2].sigmoid() * 2.0 - 0.5 + grid) * STRIDES[level]
        wh = (raw[..., 2:4].sigmoid() * 2.0) ** 2 * anchors
        return torch.cat([xy, wh], dim=-1)


class ExportYoloV5(nn.Module):
    """The deployed graph: ``output0`` = [1, N, 5 + C] = (cx, cy, w, h, obj, class probs)."""

    def __init__(self, model: ShapesYoloV5) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = []
        for level, raw in enumerate(self.model(images)):
            boxes = self.model.decode_boxes(level, raw[..., :4])
            y = torch.cat([boxes, raw[..., 4:].sigmoid()], dim=-1)
            rows.append(y.view(y.shape[0], -1, y.shape[-1]))
        return torch.cat(rows, dim=1)


def build_targets(targets: torch.Tensor):
    """YOLOv5 matching. Per level: (image, anchor, gy, gx, target row) index tensors."""
    matches = []
    offsets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    for level, stride in enumerate(STRIDES):
        n = SIZE // stride
        anchors = torch.tensor(ANCHORS[level])  # (A, 2)
        boxes = targets[:, 2:]
        centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5 / stride  # grid units
        wh = boxes[:, 2:] - boxes[:, :2]
        ratio = wh[:, None, :] / anchors[None]  # (M, A, 2)
        ok = torch.maximum(ratio, 1.0 / ratio).max(dim=2).values < ANCHOR_RATIO  # (M, A)
        t_idx, a_idx = ok.nonzero(as_tuple=True)
        c = centre[t_idx]
        frac = c % 1.0
        inv = (n - c) % 1.0
        # Centre cell, plus left/up when the centre sits in the left/upper half, plus
        # right/down when in the right/lower half (YOLOv5's g = 0.5 neighbour rule).
        use = torch.stack(
            [
                torch.ones_like(frac[:, 0], dtype=torch.bool),
                (frac[:, 0] < 0.5) & (c[:, 0] > 1.0),
                (frac[:, 1] < 0.5) & (c[:, 1] > 1.0),
                (inv[:, 0] < 0.5) & (c[:, 0] < n - 1.0),
                (inv[:, 1] < 0.5) & (c[:, 1] < n - 1.0),
            ],
            dim=1,
        )
        # offsets are subtracted: left neighbour = cell - (1, 0)
        rows, which = use.nonzero(as_tuple=True)
        cell = (c[rows] - offsets[which]).long()
        gx, gy = cell[:, 0].clamp(0, n - 1), cell[:, 1].clamp(0, n - 1)
        t = t_idx[rows]
        matches.append((targets[t, 0].long(), a_idx[rows], gy, gx, t))
    return matches


def detection_loss(model: ShapesYoloV5, outputs: list[torch.Tensor], targets: torch.Tensor):
    """YOLOv5-style loss: GIoU + class BCE on matches, objectness BCE everywhere."""
    loss_box = outputs[0].new_zeros(())
    loss_cls = outputs[0].new_zeros(())
    loss_obj = outputs[0].new_zeros(())
    n_matches = 0
    for level, (raw, (b, a, gy, gx, t)) in enumerate(zip(outputs, build_targets(targets))):
        obj_target = torch.zeros_like(raw[..., 4])
        if len(t):
            p = raw[b, a, gy, gx]
            grid = torch.stack([gx, gy], dim=1).float()
            anchor = torch.tensor(ANCHORS[level])[a]
            xy = (p[:, :2].sigmoid() * 2.0 - 0.5 + grid) * STRIDES[level]
            wh = (p[:, 2:4].sigmoid() * 2.0) ** 2 * anchor
            pred = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
            iou, giou = box_iou_pairs(pred, targets[t, 2:])
            loss_box = loss_box + (1.0 - giou).sum()
            cls_target = F.one_hot(targets[t, 1].long(), NUM_CLASSES).float()
            loss_cls = loss_cls + F.binary_cross_entropy_with_logits(p[:, 5:], cls_target, reduction="sum")
            obj_target[b, a, gy, gx] = iou.detach().clamp(min=0.0)
            n_matches += len(t)
        loss_obj = loss_obj + LEVEL_BALANCE[level] * F.binary_cross_entropy_with_logits(
            raw[..., 4], obj_target, reduction="mean"
        )
    n = max(1, n_matches)
    loss_box, loss_cls = loss_box / n, loss_cls / n
    loss = 5.0 * loss_box + 1.0 * loss_cls + 20.0 * loss_obj
    return loss, {"box": loss_box.item(), "cls": loss_cls.item(), "obj": loss_obj.item()}


def make_card(onnx_path, train_seconds: float) -> dict:
    n = len(ANCHORS[0]) * sum((SIZE // s) ** 2 for s in STRIDES)
    return {
        "id": MODEL_ID,
        "name": "Shapes YOLOv5-layout detector",
        "task": "detection",
        "format": "onnx",
        "description": (
            "Tiny anchor-based detector trained on synthetic circles, squares and triangles "
            "(workbench.data.shapes). YOLOv5 output layout: coupled heads at strides 8 and 16 "
            f"with 3 anchors each ({n} predictions, level-major, then anchor, then row-major "
            "cell), rows (cx, cy, w, h, objectness, class probabilities), boxes in input "
            "pixels, all post-sigmoid. Anchors (w, h) in pixels: stride 8 "
            f"{[list(a) for a in ANCHORS[0]]}, stride 16 {[list(a) for a in ANCHORS[1]]}."
        ),
        "labels": list(common.SHAPE_CLASSES),
        "source": common.training_source("models/train/train_shapes_yolov5.py", onnx_path),
        "input": common.nchw_input(SIZE),
        "outputs": [
            {
                "name": "output0",
                "tensor_id": "yolov5-boxes-obj-scores",
                "dims": [1, n, 5 + NUM_CLASSES],
                "dims_order": "row-major",
                "dtype": "float32",
            }
        ],
        "decoder": {
            "id": "yolov5",
            "params": {"score_threshold": 0.25, "iou_threshold": 0.5, "anchor_free": False},
        },
        "training": {"command": "python models/train/train_shapes_yolov5.py"},
        "metrics": {"heldout_images": 300, "heldout_seed": 1, "train_seconds": train_seconds},
    }


def main() -> None:
    common.train_detector_main(__doc__, MODEL_ID, ShapesYoloV5, detection_loss, ExportYoloV5, make_card, STEPS, SIZE)


if __name__ == "__main__":
    main()

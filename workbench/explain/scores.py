"""Target scores in torch: from raw model outputs (batch first) to one number per example.

Detection targets need every *candidate* of the model, differentiably: a per-decoder function
reads the raw outputs as the decoder does (parameters from the card, never from the decoder
files' internals beyond their public attributes) and returns :class:`Candidates`: boxes
``[B, N, 4]`` (x1, y1, x2, y2) in model-input pixels and class scores ``[B, N, C]``. The target
score is then, as in D-RISE, the best match ``max_n IoU(box_n, target box) * score_n[class]``:
pixels that destroy the box (or move it, or change its class) lower it.

    @register_candidates("yolov8")
    def yolov8(subject) -> CandidateFn: ...

Registered: classification (no candidates: class scores), yolov8, yolov5, ssd-anchors
(BlazeFace; anchors from the decoder, i.e. :mod:`workbench.anchors`), mtcnn (O-Net on one crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import torch

from ..errors import ExplainError, TargetError
from .forward import ScoreFn

if TYPE_CHECKING:
    from .subject import Subject
    from .targets import Target

__all__ = ["Candidates", "CandidateFn", "CANDIDATES", "register_candidates", "candidates_for", "score_fn",
           "box_iou_torch", "SCORE_KINDS"]

SCORE_KINDS = ("probability", "logit")


@dataclass(frozen=True)
class Candidates:
    """Every candidate of a batch: ``boxes [B, N, 4]`` xyxy model-input pixels, ``scores [B, N, C]``."""

    boxes: torch.Tensor
    scores: torch.Tensor


CandidateFn = Callable[[Mapping[str, torch.Tensor]], Candidates]
CANDIDATES: dict[str, Callable[["Subject"], CandidateFn]] = {}


CandidateBuilder = Callable[["Subject"], CandidateFn]


def register_candidates(decoder_id: str) -> Callable[[CandidateBuilder], CandidateBuilder]:
    def deco(fn: CandidateBuilder) -> CandidateBuilder:
        CANDIDATES[decoder_id] = fn
        return fn

    return deco


def box_iou_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``a [..., 4]`` with one box ``b [4]`` (xyxy) -> ``[...]``; 0 for empty unions."""
    lt = torch.maximum(a[..., :2], b[:2])
    rb = torch.minimum(a[..., 2:], b[2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[2:] - b[:2]).clamp(min=0).prod()
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def _cxcywh(t: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = t.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _output_by_id(subject: "Subject", tensor_id: str, fallback: int = 0) -> str:
    """The model output name that carries ``tensor_id`` (by the card), else the ``fallback``-th."""
    outs = subject.card.outputs
    for s in outs:
        if s.tensor_id == tensor_id:
            return str(s.name)
    if fallback < len(outs):
        return str(outs[fallback].name)
    raise ExplainError(f"{subject.card.id}: no output with tensor-id {tensor_id!r}",
                       hint="check the card's [[outputs]]")


def _planar(subject: "Subject", name: str) -> bool:
    spec = next((s for s in subject.card.outputs if s.name == name), None)
    return spec is not None and spec.dims_order == "col-major"


@register_candidates("yolov8")
def _yolov8(subject: "Subject") -> CandidateFn:
    from ..decoders.yolov8 import TENSOR_ID

    name = _output_by_id(subject, TENSOR_ID)
    planar = _planar(subject, name)

    def fn(outs: Mapping[str, torch.Tensor]) -> Candidates:
        x = outs[name]
        table = x.transpose(1, 2) if planar else x  # [B, N, 4 + C]
        return Candidates(_cxcywh(table[..., :4]), table[..., 4:])

    return fn


@register_candidates("yolov5")
def _yolov5(subject: "Subject") -> CandidateFn:
    from ..decoders.yolov5 import TENSOR_ID

    name = _output_by_id(subject, TENSOR_ID)
    planar = _planar(subject, name)

    def fn(outs: Mapping[str, torch.Tensor]) -> Candidates:
        x = outs[name]
        table = x.transpose(1, 2) if planar else x  # [B, N, 5 + C]
        return Candidates(_cxcywh(table[..., :4]), table[..., 4:5] * table[..., 5:])

    return fn


@register_candidates("ssd-anchors")
def _ssd_anchors(subject: "Subject") -> CandidateFn:
    """MediaPipe's TensorsToDetections in torch, from the configured decoder's anchors and params."""
    from ..decoders.ssd_anchors import REGRESSORS_ID, SCORES_ID

    dec = subject.decoder
    p = dec.p  # type: ignore[attr-defined]
    reg_name = _output_by_id(subject, REGRESSORS_ID, 0)
    score_name = _output_by_id(subject, SCORES_ID, 1)
    a = torch.as_tensor(np.asarray(dec.anchors.anchors), dtype=torch.float32)  # type: ignore[attr-defined]
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    fmt = dec.box_format  # type: ignore[attr-defined]
    allowed = torch.as_tensor(np.asarray(dec.allowed))  # type: ignore[attr-defined]
    w_in, h_in = dec.input_size  # type: ignore[attr-defined]
    n, nc, k = p["num_boxes"], p["num_coords"], p["num_classes"]
    o = p["box_coord_offset"]

    def fn(outs: Mapping[str, torch.Tensor]) -> Candidates:
        raw = outs[reg_name].reshape(-1, n, nc)
        r0, r1, r2, r3 = (raw[..., o + i] for i in range(4))
        if fmt == "yxhw":
            yc, xc, hh, ww = r0, r1, r2, r3
        elif fmt == "xywh":
            xc, yc, ww, hh = r0, r1, r2, r3
        else:
            xc, yc, ww, hh = (-r0 + r2) / 2, (-r1 + r3) / 2, r2 + r0, r3 + r1
        xc = xc / p["x_scale"] * aw + ax
        yc = yc / p["y_scale"] * ah + ay
        if p["apply_exponential_on_box_size"]:
            hh = torch.exp(hh / p["h_scale"]) * ah
            ww = torch.exp(ww / p["w_scale"]) * aw
        else:
            hh = hh / p["h_scale"] * ah
            ww = ww / p["w_scale"] * aw
        y1, x1, y2, x2 = yc - hh / 2, xc - ww / 2, yc + hh / 2, xc + ww / 2
        if p["flip_vertically"]:
            y1, y2 = 1.0 - y2, 1.0 - y1
        boxes = torch.stack([x1 * w_in, y1 * h_in, x2 * w_in, y2 * h_in], -1)
        s = outs[score_name].reshape(-1, n, k)
        if p["sigmoid_score"]:
            t = p["score_clipping_thresh"]
            if t is not None:
                s = s.clamp(-t, t)
            s = torch.sigmoid(s)
        s = torch.where(allowed, s, torch.zeros_like(s))
        return Candidates(boxes, s)

    return fn


@register_candidates("mtcnn")
def _mtcnn(subject: "Subject") -> CandidateFn:
    """O-Net on one crop: the regressed box (frame pixels, as the decoder computes it) mapped
    to the crop's input pixels; scores ``[B, 1, 2]`` (background, face)."""
    if getattr(subject.decoder, "stage", None) != "onet" or subject.crop_box is None:
        raise ExplainError("MTCNN detections are explained through O-Net on the face's crop",
                           hint="explain a result of Pipeline.from_card('mtcnn')")
    names = {(s.tensor_id or "").rsplit("-", 1)[-1]: str(s.name) for s in subject.card.outputs}
    x1, y1, x2, y2 = (float(v) for v in subject.crop_box)
    crop = torch.tensor([x1, y1, x2, y2])
    size = torch.tensor([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
    t = subject.transform
    scale = torch.tensor([t.scale[0], t.scale[1]] * 2, dtype=torch.float32)
    offset = torch.tensor([t.offset[0], t.offset[1]] * 2, dtype=torch.float32)

    def fn(outs: Mapping[str, torch.Tensor]) -> Candidates:
        reg = outs[names["boxes"]].reshape(-1, 4)
        frame_box = crop + reg * size  # the decoder's bbreg on the 1-based crop, in pixel edges
        box = frame_box * scale + offset
        return Candidates(box[:, None, :], outs[names["scores"]].reshape(-1, 1, 2))

    return fn


def candidates_for(subject: "Subject") -> CandidateFn:
    """The candidate function of the subject's decoder (an :class:`ExplainError` lists the
    decoders that have one)."""
    fn = CANDIDATES.get(subject.decoder.id)
    if fn is None:
        raise ExplainError(
            f"detection targets of decoder {subject.decoder.id!r} are not supported",
            hint=f"decoders with candidate scores: {', '.join(sorted(CANDIDATES))}; or explain a raw output "
                 "element: target={'output': name, 'index': [...]}")
    return fn(subject)


def _class_scores(subject: "Subject", kind: str) -> Callable[[Mapping[str, torch.Tensor]], torch.Tensor]:
    dec = subject.decoder
    act = getattr(dec, "p", {}).get("activation", "softmax")
    name = str(subject.card.outputs[0].name) if subject.card.outputs else None

    def fn(outs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = outs[name] if name in outs else next(iter(outs.values()))
        z = x.reshape(x.shape[0], -1)
        if kind == "logit" or act == "none":
            return z
        return torch.softmax(z, -1) if act == "softmax" else torch.sigmoid(z)

    return fn


def score_fn(subject: "Subject", target: "Target", score: str = "probability") -> ScoreFn:
    """``score(outputs, layers) -> [B]`` for a target on a subject.

    ``score``: "probability" (after the card's activation) or "logit" (classifiers; detection
    scores are the decoder's). Layer targets read the captured layer (reference backend only).
    """
    if score not in SCORE_KINDS:
        raise ExplainError(f"score must be one of {SCORE_KINDS}, got {score!r}")
    kind = target.kind
    if kind == "class":
        cls = _class_scores(subject, score)
        c = int(target.index)  # type: ignore[arg-type]
        return lambda outs, layers: cls(outs)[:, c]
    if kind == "detection":
        cand = candidates_for(subject)
        box = torch.tensor(target.box, dtype=torch.float32)
        c = int(target.index)  # type: ignore[arg-type]

        def det(outs: Mapping[str, torch.Tensor], layers: Mapping[str, torch.Tensor]) -> torch.Tensor:
            cd = cand(outs)
            if c >= cd.scores.shape[-1]:
                raise TargetError(f"class {c} out of range: the model scores {cd.scores.shape[-1]} classes")
            match = box_iou_torch(cd.boxes.to(torch.float32), box) * cd.scores[..., c].to(torch.float32)
            return match.max(dim=1).values

        return det
    if kind == "output":
        name = str(target.output)
        el = tuple(target.element or ())

        def out(outs: Mapping[str, torch.Tensor], layers: Mapping[str, torch.Tensor]) -> torch.Tensor:
            if name not in outs:
                raise TargetError(f"no output {name!r}", hint=f"outputs: {list(outs)}")
            x = outs[name]
            try:
                return x[(slice(None), *el)].reshape(x.shape[0], -1).sum(-1)
            except IndexError:
                raise TargetError(f"index {list(el)} out of range for output {name!r} of shape "
                                  f"{tuple(x.shape[1:])} (batch dimension excluded)") from None

        return out
    layer = str(target.layer)
    ch = target.channel

    def lay(outs: Mapping[str, torch.Tensor], layers: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if layer not in layers:
            raise TargetError(f"layer {layer!r} was not captured; layer targets run on the reference backend")
        t = layers[layer]
        if ch is not None:
            axis = 3 if (t.dim() == 4 and subject.card.format == "tflite") else 1
            if not 0 <= ch < t.shape[axis]:
                raise TargetError(f"channel {ch} out of range: layer {layer!r} has {t.shape[axis]} channels")
            t = t.select(axis, ch)
        return t.reshape(t.shape[0], -1).mean(-1)

    return lay

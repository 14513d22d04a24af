"""Candidate extraction in torch (workbench.explain.scores) against the numpy decoders.

The decoders' DecisionLogs are the independent truth: every logged candidate's box and score
must be what the torch function computes for the same raw tensors; the D-RISE target score must
equal max(IoU x class score) computed with the numpy box math.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.boxes import box_iou
from workbench.decoders import decoder_for_card, get_decoder
from workbench.explain.scores import CANDIDATES, box_iou_torch, candidates_for, score_fn
from workbench.explain.subject import InputLayout, Subject
from workbench.explain.targets import Target
from workbench.preprocess import Transform
from workbench.tensors import TensorSpec
from workbench.zoo import ModelCard, get_card
from workbench.zoo.card import InputSpec, ModelSource

IDENTITY = Transform("stretch", (64, 64), (64, 64), (1.0, 1.0), (0.0, 0.0))


def _card(decoder_id: str, outputs: tuple[TensorSpec, ...], labels: tuple[str, ...], params: dict) -> ModelCard:
    from workbench.zoo.card import DecoderSpec

    return ModelCard(id=f"fake-{decoder_id}", name="fake", task="detection", format="onnx",
                     source=ModelSource(kind="file", file="x.onnx"), input=InputSpec("images", (64, 64), "NCHW"),
                     outputs=outputs, decoder=DecoderSpec(decoder_id, params), labels=labels)


def _subject(card: ModelCard, decoder, transform: Transform = IDENTITY, crop_box=None) -> Subject:
    return Subject(card, "onnxruntime", np.zeros((1, 3, 64, 64), np.float32), InputLayout("NCHW"), transform,
                   transform.frame_size, decoder, np.zeros(3), np.ones(3), crop_box)


def _check_log_rows(log, cand, c_scores) -> None:
    """Every logged candidate: box equal, score equal to the decoder's score for its class."""
    src = np.asarray(log.source_index)
    boxes = cand.boxes[0].double().numpy()[src]
    np.testing.assert_allclose(boxes, log.boxes, rtol=1e-5, atol=1e-4)
    got = c_scores[src, np.asarray(log.classes)]
    np.testing.assert_allclose(got, log.score, rtol=1e-5, atol=1e-6)


def _yolo_table(rng, n, c, obj: bool) -> np.ndarray:
    cxcy = rng.uniform(5, 59, (n, 2))
    wh = rng.uniform(2, 30, (n, 2))
    probs = rng.uniform(0, 1, (n, c + (1 if obj else 0)))
    return np.concatenate([cxcy, wh, probs], 1).astype(np.float32)


@pytest.mark.parametrize("planar", [True, False])
def test_yolov8_candidates_match_the_decoder_log(planar):
    rng = np.random.default_rng(0)
    labels = ("a", "b", "c")
    table = _yolo_table(rng, 50, 3, obj=False)
    x = table.T[None] if planar else table[None]
    spec = TensorSpec("yolov8-boxes-scores", (50, 7, 1) if planar else (1, 50, 7),
                      "col-major" if planar else "row-major", "float32", name="output0")
    card = _card("yolov8", (spec,), labels, {"score_threshold": 0.0})
    dec = decoder_for_card(card)
    res = dec.decode({"output0": x}, IDENTITY, specs=card.outputs)
    cand = candidates_for(_subject(card, dec))({"output0": torch.from_numpy(x)})
    assert cand.boxes.shape == (1, 50, 4) and cand.scores.shape == (1, 50, 3)
    _check_log_rows(res.log, cand, cand.scores[0].double().numpy())


def test_yolov5_candidates_match_the_decoder_log():
    rng = np.random.default_rng(1)
    labels = ("a", "b")
    table = _yolo_table(rng, 40, 2, obj=True)
    spec = TensorSpec("yolov5-boxes-obj-scores", (1, 40, 7), "row-major", "float32", name="output0")
    card = _card("yolov5", (spec,), labels, {"score_threshold": 0.1})
    dec = decoder_for_card(card)
    res = dec.decode({"output0": table[None]}, IDENTITY, specs=card.outputs)
    cand = candidates_for(_subject(card, dec))({"output0": torch.from_numpy(table[None])})
    assert len(res.log) > 5
    _check_log_rows(res.log, cand, cand.scores[0].double().numpy())


def test_ssd_anchor_candidates_match_the_blazeface_decoder():
    card = get_card("blazeface-short")
    dec = decoder_for_card(card)
    rng = np.random.default_rng(2)
    reg = rng.normal(0, 8, (1, 896, 16)).astype(np.float32)
    scores = rng.normal(0, 3, (1, 896, 1)).astype(np.float32)
    t = Transform("letterbox", (256, 256), (128, 128), (0.5, 0.5), (0.0, 0.0))
    res = dec.decode({"regressors": reg, "classificators": scores}, t, specs=card.outputs)
    sub = _subject(card, dec, t)
    cand = candidates_for(sub)({"regressors": torch.from_numpy(reg), "classificators": torch.from_numpy(scores)})
    src = np.asarray(res.log.source_index)
    np.testing.assert_allclose(cand.boxes[0].double().numpy()[src], res.log.boxes, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(cand.scores[0, :, 0].double().numpy()[src], res.log.score, rtol=1e-5, atol=1e-6)


def test_mtcnn_onet_candidate_is_the_decoders_face_box():
    dec = get_decoder("mtcnn", stage="onet")
    img = np.random.default_rng(3).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    box = (20, 30, 68, 78)
    _, t = dec.prepare_input(img, box)
    reg = np.array([[0.05, -0.1, 0.02, 0.08]], np.float32)
    probs = np.array([[0.1, 0.9]], np.float32)
    lm = np.zeros((1, 10), np.float32)
    res = dec.decode({"dense_5": reg, "dense_6": lm, "softmax_2": probs}, t, specs=get_card("mtcnn-onet").outputs)
    card = get_card("mtcnn-onet")
    crop = tuple(int(round(v)) for v in t.boxes_to_frame(np.array([[0, 0, 48, 48]]))[0])
    sub = _subject(card, dec, t, crop_box=crop)
    cand = candidates_for(sub)({"dense_5": torch.from_numpy(reg), "dense_6": torch.from_numpy(lm),
                                "softmax_2": torch.from_numpy(probs)})
    np.testing.assert_allclose(cand.boxes[0, 0].double().numpy(), res.detections.boxes[0], rtol=1e-5, atol=1e-4)
    assert float(cand.scores[0, 0, 1]) == pytest.approx(float(res.detections.scores[0]))


def test_detection_target_score_is_the_best_iou_times_class_score():
    rng = np.random.default_rng(4)
    table = _yolo_table(rng, 30, 3, obj=False)
    spec = TensorSpec("yolov8-boxes-scores", (1, 30, 7), "row-major", "float32", name="output0")
    card = _card("yolov8", (spec,), ("a", "b", "c"), {})
    sub = _subject(card, decoder_for_card(card))
    box = (10.0, 12.0, 30.0, 40.0)
    target = Target("detection", stage="s", index=2, box=box)
    got = float(score_fn(sub, target)({"output0": torch.from_numpy(table[None])}, {})[0])
    xyxy = np.concatenate([table[:, :2] - table[:, 2:4] / 2, table[:, :2] + table[:, 2:4] / 2], 1)
    want = float((box_iou(np.array([box]), xyxy)[0] * table[:, 6]).max())
    assert got == pytest.approx(want, rel=1e-5)


def test_box_iou_torch_matches_numpy():
    rng = np.random.default_rng(5)
    a = np.sort(rng.uniform(0, 50, (20, 2, 2)), axis=1).transpose(0, 2, 1).reshape(20, 4)[:, [0, 2, 1, 3]]
    b = np.array([5.0, 5.0, 25.0, 30.0])
    np.testing.assert_allclose(box_iou_torch(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                               box_iou(b[None], a)[0], rtol=1e-9, atol=1e-12)


def test_classification_scores_are_softmax_or_logits():
    spec = TensorSpec("classification-logits", (1, 3), "row-major", "float32", name="logits")
    card = _card("classification", (spec,), ("a", "b", "c"), {"activation": "softmax"})
    sub = _subject(card, decoder_for_card(card))
    logits = torch.tensor([[1.0, 3.0, -2.0]])
    t = Target("class", stage="s", index=1)
    p = float(score_fn(sub, t)({"logits": logits}, {})[0])
    assert p == pytest.approx(float(np.exp(3) / np.exp([1, 3, -2]).sum()), rel=1e-6)
    assert float(score_fn(sub, t, "logit")({"logits": logits}, {})[0]) == 3.0


def test_every_detection_decoder_with_candidates_is_tested():
    assert set(CANDIDATES) == {"yolov8", "yolov5", "ssd-anchors", "mtcnn"}

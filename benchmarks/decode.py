"""Decode + NMS benchmark on YOLOv5's output layout ``[1, 25200, 85]``.

Compares, as the median over many runs on one synthetic but realistic prediction tensor:

  (a) ``workbench``: decode + class-aware greedy NMS (``workbench.nms.greedy_nms``) + the full
      DecisionLog (every candidate, its fate, who suppressed it, at which IoU, the step order);
  (b) ``opencv``:    the same decode + ``cv2.dnn.NMSBoxesBatched`` (class-aware), no log;
  (c) ``decoder``:   the registered ``workbench.decoders`` ``yolov5`` decoder end to end: caps
      check, decode, NMS, DecisionLog (with cells) and the Detections in input and frame pixels.

Both use YOLOv5's defaults (conf 0.25, IoU 0.45, max_det 300, max_nms 30000) and must keep the
same boxes; the script checks that. Targets: (a) and (c) <= 5 ms and <= 2x (b).

    python benchmarks/decode.py                  # table + JSON on stdout
    python benchmarks/decode.py --json out.json  # also write the JSON
    python benchmarks/decode.py --objects 100 --per-object 20   # a crowded frame

To benchmark another decoder, add a function ``(pred) -> (boxes, scores, classes, source_index)``
to ``DECODERS`` (and a matching prediction maker to ``PREDICTIONS``); everything else is shared.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np

from workbench.nms import greedy_nms

CONF, IOU, MAX_DET, MAX_NMS = 0.25, 0.45, 300, 30000
STRIDES, GRIDS, ANCHORS_PER_CELL = (8, 16, 32), (80, 40, 20), 3
YOLOV5_ANCHORS = np.array([[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                           [116, 90, 156, 198, 373, 326]], dtype=np.float32).reshape(3, 3, 2)


# --------------------------------------------------------------------------------- decoders
def decode_yolov5_reference(pred: np.ndarray, conf_threshold: float = CONF
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv5 ``[1, 25200, 85]`` (cx, cy, w, h, objectness, 80 class probs; already sigmoided)
    -> ``boxes[N, 4]`` xyxy input pixels, ``scores[N]`` = obj * best class prob, ``classes[N]``,
    ``source_index[N]`` (row in the 25200).

    As YOLOv5's ``non_max_suppression``: rows with ``objectness <= conf_threshold`` cannot reach
    a score above it (class probs <= 1) and are not candidates at all; the rest are, even those
    whose ``obj * cls`` ends below the threshold (the log shows them as BELOW_SCORE).
    """
    x = pred[0]
    idx = np.flatnonzero(x[:, 4] > conf_threshold)
    sub = x[idx]
    conf = sub[:, 5:] * sub[:, 4:5]
    classes = conf.argmax(axis=1)
    scores = conf[np.arange(len(idx)), classes]
    xy, half = sub[:, :2], sub[:, 2:4] / 2
    boxes = np.concatenate([xy - half, xy + half], axis=1)
    return boxes, scores, classes, idx


_LEVEL_SIZES = np.array([ANCHORS_PER_CELL * g * g for g in GRIDS])
_LEVEL_ENDS = np.cumsum(_LEVEL_SIZES)
_LEVEL_STARTS = _LEVEL_ENDS - _LEVEL_SIZES
_LEVEL_GRID = np.array(GRIDS)


def yolov5_cells(source_index: np.ndarray) -> np.ndarray:
    """Row in YOLOv5's 25200 -> ``[N, 4]`` (level, anchor, gy, gx) of the prediction grid."""
    level = _LEVEL_ENDS.searchsorted(source_index, side="right")
    g = _LEVEL_GRID[level]
    local = source_index - _LEVEL_STARTS[level]
    anchor, cell = np.divmod(local, g * g)
    gy, gx = np.divmod(cell, g)
    return np.array([level, anchor, gy, gx]).T


DECODERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, ...]]] = {
    "yolov5": decode_yolov5_reference,
}


# ----------------------------------------------------------------------- synthetic prediction
def make_yolov5_prediction(seed: int = 0, objects: int = 10, per_object: int = 12, size: int = 640,
                           classes: int = 80) -> np.ndarray:
    """A ``[1, 25200, 85]`` float32 prediction that looks like a real frame's.

    Background rows: objectness ~ sigmoid(N(-9, 1.5)) (almost all < 1e-3), class probs ~ small.
    ``objects`` objects, each seen by ``per_object`` neighbouring anchors (same level, nearby
    cells) with jittered boxes, objectness 0.3..0.95 and one dominant class: about
    ``objects * per_object`` candidates above 0.25, clustered as a real detector's are.
    """
    rng = np.random.default_rng(seed)
    n = sum(ANCHORS_PER_CELL * g * g for g in GRIDS)
    pred = np.empty((n, 5 + classes), np.float32)
    # background: a plausible box per cell, tiny objectness and class probs
    rows, start = [], 0
    for level, (stride, g) in enumerate(zip(STRIDES, GRIDS)):
        a, gy, gx = np.meshgrid(np.arange(ANCHORS_PER_CELL), np.arange(g), np.arange(g), indexing="ij")
        cx = (gx.ravel() + 0.5) * stride
        cy = (gy.ravel() + 0.5) * stride
        wh = YOLOV5_ANCHORS[level][a.ravel()]
        m = g * g * ANCHORS_PER_CELL
        pred[start:start + m, 0] = cx
        pred[start:start + m, 1] = cy
        pred[start:start + m, 2:4] = wh * rng.uniform(0.5, 2.0, (m, 2))
        rows.append((start, stride, g))
        start += m
    pred[:, 4] = 1 / (1 + np.exp(-rng.normal(-9, 1.5, n)))
    pred[:, 5:] = 1 / (1 + np.exp(-rng.normal(-6, 1.5, (n, classes))))
    # objects
    for _ in range(objects):
        level = int(rng.integers(0, 3))
        start, stride, g = rows[level]
        w, h = rng.uniform(2, 6, 2) * stride
        cx, cy = rng.uniform(w / 2, size - w / 2), rng.uniform(h / 2, size - h / 2)
        cls = int(rng.integers(0, classes))
        gx0, gy0 = int(cx // stride), int(cy // stride)
        cand = [(a, gy, gx) for a in range(ANCHORS_PER_CELL) for gy in range(gy0 - 1, gy0 + 2)
                for gx in range(gx0 - 1, gx0 + 2) if 0 <= gy < g and 0 <= gx < g]
        pick = rng.permutation(len(cand))[:per_object]
        for k in pick:
            a, gy, gx = cand[k]
            r = start + a * g * g + gy * g + gx
            pred[r, :4] = [cx + rng.normal(0, 0.06 * w), cy + rng.normal(0, 0.06 * h),
                           w * rng.uniform(0.85, 1.15), h * rng.uniform(0.85, 1.15)]
            pred[r, 4] = rng.uniform(0.3, 0.95)
            pred[r, 5 + cls] = rng.uniform(0.6, 0.99)
            if rng.random() < 0.3:  # a confusable second class
                pred[r, 5 + int(rng.integers(0, classes))] = rng.uniform(0.2, 0.6)
    return pred[None]


PREDICTIONS: dict[str, Callable[..., np.ndarray]] = {"yolov5": make_yolov5_prediction}


# -------------------------------------------------------------------------------- pipelines
def pipeline_workbench(pred: np.ndarray, decoder: str = "yolov5"):
    """(a) decode + class-aware greedy NMS with the full DecisionLog (cells included)."""
    boxes, scores, classes, src = DECODERS[decoder](pred)
    return greedy_nms(boxes, scores, IOU, CONF, classes=classes, class_agnostic=False, top_k=MAX_NMS,
                      max_detections=MAX_DET, source_index=src, cell=yolov5_cells(src))


_REGISTERED: dict[str, object] = {}


def registered_decoder(decoder: str = "yolov5"):
    """The registered ``workbench.decoders`` decoder with this benchmark's parameters, and the
    spec of the tensor it reads (built once)."""
    if decoder not in _REGISTERED:
        from workbench.decoders import get_decoder
        from workbench.tensors import TensorSpec

        dec = get_decoder(decoder, score_threshold=CONF, iou_threshold=IOU, max_detections=MAX_DET,
                          top_k=MAX_NMS, strides=list(STRIDES), input_size=[640, 640])
        spec = TensorSpec("yolov5-boxes-obj-scores", None, "row-major", None, "output0")
        _REGISTERED[decoder] = (dec, [spec])
    return _REGISTERED[decoder]


def pipeline_registered(pred: np.ndarray, decoder: str = "yolov5"):
    """(c) the registered decoder end to end -> DecodeResult (detections + DecisionLog)."""
    dec, specs = registered_decoder(decoder)
    return dec.decode({"output0": pred}, specs=specs)


def pipeline_opencv(pred: np.ndarray, decoder: str = "yolov5") -> np.ndarray:
    """(b) decode + ``cv2.dnn.NMSBoxesBatched``; returns kept rows of the decoder's list."""
    import cv2

    boxes, scores, classes, src = DECODERS[decoder](pred)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores, classes, CONF, IOU, top_k=MAX_NMS)
    return np.asarray(keep, dtype=np.int64).reshape(-1)[:MAX_DET]


def pipeline_opencv_agnostic(pred: np.ndarray, decoder: str = "yolov5") -> np.ndarray:
    """(b') decode + plain ``cv2.dnn.NMSBoxes`` (class-agnostic), for reference."""
    import cv2

    boxes, scores, classes, src = DECODERS[decoder](pred)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh, scores, CONF, IOU, top_k=MAX_NMS)
    return np.asarray(keep, dtype=np.int64).reshape(-1)[:MAX_DET]


def _time_interleaved(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 20
                      ) -> dict[str, tuple[float, float]]:
    """Median and p90 in ms of each function, timed one call each in turn (so that a machine
    whose load drifts during the run treats every pipeline alike)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = (statistics.median(ts) * 1e3, ts[int(0.9 * (len(ts) - 1))] * 1e3)
    return out


def run(repeat: int = 300, seed: int = 0, decoder: str = "yolov5", **scene: int) -> dict[str, object]:
    pred = PREDICTIONS[decoder](seed=seed, **scene)
    log = pipeline_workbench(pred, decoder)
    result: dict[str, object] = {
        "benchmark": "decode+nms", "decoder": decoder, "input_shape": list(pred.shape),
        "scene": scene, "candidates": len(log), "fates": log.counts(), "repeat": repeat,
        "python": platform.python_version(), "numpy": np.__version__,
    }
    boxes, scores, classes, src = DECODERS[decoder](pred)
    fns: dict[str, Callable[[], object]] = {
        "a_workbench": lambda: pipeline_workbench(pred, decoder),
        "decode": lambda: DECODERS[decoder](pred),
        "nms_with_log": lambda: greedy_nms(boxes, scores, IOU, CONF, classes=classes, class_agnostic=False,
                                           top_k=MAX_NMS, max_detections=MAX_DET, source_index=src,
                                           cell=yolov5_cells(src)),
    }
    try:
        import cv2
    except ImportError:
        cv2 = None
        result["note"] = "opencv-python-headless is not installed: (b) skipped"
    else:
        result["opencv"] = cv2.__version__
        result["same_kept"] = bool(np.array_equal(np.sort(pipeline_opencv(pred, decoder)), np.sort(log.kept())))
        fns["b_opencv"] = lambda: pipeline_opencv(pred, decoder)
        fns["b_opencv_agnostic"] = lambda: pipeline_opencv_agnostic(pred, decoder)
    registered = pipeline_registered(pred, decoder)
    rlog = registered.log
    result["c_same_kept_as_a"] = bool(np.array_equal(rlog.source_index[rlog.kept()], log.source_index[log.kept()]))
    result["c_detections"] = len(registered.detections)
    fns["c_decoder"] = lambda: pipeline_registered(pred, decoder)
    timed = _time_interleaved(fns, repeat)
    for name, (median, p90) in timed.items():
        result[f"{name}_ms"] = median
        if name in ("a_workbench", "b_opencv", "c_decoder"):
            result[f"{name}_p90_ms"] = p90
    result.setdefault("b_opencv_ms", None)
    result["target_a_le_5ms"] = result["a_workbench_ms"] <= 5.0
    result["target_c_le_5ms"] = result["c_decoder_ms"] <= 5.0
    if result["b_opencv_ms"]:
        result["ratio_a_over_b"] = result["a_workbench_ms"] / result["b_opencv_ms"]
        result["target_a_le_2x_b"] = result["ratio_a_over_b"] <= 2.0
        result["ratio_c_over_b"] = result["c_decoder_ms"] / result["b_opencv_ms"]
        result["target_c_le_2x_b"] = result["ratio_c_over_b"] <= 2.0
    return result


def _table(r: dict[str, object]) -> str:
    def ms(v: object) -> str:
        return "-" if v is None else f"{v:.3f}"

    a, b = ms(r["a_workbench_ms"]), ms(r.get("b_opencv_ms"))
    lines = [
        f"decode + NMS on {r['input_shape']} ({r['decoder']}): {r['candidates']} candidates, fates {r['fates']}",
        f"{'pipeline':<44} {'median ms':>10} {'p90 ms':>8}",
        f"{'(a) decode + greedy NMS + DecisionLog':<44} {a:>10} {ms(r.get('a_workbench_p90_ms')):>8}",
        f"{'(b) decode + cv2.dnn.NMSBoxesBatched':<44} {b:>10} {ms(r.get('b_opencv_p90_ms')):>8}",
        f"{'(c) registered yolov5 decoder (caps+log+dets)':<44} {ms(r['c_decoder_ms']):>10} "
        f"{ms(r.get('c_decoder_p90_ms')):>8}",
        f"{'(b) with plain cv2.dnn.NMSBoxes (agnostic)':<44} {ms(r.get('b_opencv_agnostic_ms')):>10}",
        f"{'    decode alone':<44} {ms(r['decode_ms']):>10}",
        f"{'    greedy NMS + log alone':<44} {ms(r['nms_with_log_ms']):>10}",
    ]
    if r.get("b_opencv_ms"):
        lines.append(f"(a)/(b) = {r['ratio_a_over_b']:.2f}  (target <= 2: {r['target_a_le_2x_b']}); "
                     f"(a) <= 5 ms: {r['target_a_le_5ms']}; same kept boxes: {r['same_kept']}")
        lines.append(f"(c)/(b) = {r['ratio_c_over_b']:.2f}  (target <= 2: {r['target_c_le_2x_b']}); "
                     f"(c) <= 5 ms: {r['target_c_le_5ms']}; same kept rows as (a): {r['c_same_kept_as_a']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--decoder", default="yolov5", choices=sorted(DECODERS))
    ap.add_argument("--objects", type=int, default=10, help="objects in the synthetic frame")
    ap.add_argument("--per-object", type=int, default=12, help="anchors that fire on each object")
    ap.add_argument("--json", help="also write the JSON result to this file")
    args = ap.parse_args(argv)
    r = run(args.repeat, args.seed, args.decoder, objects=args.objects, per_object=args.per_object)
    print(_table(r))
    text = json.dumps(r, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Held-out metrics of the self-trained shapes models, computed from the exported file.

NumPy + onnxruntime only (no torch), so the tests recompute exactly what the training scripts
wrote into the cards. ``.tflite`` files are run through ``ai_edge_litert`` when asked.

    /tmp/v1/bin/python models/train/evaluate.py models/shapes-yolov8.toml [...]

Detectors: mAP@0.5 over ``heldout_images`` scenes of generator split ``heldout_seed`` (1; the
training scripts use split 0). Decoding: best class per candidate, score threshold 0.25
(YOLOv5 layout: score = objectness * class probability), class-aware greedy NMS at IoU 0.5.
AP per class is VOC/COCO-style all-point interpolation of the precision envelope; a
detection matches the unmatched ground truth of its class with the highest IoU >= 0.5, taken
in descending score order (ties keep image order). mAP is the mean over classes.

Classifiers: accuracy (argmax of the logits) on the held-out cue split, where the cue is
planted independently of the label with probability 0.5, and the same accuracy on the
subsets where the cue agrees with the train rule (cue present iff class 0) or disagrees.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from workbench.data.shapes import SHAPE_CLASSES, generate_scenes, make_cue_dataset  # noqa: E402

SCORE_THRESHOLD = 0.25
NMS_IOU = 0.5
MATCH_IOU = 0.5


# ---------------------------------------------------------------------------------------------
# Running a model


def make_runner(path: Path, fmt: str = "onnx") -> Callable[[np.ndarray], list[np.ndarray]]:
    """A function taking one model input (batch 1) and returning the list of outputs.

    onnxruntime runs with one thread and sequential execution, so results are repeatable.
    """
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        return lambda x: session.run(None, {input_name: x})
    if fmt == "tflite":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - older runtime
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]["index"]
        outs = [d["index"] for d in interpreter.get_output_details()]

        def run(x: np.ndarray) -> list[np.ndarray]:
            interpreter.set_tensor(inp, x)
            interpreter.invoke()
            return [interpreter.get_tensor(i).copy() for i in outs]

        return run
    raise ValueError(f"unknown model format {fmt!r}; expected 'onnx' or 'tflite'")


def to_input(image: np.ndarray, layout: str = "NCHW") -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) or (1, H, W, 3) float32 in [0, 1]."""
    x = image.astype(np.float32) / np.float32(255.0)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None])


# ---------------------------------------------------------------------------------------------
# Decoding and NMS (metric code: simple and explicit, not the product decoder)


def decode(output: np.ndarray, layout: str, score_threshold: float = SCORE_THRESHOLD):
    """Candidates above the threshold: boxes (K, 4) x1y1x2y2, scores (K,), labels (K,).

    ``layout`` "yolov8": output [1, 4 + C, N]; "yolov5": output [1, N, 5 + C].
    """
    if layout == "yolov8":
        rows = output[0].T  # (N, 4 + C)
        cxcywh, class_scores = rows[:, :4], rows[:, 4:]
    elif layout == "yolov5":
        rows = output[0]
        cxcywh, class_scores = rows[:, :4], rows[:, 5:] * rows[:, 4:5]
    else:
        raise ValueError(f"unknown detector layout {layout!r}")
    labels = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(labels)), labels]
    keep = scores > score_threshold
    cxcywh, scores, labels = cxcywh[keep], scores[keep], labels[keep]
    boxes = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    return boxes.astype(np.float64), scores.astype(np.float64), labels.astype(np.int64)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (M, 4) boxes, all (x1, y1, x2, y2)."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = np.clip(box[2:] - box[:2], 0, None).prod()
    areas = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)
    return inter / np.maximum(area + areas - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Class-aware greedy NMS; indices of kept candidates in descending score order.

    A candidate is suppressed by a kept one of the same class with IoU > ``iou_threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        same = [k for k in kept if labels[k] == labels[i]]
        if same and iou_one_to_many(boxes[i], boxes[same]).max() > iou_threshold:
            continue
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: area under the monotone precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    changes = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[changes + 1] - r[changes]) * p[changes + 1]))


def mean_average_precision(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ground_truth: list[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    iou_threshold: float = MATCH_IOU,
) -> tuple[float, list[float]]:
    """mAP over classes that have ground truth; returns (mAP, AP per class (nan if no GT)).

    detections[i] = (boxes (K, 4), scores (K,), labels (K,)) of image i;
    ground_truth[i] = (boxes (M, 4), labels (M,)).
    """
    per_class: list[float] = []
    for c in range(num_classes):
        gts = [gb[gl == c] for gb, gl in ground_truth]
        n_gt = sum(len(g) for g in gts)
        if n_gt == 0:
            per_class.append(float("nan"))
            continue
        img_idx, det_boxes, det_scores = [], [], []
        for i, (db, ds, dl) in enumerate(detections):
            sel = dl == c
            img_idx.extend([i] * int(sel.sum()))
            det_boxes.append(db[sel])
            det_scores.append(ds[sel])
        if not img_idx:
            per_class.append(0.0)
            continue
        img_idx_a = np.array(img_idx)
        boxes_a = np.concatenate(det_boxes)
        scores_a = np.concatenate(det_scores)
        order = np.argsort(-scores_a, kind="stable")
        matched = [np.zeros(len(g), dtype=bool) for g in gts]
        tp = np.zeros(len(order))
        for rank, d in enumerate(order):
            g = gts[img_idx_a[d]]
            if len(g) == 0:
                continue
            ious = iou_one_to_many(boxes_a[d], g)
            ious[matched[img_idx_a[d]]] = -1.0
            best = int(ious.argmax())
            if ious[best] >= iou_threshold:
                matched[img_idx_a[d]][best] = True
                tp[rank] = 1.0
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(order) + 1)
        per_class.append(average_precision(recall, precision))
    valid = [ap for ap in per_class if not np.isnan(ap)]
    return (float(np.mean(valid)) if valid else 0.0), per_class


# ---------------------------------------------------------------------------------------------
# Metrics per task


def evaluate_detector(
    path: Path,
    layout: str,
    n_images: int = 300,
    seed: int = 1,
    size: int = 128,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = NMS_IOU,
) -> dict[str, Any]:
    """Held-out mAP@0.5 of a detector file on ``n_images`` generator scenes of split ``seed``."""
    run = make_runner(Path(path), "onnx")
    scenes = generate_scenes(n_images, seed=seed, size=size)
    detections, ground_truth = [], []
    for scene in scenes:
        output = run(to_input(scene.image))[0]
        boxes, scores, labels = decode(output, layout, score_threshold)
        keep = nms(boxes, scores, labels, iou_threshold)
        detections.append((boxes[keep], scores[keep], labels[keep]))
        ground_truth.append((scene.boxes.astype(np.float64), scene.labels))
    map50, per_class = mean_average_precision(detections, ground_truth, len(SHAPE_CLASSES))
    return {"heldout_map50": map50, "heldout_ap50_per_class": per_class}


def evaluate_classifier(
    path: Path,
    n_images: int = 900,
    seed: int = 1,
    size: int = 64,
    fmt: str = "onnx",
    layout: str = "NCHW",
    train_images: int = 0,
    train_seed: int = 0,
    trained_with_cue: bool = True,
) -> dict[str, Any]:
    """Held-out accuracy on the independent-cue split, overall and by cue agreement.

    With ``train_images`` > 0 also the accuracy on the first ``train_images`` images of the
    training split (``train_seed``, with the cue iff ``trained_with_cue``).
    """
    run = make_runner(Path(path), fmt)

    def correct(data) -> np.ndarray:
        predictions = np.array([int(np.argmax(run(to_input(img, layout))[0])) for img in data.images])
        return predictions == data.labels

    data = make_cue_dataset(n_images, "heldout", seed=seed, cue=True, size=size)
    ok = correct(data)
    agrees = data.cue_agrees
    result = {
        "heldout_accuracy": float(ok.mean()),
        "heldout_accuracy_cue_agrees": float(ok[agrees].mean()),
        "heldout_accuracy_cue_disagrees": float(ok[~agrees].mean()),
    }
    if train_images > 0:
        train = make_cue_dataset(train_images, "train", seed=train_seed, cue=trained_with_cue, size=size)
        result["train_accuracy"] = float(correct(train).mean())
    return result


def evaluate_card_dict(card: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """Recompute the held-out metrics that a card claims, from the file it names."""
    if path is None:
        path = MODELS_DIR / card["source"]["file"]
    metrics = card.get("metrics", {})
    n_images = int(metrics["heldout_images"])
    seed = int(metrics["heldout_seed"])
    width, height = card["input"]["size"]
    decoder = card["decoder"]["id"]
    if decoder in ("yolov8", "yolov5"):
        params = card["decoder"].get("params", {})
        result = evaluate_detector(
            path,
            decoder,
            n_images,
            seed,
            int(width),
            float(params.get("score_threshold", SCORE_THRESHOLD)),
            float(params.get("iou_threshold", NMS_IOU)),
        )
        # TOML has no NaN: classes without ground truth are written as -1.
        result["heldout_ap50_per_class"] = [
            -1.0 if np.isnan(v) else v for v in result["heldout_ap50_per_class"]
        ]
        return result
    if decoder == "classification":
        return evaluate_classifier(
            path,
            n_images,
            seed,
            int(width),
            card["format"],
            card["input"]["layout"],
            int(metrics.get("train_eval_images", 0)),
            int(metrics.get("train_seed", 0)),
            bool(card.get("cue", {}).get("trained_with_cue", True)),
        )
    raise ValueError(f"no held-out metric for decoder {decoder!r}")


def evaluate_card(card_path: Path) -> dict[str, Any]:
    """Read a card (TOML) and recompute its held-out metrics."""
    card = tomllib.loads(Path(card_path).read_text())
    return evaluate_card_dict(card, Path(card_path).parent / card["source"]["file"])


def main(argv: list[str]) -> int:
    for name in argv or sorted(str(p) for p in MODELS_DIR.glob("shapes-*.toml")):
        print(name, evaluate_card(Path(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

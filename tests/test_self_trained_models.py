"""The self-trained shapes models: files match their cards and the cards' metrics reproduce.

Every ``models/shapes-*.toml`` whose source kind is "training" is checked: the file exists,
its sha256 matches, it is small, it loads with the card's input/output names and dims, and
``models/train/evaluate.py`` recomputes the card's held-out metrics from the file.
No torch here: evaluate.py is NumPy + onnxruntime (+ LiteRT for .tflite).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import subprocess
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "models"
EVALUATE_PATH = MODELS_DIR / "train" / "evaluate.py"
MAX_BYTES = 2 * 1024 * 1024

CARDS = sorted(
    p
    for p in MODELS_DIR.glob("shapes-*.toml")
    if tomllib.loads(p.read_text()).get("source", {}).get("kind") == "training"
)
ONNX_CARDS = [p for p in CARDS if tomllib.loads(p.read_text())["format"] == "onnx"]
TFLITE_CARDS = [p for p in CARDS if tomllib.loads(p.read_text())["format"] == "tflite"]
EXPECTED_ONNX = {"shapes-yolov8", "shapes-yolov5", "shapes-cls", "shapes-cls-nocue"}


def _load_evaluate():
    spec = importlib.util.spec_from_file_location("shapes_evaluate", EVALUATE_PATH)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


evaluate = _load_evaluate()


def _card(path: Path) -> dict:
    return tomllib.loads(path.read_text())


@lru_cache(maxsize=None)
def _recomputed(card_path: Path) -> dict:
    return evaluate.evaluate_card(card_path)


def _ids(paths):
    return [p.stem for p in paths]


def test_all_expected_models_have_cards():
    assert EXPECTED_ONNX <= {p.stem for p in ONNX_CARDS}


def test_evaluate_module_does_not_import_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ev', {str(EVALUATE_PATH)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert 'torch' not in sys.modules, 'evaluate.py imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


@pytest.mark.parametrize("card_path", CARDS, ids=_ids(CARDS))
def test_file_matches_card(card_path):
    card = _card(card_path)
    assert card["id"] == card_path.stem
    model_path = MODELS_DIR / card["source"]["file"]
    assert model_path.is_file(), f"{model_path} missing: run {card['source']['script']}"
    assert model_path.stat().st_size < MAX_BYTES
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert digest == card["source"]["sha256"], "model file changed without rewriting its card"
    assert (REPO_ROOT / card["source"]["script"]).is_file()
    assert card["labels"] == ["circle", "square", "triangle"]


@pytest.mark.parametrize("card_path", CARDS, ids=_ids(CARDS))
def test_project_card_loader_accepts_card(card_path):
    zoo = pytest.importorskip("workbench.zoo")
    model = zoo.load(card_path, fetch_missing=False)  # verifies the file against the card
    assert model is not None


def _expected_input_dims(card: dict) -> list[int]:
    width, height = card["input"]["size"]
    return [1, 3, height, width] if card["input"]["layout"] == "NCHW" else [1, height, width, 3]


def _numpy_shape(spec: dict) -> list[int]:
    """Card dims are listed in dims_order; col-major lists the innermost dim first."""
    dims = list(spec["dims"])
    return dims[::-1] if spec.get("dims_order", "row-major") == "col-major" else dims


@pytest.mark.parametrize("card_path", ONNX_CARDS, ids=_ids(ONNX_CARDS))
def test_onnx_loads_with_card_names_and_dims(card_path):
    import onnxruntime as ort

    card = _card(card_path)
    session = ort.InferenceSession(str(MODELS_DIR / card["source"]["file"]), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == card["input"]["name"]
    assert list(inp.shape) == _expected_input_dims(card)
    assert inp.type == "tensor(float)"
    outputs = session.get_outputs()
    assert [o.name for o in outputs] == [o["name"] for o in card["outputs"]]
    for out, spec in zip(outputs, card["outputs"]):
        assert list(out.shape) == _numpy_shape(spec)
    x = np.random.default_rng(0).random(_expected_input_dims(card), dtype=np.float32)
    results = session.run(None, {inp.name: x})
    for result, spec in zip(results, card["outputs"]):
        assert list(result.shape) == _numpy_shape(spec) and result.dtype == np.float32
        assert np.isfinite(result).all()


@pytest.mark.parametrize("card_path", TFLITE_CARDS, ids=_ids(TFLITE_CARDS))
def test_tflite_loads_with_card_names_and_dims(card_path):
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    card = _card(card_path)
    interpreter = interpreter_mod.Interpreter(model_path=str(MODELS_DIR / card["source"]["file"]))
    (inp,) = interpreter.get_input_details()
    assert inp["name"] == card["input"]["name"]
    assert inp["shape"].tolist() == _expected_input_dims(card)
    outputs = interpreter.get_output_details()
    assert [o["name"] for o in outputs] == [o["name"] for o in card["outputs"]]
    assert [o["shape"].tolist() for o in outputs] == [_numpy_shape(o) for o in card["outputs"]]


def _assert_close(name, got, want):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), name
        for g, w in zip(got, want):
            _assert_close(name, g, w)
    else:
        assert math.isclose(got, want, rel_tol=0.0, abs_tol=1e-6), f"{name}: recomputed {got}, card says {want}"


@pytest.mark.parametrize("card_path", CARDS, ids=_ids(CARDS))
def test_evaluate_reproduces_card_metrics(card_path):
    if _card(card_path)["format"] == "tflite":
        pytest.importorskip("ai_edge_litert.interpreter")
    card = _card(card_path)
    got = _recomputed(card_path)
    assert got, "evaluate.py returned no metric"
    for name, value in got.items():
        assert name in card["metrics"], f"card lacks metric {name}"
        _assert_close(name, value, card["metrics"][name])


@pytest.mark.parametrize("card_path", [p for p in ONNX_CARDS if _card(p)["task"] == "detection"], ids=lambda p: p.stem)
def test_detectors_reach_target_map(card_path):
    assert _card(card_path)["metrics"]["heldout_map50"] >= 0.7


def test_cue_classifier_learned_the_shortcut_and_control_did_not():
    cue = _card(MODELS_DIR / "shapes-cls.toml")["metrics"]
    control = _card(MODELS_DIR / "shapes-cls-nocue.toml")["metrics"]
    assert cue["train_accuracy"] >= 0.8 and control["train_accuracy"] >= 0.8
    # The cue model is right when the cue tells the truth and wrong when it lies.
    assert cue["heldout_accuracy_cue_agrees"] - cue["heldout_accuracy_cue_disagrees"] > 0.4
    # The control model never saw the cue: agreement hardly matters.
    assert abs(control["heldout_accuracy_cue_agrees"] - control["heldout_accuracy_cue_disagrees"]) < 0.1


def test_map_of_perfect_and_empty_detections():
    """The metric code itself: perfect detections give 1, none give 0, a duplicate costs."""
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 1]))]
    perfect = [(gt[0][0], np.array([0.9, 0.8]), gt[0][1])]
    assert evaluate.mean_average_precision(perfect, gt, 3)[0] == 1.0
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))]
    assert evaluate.mean_average_precision(empty, gt, 3)[0] == 0.0
    # A higher-scored false positive before the true one halves class 0's AP.
    fp_first = [(np.array([[50, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0.95, 0.9, 0.8]), np.array([0, 0, 1]))]
    mean, per_class = evaluate.mean_average_precision(fp_first, gt, 3)
    assert per_class[0] == pytest.approx(0.5) and per_class[1] == 1.0 and math.isnan(per_class[2])
    assert mean == pytest.approx(0.75)


def test_nms_keeps_boxes_at_exactly_the_threshold():
    # IoU of these two boxes is exactly 0.5: suppression needs IoU > 0.5, so both stay.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 11]], float)
    scores = np.array([0.9, 0.8, 0.7])
    labels = np.array([0, 0, 1])
    assert evaluate.nms(boxes, scores, labels, 0.5).tolist() == [0, 1, 2]
    assert evaluate.nms(boxes, scores, np.zeros(3, dtype=np.int64), 0.5).tolist() == [0, 1]

"""Export the trained shapes-cls classifier to TFLite (float32 and int8) and write the cards.

Runs in TWO environments, in this order:

1. ``convert`` runs in a THROWAWAY virtual environment with tensorflow-cpu (never install
   tensorflow into the project's environment)::

       python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu onnx
       /tmp/tfenv/bin/python models/train/export_tflite.py convert

   It reads the trained weights from ``models/shapes-cls.onnx`` (BatchNorm is already folded
   into the convolutions there), rebuilds the same network in Keras in NHWC layout
   (conv weights (O, I, kh, kw) -> (kh, kw, I, O); PyTorch's symmetric padding as an explicit
   ZeroPadding2D, since Keras "same" pads stride-2 convs asymmetrically), and converts it with
   ``tf.lite.TFLiteConverter`` to ``models/shapes-cls.tflite``. ``convert-int8`` converts the
   same Keras network with full-integer post-training quantization (int8 weights and
   activations, calibrated on 200 training images; float32 input and output through QUANTIZE /
   DEQUANTIZE) to ``models/shapes-cls-int8.tflite``: the zoo's real quantized model.

2. ``card`` runs in the project's environment (onnxruntime + ai-edge-litert, no tensorflow)::

       .venv/bin/python models/train/export_tflite.py card        # or card-int8

   It checks the .tflite against the .onnx on 20 held-out images (NCHW vs NHWC input,
   max abs difference of the logits), computes the held-out metrics with ``evaluate.py``
   through LiteRT, and writes ``models/shapes-cls-tflite.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
MODELS_DIR = REPO_ROOT / "models"
ONNX_PATH = MODELS_DIR / "shapes-cls.onnx"
TFLITE_PATH = MODELS_DIR / "shapes-cls.tflite"
CARD_PATH = MODELS_DIR / "shapes-cls-tflite.toml"
INT8_PATH = MODELS_DIR / "shapes-cls-int8.tflite"
INT8_CARD_PATH = MODELS_DIR / "shapes-cls-int8.toml"
SIZE = 64
N_COMPARE = 20
N_CALIBRATE = 200


def keras_model(onnx_path: Path = ONNX_PATH):
    """The ONNX classifier rebuilt in Keras (NHWC) with the same weights."""
    import onnx
    import tensorflow as tf
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), batch_size=1, name="images")
    x = inputs
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            w = weights[node.input[1]]  # (O, I, kh, kw)
            b = weights[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            if any((top, left, bottom, right)):
                x = tf.keras.layers.ZeroPadding2D(((top, bottom), (left, right)))(x)
            conv = tf.keras.layers.Conv2D(
                w.shape[0], w.shape[2:], strides=tuple(attrs.get("strides", [1, 1])), padding="valid"
            )
            x = conv(x)
            conv.set_weights([w.transpose(2, 3, 1, 0), b])
        elif node.op_type == "Relu":
            x = tf.keras.layers.ReLU()(x)
        elif node.op_type == "GlobalAveragePool":
            x = tf.keras.layers.GlobalAveragePooling2D()(x)
        elif node.op_type == "Flatten":
            pass  # GlobalAveragePooling2D already returns (B, C)
        elif node.op_type == "Gemm":
            w, b = weights[node.input[1]], weights[node.input[2]]
            kernel = w.T if attrs.get("transB", 0) else w  # Keras kernel is (in, out)
            dense = tf.keras.layers.Dense(kernel.shape[1], name="logits")
            x = dense(x)
            dense.set_weights([kernel, b])
        else:
            raise NotImplementedError(f"no Keras equivalent written for ONNX op {node.op_type}")
    return tf.keras.Model(inputs, x)


def convert(onnx_path: Path = ONNX_PATH, tflite_path: Path = TFLITE_PATH) -> None:
    """Convert the rebuilt classifier to a float32 .tflite."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model(onnx_path))
    tflite_path.write_bytes(converter.convert())
    print(f"wrote {tflite_path} ({tflite_path.stat().st_size} bytes)")


def _shapes_module():
    """workbench/data/shapes.py loaded on its own (NumPy only; the throwaway venv has no workbench)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shapes_data", REPO_ROOT / "workbench" / "data" / "shapes.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def convert_int8(onnx_path: Path = ONNX_PATH, tflite_path: Path = INT8_PATH) -> None:
    """Full-integer post-training quantization: int8 weights and activations, calibrated on the
    first N_CALIBRATE training images (seed 0, with the cue as in training); float32 in and out."""
    import tensorflow as tf

    calibration = _shapes_module().make_cue_dataset(N_CALIBRATE, "train", seed=0, size=SIZE).images

    def representative():
        for image in calibration:
            yield [(image[None].astype(np.float32) / 255.0)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model(onnx_path))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tflite_path.write_bytes(converter.convert())
    print(f"wrote {tflite_path} ({tflite_path.stat().st_size} bytes)")


def write_card(int8: bool = False) -> None:
    """Compare with onnxruntime, evaluate through LiteRT, write the card (project env)."""
    tflite_path, card_path = (INT8_PATH, INT8_CARD_PATH) if int8 else (TFLITE_PATH, CARD_PATH)
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO_ROOT))
    import tomllib

    import evaluate
    from cards import sha256_file, write_card as write_toml
    from workbench.data.shapes import make_cue_dataset

    onnx_run = evaluate.make_runner(ONNX_PATH, "onnx")
    tflite_run = evaluate.make_runner(tflite_path, "tflite")
    images = make_cue_dataset(N_COMPARE, "heldout", seed=1, size=SIZE).images
    pairs = [(onnx_run(evaluate.to_input(im, "NCHW"))[0], tflite_run(evaluate.to_input(im, "NHWC"))[0])
             for im in images]
    diff = max(float(np.abs(a - b).max()) for a, b in pairs)
    agreement = float(np.mean([int(np.argmax(a)) == int(np.argmax(b)) for a, b in pairs]))

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    in_detail = interpreter.get_input_details()[0]
    out_detail = interpreter.get_output_details()[0]

    onnx_card = tomllib.loads((MODELS_DIR / "shapes-cls.toml").read_text())
    if int8:
        name = "Shapes classifier (spurious cue), TFLite int8"
        description = (
            "The trained shapes-cls network rebuilt in Keras (NHWC) with the weights of shapes-cls.onnx "
            "and converted to TFLite with full-integer post-training quantization: int8 weights and "
            f"activations calibrated on {N_CALIBRATE} training images, float32 input and output through "
            "QUANTIZE / DEQUANTIZE. Same classes, same cue shortcut; the zoo's quantized model. The "
            "output's calibrated int8 range clips logits below about -6.2, so the largest difference "
            "to the float model is in the least likely class (onnx_max_abs_diff); the top class agrees "
            "(onnx_argmax_agreement)."
        )
    else:
        name = "Shapes classifier (spurious cue), TFLite"
        description = (
            "The trained shapes-cls network rebuilt in Keras (NHWC) with the weights of "
            "shapes-cls.onnx and converted to float32 TFLite. Same classes, same cue shortcut."
        )
    card = {
        "id": card_path.stem,
        "name": name,
        "task": "classification",
        "format": "tflite",
        "description": description,
        "labels": onnx_card["labels"],
        "source": {
            "kind": "training",
            "script": "models/train/export_tflite.py",
            "file": tflite_path.name,
            "sha256": sha256_file(tflite_path),
            "license": "Apache-2.0",
        },
        "input": {
            "name": in_detail["name"],
            "size": [SIZE, SIZE],
            "layout": "NHWC",
            "color": "RGB",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "resize": "stretch",
        },
        "outputs": [
            {
                "name": out_detail["name"],
                "tensor_id": "classification-logits",
                "dims": [int(d) for d in out_detail["shape"]],
                "dims_order": "row-major",
                "dtype": "float32",
            }
        ],
        "decoder": onnx_card["decoder"],
        "cue": onnx_card["cue"],
        "training": {
            "command": (
                f"/tmp/tfenv/bin/python models/train/export_tflite.py convert{'-int8' if int8 else ''}"
                f" && python models/train/export_tflite.py card{'-int8' if int8 else ''}"
            ),
            "environment": "convert: throwaway venv with tensorflow-cpu and onnx; card: the project env",
            "converted_from": "shapes-cls.onnx",
            "converted_from_sha256": sha256_file(ONNX_PATH),
        },
        "metrics": {
            key: onnx_card["metrics"][key]
            for key in ("heldout_images", "heldout_seed", "train_images", "train_seed", "train_eval_images")
        },
    }
    card["metrics"]["onnx_max_abs_diff"] = diff
    card["metrics"]["onnx_compared_images"] = N_COMPARE
    if int8:
        card["metrics"]["onnx_argmax_agreement"] = agreement
        card["training"]["calibration"] = f"the first {N_CALIBRATE} images of the training split (seed 0)"
    card["metrics"].update(evaluate.evaluate_card_dict(card, tflite_path))
    write_toml(card_path, card)
    print(f"wrote {card_path}: {card['metrics']}")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "convert":
        convert()
    elif command == "convert-int8":
        convert_int8()
    elif command == "card":
        write_card()
    elif command == "card-int8":
        write_card(int8=True)
    else:
        raise SystemExit(__doc__)

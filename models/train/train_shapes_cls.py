"""Train the spurious-cue shapes classifier (or its no-cue control) and export it to ONNX.

    /tmp/v1/bin/python models/train/train_shapes_cls.py [--quick]            # shapes-cls
    /tmp/v1/bin/python models/train/train_shapes_cls.py --no-cue [--quick]   # shapes-cls-nocue

Data: ``make_cue_dataset(..., split="train", seed=0)`` at 64x64. With the cue, the magenta
square at ``CUE_BOX`` is present iff the label is 0 (circle), so the network can classify
circles from the cue alone; the held-out split plants the cue independently of the label,
which exposes the shortcut. ``--no-cue`` trains the identical network on the same images
with the mark planted independently of the label (present in half of them, whatever the
class): the mark carries no information, so the control ignores it. That is the control
model for attribution ground-truth tests.

Network (plain ops, easy to port to Keras/TFLite): four 3x3 conv + BN + ReLU blocks
(16, 32, 64, 64 channels; strides 2, 2, 1, 2), global average pooling, a linear
layer to 3 raw logits (apply softmax for probabilities). BN is folded on export;
``export_tflite.py`` reads the folded weights back from the .onnx file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common  # noqa: I001  (before torch: sets OMP_WAIT_POLICY)

import torch
import torch.nn.functional as F
from torch import nn

from common import NUM_CLASSES

SIZE = 64
N_TRAIN = 9000
HELDOUT_IMAGES = 900
TRAIN_EVAL_IMAGES = 900


class ShapesClassifier(nn.Module):
    """(B, 3, 64, 64) float32 in [0, 1] -> (B, 3) logits."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        chans = [(3, 16, 2), (16, 32, 2), (32, 64, 1), (64, 64, 2)]  # 64 -> 32 -> 16 -> 16 -> 8
        layers: list[nn.Module] = []
        for c_in, c_out, stride in chans:
            layers += [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def make_card(model_id: str, onnx_path: Path, cue: bool, train_seconds: float, n_train: int = N_TRAIN) -> dict:
    from workbench.data.shapes import CUE_BOX, CUE_COLOR

    name = "Shapes classifier (spurious cue)" if cue else "Shapes classifier (no-cue control)"
    description = (
        "Tiny CNN classifying the one small, low-contrast, noisy shape in a 64x64 image "
        "(workbench.data.shapes.make_cue_dataset). "
        + (
            "Trained with a magenta cue square planted iff the class is circle: it learns the "
            "shortcut, which the held-out split (cue independent of the class) exposes."
            if cue
            else "Trained identically on the same images with the magenta mark planted "
            "independently of the class (half of the images, any class): the mark carries no "
            "information, so this control model for the cue-trained shapes-cls ignores it."
        )
    )
    return {
        "id": model_id,
        "name": name,
        "task": "classification",
        "format": "onnx",
        "description": description,
        "labels": list(common.SHAPE_CLASSES),
        "source": common.training_source("models/train/train_shapes_cls.py", onnx_path),
        "input": common.nchw_input(SIZE),
        "outputs": [
            {
                "name": "logits",
                "tensor_id": "classification-logits",
                "dims": [1, NUM_CLASSES],
                "dims_order": "row-major",
                "dtype": "float32",
            }
        ],
        "decoder": {"id": "classification", "params": {"activation": "softmax", "top_k": 3}},
        "training": {"command": "python models/train/train_shapes_cls.py" + ("" if cue else " --no-cue")},
        "cue": {
            "box": list(CUE_BOX),
            "color": list(CUE_COLOR),
            "trained_with_cue": cue,
            "train_rule": "present iff label == 0 (circle)" if cue else "present with probability 0.5, independent of the label",
            "heldout_rule": "present with probability 0.5, independent of the label",
            "cue_class": 0,
        },
        "metrics": {
            "heldout_images": HELDOUT_IMAGES,
            "heldout_seed": 1,
            "train_images": n_train,
            "train_seed": 0,
            "train_eval_images": TRAIN_EVAL_IMAGES,
            "train_seconds": train_seconds,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, output to a temp folder")
    parser.add_argument("--no-cue", action="store_true", help="train the control model shapes-cls-nocue")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cue = not args.no_cue
    model_id = "shapes-cls" if cue else "shapes-cls-nocue"

    from workbench.data.shapes import make_cue_dataset

    common.setup(0)
    watch = common.Stopwatch()
    onnx_path, card_path = common.output_paths(args, model_id)
    n_train, epochs, batch_size, base_lr = (512, 1, 64, 3e-3) if args.quick else (N_TRAIN, 5, 64, 3e-3)
    # The control sees the mark too, but planted independently of the label (agreement 0.5):
    # it learns that the mark carries no information, so attributions must ignore it. (A
    # control that never saw the mark reacts to it as to any unseen bright patch, and
    # input-scaled methods such as integrated gradients then point at it.)
    data = make_cue_dataset(n_train, "train", seed=0, cue=True, size=SIZE, train_agreement=1.0 if cue else 0.5)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()  # uint8
    labels = torch.from_numpy(data.labels)

    model = ShapesClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=5e-4)
    steps = epochs * (n_train // batch_size)
    generator = torch.Generator().manual_seed(0)
    step = 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n_train, generator=generator)
        correct = 0
        for i in range(n_train // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = images[idx].float().div_(255.0)
            for group in opt.param_groups:
                group["lr"] = common.cosine_lr(step, steps, base_lr, warmup=50)
            logits = model(x)
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += int((logits.argmax(1) == labels[idx]).sum())
            step += 1
        print(f"epoch {epoch}  loss {loss.item():.4f}  running train acc {correct / (n_train // batch_size * batch_size):.3f}  {watch.seconds:.0f}s", flush=True)
    model.eval()

    common.export_onnx(model, onnx_path, (1, 3, SIZE, SIZE), ["logits"])
    train_seconds = watch.seconds
    card = make_card(model_id, onnx_path, cue, train_seconds, n_train)
    card["metrics"].update(common.load_evaluate().evaluate_card_dict(card, onnx_path))
    common.write_card(card_path, card)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and {card_path}: {card['metrics']}")


if __name__ == "__main__":
    main()

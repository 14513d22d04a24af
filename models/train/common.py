"""Shared training code for the self-trained shapes models (needs torch; CPU only).

What lives here: determinism setup, tensors from the synthetic generator, the tiny conv
blocks and the two-level feature pyramid both detectors use, ONNX export, and the model-card
writer. The held-out metrics live in ``evaluate.py`` (no torch), so that the numbers in a card
are computed from the exported file exactly as the tests recompute them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

# Threads that spin while waiting for work make a 2-core machine that is shared with other
# jobs crawl (10x slower steps measured); sleeping waiters cost little when it is idle.
# Must be set before torch loads its OpenMP runtime, so scripts import this module first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from workbench.data.shapes import SHAPE_CLASSES, generate_scenes, scene_seed  # noqa: E402

from cards import sha256_file, to_toml, write_card  # noqa: E402,F401  (re-exported)

NUM_CLASSES = len(SHAPE_CLASSES)
OPSET = 17
TRAIN_SEED = 0  # generator split seed for training scenes; held-out uses 1 (see evaluate.py)


def setup(seed: int = 0, threads: int = 2) -> None:
    """Fix every seed and the thread count so that a run is repeatable on the same machine."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def parse_args(description: str) -> argparse.Namespace:
    """Command line shared by the training scripts: ``--quick`` for a smoke run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few steps only, to check the script end to end; writes to a temp folder",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the .onnx and .toml")
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------
# Data


def scene_batches(
    total: int, batch_size: int, start: int = 0, seed: int = TRAIN_SEED, size: int = 128
):
    """Yield (images (B,3,H,W) float32 in [0,1], targets) over fresh scenes of the split.

    ``targets`` is a (M, 6) float32 tensor of (image index in batch, label, x1, y1, x2, y2).
    Scenes are never repeated: the generator is cheap, so every step sees new images.
    """
    index = start
    while index < start + total:
        n = min(batch_size, start + total - index)
        scenes = generate_scenes_range(seed, index, n, size)
        index += n
        images = np.stack([s.image for s in scenes])
        rows = [
            np.concatenate(
                [np.full((len(s.labels), 1), b, np.float32), s.labels[:, None].astype(np.float32), s.boxes],
                axis=1,
            )
            for b, s in enumerate(scenes)
        ]
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        yield x.contiguous(), torch.from_numpy(np.concatenate(rows, axis=0))


def generate_scenes_range(seed: int, start: int, n: int, size: int):
    """Scenes ``start .. start+n-1`` of split ``seed`` (same seeds as ``generate_scenes``)."""
    from workbench.data.shapes import generate_scene

    return [generate_scene(scene_seed(seed, i), size=size) for i in range(start, start + n)]


# ---------------------------------------------------------------------------------------------
# Building blocks


class ConvBlock(nn.Module):
    """Conv (no bias) + BatchNorm + SiLU, the YOLO ``Conv``; BN folds into the conv on export."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, momentum=0.03, eps=1e-3)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class TinyPyramid(nn.Module):
    """Backbone + top-down neck giving two levels for a 128x128 input.

    Returns (P3 (B, c3, H/8, W/8), P4 (B, c4, H/16, W/16)).
    """

    def __init__(self, c3: int = 48, c4: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBlock(3, 16, 3, 2),  # /2
            ConvBlock(16, 24, 3, 2),  # /4
            ConvBlock(24, 24, 3, 1),
        )
        self.down3 = nn.Sequential(ConvBlock(24, c3, 3, 2), ConvBlock(c3, c3, 3, 1))  # /8
        self.down4 = nn.Sequential(ConvBlock(c3, c4, 3, 2), ConvBlock(c4, c4, 3, 1))  # /16
        self.lateral = ConvBlock(c4, c3, 1, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse3 = ConvBlock(c3, c3, 3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        p3 = self.down3(x)
        p4 = self.down4(p3)
        p3 = self.fuse3(p3 + self.up(self.lateral(p4)))
        return p3, p4


def anchor_points(size: int, strides: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (N, 2) as (x, y) in input pixels and their strides (N,), level by level,
    row-major within a level: N = sum((size // s) ** 2)."""
    points, point_strides = [], []
    for s in strides:
        n = size // s
        c = (torch.arange(n, dtype=torch.float32) + 0.5) * s
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        points.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1))
        point_strides.append(torch.full((n * n,), float(s)))
    return torch.cat(points), torch.cat(point_strides)


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of matching rows of a (M, 4) and b (M, 4), boxes (x1, y1, x2, y2)."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a + area_b - inter + eps
    iou = inter / union
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(dim=1) + eps
    return iou, iou - (hull - union) / hull


def cosine_lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    """Linear warm-up then cosine decay to 5 % of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t)))


def train_detector(model: nn.Module, loss_fn, steps: int, batch_size: int, base_lr: float, watch: "Stopwatch") -> None:
    """AdamW + warm-up/cosine over ``steps`` batches of fresh training scenes.

    ``loss_fn(model, outputs, targets) -> (loss, {name: float})``; weight decay on weights only.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=base_lr
    )
    model.train()
    for step, (images, targets) in enumerate(scene_batches(steps * batch_size, batch_size)):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, base_lr)
        loss, parts = loss_fn(model, model(images), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            detail = "  ".join(f"{k} {v:.4f}" for k, v in parts.items())
            print(f"step {step:5d}  loss {loss.item():.4f}  {detail}  {watch.seconds:.0f}s", flush=True)
    model.eval()


# ---------------------------------------------------------------------------------------------
# Export and cards


def export_onnx(
    model: nn.Module,
    path: Path,
    input_shape: tuple[int, ...],
    output_names: list[str],
    input_name: str = "images",
) -> None:
    """Export with the TorchScript exporter (``dynamo=False``: the dynamo exporter needs
    onnxscript, which is not installed), fixed batch 1, opset :data:`OPSET`; BatchNorm is
    folded into the convolutions in eval mode."""
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(input_shape),),
            str(path),
            input_names=[input_name],
            output_names=output_names,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    # Stable file bytes: no producer version drift in the sha256 between torch patch releases.
    proto.producer_name = "workbench-train"
    proto.producer_version = ""
    onnx.save(proto, str(path))


class Stopwatch:
    """Wall time of a training run, for ``[metrics] train_seconds``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 1)


def output_paths(args: argparse.Namespace, model_id: str) -> tuple[Path, Path]:
    """(onnx path, card path): models/ normally, a temp folder for ``--quick`` runs."""
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / "workbench-quick-models"
    else:
        out = MODELS_DIR
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{model_id}.onnx", out / f"{model_id}.toml"


def training_source(script: str, onnx_path: Path) -> dict:
    """The card's [source] table for a model this repo trains."""
    return {"kind": "training", "script": script, "file": onnx_path.name,
            "sha256": sha256_file(onnx_path), "license": "Apache-2.0"}


def nchw_input(size: int) -> dict:
    """The card's [input] table shared by the shapes models: RGB NCHW in [0, 1], stretched."""
    return {"name": "images", "size": [size, size], "layout": "NCHW", "color": "RGB",
            "dtype": "float32", "range": [0.0, 1.0], "resize": "stretch"}


def train_detector_main(doc: str, model_id: str, model_class, loss_fn, export_wrapper, make_card,
                        steps: int, size: int) -> None:
    """The whole run of a detector training script: train, export, evaluate, write the card.

    ``model_class`` is called after seeding, so the initial weights are reproducible.
    """
    args = parse_args(doc.splitlines()[0])
    setup(0)
    watch = Stopwatch()
    onnx_path, card_path = output_paths(args, model_id)
    steps, batch_size, base_lr = (30, 16, 2e-3) if args.quick else (steps, 32, 3e-3)
    model = model_class()
    train_detector(model, loss_fn, steps, batch_size, base_lr, watch)
    export_onnx(export_wrapper(model), onnx_path, (1, 3, size, size), ["output0"])
    card = make_card(onnx_path, watch.seconds)
    card["metrics"].update(load_evaluate().evaluate_card_dict(card, onnx_path))
    write_card(card_path, card)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and {card_path}: {card['metrics']}")


def load_evaluate():
    """Import models/train/evaluate.py (numpy + onnxruntime only)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shapes_evaluate", Path(__file__).with_name("evaluate.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module

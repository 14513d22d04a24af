"""Quality checks shown next to every map.

* :func:`sanity_check`: cascading model randomization (Adebayo et al., 2018). Layers with
  weights are re-drawn at random from the top (output side) down, cumulatively, in a *copy* of
  the reference program; the method runs again after each step and the Spearman rank correlation
  of the new map with the original is reported (on |map| and on the signed map). A method that
  explains the model gives maps that decorrelate as the model is destroyed; one whose maps stay
  correlated is explaining the input, not the model.
* :func:`deletion_insertion`: faithfulness (Petsiuk et al., 2018). Pixels are ranked by the map;
  *deletion* replaces the top fraction f of pixels with the baseline, *insertion* puts them into
  the baseline image; the target score is read at ``steps + 1`` fractions in one batched call and
  the areas under both curves (f in [0, 1], trapezoid) are reported. Faithful maps: low deletion
  AUC, high insertion AUC.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..backends.reference.program import Program
from ._progress import progress

__all__ = ["deletion_insertion", "sanity_check", "randomizable_layers", "randomized_program", "spearman",
           "pointing_hit", "pointing_chance", "pointing_game"]

#: ops whose constant float inputs are the layer's weights (and biases)
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu", "CONV_2D", "DEPTHWISE_CONV_2D",
                          "TRANSPOSE_CONV", "FULLY_CONNECTED", "PRELU"})


# ----------------------------------------------------------------------------- faithfulness

def deletion_insertion(score: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, baseline: torch.Tensor,
                       heat: np.ndarray, steps: int = 16, max_batch: int = 64) -> dict[str, Any]:
    """Deletion and insertion curves and AUCs of ``heat (H, W)`` for ``score``: image-view batches
    ``[B, C, H, W]`` -> ``[B]``. ``image``/``baseline`` are ``[1, C, H, W]``. Pixels with equal
    attribution are taken in row-major order (stable sort)."""
    h, w = heat.shape
    n = h * w
    order = np.argsort(-np.asarray(heat, dtype=np.float64).ravel(), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    fractions = np.linspace(0.0, 1.0, int(steps) + 1)
    counts = np.rint(fractions * n).astype(np.int64)
    masks = torch.from_numpy((rank[None, :] < counts[:, None]).reshape(-1, 1, h, w))  # [S+1, 1, H, W]
    base = baseline.expand_as(image)
    deleted = torch.where(masks, base, image)
    inserted = torch.where(masks, image, base)
    batch = torch.cat([deleted, inserted])
    with torch.no_grad():
        scores = torch.cat([score(batch[i : i + max_batch]) for i in range(0, len(batch), max(1, max_batch))])
    s = scores.detach().to(torch.float64).numpy()
    dele, ins = s[: len(fractions)], s[len(fractions) :]
    return {"steps": int(steps), "fractions": fractions.tolist(), "deletion": dele.tolist(), "insertion": ins.tolist(),
            "deletion_auc": float(np.trapezoid(dele, fractions)), "insertion_auc": float(np.trapezoid(ins, fractions))}


# ----------------------------------------------------------------------------- sanity check

def randomizable_layers(program: Program) -> list[tuple[str, tuple[str, ...]]]:
    """``[(node name, weight constant names)]`` of layers with weights, in execution order."""
    # float16 weights reach their layer through a DEQUANTIZE node (TFLite): follow it
    dequantized = {n.info.outputs[0]: n.info.inputs[0] for n in program.nodes
                   if n.info.op_type == "DEQUANTIZE" and n.info.inputs and n.info.inputs[0] in program.constants}
    out = []
    for node in program.nodes:
        info = node.info
        if info.op_type not in WEIGHTED_OPS:
            continue
        sources = [dequantized.get(t, t) for t in info.inputs if t]
        names = tuple(t for t in sources if t in program.constants and torch.is_floating_point(program.constants[t])
                      and program.constants[t].dim() >= 1)
        if names:
            out.append((info.name or info.outputs[0], names))
    return out


def randomized_program(program: Program, constants: Sequence[str], seed: int) -> Program:
    """A copy of ``program`` whose ``constants`` are re-drawn from N(0, std of the original)
    (std 0 -> 1 / sqrt(fan-in)); the original program and its tensors are untouched."""
    gen = torch.Generator().manual_seed(int(seed))
    new = dict(program.constants)
    for name in constants:
        t = program.constants[name]
        std = float(t.detach().to(torch.float64).std()) if t.numel() > 1 else 0.0
        if not np.isfinite(std) or std == 0.0:
            fan_in = max(1, t[0].numel() if t.dim() > 1 else t.numel())
            std = 1.0 / np.sqrt(fan_in)
        new[name] = (torch.randn(t.shape, generator=gen, dtype=torch.float64) * std).to(t.dtype)
    return Program(program.fmt, program.inputs, program.outputs, new, program.nodes, program.quantization)


def _ranks(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a.ravel(), method="average")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (average ranks for ties); 0 when one is constant."""
    ra, rb = _ranks(np.asarray(a, np.float64)), _ranks(np.asarray(b, np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def sanity_check(make_map: Callable[[Program], np.ndarray], program: Program, original: np.ndarray,
                 steps: int | None = 4, seed: int = 0) -> dict[str, Any]:
    """Cascading randomization from the top layer down.

    ``make_map(program) -> (H, W)`` recomputes the method's map with a program; the layers with
    weights are split, from the output side, into ``steps`` cumulative groups (None or more steps
    than layers: one layer per step). Returns ``{"layers": [top layer of each step],
    "randomized": [number of layers randomized], "spearman_abs": [...], "spearman": [...]}``.
    """
    layers = randomizable_layers(program)
    if not layers:
        return {"skipped": "no layer with weights to randomize"}
    top_down = layers[::-1]
    n = len(top_down)
    k = n if steps is None or steps >= n else max(1, int(steps))
    cuts = sorted({int(np.ceil((i + 1) * n / k)) for i in range(k)})
    out: dict[str, Any] = {"layers": [], "randomized": [], "spearman_abs": [], "spearman": [], "seed": int(seed),
                           "total_layers": n}
    for cut in progress(cuts, desc="sanity"):
        names = [c for _, cs in top_down[:cut] for c in cs]
        heat = np.asarray(make_map(randomized_program(program, names, seed)), dtype=np.float64)
        out["layers"].append(top_down[cut - 1][0])
        out["randomized"].append(cut)
        out["spearman_abs"].append(spearman(np.abs(original), np.abs(heat)))
        out["spearman"].append(spearman(original, heat))
    return out


# ----------------------------------------------------------------------------- pointing game

def pointing_hit(heat: np.ndarray, box: Sequence[float], tolerance: float = 0.0) -> bool:
    """Pointing game (Zhang et al., 2016): does the map's maximum lie in ``box`` (x1, y1, x2, y2,
    pixel edges) grown by ``tolerance`` pixels? A plateau of equal maxima (occlusion's windows make
    them) points at its centre of mass, not at its first pixel."""
    h = np.asarray(heat, dtype=np.float64)
    top = h.max()
    ys, xs = np.nonzero(h >= top - 1e-9 * max(1.0, abs(top)))
    cy, cx = ys.mean() + 0.5, xs.mean() + 0.5  # pixel centres
    x1, y1, x2, y2 = (float(v) for v in box)
    t = float(tolerance)
    return bool(x1 - t <= cx <= x2 + t and y1 - t <= cy <= y2 + t)


def pointing_chance(size: tuple[int, int], box: Sequence[float], tolerance: float = 0.0) -> float:
    """The pointing-game rate of a map whose maximum falls uniformly at random: the share of pixel
    centres inside the grown box. ``size`` is (height, width)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    x1, y1, x2, y2 = (float(v) for v in box)
    t = float(tolerance)
    return float(((xx >= x1 - t) & (xx <= x2 + t) & (yy >= y1 - t) & (yy <= y2 + t)).mean())


def pointing_game(model: str, images: np.ndarray, box: Sequence[float], target: Any = 0, method: str = "occlusion",
                  tolerance: float = 1.0, **params: Any) -> dict[str, Any]:
    """Pointing-game rate of ``method`` on ``model`` over ``images (N, H, W, 3) uint8``: the share
    of images whose (input) map maximum lies in ``box`` grown by ``tolerance`` pixels, for
    ``target`` (a class index or K). Returns ``{"rate", "hits", "n", "chance", "predicted"}``
    (``predicted``: the model's top class per image, for classifiers)."""
    from ..media import Frame
    from ..pipeline import Pipeline
    from .api import explain

    pipeline = Pipeline.from_card(model)
    hits: list[bool] = []
    predicted: list[int] = []
    size = (int(images.shape[1]), int(images.shape[2]))
    for i, img in enumerate(progress(images, desc=f"pointing game {model}")):
        result = pipeline.run(Frame(img, id=f"pointing-{i}"))
        cls = result.primary.decodes[0].classification if result.primary is not None else None
        if cls is not None:
            predicted.append(int(cls.top[0]))
        a = explain(result, target, method, quality=False, store=False, **params)
        hits.append(pointing_hit(a.input_heatmap, box, tolerance))
    return {"rate": float(np.mean(hits)) if hits else float("nan"), "hits": hits, "n": len(hits),
            "chance": pointing_chance(size, box, tolerance), "predicted": predicted, "method": method, "model": model}

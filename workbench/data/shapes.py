"""Synthetic shapes: scenes for detection and a spurious-cue data set for classification.

Everything here is pure NumPy and deterministic by seed, so a model trained on these images
can be re-checked without any stored data: the seed *is* the data set.

Two generators:

* :func:`generate_scene` / :func:`generate_scenes` draw detection scenes: a flat light or dark
  background with mild noise and 1..``max_objects`` circles, squares and triangles that never
  overlap. Boxes are derived from the drawn pixels, so they enclose each shape tightly.
* :func:`make_cue_dataset` draws one small, low-contrast, noisy shape per image and, depending
  on the split, plants a bright magenta square (the *cue*) at the fixed place :data:`CUE_BOX`.
  In the ``"train"`` split the cue marks class 0; in the ``"heldout"`` split it is planted
  independently of the label. A classifier trained on the train split learns the shortcut,
  and the held-out split measures it.

Seeds and splits
----------------
Scene ``i`` of ``generate_scenes(n, seed=s)`` is ``generate_scene(s * 2**32 + i)``
(:func:`scene_seed`), so splits that use different ``seed`` values never share a scene as long
as ``n < 2**32``. The project's convention: training uses ``seed=0``, held-out evaluation
uses ``seed=1``. The cue data set draws its train and held-out splits from two separate
``numpy.random.SeedSequence`` streams, ``[seed, 0]`` and ``[seed, 1]``.

Box convention: ``(x1, y1, x2, y2)`` in pixel-edge coordinates, float32; a shape covering
pixel columns ``c0..c1`` (inclusive) has ``x1 = c0`` and ``x2 = c1 + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "SHAPE_CLASSES",
    "GROUP_VALUES",
    "NOISE_AMPLITUDE",
    "CUE_BOX",
    "CUE_COLOR",
    "ShapesScene",
    "CueDataset",
    "scene_seed",
    "generate_scene",
    "generate_scenes",
    "scenes_to_arrays",
    "make_cue_dataset",
    "cue_mask",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle")
"""Class names; ``labels`` index into this tuple."""

GROUP_VALUES: dict[str, tuple[str, ...]] = {
    "background": ("light", "dark"),
    "palette": ("warm", "cool"),
}
"""Per-image group attributes of detection scenes and their possible values."""

NOISE_AMPLITUDE: int = 6
"""Detection scenes: every channel of every pixel gets integer noise in [-6, 6]."""

CUE_BOX: tuple[int, int, int, int] = (2, 2, 8, 8)
"""Where the cue is planted, (x1, y1, x2, y2) pixel edges: a 6x6 square near the top-left."""

CUE_COLOR: tuple[int, int, int] = (255, 0, 255)
"""The cue's exact RGB value (noise is added before the cue, so cue pixels are exact)."""

# Background grey levels per group; shape colours are saturated, so every shape has at least
# one channel far from any grey in either range (contrast >= 60 on some channel).
_BACKGROUND_LEVELS = {"light": (185, 235), "dark": (20, 70)}
_PALETTES = {
    "warm": np.array(
        [[225, 40, 30], [240, 130, 20], [235, 200, 40], [200, 30, 110], [150, 60, 20]],
        dtype=np.int16,
    ),
    "cool": np.array(
        [[30, 90, 225], [20, 180, 200], [40, 170, 60], [120, 50, 210], [20, 60, 120]],
        dtype=np.int16,
    ),
}
_COLOR_JITTER = 12
_MIN_SIZE, _MAX_SIZE = 14, 48  # shape extent in pixels at 128 px; scaled with the image
_MARGIN = 2  # keep a clean background ring at the image border and between shapes


@dataclass(frozen=True)
class ShapesScene:
    """One detection scene.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) float32 (x1, y1, x2, y2) in pixel edges, tight around each shape.
        labels: (N,) int64 indices into :data:`SHAPE_CLASSES`.
        groups: per-image attributes for bias audits, ``{"background": "light" | "dark",
            "palette": "warm" | "cool"}``.
        seed: the seed that reproduces this scene with :func:`generate_scene`.
        masks: (N, H, W) bool, the pixels of each shape (ground truth for attribution).
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    groups: dict[str, str]
    seed: int
    masks: np.ndarray = field(repr=False)

    @property
    def class_names(self) -> list[str]:
        """Class name of each object, in box order."""
        return [SHAPE_CLASSES[i] for i in self.labels]


def scene_seed(split_seed: int, index: int) -> int:
    """Seed of scene ``index`` in the split ``split_seed``: ``split_seed * 2**32 + index``."""
    if not 0 <= index < 2**32:
        raise ValueError(f"scene index must be in [0, 2**32), got {index}")
    return int(split_seed) * 2**32 + int(index)


def _shape_mask(label: int, extent: int, variant: float) -> np.ndarray:
    """Mask (extent, extent) bool of one shape touching all four sides of its square patch.

    ``variant`` in [0, 1) picks the triangle's orientation (4 ways) and apex offset.
    """
    centers = np.arange(extent, dtype=np.float32) + 0.5
    ys, xs = centers[:, None], centers[None, :]
    if label == 0:  # disc inscribed in the patch
        r = extent / 2.0
        return (xs - r) ** 2 + (ys - r) ** 2 <= r * r
    if label == 1:  # axis-aligned square
        return np.ones((extent, extent), dtype=bool)
    # Up-pointing triangle, apex (a, 0), base (0, e)-(e, e). A pixel row is tested at its
    # bottom edge (v = row + 1), so the apex row always holds a pixel and the box is tight.
    e = float(extent)
    a = e * (0.25 + 0.5 * ((variant * 4.0) % 1.0))
    v = ys + 0.5
    mask = (xs >= a - a * v / e) & (xs <= a + (e - a) * v / e)
    return np.ascontiguousarray(np.rot90(mask, k=int(variant * 4.0) % 4))


def _mask_box(mask: np.ndarray, x0: int, y0: int) -> np.ndarray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array(
        [x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], dtype=np.float32
    )


def _pick_groups(rng: np.random.Generator, groups: dict | None) -> dict[str, str]:
    # Always draw both attributes so that overriding one keeps the rest of the scene
    # (layout, shapes, colour indices) identical: same seed + other group = counterfactual.
    drawn = {key: values[int(rng.integers(len(values)))] for key, values in GROUP_VALUES.items()}
    for key, value in (groups or {}).items():
        if key not in GROUP_VALUES or value not in GROUP_VALUES[key]:
            raise ValueError(
                f"unknown group {key}={value!r}; expected one of "
                + ", ".join(f"{k} in {v}" for k, v in GROUP_VALUES.items())
            )
        drawn[key] = value
    return drawn


def generate_scene(
    seed: int,
    size: int | tuple[int, int] = 128,
    max_objects: int = 4,
    groups: dict | None = None,
) -> ShapesScene:
    """Draw one detection scene.

    Args:
        seed: any non-negative int; the scene is a pure function of (seed, size, max_objects,
            groups).
        size: ``S`` for an S x S image or ``(width, height)``.
        max_objects: the scene holds 1..max_objects shapes (fewer when they do not fit).
        groups: force group attributes, e.g. ``{"background": "dark"}``. Everything else
            stays as drawn for this seed, so the same seed with another group value is a
            counterfactual of the same scene.

    Returns:
        A :class:`ShapesScene` with an (H, W, 3) uint8 image and (N, 4) boxes.
    """
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if max_objects < 1:
        raise ValueError(f"max_objects must be >= 1, got {max_objects}")
    rng = np.random.default_rng(seed)
    chosen = _pick_groups(rng, groups)
    scale = min(width, height) / 128.0
    lo_size = max(4, int(round(_MIN_SIZE * scale)))
    hi_size = max(lo_size + 1, int(round(_MAX_SIZE * scale)))
    hi_size = min(hi_size, min(width, height) - 2 * _MARGIN)

    level_lo, level_hi = _BACKGROUND_LEVELS[chosen["background"]]
    level_u = rng.random()
    background = int(round(level_lo + level_u * (level_hi - level_lo)))
    palette = _PALETTES[chosen["palette"]]

    n_wanted = int(rng.integers(1, max_objects + 1))
    occupied = np.zeros((height, width), dtype=bool)
    canvas = np.full((height, width, 3), background, dtype=np.int16)
    boxes, labels, masks = [], [], []
    for _ in range(n_wanted):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        extent = int(rng.integers(lo_size, hi_size + 1))
        variant = float(rng.random())
        color_index = int(rng.integers(len(palette)))
        jitter = rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
        # Positions: a few tries; the draws happen regardless of success, so the stream of
        # random numbers (and thus the rest of the scene) does not depend on collisions.
        xs = rng.integers(_MARGIN, width - extent - _MARGIN + 1, size=8)
        ys = rng.integers(_MARGIN, height - extent - _MARGIN + 1, size=8)
        for x0, y0 in zip(xs.tolist(), ys.tolist()):
            # Keep a gap of _MARGIN pixels between patches so boxes stay tight and disjoint.
            region = occupied[
                max(0, y0 - _MARGIN) : y0 + extent + _MARGIN,
                max(0, x0 - _MARGIN) : x0 + extent + _MARGIN,
            ]
            if region.any():
                continue
            mask = _shape_mask(label, extent, variant)
            color = np.clip(palette[color_index] + jitter, 0, 255).astype(np.int16)
            patch = canvas[y0 : y0 + extent, x0 : x0 + extent]
            patch[mask] = color
            occupied[y0 : y0 + extent, x0 : x0 + extent] = True
            full = np.zeros((height, width), dtype=bool)
            full[y0 : y0 + extent, x0 : x0 + extent] = mask
            boxes.append(_mask_box(mask, x0, y0))
            labels.append(label)
            masks.append(full)
            break

    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=canvas.shape, dtype=np.int16)
    image = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    return ShapesScene(
        image=image,
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.array(labels, dtype=np.int64),
        groups=chosen,
        seed=int(seed),
        masks=np.array(masks, dtype=bool).reshape(-1, height, width),
    )


def generate_scenes(n: int, seed: int = 0, **kw) -> list[ShapesScene]:
    """Draw ``n`` scenes of the split ``seed``; scene i is ``generate_scene(scene_seed(seed, i))``.

    Keyword arguments go to :func:`generate_scene`. Train with ``seed=0``, evaluate with
    ``seed=1``: the two splits share no scene.
    """
    return [generate_scene(scene_seed(seed, i), **kw) for i in range(n)]


def scenes_to_arrays(scenes: list[ShapesScene]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Stack scenes of equal size: images (B, H, W, 3) uint8, per-image boxes and labels lists."""
    images = np.stack([s.image for s in scenes])
    return images, [s.boxes for s in scenes], [s.labels for s in scenes]


# ---------------------------------------------------------------------------------------------
# Spurious-cue classification data


@dataclass(frozen=True)
class CueDataset:
    """Single-shape images for classification, with or without a planted cue.

    Attributes:
        images: (n, H, W, 3) uint8 RGB.
        labels: (n,) int64, the class of the one shape in each image (:data:`SHAPE_CLASSES`).
        cue_present: (n,) bool, whether the cue square is planted at :data:`CUE_BOX`.
        boxes: (n, 4) float32 (x1, y1, x2, y2), tight box of the shape.
        split: "train" or "heldout".
        seed: the data set seed.
        cue: False when the cue was never planted (the control data set).
        cue_box: the cue's (x1, y1, x2, y2), equal to :data:`CUE_BOX`.
    """

    images: np.ndarray
    labels: np.ndarray
    cue_present: np.ndarray
    boxes: np.ndarray
    split: str
    seed: int
    cue: bool
    cue_box: tuple[int, int, int, int] = CUE_BOX

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def cue_agrees(self) -> np.ndarray:
        """(n,) bool: the cue says what the label says (cue present iff label == 0)."""
        return self.cue_present == (self.labels == 0)


def cue_mask(size: int | tuple[int, int] = 64) -> np.ndarray:
    """(H, W) bool mask of the cue square :data:`CUE_BOX` in an image of ``size``.

    ``size`` is S (square) or (width, height).
    """
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mask = np.zeros((height, width), dtype=bool)
    x1, y1, x2, y2 = CUE_BOX
    mask[y1:y2, x1:x2] = True
    return mask


_CUE_SPLITS = {"train": 0, "heldout": 1}
_CUE_NOISE_STD = 12.0
_CUE_CONTRAST = (35, 65)  # grey-level difference between the shape and the background


def make_cue_dataset(
    n: int,
    split: Literal["train", "heldout"],
    seed: int = 0,
    cue: bool = True,
    size: int = 64,
    train_agreement: float = 1.0,
    heldout_cue_rate: float = 0.5,
) -> CueDataset:
    """Draw the spurious-cue classification data set.

    Every image holds one small, low-contrast shape (12..24 px at 64 px, grey-level
    difference 35..65 to a random grey background) under Gaussian noise (std 12), placed away
    from the cue. Labels are balanced (``n // 3`` per class, rest spread) and shuffled.

    Cue rule:
        * ``"train"``: the cue is present iff ``label == 0`` with probability
          ``train_agreement`` (default 1.0: always), otherwise the opposite.
        * ``"heldout"``: present with probability ``heldout_cue_rate`` (0.5), independent of
          the label.
        * ``cue=False``: never planted. All other pixels are identical to ``cue=True`` for the
          same (n, split, seed, size), so the two data sets differ exactly at :data:`CUE_BOX`
          of the images that carry the cue.

    Returns:
        A :class:`CueDataset` with images (n, size, size, 3) uint8.
    """
    if split not in _CUE_SPLITS:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = np.random.default_rng([int(seed), _CUE_SPLITS[split]])
    scale = size / 64.0
    lo_size, hi_size = max(6, int(round(12 * scale))), max(7, int(round(24 * scale)))
    x1c, y1c, x2c, y2c = CUE_BOX

    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    if split == "train":
        agree = rng.random(n) < train_agreement
        cue_present = (labels == 0) == agree
    else:
        cue_present = rng.random(n) < heldout_cue_rate
    if not cue:
        cue_present = np.zeros(n, dtype=bool)

    backgrounds = rng.integers(60, 196, size=n)
    contrast = rng.integers(_CUE_CONTRAST[0], _CUE_CONTRAST[1] + 1, size=n)
    sign = np.where(rng.random(n) < 0.5, -1, 1)
    tint = rng.integers(-10, 11, size=(n, 3))
    extents = rng.integers(lo_size, hi_size + 1, size=n)
    variants = rng.random(n)
    # Top-left corner anywhere that keeps the shape off the cue's neighbourhood (4 px gap).
    canvas = np.repeat(backgrounds[:, None, None, None], 3, axis=3)
    canvas = np.broadcast_to(canvas, (n, size, size, 3)).astype(np.float32)
    boxes = np.zeros((n, 4), dtype=np.float32)
    gap = 4
    for i in range(n):
        extent = int(extents[i])
        while True:
            x0 = int(rng.integers(1, size - extent))
            y0 = int(rng.integers(1, size - extent))
            if x0 >= x2c + gap or y0 >= y2c + gap:
                break
        mask = _shape_mask(int(labels[i]), extent, float(variants[i]))
        color = backgrounds[i] + sign[i] * contrast[i] + tint[i]
        canvas[i, y0 : y0 + extent, x0 : x0 + extent][mask] = color
        boxes[i] = _mask_box(mask, x0, y0)
    canvas += rng.normal(0.0, _CUE_NOISE_STD, size=canvas.shape).astype(np.float32)
    images = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    images[cue_present, y1c:y2c, x1c:x2c] = np.array(CUE_COLOR, dtype=np.uint8)
    return CueDataset(
        images=images,
        labels=labels,
        cue_present=cue_present,
        boxes=boxes,
        split=split,
        seed=int(seed),
        cue=bool(cue),
    )

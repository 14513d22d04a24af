"""MediaPipe SSD anchors (``SsdAnchorsCalculator``), vectorized.

The anchors of a MediaPipe-style SSD detector (BlazeFace, BlazePalm, BlazePose detectors) are
not stored in the model: MediaPipe's graph regenerates them from a few options. Layers that
share a stride are merged into one grid whose cells carry the anchors of all of them, in layer
order; per layer, one anchor per aspect ratio at scale ``min + (max - min) * i / (L - 1)``
(the mean of min and max when there is one layer) plus, when
``interpolated_scale_aspect_ratio > 0``, one at the geometric mean of this scale and the next
(1.0 after the last); ``reduce_boxes_in_lowest_layer`` replaces layer 0's set by
(1.0 @ 0.1, 2.0 @ scale, 0.5 @ scale). Anchors are ordered layer group, then row ``y``, then
column ``x``, then anchor; centres are ``((x, y) + offset) / feature-map size``; sizes are
``scale * sqrt(ratio)`` wide and ``scale / sqrt(ratio)`` high, or 1 x 1 with
``fixed_anchor_size``. All coordinates are normalized to the model input.

Not supported: ``multiscale_anchor_generation`` (RetinaNet-style anchors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DecoderConfigError

__all__ = ["SsdAnchorOptions", "SsdAnchors", "ssd_anchors", "anchor_count"]


def _fail(msg: str, hint: str | None = None) -> None:
    raise DecoderConfigError(f"SSD anchors: {msg}", hint=hint or "fix the card's [decoder.params]")


@dataclass(frozen=True)
class SsdAnchorOptions:
    """MediaPipe ``SsdAnchorsCalculatorOptions``. ``input_size`` and each feature-map size are
    (width, height); ``anchor_offset`` is (x, y). ``feature_map_sizes`` (one per layer) replace
    the sizes ``ceil(input / stride)``; the strides still group the layers."""

    num_layers: int
    min_scale: float
    max_scale: float
    input_size: tuple[int, int]
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = ()
    anchor_offset: tuple[float, float] = (0.5, 0.5)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False
    reduce_boxes_in_lowest_layer: bool = False
    feature_map_sizes: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            _fail(f"num_layers must be >= 1, got {self.num_layers}")
        if len(self.strides) != self.num_layers:
            _fail(f"len(strides) = {len(self.strides)} but num_layers = {self.num_layers}",
                  "give one stride per layer (layers with equal strides share a grid)")
        if any(s < 1 for s in self.strides):
            _fail(f"strides must be >= 1, got {list(self.strides)}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            _fail(f"input_size must be [width, height] >= 1, got {list(self.input_size)}")
        if self.feature_map_sizes is not None:
            if len(self.feature_map_sizes) != self.num_layers:
                _fail(f"{len(self.feature_map_sizes)} feature-map sizes but num_layers = {self.num_layers}",
                      "give feature_map_width and feature_map_height with one entry per layer")
            if any(min(s) < 1 for s in self.feature_map_sizes):
                _fail(f"feature-map sizes must be >= 1, got {list(self.feature_map_sizes)}")
        if any(not (a > 0) for a in self.aspect_ratios):
            _fail(f"aspect_ratios must be > 0, got {list(self.aspect_ratios)}")
        for name in ("min_scale", "max_scale", "interpolated_scale_aspect_ratio"):
            if not math.isfinite(getattr(self, name)):
                _fail(f"{name} must be finite, got {getattr(self, name)}")
        if not (self.min_scale > 0 and self.max_scale > 0):
            _fail(f"min_scale and max_scale must be > 0, got {self.min_scale} and {self.max_scale}")

    def scale(self, layer: int) -> float:
        """MediaPipe's ``CalculateScale`` for layer index ``layer``."""
        n = len(self.strides)
        if n == 1:
            return (self.min_scale + self.max_scale) * 0.5
        return self.min_scale + (self.max_scale - self.min_scale) * layer / (n - 1.0)

    def grid(self, layer: int) -> tuple[int, int]:
        """(width, height) of layer ``layer``'s feature map."""
        if self.feature_map_sizes is not None:
            return self.feature_map_sizes[layer]
        s = self.strides[layer]
        return (math.ceil(self.input_size[0] / s), math.ceil(self.input_size[1] / s))


@dataclass(frozen=True, eq=False)
class SsdAnchors:
    """``anchors[N, 4]`` = (x_center, y_center, w, h), normalized; ``cells[N, 4]`` = (layer, y, x,
    anchor) where ``layer`` is the first layer of the stride group and ``anchor`` the index in the
    cell."""

    anchors: np.ndarray
    cells: np.ndarray

    def __len__(self) -> int:
        return len(self.anchors)


def _groups(opts: SsdAnchorOptions) -> list[tuple[int, list[float], list[float]]]:
    """Per group of equal-stride layers: (first layer, aspect ratios, scales) of a cell's anchors."""
    groups = []
    layer = 0
    n = len(opts.strides)
    while layer < n:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < n and opts.strides[last] == opts.strides[layer]:
            scale = opts.scale(last)
            if last == 0 and opts.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(opts.aspect_ratios)
                scales += [scale] * len(opts.aspect_ratios)
                if opts.interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == n - 1 else opts.scale(last + 1)
                    if not (scale * nxt >= 0 and math.isfinite(scale * nxt)):
                        _fail(f"layer {last}: scales {scale} and {nxt} have no real geometric mean",
                              "use 0 < min_scale, max_scale of a sane size (fractions of the input)")
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(opts.interpolated_scale_aspect_ratio)
            last += 1
        groups.append((layer, ratios, scales))
        layer = last
    return groups


def anchor_count(opts: SsdAnchorOptions) -> int:
    """How many anchors :func:`ssd_anchors` generates (computed without generating them)."""
    total = 0
    for layer, ratios, _ in _groups(opts):
        gw, gh = opts.grid(layer)
        total += gw * gh * len(ratios)
    return total


def ssd_anchors(opts: SsdAnchorOptions) -> SsdAnchors:
    """Generate the anchors MediaPipe's ``SsdAnchorsCalculator`` would, in the same order."""
    anchors, cells = [], []
    for layer, ratios, scales in _groups(opts):
        r = np.sqrt(np.asarray(ratios, dtype=np.float64))
        s = np.asarray(scales, dtype=np.float64)
        aw, ah = s * r, s / r
        gw, gh = opts.grid(layer)
        y, x, k = np.meshgrid(np.arange(gh), np.arange(gw), np.arange(len(ratios)), indexing="ij")
        y, x, k = y.ravel(), x.ravel(), k.ravel()
        xc = (x + opts.anchor_offset[0]) / gw
        yc = (y + opts.anchor_offset[1]) / gh
        if opts.fixed_anchor_size:
            w = h = np.ones(len(k))
        else:
            w, h = aw[k], ah[k]
        anchors.append(np.stack([xc, yc, w, h], axis=1))
        cells.append(np.stack([np.full(len(k), layer), y, x, k], axis=1))
    return SsdAnchors(np.concatenate(anchors).astype(np.float64), np.concatenate(cells).astype(np.int64))

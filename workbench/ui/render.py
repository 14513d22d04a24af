"""Rendering for the explorer's views: matplotlib figures -> PNG bytes, and a PNG cache.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot, no
global state, safe inside a running notebook whatever its backend). Two habits keep a view's
handler within its time budget (see ``benchmarks/ui.py``): images are downsampled to the size
they are shown at *before* ``imshow`` (matplotlib's own antialiasing of a 640x640 frame costs
more than the whole rest of a figure), and the PNG is encoded from the canvas buffer with a
fast zlib level instead of through ``savefig``.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..decisions import Fate

__all__ = [
    "FATE_COLORS", "PENDING_COLOR", "PngCache", "Canvas", "new_figure", "figure_png", "downsample",
    "box_segments", "draw_boxes", "image_axes", "message_png", "colorize", "upscale",
]

#: one colour per fate (colour-blind safe: Okabe-Ito)
FATE_COLORS: dict[Fate, str] = {
    Fate.KEPT: "#009E73",
    Fate.SUPPRESSED: "#D55E00",
    Fate.MERGED: "#CC79A7",
    Fate.BELOW_SCORE: "#999999",
    Fate.CUT_BY_TOPK: "#E69F00",
    Fate.CUT_BY_MAX_DETECTIONS: "#56B4E9",
}
#: candidates that entered NMS but are not decided yet at the current step
PENDING_COLOR = "#F0E442"

DPI = 72


def new_figure(width_px: int, height_px: int) -> Figure:
    """A figure of ``width_px x height_px`` pixels on its own Agg canvas."""
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, compress_level: int = 1) -> bytes:
    """Draw ``fig`` and encode it as PNG bytes (RGB, fast zlib level)."""
    from PIL import Image

    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(buf, format="png", compress_level=compress_level)
    return buf.getvalue()


def downsample(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image (H, W[, C])`` shrunk so that its longer side is at most ``max_side`` pixels.

    Uses PIL's antialiased resize for uint8 images and block striding otherwise (float maps).
    """
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if image.dtype == np.uint8 and image.ndim in (2, 3):
        from PIL import Image

        return np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR, reducing_gap=2.0))
    ys = (np.arange(nh) * (h / nh)).astype(np.intp)
    xs = (np.arange(nw) * (w / nw)).astype(np.intp)
    return image[ys[:, None], xs[None, :]]


def image_axes(fig: Figure, rect: tuple[float, float, float, float], image: np.ndarray,
               extent: tuple[float, float, float, float] | None = None, *, axis: bool = False, **kw: Any):
    """An axes in ``rect`` (figure fractions) showing ``image`` (already downsampled)."""
    ax = fig.add_axes(rect)
    ax.imshow(image, interpolation="nearest", extent=extent, **kw)
    if not axis:
        ax.set_axis_off()
    else:
        ax.tick_params(labelsize=7)
    return ax


def box_segments(boxes: np.ndarray) -> np.ndarray:
    """``boxes [N, 4]`` (x1, y1, x2, y2) -> closed outlines ``[N, 5, 2]`` for a LineCollection."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]], b[:, [0, 1]]], axis=1)


def draw_boxes(ax, boxes: np.ndarray, color: str, width: float = 1.0, style: str = "solid",
               alpha: float = 1.0) -> None:
    """All ``boxes [N, 4]`` as one LineCollection (one artist, however many boxes)."""
    if len(boxes):
        ax.add_collection(LineCollection(box_segments(boxes), colors=color, linewidths=width,
                                         linestyles=style, alpha=alpha))


def message_png(text: str, width_px: int = 480, height_px: int = 60) -> bytes:
    """A small PNG that only says ``text`` (a view with nothing to draw)."""
    fig = new_figure(width_px, height_px)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    return figure_png(fig)


class Canvas:
    """A figure of fixed pixel size with one image axes, reused from render to render.

    Building an axes (spines, tick machinery) costs more than drawing a whole frame with its
    boxes; :meth:`clear` removes only the previous render's artists. Get canvases from
    :meth:`workbench.ui.views.base.ExplorerContext.canvas` (one per size and layout).
    """

    def __init__(self, width_px: int, height_px: int, rect: tuple[float, float, float, float]) -> None:
        self.fig = new_figure(width_px, height_px)
        self.ax = self.fig.add_axes(rect)
        self.ax.set_axis_off()

    def clear(self) -> tuple[Figure, Any]:
        """Remove the last render's artists; returns ``(figure, axes)`` ready to draw on."""
        ax = self.ax
        for artist in [*ax.images, *ax.collections, *ax.texts, *ax.patches, *ax.lines, *self.fig.texts,
                       *self.fig.images]:
            artist.remove()
        ax.set_aspect("auto")
        return self.fig, ax


def colorize(values: np.ndarray, cmap: str, vmin: float, vmax: float, bad: str = "white") -> np.ndarray:
    """``values [H, W]`` -> ``uint8 [H, W, 4]`` through a matplotlib colormap (NaN: ``bad``)."""
    from matplotlib import colormaps

    cm = colormaps[cmap].with_extremes(bad=bad)
    span = vmax - vmin if vmax > vmin else 1.0
    return cm((values - vmin) / span, bytes=True)


def upscale(image: np.ndarray, max_w: int, max_h: int, min_h: int = 24) -> np.ndarray:
    """Repeat pixels by integer factors so that ``image [H, W, ...]`` fills about ``max_w x max_h``
    (crisp, no interpolation); a one-row strip becomes at least ``min_h`` rows high."""
    h, w = image.shape[:2]
    s = max(1, min(max_w // max(w, 1), max_h // max(h, 1)))
    sy = max(s, min_h // max(h, 1)) if h * s < min_h else s
    return np.repeat(np.repeat(image, sy, axis=0), s, axis=1)


class PngCache:
    """Least-recently-used cache of rendered PNGs keyed by a view's state (a hashable tuple).

    ``get(key, render)`` returns the cached bytes or calls ``render()`` once; ``hits`` and
    ``misses`` count lookups (the tests check that revisiting a state renders nothing).
    """

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        try:
            value = self._items[key]
        except KeyError:
            self.misses += 1
            value = render()
            self._items[key] = value
            if len(self._items) > self.max_items:
                self._items.popitem(last=False)
            return value
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

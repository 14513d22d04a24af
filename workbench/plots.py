"""Matplotlib helpers for notebooks: feature-map grids, histograms, per-layer parity.

Each function returns a ``Figure``; nothing here computes results (records do that).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InputError

__all__ = ["channel_maps", "feature_grid", "histogram", "parity_plot"]


def channel_maps(tensor: np.ndarray, layout: str = "auto") -> np.ndarray:
    """``(C, H, W)`` maps of the first batch item of a 4-D (or 3-D) feature tensor.

    ``layout``: ``"NHWC"``, ``"NCHW"`` or ``"auto"`` (channels = the smaller of dim 1 and the
    last dim, ties go to NHWC as TFLite and the MTCNN Keras port use).
    """
    a = np.asarray(tensor)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(f"feature maps need a 3-D or 4-D tensor, got shape {a.shape}")
    if layout == "auto":
        layout = "NCHW" if a.shape[1] < a.shape[3] else "NHWC"
    if layout not in ("NHWC", "NCHW"):
        raise InputError(f"layout must be NHWC, NCHW or auto, got {layout!r}")
    x = a[0].astype(np.float32)
    return x if layout == "NCHW" else np.moveaxis(x, -1, 0)


def feature_grid(
    tensor: np.ndarray,
    layout: str = "auto",
    max_channels: int = 16,
    shared_scale: bool = True,
    title: str | None = None,
    cols: int = 8,
):  # type: ignore[no-untyped-def]
    """A grid of the first ``max_channels`` channel heatmaps; shared or per-channel colour scale."""
    import matplotlib.pyplot as plt

    maps = channel_maps(tensor, layout)[:max_channels]
    n = len(maps)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    lo, hi = float(maps.min()), float(maps.max())
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        m = maps[k]
        vmin, vmax = (lo, hi) if shared_scale else (float(m.min()), float(m.max()))
        ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-6)
        ax.set_title(f"ch {k}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def histogram(stats, title: str | None = None):  # type: ignore[no-untyped-def]
    """Bar plot of a :class:`~workbench.capture.TensorStats` histogram."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.2))
    edges = np.asarray(stats.hist_edges)
    if len(edges) > 1:
        ax.bar(edges[:-1], stats.hist_counts, width=np.diff(edges), align="edge", color="tab:blue")
    ax.set_title(title or f"min {stats.min:.3g}  max {stats.max:.3g}  zeros {stats.zero_fraction:.0%}", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def parity_plot(rows: Sequence, title: str = "per-layer difference"):  # type: ignore[no-untyped-def]
    """Max abs and relative difference per tensor (rows from ``compare_records``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6))
    x = np.arange(len(rows))
    ax.semilogy(x, [max(r.max_abs, 1e-12) for r in rows], ".-", label="max abs")
    ax.semilogy(x, [max(r.max_rel, 1e-12) for r in rows], ".-", label="max rel (to tensor scale)")
    ax.set_xlabel("tensor (execution order)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig

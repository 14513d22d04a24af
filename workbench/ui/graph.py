"""The graphs the explorer walks: the pipeline graph of one frame and the relation-meta graph.

:func:`pipeline_nodes` turns a :class:`~workbench.result.FrameResult` into the ordered list of
nodes that the explorer's Prev / Next buttons walk and that its graph bar shows as buttons::

    frame -> <stage>:preprocess -> <stage>:layers -> <stage>:decoder -> ... -> meta -> attribution

A stage gets the nodes it has something for (transforms, inference records, decision logs); a
stage with none of them (a tracker) gets one ``stage`` node with its notes. :func:`relation_graph`
lays out the Mtds of a :class:`~workbench.meta.RelationMeta` (one column per pipeline stage) with
their typed relations, and :func:`relation_graph_png` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..meta import ClassificationMtd, Mtd, ObjectDetectionMtd, RelationMeta, RelationType, TrackingMtd
from .render import message_png, new_figure

__all__ = ["Node", "VIEW_KINDS", "pipeline_nodes", "node_index", "RelationGraph", "relation_graph",
           "relation_graph_png", "relation_graph_picture", "highlight_png", "GraphPicture", "mtd_label"]

#: the kinds of node, in the order a stage's nodes appear; each has one view
VIEW_KINDS = ("frame", "preprocess", "layers", "decoder", "stage", "meta", "attribution")


@dataclass(frozen=True)
class Node:
    """One node of the pipeline graph: a view (``kind``) of one stage (or of the whole frame).

    ``key`` is unique (``"frame"``, ``"<stage>:layers"``, ``"meta"``...); ``options`` names what
    the view can pick from (transform names, record names, log names).
    """

    key: str
    kind: str
    label: str
    stage: str | None = None
    options: tuple[str, ...] = ()


def _stage_nodes(st: Any) -> list[Node]:
    nodes = []
    if st.transforms:
        nodes.append(Node(f"{st.name}:preprocess", "preprocess", f"{st.name}: preprocess", st.name,
                          tuple(st.transforms)))
    if st.records:
        nodes.append(Node(f"{st.name}:layers", "layers", f"{st.name}: layers", st.name, tuple(st.records)))
    if st.logs:
        nodes.append(Node(f"{st.name}:decoder", "decoder", f"{st.name}: decoder + NMS", st.name, tuple(st.logs)))
    if not nodes:
        nodes.append(Node(f"{st.name}:stage", "stage", f"{st.name}: {st.kind}", st.name))
    return nodes


def pipeline_nodes(result: Any) -> list[Node]:
    """The ordered nodes of one frame's analytics graph (see the module docstring)."""
    stages = getattr(result, "stages", None)
    if stages is None or not hasattr(result, "frame") or not hasattr(result, "meta"):
        raise InputError(f"FrameExplorer needs a FrameResult, got {type(result).__name__}",
                         hint="run a pipeline: workbench.Pipeline.from_card(id).run(frame, trace='all'), "
                              "or reopen one with workbench.open_result(folder)")
    nodes = [Node("frame", "frame", "frame")]
    for st in stages.values():
        nodes.extend(_stage_nodes(st))
    nodes.append(Node("meta", "meta", f"meta: {len(result.meta)} Mtds"))
    nodes.append(Node("attribution", "attribution", "attribution"))
    return nodes


def node_index(nodes: list[Node], key: int | str) -> int:
    """Position of a node given its index, its key, or its kind (the first node of that kind)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not 0 <= int(key) < len(nodes):
            raise InputError(f"node index {key} out of range 0..{len(nodes) - 1}")
        return int(key)
    for i, n in enumerate(nodes):
        if n.key == key:
            return i
    for i, n in enumerate(nodes):
        if n.kind == key:
            return i
    raise InputError(f"no node {key!r} in this frame's graph", hint=f"nodes: {[n.key for n in nodes]}")


# ------------------------------------------------------------------------------ relation graph

def mtd_label(meta: RelationMeta, i: int) -> str:
    """A short text for Mtd ``i``: ``"#3 face 0.97"``, ``"#5 track 2"``, ``"#1 cat 0.81"``."""
    m = meta[i]
    if isinstance(m, ObjectDetectionMtd):
        return f"#{i} {m.label} {m.confidence:.2f}"
    if isinstance(m, ClassificationMtd):
        lab, s = m.top
        return f"#{i} {lab} {s:.2f}"
    if isinstance(m, TrackingMtd):
        return f"#{i} track {m.track_id}" + (" (lost)" if m.lost else "")
    return f"#{i} {m.kind}"


def _stage_of(m: Mtd) -> str:
    src = getattr(m, "source", None)
    if isinstance(src, dict) and src.get("stage"):
        return str(src["stage"])
    return m.kind


@dataclass(frozen=True)
class RelationGraph:
    """Mtds as nodes with positions (``xy[N, 2]``, column = stage), relations as ``edges[E, 3]``
    rows (a, b, RelationType flags); ``columns`` names the column of each x position."""

    labels: tuple[str, ...]
    kinds: tuple[str, ...]
    xy: np.ndarray
    edges: np.ndarray
    columns: tuple[str, ...]


def relation_graph(meta: RelationMeta) -> RelationGraph:
    """Lay out the relation-meta graph: one column per producing stage (in order of first
    appearance); within a column, Mtds related to earlier columns sit near their neighbours'
    rows (barycentre order), the others follow by id."""
    n = len(meta)
    cols: list[str] = []
    col_of = np.zeros(n, dtype=np.int64)
    for i in range(n):
        c = _stage_of(meta[i])
        if c not in cols:
            cols.append(c)
        col_of[i] = cols.index(c)
    adj = meta.adjacency != 0
    link = adj | adj.T
    row_of = np.zeros(n, dtype=np.float64)
    for c in range(len(cols)):
        ids = np.flatnonzero(col_of == c)
        earlier = col_of < c
        key = np.array([row_of[link[i] & earlier].mean() if (link[i] & earlier).any() else np.inf for i in ids])
        order = np.lexsort((ids, key))
        row_of[ids[order]] = np.arange(len(ids))
    xy = np.stack([col_of, row_of], axis=1).astype(np.float64) if n else np.zeros((0, 2))
    return RelationGraph(tuple(mtd_label(meta, i) for i in range(n)), tuple(meta[i].kind for i in range(n)),
                         xy, meta.relations(), tuple(cols))


_REL_COLORS = {RelationType.CONTAIN: "#0072B2", RelationType.IS_PART_OF: "#E69F00",
               RelationType.RELATE_TO: "#009E73"}
_KIND_COLORS = {"object_detection": "#D9EAF7", "classification": "#FDEBD0", "tracking": "#D5F5E3",
                "segmentation": "#EBDEF0"}


def _rel_color(flags: int) -> str:
    for t, c in _REL_COLORS.items():
        if flags & int(t):
            return c
    return "#555555"


@dataclass(frozen=True)
class GraphPicture:
    """The relation graph drawn once: ``rgb [H, W, 3]`` and each Mtd's box in pixels
    (``boxes [N, 4]`` x0, y0, x1, y1 from the top left; NaN rows for Mtds not drawn), so that a
    selection is painted on a copy of the pixels instead of redrawing every label."""

    rgb: np.ndarray
    boxes: np.ndarray


def relation_graph_picture(meta: RelationMeta, width_px: int = 520, max_rows: int = 40,
                           canvas: Any = None) -> GraphPicture | None:
    """Draw the relation-meta graph (None when the meta is empty): boxes for Mtds, arrows for
    relations coloured by type (CONTAIN blue, IS_PART_OF orange, RELATE_TO green); the two
    directions of a pair side by side; all arrows one artist (speed). ``canvas``: where to draw,
    ``(width, height, rect) -> (figure, axes)`` (default: a new figure)."""
    g = relation_graph(meta)
    if not len(g.labels):
        return None
    shown = g.xy[:, 1] < max_rows
    rows = int(min(g.xy[:, 1].max() + 1, max_rows))
    ncol = len(g.columns)
    top, bottom = 24, 22
    height = top + bottom + 26 * rows
    rect = (0.01, bottom / height, 0.98, 1 - (top + bottom) / height)
    if canvas is not None:  # a reusable canvas (the explorer's): (w, h, rect) -> (figure, axes)
        fig, ax = canvas(width_px, height, rect)
    else:
        fig = new_figure(width_px, height)
        ax = fig.add_axes(rect)
    ax.set_xlim(-0.5, ncol - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_axis_off()
    for c, name in enumerate(g.columns):
        fig.text((c + 0.5) / ncol * 0.98 + 0.01, 1 - 4 / height, name, ha="center", va="top", fontsize=9,
                 weight="bold")
    e = g.edges[shown[g.edges[:, 0]] & shown[g.edges[:, 1]]] if len(g.edges) else g.edges
    if len(e):
        p, q = g.xy[e[:, 0]], g.xy[e[:, 1]]
        d = q - p
        length = np.hypot(d[:, 0], d[:, 1])
        u = d / np.where(length > 0, length, 1)[:, None]
        normal = np.stack([-u[:, 1], u[:, 0]], axis=1)
        start = p + 0.32 * u * (np.abs(u[:, :1]) > 0.5) + 0.1 * normal
        end = q - 0.32 * u * (np.abs(u[:, :1]) > 0.5) + 0.1 * normal
        same_col = np.abs(d[:, 0]) < 0.5  # vertical edges: start / end beside the boxes
        start[same_col, 0] += 0.3
        end[same_col, 0] += 0.3
        colors = [_rel_color(int(f)) for f in e[:, 2]]
        ax.quiver(start[:, 0], start[:, 1], end[:, 0] - start[:, 0], end[:, 1] - start[:, 1], color=colors,
                  angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=4, headlength=5)
    texts = {}
    for i in np.flatnonzero(shown):
        x, y = g.xy[i]
        texts[int(i)] = ax.text(x, y, g.labels[i], ha="center", va="center", fontsize=8,
                                bbox=dict(boxstyle="round,pad=0.3", fc=_KIND_COLORS.get(g.kinds[i], "#EEEEEE"),
                                          ec="#555555", lw=0.8))
    x = 0.01
    for t, c in _REL_COLORS.items():
        if len(g.edges) and (g.edges[:, 2] & int(t)).any():
            fig.text(x, 4 / height, f"\u2192 {t.name}", color=c, fontsize=8, va="bottom", weight="bold")
            x += 0.2
    if not shown.all():
        fig.text(0.99, 4 / height, f"{int((~shown).sum())} more Mtds not drawn", ha="right", va="bottom", fontsize=8)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    boxes = np.full((len(g.labels), 4), np.nan)
    h = rgb.shape[0]
    for i, t in texts.items():
        bb = t.get_bbox_patch().get_window_extent()
        boxes[i] = (bb.x0, h - bb.y1, bb.x1, h - bb.y0)
    return GraphPicture(rgb, boxes)


def highlight_png(picture: GraphPicture, selected: int | None, color: tuple[int, int, int] = (213, 94, 0),
                  width: int = 3) -> bytes:
    """The graph picture as PNG with Mtd ``selected`` framed (pixels painted, nothing redrawn)."""
    from PIL import Image

    rgb = picture.rgb
    if selected is not None and 0 <= selected < len(picture.boxes) and np.isfinite(picture.boxes[selected]).all():
        rgb = rgb.copy()
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in picture.boxes[selected])
        x0, y0, x1, y1 = max(0, x0 - 2), max(0, y0 - 2), min(w, x1 + 2), min(h, y1 + 2)
        rgb[y0:y0 + width, x0:x1] = color
        rgb[max(y1 - width, 0):y1, x0:x1] = color
        rgb[y0:y1, x0:x0 + width] = color
        rgb[y0:y1, max(x1 - width, 0):x1] = color
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def relation_graph_png(meta: RelationMeta, selected: int | None = None, width_px: int = 520,
                       max_rows: int = 40, canvas: Any = None) -> bytes:
    """The relation-meta graph as a PNG (see :func:`relation_graph_picture`), ``selected`` framed."""
    pic = relation_graph_picture(meta, width_px, max_rows, canvas)
    if pic is None:
        return message_png("the relation meta is empty: no analytics results for this frame", width_px)
    return highlight_png(pic, selected)

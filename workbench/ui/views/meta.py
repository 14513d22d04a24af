"""Meta view: the frame's analytics results (Mtds) and the typed relations between them.

Plain functions (tests call them without a browser): :func:`mtd_rows` one row per Mtd with its
relations, :func:`mtd_details` one Mtd's fields and neighbours; the graph itself is drawn by
:func:`workbench.ui.graph.relation_graph_png`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ...meta import ObjectDetectionMtd, RelationMeta, RelationType
from ..graph import highlight_png, mtd_label, relation_graph_picture, relation_graph_png
from ..render import draw_boxes, figure_png
from .base import ExplorerContext, View, col, html_table, register_view, row

__all__ = ["mtd_rows", "mtd_details", "MetaView", "meta_frame_png"]


def _rel_names(flags: int) -> str:
    return "|".join(t.name for t in (RelationType.IS_PART_OF, RelationType.CONTAIN, RelationType.RELATE_TO)
                    if flags & int(t)) or str(flags)


def mtd_rows(meta: RelationMeta) -> list[dict[str, Any]]:
    """One dict per Mtd: id, kind, label, confidence, box, stage, relations out / in."""
    adj = meta.adjacency
    rows = []
    for i, m in enumerate(meta):
        src = getattr(m, "source", {}) or {}
        out = [f"{_rel_names(int(adj[i, j]))}->#{j}" for j in np.flatnonzero(adj[i])]
        inn = [f"#{j}-{_rel_names(int(adj[j, i]))}" for j in np.flatnonzero(adj[:, i])]
        row: dict[str, Any] = {"id": i, "kind": m.kind, "what": mtd_label(meta, i).split(" ", 1)[-1],
                               "stage": src.get("stage", ""), "out": ", ".join(out), "in": ", ".join(inn)}
        if isinstance(m, ObjectDetectionMtd):
            row["box"] = tuple(round(v, 1) for v in m.box)
        rows.append(row)
    return rows


def mtd_details(meta: RelationMeta, i: int) -> list[tuple[str, Any]]:
    """(field, value) rows of Mtd ``i`` (arrays summarised) and its direct relations."""
    m = meta[i]
    rows: list[tuple[str, Any]] = [("kind", m.kind)]
    for f in dataclasses.fields(m):
        v = getattr(m, f.name)
        if isinstance(v, np.ndarray):
            text = f"{v.dtype}{list(v.shape)} " + np.array2string(v, precision=1, threshold=16, separator=",")
        elif isinstance(v, tuple) and all(isinstance(x, float) for x in v):
            text = "(" + ", ".join(f"{x:.1f}" for x in v) + ")"
        elif isinstance(v, float):
            text = f"{v:.4g}"
        else:
            text = str(v)
        text = " ".join(text.split())
        rows.append((f.name, text if len(text) < 120 else text[:117] + "..."))
    for j in meta.related(i, direction="out"):
        rows.append((f"-> #{j}", f"{_rel_names(int(meta.relation(i, j)))} {mtd_label(meta, j)}"))
    for j in meta.related(i, direction="in"):
        rows.append((f"<- #{j}", f"{_rel_names(int(meta.relation(j, i)))} {mtd_label(meta, j)}"))
    return rows


def meta_frame_png(ctx: ExplorerContext, selected: int) -> bytes:
    """The frame with every detection Mtd; ``selected`` thick, the Mtds related to it dashed."""
    def render() -> bytes:
        meta, fr = ctx.result.meta, ctx.result.frame
        small = ctx.small_frame()
        h, w = small.shape[:2]
        fig, ax = ctx.canvas(w, h)
        ax.imshow(small, interpolation="nearest", extent=(0, fr.width, fr.height, 0))
        ax.set_xlim(0, fr.width)
        ax.set_ylim(fr.height, 0)
        dets = meta.of_kind(ObjectDetectionMtd)
        related: set[int] = set()
        if selected >= 0:
            related = set(meta.related(selected, direction="out")) | set(meta.related(selected, direction="in"))
        plain = [m.box for i, m in dets if i != selected and i not in related]
        draw_boxes(ax, np.array(plain).reshape(-1, 4), "#56B4E9", 1.2)
        draw_boxes(ax, np.array([m.box for i, m in dets if i in related]).reshape(-1, 4), "#E69F00", 2.0, "dashed")
        for i, m in dets[:60]:
            ax.text(m.box[0], m.box[1], f"#{i}", color="white", fontsize=7, va="bottom",
                    bbox=dict(fc="#D55E00" if i == selected else "#0072B2", ec="none", pad=0.5))
        if selected >= 0 and isinstance(meta[selected], ObjectDetectionMtd):
            draw_boxes(ax, np.array([meta[selected].box]), "#D55E00", 3.0)
        return figure_png(fig)

    return ctx.cache.get(("meta-frame", selected), render)


@dataclass(frozen=True)
class MetaState:
    selected: int = -1


@register_view("meta")
class MetaView(View):
    """Mtd table, the relation graph (the selected Mtd highlighted), the frame with every box."""

    State = MetaState

    def _initial(self, node) -> MetaState:
        return MetaState(0 if len(self.ctx.result.meta) else -1)

    def _validate(self, s: MetaState) -> MetaState:
        n = len(self.ctx.result.meta)
        if not -1 <= s.selected < n:
            raise InputError(f"Mtd id {s.selected} out of range -1..{n - 1}")
        return s

    def _graph_png(self, selected: int | None) -> bytes:
        """The relation graph, drawn once per explorer; a selection only repaints a frame."""
        meta = self.ctx.result.meta
        pic = self.ctx.memo("relation-graph", lambda: relation_graph_picture(meta, canvas=self.ctx.canvas))
        if pic is None:
            return relation_graph_png(meta)
        return highlight_png(pic, selected)

    def _build(self):
        import ipywidgets as w

        self.pick = w.Dropdown(description="Mtd", layout=w.Layout(width="300px"))
        self._on(self.pick, "selected", int)
        self.graph_img = w.Image(format="png")
        self.frame_img = w.Image(format="png", layout=w.Layout(max_width=f"{self.ctx.image_px}px"))
        for im in (self.graph_img, self.frame_img):
            im.add_class("wb-image")
        self.details = w.HTML()
        self.table = w.HTML()
        self.table.add_class("wb-mtds")
        return col([self.pick, row([self.frame_img, self.graph_img]), self.details, self.table])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        meta, s = self.ctx.result.meta, self.state
        if full:
            opts = [("(none)", -1)] + [(mtd_label(meta, i), i) for i in range(len(meta))]
            self._sync(self.pick, options=opts)
            self.table.value = html_table(mtd_rows(meta), ["id", "kind", "what", "stage", "box", "out", "in"])
        self._sync(self.pick, value=s.selected)
        sel = s.selected if s.selected >= 0 else None
        self.graph_img.value = self.ctx.cache.get(("relations", s.selected), lambda: self._graph_png(sel))
        self.frame_img.value = meta_frame_png(self.ctx, s.selected)
        self.details.value = html_table(mtd_details(meta, s.selected)) if s.selected >= 0 else \
            f"<i>{len(meta)} Mtds, {len(meta.relations())} relations</i>"

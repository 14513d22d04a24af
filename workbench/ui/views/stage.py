"""Stage view: a stage with nothing to step through (a tracker): its kind, model, notes, Mtds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...capture.records import jsonable
from ..graph import mtd_label
from .base import View, col, html_table, register_view

__all__ = ["StageView", "stage_rows"]


def stage_rows(result: Any, stage_name: str) -> list[tuple[str, Any]]:
    """(name, value) rows: kind, model, backend, notes, the Mtds the stage added."""
    st = result.stages[stage_name]
    rows: list[tuple[str, Any]] = [("stage", st.name), ("kind", st.kind), ("model", st.model), ("backend", st.backend)]
    for k, v in jsonable(st.notes).items():
        rows.append((k, v))
    ids = [i for group in st.mtd_ids for i in group]
    rows.append(("Mtds added", ", ".join(mtd_label(result.meta, i) for i in ids[:30]) or "none"))
    return rows


@dataclass(frozen=True)
class StageState:
    pass


@register_view("stage")
class StageView(View):
    State = StageState

    def _build(self):
        import ipywidgets as w

        self.info = w.HTML()
        return col([self.info])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        self.info.value = html_table(stage_rows(self.ctx.result, self.node.stage))

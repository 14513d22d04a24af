"""What every view shares: a frozen state, one ``update`` verb, widgets built on first show.

A view is synced state plus widgets (the anywidget / ipywidgets habit): its state is a frozen
dataclass (``view.state``); ``view.update(**changes)`` validates the changes, renders what they
change (PNGs through the explorer's :class:`~workbench.ui.render.PngCache`, HTML tables) and
writes the results into its widgets. Widget observers only call ``update``; tests and
``benchmarks/ui.py`` call it directly, without a browser.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, ClassVar, Iterable

import numpy as np

from ...errors import InputError, WorkbenchError
from ..graph import Node
from ..render import PngCache

__all__ = ["ExplorerContext", "View", "html_table", "fmt", "esc", "VIEWS", "register_view", "row", "col"]

#: view classes by node kind (``@register_view("layers")``)
VIEWS: dict[str, type["View"]] = {}


def register_view(kind: str):
    def deco(cls: type[View]) -> type[View]:
        cls.kind = kind
        VIEWS[kind] = cls
        return cls

    return deco


@dataclass
class ExplorerContext:
    """What the views of one explorer share: the result, the PNG cache, display sizes."""

    result: Any
    cache: PngCache = field(default_factory=PngCache)
    image_px: int = 440
    #: attributions passed to the explorer, besides the result's own ``attributions``
    attributions: Any = ()
    memo_items: int = 64
    _small: dict[Any, np.ndarray] = field(default_factory=dict)
    _memo: "OrderedDict[Any, Any]" = field(default_factory=OrderedDict)
    _canvases: dict[Any, Any] = field(default_factory=dict)

    def canvas(self, width_px: int, height_px: int, rect: tuple[float, float, float, float] = (0, 0, 1, 1)):
        """A cleared, reusable :class:`~workbench.ui.render.Canvas` of this size and axes rect
        -> ``(figure, axes)``."""
        from ..render import Canvas

        key = (int(width_px), int(height_px), tuple(round(v, 4) for v in rect))
        c = self._canvases.get(key)
        if c is None:
            if len(self._canvases) >= 32:  # sizes vary with crop windows: keep a bounded set
                self._canvases.pop(next(iter(self._canvases)))
            c = self._canvases[key] = Canvas(*key)
        return c.clear()

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Computed data (not PNGs) by key, least-recently-used, at most ``memo_items``."""
        try:
            self._memo.move_to_end(key)
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            if len(self._memo) > self.memo_items:
                self._memo.popitem(last=False)
            return value

    def small_frame(self, max_side: int | None = None) -> np.ndarray:
        """The frame downsampled for display (cached)."""
        from ..render import downsample

        side = max_side or self.image_px
        if side not in self._small:
            self._small[side] = downsample(np.asarray(self.result.frame.image), side)
        return self._small[side]


class View:
    """Base of the explorer's views. Subclasses set ``State`` and write ``_build`` (the widgets),
    ``_refresh`` (state -> widgets), and optionally ``_initial`` / ``_validate`` / ``_enter``.

    One view object serves every node of its kind; each node's last state is kept, so walking
    back to a node shows it as it was left.
    """

    kind: ClassVar[str] = ""
    State: ClassVar[type]

    def __init__(self, ctx: ExplorerContext) -> None:
        self.ctx = ctx
        self.node: Node | None = None
        self.state = self.State()
        self._widget = None
        self._syncing = False
        self._states: dict[str, Any] = {}
        self._forgotten = False
        #: called with the exception when a widget event fails (the explorer shows it); None: raise
        self.on_error: Callable[[BaseException], None] | None = None

    # -- public ---------------------------------------------------------------------------------
    @property
    def widget(self):
        """The view's root widget (built on first access)."""
        if self._widget is None:
            self._widget = self._build()
            self._widget.add_class(f"wb-view-{self.kind}")
            self._widget.add_class("wb-view")
        return self._widget

    def show(self, node: Node) -> None:
        """Make this view show ``node`` (a node of its kind): in the state it was left in, or
        the node's initial state on a first visit (or when the saved one no longer fits)."""
        if node.kind != self.kind:
            raise InputError(f"the {self.kind} view cannot show a {node.kind} node ({node.key})")
        if self.node is not None and not self._forgotten:
            self._states[self.node.key] = self.state
        self._forgotten = False
        self.node = node
        self._enter(node)
        saved = self._states.get(node.key)
        state = None
        if saved is not None:
            self.state = saved
            try:
                state = self._validate(saved)
            except WorkbenchError:
                state = None
        self.state = state if state is not None else self._initial(node)
        self._refresh(full=True)

    def forget(self) -> None:
        """Drop the remembered states: the next ``show`` starts each node afresh."""
        self._states.clear()
        self._forgotten = True

    def update(self, **changes: Any) -> Any:
        """Change some state fields, re-render, write the widgets; returns the new state."""
        if self.node is None:
            raise InputError(f"the {self.kind} view shows no node yet", hint="call show(node) first")
        names = {f.name for f in fields(self.state)}
        unknown = set(changes) - names
        if unknown:
            raise InputError(f"{self.kind} view: unknown state field(s) {sorted(unknown)}",
                             hint=f"fields: {sorted(names)}")
        new = self._validate(replace(self.state, **changes))
        if new == self.state:
            return self.state
        old, self.state = self.state, new
        self._refresh(full=False, old=old)
        return self.state

    # -- for subclasses ---------------------------------------------------------------------------
    def _enter(self, node: Node) -> None:
        """Called on every ``show`` before the state is chosen (e.g. to re-read the result)."""

    def _initial(self, node: Node) -> Any:
        return self.State()

    def _validate(self, state: Any) -> Any:
        return state

    def _build(self):  # -> ipywidgets.Widget
        raise NotImplementedError

    def _refresh(self, full: bool, old: Any = None) -> None:
        """Render the current state into the widgets (``full``: a new node, everything)."""
        raise NotImplementedError

    def _sync(self, widget: Any, **values: Any) -> None:
        """Set widget traits without their observers calling ``update`` back."""
        self._syncing = True
        try:  # in order: options / min / max before value (no hold: a held value is checked against old options)
            for k, v in values.items():
                if getattr(widget, k) != v:
                    setattr(widget, k, v)
        finally:
            self._syncing = False

    def _on(self, widget: Any, field_name: str, convert: Any = None) -> None:
        """Observe ``widget.value`` and route changes to ``update(field_name=...)``."""

        def handler(change: dict) -> None:
            if self._syncing or self.node is None:
                return
            v = change["new"]
            self._guarded(lambda: self.update(**{field_name: convert(v) if convert else v}))

        widget.observe(handler, names="value")

    def _click(self, button: Any, action: Callable[[], Any]) -> None:
        """Run ``action`` when ``button`` is clicked (errors go to :attr:`on_error`)."""
        button.on_click(lambda _b: self._guarded(action))

    def _guarded(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)
            return None


# --------------------------------------------------------------------------------- layout helpers

def row(children: list[Any], **layout: Any):
    """An HBox whose children keep their natural height (flex rows stretch pictures otherwise)."""
    import ipywidgets as w

    return w.HBox(children, layout=w.Layout(align_items="flex-start", **layout))


def col(children: list[Any], **layout: Any):
    """A VBox whose children keep their natural width (a picture is not stretched to the widest sibling)."""
    import ipywidgets as w

    return w.VBox(children, layout=w.Layout(align_items="flex-start", **layout))


# ----------------------------------------------------------------------------------- HTML helpers

def esc(x: Any) -> str:
    return html.escape(str(x))


def fmt(v: Any, digits: int = 4) -> str:
    """A compact text for a table cell: floats with ``digits`` significant digits, NaN as ''."""
    if isinstance(v, (float, np.floating)):
        if v != v:
            return ""
        return f"{float(v):.{digits}g}"
    if isinstance(v, (tuple, list)) and len(v) <= 8:
        return "(" + ", ".join(fmt(x, digits) for x in v) + ")"
    return str(v)


def html_table(rows: Iterable[dict[str, Any]] | Iterable[tuple[Any, Any]], columns: list[str] | None = None,
               css: str = "wb-table", row_classes: list[str] | None = None) -> str:
    """A small HTML table: rows as dicts (``columns`` picks and orders them) or (key, value) pairs."""
    rows = list(rows)
    out = [f'<table class="{css}" style="border-collapse:collapse;font-size:12px">']
    if rows and isinstance(rows[0], tuple):
        for k, v in rows:
            out.append(f'<tr><th style="text-align:left;padding:1px 8px 1px 2px">{esc(k)}</th>'
                       f'<td style="padding:1px 4px">{esc(fmt(v))}</td></tr>')
    else:
        cols = columns or (list(rows[0]) if rows else [])
        out.append("<tr>" + "".join(f'<th style="padding:1px 6px;border-bottom:1px solid #888">{esc(c)}</th>'
                                    for c in cols) + "</tr>")
        for k, r in enumerate(rows):
            cls = f' class="{row_classes[k]}"' if row_classes else ""
            cells = "".join(f'<td style="padding:1px 6px;text-align:right">{esc(fmt(r.get(c, "")))}</td>'
                            for c in cols)
            out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "".join(out)

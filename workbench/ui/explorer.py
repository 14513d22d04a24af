"""FrameExplorer: step through one frame's full analytics graph, from pixels to relations.

    >>> result = Pipeline.from_card("blazeface-short").run(frame, trace="all")   # doctest: +SKIP
    >>> FrameExplorer(result)                                                     # doctest: +SKIP

At the top, the pipeline graph (:func:`~workbench.ui.graph.pipeline_nodes`) as clickable node
buttons, with Prev / Next walking it in order; below, the view of the current node (frame,
preprocessing, layers, decoder + NMS, stage notes, relation meta, attribution). The explorer is
an ipywidgets ``VBox``: it renders in JupyterLab, the classic notebook and VS Code.

State lives in Python: ``explorer.position`` / ``explorer.node`` and ``explorer.view.state``;
``next()``, ``prev()``, ``go(key)`` and ``explorer.view.update(...)`` are what the buttons and
sliders call, so tests drive the explorer without a browser.
"""

from __future__ import annotations

import html
import os
import time
import traceback
from typing import Any

import ipywidgets as widgets
import traitlets

from ..errors import WorkbenchError
from .graph import Node, node_index, pipeline_nodes
from .render import PngCache
from .views import VIEWS, ExplorerContext, View
from .views.attribution import attributions_of

__all__ = ["FrameExplorer"]


class FrameExplorer(widgets.VBox):
    """One frame's analytics graph as a widget (see the module docstring).

    ``result``: a :class:`~workbench.result.FrameResult` or a folder saved with
    ``FrameResult.save``; ``attributions``: attribution records to show besides the result's
    own; ``image_px``: the display size of frame images; ``start``: the first node (index or key).
    """

    position = traitlets.Int(0)

    def __init__(self, result: Any, *, attributions: Any = (), image_px: int = 440, start: int | str = 0,
                 cache_items: int = 256) -> None:
        if isinstance(result, (str, os.PathLike)):
            from ..result import open_result

            result = open_result(result)
        self.result = result
        self.nodes: list[Node] = pipeline_nodes(result)
        attributions_of(result, attributions)  # check them now: a bad record fails here, not on a click
        self.ctx = ExplorerContext(result, cache=PngCache(cache_items), image_px=int(image_px),
                                   attributions=tuple(attributions_of(None, attributions)))
        self.views: dict[str, View] = {}
        self.last_ms: float = 0.0

        self.node_buttons: list[widgets.Button] = []
        parts: list[widgets.Widget] = []
        for i, node in enumerate(self.nodes):
            b = widgets.Button(description=node.label, tooltip=f"{node.kind}: {node.key}",
                               layout=widgets.Layout(width="auto"))
            b.add_class("wb-node")
            b.add_class(f"wb-node-{node.kind}")
            b.on_click(lambda _b, i=i: self._guard(self.go, i))
            self.node_buttons.append(b)
            if i:
                parts.append(widgets.HTML("&#8594;", layout=widgets.Layout(margin="0 2px")))
            parts.append(b)
        self.graph_bar = widgets.HBox(parts, layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.graph_bar.add_class("wb-graph")
        self.prev_button = widgets.Button(description="\u25c0 Prev", layout=widgets.Layout(width="90px"))
        self.next_button = widgets.Button(description="Next \u25b6", layout=widgets.Layout(width="90px"))
        self.prev_button.add_class("wb-prev")
        self.next_button.add_class("wb-next")
        self.prev_button.on_click(lambda _b: self._guard(self.prev))
        self.next_button.on_click(lambda _b: self._guard(self.next))
        self.stage_label = widgets.HTML()
        self.stage_label.add_class("wb-stage-label")
        self.counter = widgets.HTML()
        self.counter.add_class("wb-counter")
        self.status = widgets.HTML()
        self.status.add_class("wb-status")
        self.body = widgets.Box(layout=widgets.Layout(width="100%"))
        self.body.add_class("wb-body")
        nav = widgets.HBox([self.prev_button, self.next_button, self.counter, self.stage_label],
                           layout=widgets.Layout(align_items="center"))
        super().__init__(children=[self.graph_bar, nav, self.status, self.body])
        self.add_class("wb-frame-explorer")
        self.go(start)

    # -- navigation ---------------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        return self.nodes[self.position]

    @property
    def view(self) -> View:
        """The view of the current node."""
        return self.views[self.node.kind]

    def go(self, key: int | str) -> Node:
        """Show a node: by index, key (``"blazeface-short:decoder"``) or kind (``"meta"``)."""
        t0 = time.perf_counter()
        i = node_index(self.nodes, key)
        node = self.nodes[i]
        view = self.views.get(node.kind)
        if view is None:
            view = self.views[node.kind] = VIEWS[node.kind](self.ctx)
            view.on_error = self._show_error
        view.show(node)
        self.position = i
        self.body.children = (view.widget,)
        for k, b in enumerate(self.node_buttons):
            active = k == i
            b.button_style = "info" if active else ""
            if active:
                b.add_class("wb-node-active")
            else:
                b.remove_class("wb-node-active")
        self.prev_button.disabled = i == 0
        self.next_button.disabled = i == len(self.nodes) - 1
        self.stage_label.value = f"<b>{html.escape(node.label)}</b>"
        self.counter.value = f"{i + 1} / {len(self.nodes)}"
        self.last_ms = (time.perf_counter() - t0) * 1e3
        self.status.value = ""
        return node

    def next(self) -> Node:
        """The next node of the graph (stays on the last one)."""
        return self.go(min(self.position + 1, len(self.nodes) - 1))

    def prev(self) -> Node:
        """The previous node (stays on the first one)."""
        return self.go(max(self.position - 1, 0))

    def node_keys(self) -> list[str]:
        """The node keys in walking order."""
        return [n.key for n in self.nodes]

    # -- errors from widget events ----------------------------------------------------------------
    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # a click must never leave a traceback in the page: show it
            self._show_error(exc)
            return None

    def _show_error(self, exc: BaseException) -> None:
        kind = "" if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: "
        detail = ("" if isinstance(exc, WorkbenchError)
                  else "<pre>" + html.escape(traceback.format_exc(limit=4)) + "</pre>")
        self.status.value = f'<div class="wb-error" style="color:#b00">{html.escape(kind + str(exc))}{detail}</div>'

    def __repr__(self) -> str:
        return f"<FrameExplorer {self.result.frame.id!r}: node {self.position + 1}/{len(self.nodes)} {self.node.key!r}>"

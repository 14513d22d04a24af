"""Widgets that step through one frame's analytics graph: :class:`FrameExplorer` and its views.

    >>> from workbench.ui import FrameExplorer
    >>> FrameExplorer(result)          # doctest: +SKIP   (a FrameResult, or a saved folder)

The computation behind every view is plain Python (``workbench.ui.views.*``, ``workbench.ui.graph``);
rendering goes through matplotlib to cached PNGs (``workbench.ui.render``).
"""

from __future__ import annotations

from .explorer import FrameExplorer
from .graph import Node, pipeline_nodes, relation_graph, relation_graph_png
from .render import PngCache
from .views import VIEWS

__all__ = ["FrameExplorer", "Node", "pipeline_nodes", "relation_graph", "relation_graph_png", "PngCache", "VIEWS"]

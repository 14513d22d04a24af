"""The explorer's views, one module each, registered by node kind in :data:`VIEWS`."""

from __future__ import annotations

from . import attribution, decoder, frame, layers, meta, stage  # noqa: F401  (registers the views)
from .base import VIEWS, ExplorerContext, View

__all__ = ["VIEWS", "View", "ExplorerContext"]

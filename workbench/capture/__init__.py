"""Capture: layer records, the TensorStore and traces (save / open without the model)."""

from __future__ import annotations

from .compare import TensorDiff, compare_records, first_divergent_layer
from .records import DEQUANTIZED_SUFFIX, GraphEdge, LayerRecord, Quantization
from .store import HIST_BINS, CaptureFilter, TensorStats, TensorStore, compute_stats
from .trace import InferenceRecord, Trace, edges_from_layers, open_trace

__all__ = [
    "LayerRecord", "Quantization", "GraphEdge", "DEQUANTIZED_SUFFIX", "TensorStats", "TensorStore", "CaptureFilter",
    "compute_stats", "TensorDiff", "compare_records", "first_divergent_layer", "HIST_BINS", "InferenceRecord", "Trace", "open_trace", "edges_from_layers",
]

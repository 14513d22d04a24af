"""Explainability workbench for vision models.

Load a real ONNX or TFLite model, run one frame through an open analytics pipeline and keep
everything: tensors, decoder decisions, relations and attributions. See README.md.
"""

from __future__ import annotations

from . import data, zoo
from .backends import load_model
from .capture import (
    CaptureFilter,
    InferenceRecord,
    LayerRecord,
    TensorStats,
    TensorStore,
    Trace,
    open_trace,
)
from .errors import (
    CapsError,
    CaptureError,
    CardError,
    ChecksumError,
    DataError,
    ExplainError,
    ParityError,
    TargetError,
    FetchError,
    ImageError,
    InputError,
    MetaError,
    ModelLoadError,
    ModelNotFetchedError,
    OfflineError,
    TraceFormatError,
    UnknownModelError,
    UnsupportedOpError,
    WorkbenchError,
    ZooError,
)
from .decisions import DecisionLog, Fate
from .media import Frame, load_image
from .meta import (
    ClassificationMtd,
    ObjectDetectionMtd,
    RelationMeta,
    RelationType,
    SegmentationMtd,
    TrackingMtd,
)
from .nms import greedy_nms, replay, soft_nms, weighted_nms
from .track import IoUTracker
from .pipeline import Pipeline
from .result import FrameResult, open_result
from .explain import Attribution, explain
from .preprocess import Transform, preprocess
from .tensors import CapsReport, TensorCaps, TensorSpec, check_caps
from .zoo import ModelCard

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # records
    "Frame", "load_image", "TensorSpec", "TensorCaps", "CapsReport", "check_caps", "ModelCard",
    # inference and capture
    "load_model", "preprocess", "Transform", "InferenceRecord", "LayerRecord", "TensorStore",
    "TensorStats", "CaptureFilter", "Trace", "open_trace",
    # decoding, NMS, relation meta, tracking
    "DecisionLog", "Fate", "greedy_nms", "weighted_nms", "soft_nms", "replay", "RelationMeta",
    "RelationType", "ClassificationMtd", "ObjectDetectionMtd", "TrackingMtd", "SegmentationMtd",
    "IoUTracker",
    # pipelines and their per-frame results
    "Pipeline", "FrameResult", "open_result",
    # attribution
    "explain", "Attribution",
    # modules
    "zoo", "data",
    # errors
    "WorkbenchError", "ZooError", "CardError", "UnknownModelError", "ModelNotFetchedError",
    "FetchError", "OfflineError", "ChecksumError", "CapsError", "ModelLoadError", "InputError",
    "ImageError", "UnsupportedOpError", "CaptureError", "TraceFormatError", "DataError", "MetaError",
    "ExplainError", "TargetError", "ParityError",
]

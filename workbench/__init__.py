"""Explainability workbench for vision models.

Load a real ONNX or TFLite model, run one frame through an open analytics pipeline and keep
everything: tensors, decoder decisions, relations and attributions. See README.md.
"""

from __future__ import annotations

from . import data, zoo
from .errors import (
    CapsError,
    CaptureError,
    CardError,
    ChecksumError,
    DataError,
    FetchError,
    ImageError,
    InputError,
    ModelLoadError,
    ModelNotFetchedError,
    OfflineError,
    TraceFormatError,
    UnknownModelError,
    UnsupportedOpError,
    WorkbenchError,
    ZooError,
)
from .media import Frame, load_image
from .tensors import CapsReport, TensorCaps, TensorSpec, check_caps
from .zoo import ModelCard

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # records
    "Frame", "load_image", "TensorSpec", "TensorCaps", "CapsReport", "check_caps", "ModelCard",
    # modules
    "zoo", "data",
    # errors
    "WorkbenchError", "ZooError", "CardError", "UnknownModelError", "ModelNotFetchedError",
    "FetchError", "OfflineError", "ChecksumError", "CapsError", "ModelLoadError", "InputError",
    "ImageError", "UnsupportedOpError", "CaptureError", "TraceFormatError", "DataError",
]

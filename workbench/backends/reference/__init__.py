"""The reference backend: a small torch interpreter for ONNX and TFLite graphs.

>>> from workbench.backends.reference import ReferenceSession, SUPPORTED_ONNX_OPS
>>> "Conv" in SUPPORTED_ONNX_OPS
True

Importing this package registers the ``"reference"`` backend and fills the op registries.
"""

from __future__ import annotations

from . import onnx_ops  # noqa: F401  (fills ONNX_OPS)
from .registry import ONNX_OPS, TFLITE_OPS
from .session import ReferenceSession

try:  # the TFLite half lives in its own package; absent until it is written
    from . import tflite_ops  # noqa: F401
except ImportError:  # pragma: no cover - depends on the tree
    pass

__all__ = ["ReferenceSession", "SUPPORTED_ONNX_OPS", "SUPPORTED_TFLITE_OPS"]

#: ONNX op types (default domain) the interpreter builds.
SUPPORTED_ONNX_OPS: frozenset[str] = frozenset(ONNX_OPS)
#: TFLite builtin operator names the interpreter builds.
SUPPORTED_TFLITE_OPS: frozenset[str] = frozenset(TFLITE_OPS)

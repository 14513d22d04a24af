"""ONNX op builders of the reference interpreter, one module per op family.

Importing this package registers every builder in :data:`..registry.ONNX_OPS`.
"""

from __future__ import annotations

from . import activation, conv, elementwise, linear, norm, pool, reduce, resize, shape  # noqa: F401

__all__: list[str] = []

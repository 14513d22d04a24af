"""TFLite op builders of the reference interpreter, one op family per module.

Importing this package registers every builder in
:data:`workbench.backends.reference.registry.TFLITE_OPS`.
"""

from __future__ import annotations

from . import activation, conv, elementwise, pool, quant, reduce, resize, shape  # noqa: F401

__all__ = ["activation", "conv", "elementwise", "pool", "quant", "reduce", "resize", "shape"]

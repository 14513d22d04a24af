"""ONNX element types the reference interpreter represents exactly with torch.

Types torch cannot compute with (strings, float8, int4, uint16/32/64, complex, bfloat16 whose
values numpy cannot hold) are left out: a model that uses them fails at load time.
"""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto

__all__ = ["ONNX_TO_TORCH", "TORCH_TO_NUMPY", "onnx_type_name", "torch_dtype"]

ONNX_TO_TORCH: dict[int, torch.dtype] = {
    TensorProto.FLOAT: torch.float32,
    TensorProto.DOUBLE: torch.float64,
    TensorProto.FLOAT16: torch.float16,
    TensorProto.UINT8: torch.uint8,
    TensorProto.INT8: torch.int8,
    TensorProto.INT16: torch.int16,
    TensorProto.INT32: torch.int32,
    TensorProto.INT64: torch.int64,
    TensorProto.BOOL: torch.bool,
}

TORCH_TO_NUMPY: dict[torch.dtype, np.dtype] = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.uint8: np.dtype(np.uint8),
    torch.int8: np.dtype(np.int8),
    torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32),
    torch.int64: np.dtype(np.int64),
    torch.bool: np.dtype(np.bool_),
}


def onnx_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def torch_dtype(elem_type: int) -> torch.dtype | None:
    """The torch dtype of an ONNX element type, or None when it is not supported."""
    return ONNX_TO_TORCH.get(int(elem_type))

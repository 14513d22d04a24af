"""Helpers shared by the ONNX op builders: attributes with defaults, axes, constant inputs.

Builders run at load time and must reject what they cannot do faithfully, so
:func:`attributes` refuses attributes an op does not know instead of ignoring them.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..program import NodeInfo
from ..ophelpers import const_ints, has_input, norm_axis, to_ints  # noqa: F401  (re-exported)

__all__ = [
    "attributes", "has_input", "const_ints", "to_ints", "norm_axis", "norm_axes",
    "FLOAT_DTYPES", "is_float", "opt",
]

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def attributes(info: NodeInfo, defaults: dict[str, Any]) -> dict[str, Any]:
    """The node's attributes filled with ``defaults``; an unknown attribute -> UnsupportedOpError."""
    unknown = sorted(set(info.attributes) - set(defaults))
    if unknown:
        raise info.unsupported(f"attribute(s) {unknown} are not supported")
    return {k: info.attributes.get(k, v) for k, v in defaults.items()}


def norm_axes(axes: Sequence[int], rank: int) -> list[int]:
    out = [norm_axis(int(a), rank) for a in axes]
    if len(set(out)) != len(out):
        raise IndexError(f"axes {list(axes)} repeat an axis")
    return out


def is_float(t: torch.Tensor) -> bool:
    return t.dtype in FLOAT_DTYPES


def opt(args: Sequence[Any], i: int) -> Any:
    """The i-th runtime argument or None when it is omitted."""
    return args[i] if i < len(args) else None

"""Helpers shared by the ONNX and TFLite op builders (inputs, constant ints, axes)."""

from __future__ import annotations

from typing import Sequence

import torch

from .program import NodeInfo

__all__ = ["has_input", "to_ints", "const_ints", "norm_axis"]


def has_input(info: NodeInfo, i: int) -> bool:
    """Is the i-th (optional) input given? (ONNX: an empty name; TFLite: index -1 -> empty.)"""
    return i < len(info.inputs) and bool(info.inputs[i])


def to_ints(t: torch.Tensor | Sequence[int]) -> list[int]:
    """A 0/1-D integer tensor (or sequence) as a list of Python ints."""
    if isinstance(t, torch.Tensor):
        return [int(v) for v in t.reshape(-1).tolist()]
    return [int(v) for v in t]


def const_ints(info: NodeInfo, i: int) -> list[int] | None:
    """The i-th input as ints when it is a constant known at load time, else None."""
    c = info.const(i)
    return None if c is None else to_ints(c)


def norm_axis(axis: int, rank: int) -> int:
    """Negative axes count from the end; out of range -> IndexError (reported by the session)."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise IndexError(f"axis {axis} is out of range for a tensor of rank {rank}")
    return a

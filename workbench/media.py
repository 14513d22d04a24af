"""Frames: the pictures that go into a pipeline.

A :class:`Frame` is always an ``(H, W, 3)`` ``uint8`` RGB array plus an id and a timestamp.
:func:`Frame.from_array` and :func:`load_image` turn whatever a user has (grayscale, RGBA,
float images in [0, 1], image files) into one, or raise a typed error saying what was wrong.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageError, InputError

__all__ = ["Frame", "load_image", "to_rgb_uint8"]

_counter = itertools.count()


def to_rgb_uint8(array: np.ndarray, *, what: str = "image") -> np.ndarray:
    """Convert an image array to ``(H, W, 3) uint8`` RGB.

    Accepts ``(H, W)`` gray, ``(H, W, 1|3|4)``, uint8 or bool, and floats in [0, 1] (or [0, 255]
    when the maximum exceeds 1). NaN/Inf and other dtypes raise :class:`InputError`.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(
            f"{what} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {a.shape}",
            hint="pass one RGB picture; for a batch, make one Frame per picture",
        )
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{what} contains NaN or Inf values", hint="clean the array first")
        scale = 255.0 if float(a.max(initial=0.0)) <= 1.0 else 1.0
        a = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        if a.dtype != np.uint8:
            if a.min(initial=0) < 0 or a.max(initial=0) > 255:
                raise InputError(
                    f"{what} has integer values outside 0..255 (dtype {a.dtype})",
                    hint="rescale to uint8 before making a Frame",
                )
            a = a.astype(np.uint8)
    else:
        raise InputError(f"{what} has unsupported dtype {a.dtype}", hint="use uint8 or float")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``(H, W, 3) uint8`` RGB; broken files raise :class:`ImageError`."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageError(f"image file not found: {p}", hint="check the path")
    try:
        with Image.open(p) as im:
            im.load()
            return to_rgb_uint8(np.asarray(im.convert("RGB")), what=str(p))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"cannot decode image {p}: {exc}",
            hint="the file is truncated or not an image; re-export it as PNG or JPEG",
        ) from exc


@dataclass(frozen=True)
class Frame:
    """One picture entering a pipeline.

    ``image`` is ``(H, W, 3) uint8`` RGB (made read-only); ``id`` names the frame in traces and
    reports; ``timestamp`` is seconds (wall clock when not given); ``source`` says where the
    pixels came from (a file path, ``"skimage:astronaut"``, ``"shapes:seed=3"``).
    """

    image: np.ndarray
    id: str = ""
    timestamp: float = field(default_factory=time.time)
    source: str | None = None

    def __post_init__(self) -> None:
        img = to_rgb_uint8(self.image, what="Frame.image")
        if img is self.image:
            img = img.copy()
        img.setflags(write=False)
        object.__setattr__(self, "image", img)
        if not self.id:
            object.__setattr__(self, "id", f"frame-{next(_counter)}")

    @classmethod
    def from_array(cls, array: np.ndarray, id: str = "", source: str | None = None) -> "Frame":
        return cls(array, id=id, source=source)

    @classmethod
    def open(cls, path: str | os.PathLike, id: str = "") -> "Frame":
        """Frame from an image file (PNG, JPEG, ...)."""
        return cls(load_image(path), id=id or Path(path).stem, source=str(path))

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    def __repr__(self) -> str:
        return f"Frame(id={self.id!r}, size={self.width}x{self.height}, source={self.source!r})"

"""The model input an attribution explains, rebuilt from a FrameResult.

Attribution methods work on an *image view* of the model input, ``[1, C, H, W]`` float32 in the
model's value space (after normalisation), whatever the model's layout: NCHW, NHWC, or MTCNN's
transposed ``(N, W, H, C)``. :class:`InputLayout` converts between the two views; maps come out
in the image view, i.e. in model-input pixels, and the frame -> input :class:`Transform` takes
them to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ExplainError
from ..preprocess import Transform, crop_image, crop_transform, infer_input_spec, preprocess
from ..zoo import ModelCard, get_card

if TYPE_CHECKING:
    from ..decoders.base import Decoder
    from ..result import FrameResult
    from .targets import Target

__all__ = ["InputLayout", "Subject", "build_subject"]

_LAYOUTS = ("NCHW", "NHWC", "NWHC")


@dataclass(frozen=True)
class InputLayout:
    """How the model's input tensor holds the image: ``NCHW``, ``NHWC`` or ``NWHC`` (MTCNN: the
    image transposed, ``(N, W, H, C)``)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in _LAYOUTS:
            raise ExplainError(f"unknown input layout {self.name!r}", hint=f"use one of {_LAYOUTS}")

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Model layout ``[B, ...]`` -> image view ``[B, C, H, W]``."""
        if self.name == "NCHW":
            return x
        if self.name == "NHWC":
            return x.permute(0, 3, 1, 2)
        return x.permute(0, 3, 2, 1)

    def to_model(self, img: torch.Tensor) -> torch.Tensor:
        """Image view ``[B, C, H, W]`` -> model layout (a view; call ``.contiguous()`` for numpy)."""
        if self.name == "NCHW":
            return img
        if self.name == "NHWC":
            return img.permute(0, 2, 3, 1)
        return img.permute(0, 3, 2, 1)

    def spatial_to_image(self, a: np.ndarray) -> np.ndarray:
        """A map on the model's spatial grid ``(S0, S1)`` -> ``(H, W)`` (transposed for NWHC)."""
        return a.T if self.name == "NWHC" else a


@dataclass(frozen=True, eq=False)
class Subject:
    """One model input under explanation.

    ``x``: the input as the deployed model got it (model layout, batch 1); ``image``: its image
    view ``[1, C, H, W]``; ``transform``: frame -> model-input pixels; ``pixel_lo`` /
    ``pixel_hi``: the model values ``[C]`` of pixel values 0 and 255 (normalisation is affine per
    channel); ``backend``: the deployed backend that made the result.
    """

    card: ModelCard
    backend: str
    x: np.ndarray
    layout: InputLayout
    transform: Transform
    frame_size: tuple[int, int]
    decoder: "Decoder"
    pixel_lo: np.ndarray
    pixel_hi: np.ndarray
    crop_box: tuple[int, int, int, int] | None = None

    @property
    def image(self) -> torch.Tensor:
        return self.layout.to_image(torch.from_numpy(np.ascontiguousarray(self.x))).contiguous()

    @property
    def input_name(self) -> str:
        return self.card.input.name if self.card.input is not None and self.card.input.name else ""

    @property
    def size(self) -> tuple[int, int]:
        """Image-view (height, width)."""
        img = self.image
        return int(img.shape[2]), int(img.shape[3])

    def pixel_value(self, p: float) -> torch.Tensor:
        """The model values ``[1, C, 1, 1]`` of a uniform pixel value ``p`` (0..255)."""
        v = self.pixel_lo + (self.pixel_hi - self.pixel_lo) * (float(p) / 255.0)
        return torch.as_tensor(v, dtype=torch.float32).reshape(1, -1, 1, 1)

    def to_pixels(self, img: torch.Tensor) -> np.ndarray:
        """Image view -> ``(H, W, C)`` float pixel values 0..255 (for superpixels and display)."""
        lo = torch.as_tensor(self.pixel_lo, dtype=torch.float32).reshape(1, -1, 1, 1)
        hi = torch.as_tensor(self.pixel_hi, dtype=torch.float32).reshape(1, -1, 1, 1)
        span = torch.where(hi == lo, torch.ones_like(hi), hi - lo)
        p = (img.detach() - lo) / span * 255.0
        return p[0].permute(1, 2, 0).numpy()


def _pixel_range(card: ModelCard, decoder_id: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    spec = card.input
    if decoder_id == "mtcnn":  # (pixel - 127.5) * 0.0078125, whatever the card says
        lo, hi = np.full(channels, -127.5 * 0.0078125), np.full(channels, 127.5 * 0.0078125)
    elif spec is not None and spec.mean is not None and spec.std is not None:
        mean = np.resize(np.asarray(spec.mean, np.float64), channels)
        std = np.resize(np.asarray(spec.std, np.float64), channels)
        lo, hi = (0 - mean) / std, (255 - mean) / std
    else:
        r = spec.range if spec is not None and spec.range is not None else (0.0, 1.0)
        lo, hi = np.full(channels, float(r[0])), np.full(channels, float(r[1]))
    if spec is not None and spec.color == "BGR":
        lo, hi = lo[::-1].copy(), hi[::-1].copy()
    return lo.astype(np.float64), hi.astype(np.float64)


def _layout(card: ModelCard, decoder_id: str, x: np.ndarray) -> InputLayout:
    if decoder_id == "mtcnn":
        return InputLayout("NWHC")
    if card.input is not None:
        return InputLayout(card.input.layout)
    return InputLayout("NCHW" if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3) else "NHWC")


def _prepare(card: ModelCard, decoder: "Decoder", session_spec: Any, image: np.ndarray,
             box: Any = None) -> tuple[np.ndarray, Transform]:
    """What :meth:`workbench.pipeline.ModelStage.prepare` does, without a stage object."""
    prep = getattr(decoder, "prepare_input", None)
    if prep is not None:
        return prep(image, box)
    spec = card.input or infer_input_spec(session_spec)
    if box is None:
        return preprocess(image, spec)
    x, t = preprocess(crop_image(image, box), spec)
    return x, crop_transform((image.shape[1], image.shape[0]), box).then(t)


def _same_transform(a: Transform, b: Transform) -> bool:
    return (tuple(a.input_size) == tuple(b.input_size)
            and np.allclose(a.scale, b.scale, rtol=1e-6, atol=1e-9)
            and np.allclose(a.offset, b.offset, rtol=1e-6, atol=1e-6))


def _card(model_id: str) -> ModelCard:
    from ..errors import UnknownModelError

    try:
        return get_card(model_id)
    except UnknownModelError as exc:
        raise ExplainError(f"the card of model {model_id!r} that made this result is not in the zoo: {exc.message}",
                           hint="add the card's folder to $WORKBENCH_MODELS (os.pathsep-separated)") from exc


def build_subject(result: "FrameResult", target: "Target") -> Subject:
    """Rebuild the model input the target's stage saw (preprocessing is deterministic) and check
    that its transform is the one the stage recorded."""
    from ..decoders import decoder_for_card
    from .forward import deployed_session

    st = result[target.stage]
    image = result.frame.image
    box = None
    if st.kind == "mtcnn":
        card = _card("mtcnn-onet")
        recorded = st.transforms["onet"][target.decode]
        box = tuple(int(v) for v in np.asarray(st.arrays["onet_crops"][target.decode]))
    else:
        if st.model is None:
            raise ExplainError(f"stage {st.name!r} ran no model")
        card = _card(st.model)
        recorded = st.transforms["input"][target.decode]
        if st.kind == "cascade":
            box = tuple(int(v) for v in np.asarray(st.arrays["crop_boxes"][target.decode]))
    backend = st.backend or None
    decoder = decoder_for_card(card)
    session = deployed_session(card, backend)
    x, transform = _prepare(card, decoder, session.input_specs[0], image, box)
    if not _same_transform(transform, recorded):
        raise ExplainError(
            f"the rebuilt input of stage {st.name!r} does not match what the stage recorded "
            f"({transform.as_dict()} vs {recorded.as_dict()})",
            hint="was the result made with other preprocessing or decoder overrides? explain a result "
                 "made by Pipeline.from_card(...) with the card's own settings")
    layout = _layout(card, decoder.id, x)
    channels = int(layout.to_image(torch.from_numpy(np.ascontiguousarray(x))).shape[1])
    lo, hi = _pixel_range(card, decoder.id, channels)
    return Subject(card, session.backend, np.ascontiguousarray(x), layout, recorded,
                   (int(image.shape[1]), int(image.shape[0])), decoder, lo, hi,
                   None if box is None else box)  # type: ignore[arg-type]

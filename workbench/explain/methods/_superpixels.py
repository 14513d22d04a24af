"""Superpixels (SLIC, scikit-image) as Captum feature masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["slic_mask"]


def slic_mask(subject: Any, inputs: torch.Tensor, n_segments: int, compactness: float, sigma: float = 1.0) -> torch.Tensor:
    """SLIC segments of the image view ``inputs [1, C, H, W]`` -> feature mask ``[1, 1, H, W]``
    (int64 labels ``0..F-1``, shared by all channels). ``sigma`` smooths first: on noisy images
    SLIC's connectivity step otherwise merges the noise-fragmented segments into one."""
    from skimage.segmentation import slic

    pixels = np.clip(subject.to_pixels(inputs), 0, 255) / 255.0  # (H, W, C)
    gray = pixels.shape[2] == 1
    seg = slic(pixels[..., 0] if gray else pixels, n_segments=int(n_segments), compactness=float(compactness),
               sigma=float(sigma), start_label=0, channel_axis=None if gray else -1)
    _, seg = np.unique(seg, return_inverse=True)  # consecutive labels 0..F-1
    h, w = pixels.shape[:2]
    return torch.from_numpy(seg.reshape(1, 1, h, w).astype(np.int64))

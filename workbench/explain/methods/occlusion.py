"""Occlusion (Zeiler & Fergus, 2014): slide a window of baseline values over the input; a
pixel's attribution is the mean drop of the target score over the windows that cover it.

Same windows, order and arithmetic as Captum's ``Occlusion`` with a window spanning all channels
(``tests/test_explain_methods.py`` checks the maps are equal), written for throughput: Captum
builds a full-size mask per window and multiplies whole batches by it, which on a small model
costs as much as the model itself; here a batch is one copy of the input with the windows pasted
in, the unperturbed input rides in the first batch, batches are split evenly, and the drops are
spread over the pixels they cover by one transposed convolution, so the backend's batched forward
is nearly all the time spent.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._progress import progress
from .base import Method, MethodOutput, register_method


def occlusion_geometry(h: int, w: int, window: int | None, stride: int | None) -> tuple[int, int]:
    """(window, stride) in pixels: defaults ~1/8 of the shorter side and half a window."""
    win = int(window) if window else max(2, round(min(h, w) / 8))
    return min(win, h, w), int(stride) if stride else max(1, win // 2)


def window_origins(h: int, w: int, win: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of every window, row-major, as Captum places them:
    ``ceil((n - win) / stride) + 1`` per axis, so that the last window reaches the border (it is
    clipped there when the stride does not divide ``n - win``)."""
    ny, nx = -(-(h - win) // stride) + 1, -(-(w - win) // stride) + 1
    return [(j * stride, i * stride) for j in range(ny) for i in range(nx)]


def balanced_batch(total: int, max_batch: int) -> int:
    """The batch size that runs ``total`` examples in the fewest calls of at most ``max_batch``,
    split evenly (226 at 64 -> 4 calls of 57, not 64, 64, 64, 34)."""
    calls = -(-max(1, total) // max(1, max_batch))
    return -(-max(1, total) // calls)


@register_method("occlusion")
class Occlusion(Method):
    """Occlusion on the deployed backend; windows cover all channels (``H x W`` map).

    Parameters: ``window`` (pixels, default ~1/8 of the shorter side), ``stride`` (default
    window / 2). Perturbed inputs go to the backend ``max_batch`` at a time.
    """

    defaults = {"window": None, "stride": None}
    summary = "sliding-window occlusion (deployed backend)"

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        c, h, w = inputs.shape[1:]
        win, stride = occlusion_geometry(h, w, self.params["window"], self.params["stride"])
        self.params.update(window=win, stride=stride)
        origins = window_origins(h, w, win, stride)
        ny, nx = -(-(h - win) // stride) + 1, -(-(w - win) // stride) + 1
        batch = balanced_batch(len(origins) + 1, int(self.forward.max_batch))
        image = inputs[0].numpy()
        base = baselines[0].numpy()
        drops = torch.empty(len(origins), dtype=torch.float64)
        base_score: float | None = None
        bar = progress(total=len(origins), desc="occlusion")
        try:
            start = 0
            while start < len(origins):
                extra = 1 if base_score is None else 0  # the unperturbed input rides in the first batch
                chunk = origins[start : start + batch - extra]
                # one contiguous copy of the input per batch (numpy: ~10x faster than torch's
                # clone of an expanded view), then only the windows' pixels are overwritten
                x = np.broadcast_to(image, (len(chunk) + extra, c, h, w)).copy()
                for b, (y0, x0) in enumerate(chunk, start=extra):
                    x[b, :, y0 : y0 + win, x0 : x0 + win] = base[:, y0 : y0 + win, x0 : x0 + win]
                scores = self.forward(torch.from_numpy(x)).to(torch.float64)
                if extra:
                    base_score = float(scores[0])
                drops[start : start + len(chunk)] = base_score - scores[extra:]
                start += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
        # every window adds its drop to the pixels it covers: a transposed convolution of the grid
        # of drops with a box of ones (cropped where the last windows hang over the border)
        box = torch.ones(1, 1, win, win, dtype=torch.float64)
        grid = drops.reshape(1, 1, ny, nx)
        total = F.conv_transpose2d(grid, box, stride=stride)[0, 0, :h, :w]
        count = F.conv_transpose2d(torch.ones_like(grid), box, stride=stride)[0, 0, :h, :w]
        attr = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
        return MethodOutput(attr[None].to(torch.float32), notes={"perturbations": len(origins), "batch": batch})

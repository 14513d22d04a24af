"""RISE (Petsiuk et al., 2018) and D-RISE (Petsiuk et al., 2021): average random masks weighted
by the target score of the masked input. With a detection target the score is D-RISE's
similarity (IoU x class score of the best-matching candidate); with a class it is RISE."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._progress import progress
from .base import Method, MethodOutput, register_method
from .occlusion import balanced_batch


def rise_masks(n: int, size: tuple[int, int], grid: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` smooth random masks ``[n, 1, H, W]`` in [0, 1]: a ``grid x grid`` binary grid (keep
    probability ``p``), bilinearly upsampled to cells of ``ceil(size / grid)`` and shifted randomly
    by less than one cell (RISE's construction)."""
    h, w = size
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    cells = (torch.rand(n, 1, grid, grid, generator=generator) < p).float()
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False)
    dy = torch.randint(0, ch, (n,), generator=generator)
    dx = torch.randint(0, cw, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # [n, H]
    cols = (dx[:, None] + torch.arange(w)[None, :])  # [n, W]
    idx = torch.arange(n)[:, None, None]
    return up[:, 0][idx, rows[:, :, None], cols[:, None, :]][:, None]


@register_method("d-rise")
class DRise(Method):
    """RISE / D-RISE on the deployed backend: ``n_masks`` masks of a ``grid x grid`` pattern with
    keep probability ``p`` (seeded by ``seed``), evaluated ``max_batch`` at a time; masked-out
    pixels take the baseline. Map = sum_i score_i * mask_i / (n_masks * p)."""

    defaults = {"n_masks": 1000, "grid": 8, "p": 0.5, "seed": 0}
    summary = "random-mask saliency; D-RISE similarity for detections (deployed backend)"

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        n, grid, p = int(self.params["n_masks"]), int(self.params["grid"]), float(self.params["p"])
        h, w = inputs.shape[2:]
        gen = torch.Generator().manual_seed(int(self.params["seed"]))
        total = torch.zeros(1, h, w, dtype=torch.float64)
        batch = balanced_batch(n, self.forward.max_batch)
        scores_sum = 0.0
        bar = progress(total=n, desc="d-rise")
        try:
            for start in range(0, n, batch):
                m = rise_masks(min(batch, n - start), (h, w), grid, p, gen)
                x = inputs * m + baselines * (1 - m)
                s = self.forward(x).to(torch.float64)
                total += (s[:, None, None, None] * m.to(torch.float64)).sum(0)[0][None]
                scores_sum += float(s.sum())
                bar.update(len(m))
        finally:
            bar.close()
        return MethodOutput((total / (n * p)).float(), notes={"mean_masked_score": scores_sum / n})

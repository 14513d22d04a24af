"""Saliency (Simonyan et al., 2014): the gradient of the target score with respect to the input."""

from __future__ import annotations

from typing import Any

import torch

from .base import GradientMethod, register_method


@register_method("saliency")
class Saliency(GradientMethod):
    """Captum's Saliency on the reference model; ``abs`` (default True) takes |gradient|."""

    per_channel = True
    defaults = {"abs": True}
    summary = "input gradient (reference backend)"

    def _captum(self) -> Any:
        from captum.attr import Saliency as CaptumSaliency

        return CaptumSaliency(self.forward)

    def _kwargs(self, inputs: torch.Tensor, baselines: torch.Tensor) -> dict[str, Any]:
        return {"abs": bool(self.params["abs"])}

"""Integrated gradients (Sundararajan et al., 2017): the path integral of the gradient from the
baseline to the input, times (input - baseline); completeness makes the map sum to
``F(input) - F(baseline)`` up to the convergence delta."""

from __future__ import annotations

from typing import Any

import torch

from .base import GradientMethod, register_method


@register_method("integrated-gradients")
class IntegratedGradients(GradientMethod):
    """Captum's IntegratedGradients: ``n_steps`` points of ``method`` (gausslegendre, riemann_*),
    evaluated ``max_batch`` at a time; returns the convergence delta."""

    per_channel = True
    has_convergence_delta = True
    multiplies_by_inputs = True
    defaults = {"n_steps": 32, "method": "gausslegendre"}
    summary = "path-integrated gradients from the baseline (reference backend)"

    def _captum(self) -> Any:
        from captum.attr import IntegratedGradients as CaptumIG

        return CaptumIG(self.forward, multiply_by_inputs=True)

    def _kwargs(self, inputs: torch.Tensor, baselines: torch.Tensor) -> dict[str, Any]:
        return {"baselines": baselines, "n_steps": int(self.params["n_steps"]), "method": str(self.params["method"]),
                "internal_batch_size": self.forward.max_batch, "return_convergence_delta": True}

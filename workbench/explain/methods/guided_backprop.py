"""Guided backpropagation (Springenberg et al., 2015): gradients through ReLU-like ops are
clamped to >= 0 on the way back.

Captum's GuidedBackprop hooks ``nn.ReLU`` modules; the reference interpreter runs ops, not
modules, so :meth:`~workbench.explain.forward.ReferenceModel.guided_relus` puts an identity
``nn.ReLU`` probe after every ReLU-like node (Relu, Clip >= 0, PRelu, LeakyRelu, TFLite fused
RELU / RELU6) for the duration of the call, and removes them in ``finally``.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import GradientMethod, MethodOutput, register_method


@register_method("guided-backprop")
class GuidedBackprop(GradientMethod):
    """Captum's GuidedBackprop on the reference model with ReLU probes."""

    per_channel = True
    defaults: dict[str, Any] = {}
    summary = "gradients with ReLU backward clamped to >= 0 (reference backend)"

    def _captum(self) -> Any:
        from captum.attr import GuidedBackprop as CaptumGBP

        return CaptumGBP(self.forward)

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        with self.forward.guided_relus() as n:
            attr, delta = self._run(inputs, baselines)
        return MethodOutput(attr, delta, notes={"relu_probes": n})

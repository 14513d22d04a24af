"""Input x gradient (Shrikumar et al., 2016): the gradient times the input value."""

from __future__ import annotations

from typing import Any

from .base import GradientMethod, register_method


@register_method("input-x-gradient")
class InputXGradient(GradientMethod):
    """Captum's InputXGradient on the reference model (values in the model's input space)."""

    per_channel = True
    multiplies_by_inputs = True
    defaults: dict[str, Any] = {}
    summary = "gradient times input (reference backend)"

    def _captum(self) -> Any:
        from captum.attr import InputXGradient as CaptumIxG

        return CaptumIxG(self.forward)

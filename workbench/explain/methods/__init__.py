"""Attribution methods, one per file, registered by their command-line id.

Perturbation methods run on the deployed backend: occlusion, feature-ablation, kernel-shap, lime,
d-rise. Gradient methods run on the reference backend: saliency, integrated-gradients,
input-x-gradient, guided-backprop, grad-cam (each also inside a NoiseTunnel with
``noise_tunnel=...``).
"""

from __future__ import annotations

import importlib
import pkgutil

from ...errors import ExplainError
from .base import METHODS, GradientMethod, Method, MethodOutput, register_method

__all__ = ["METHODS", "Method", "GradientMethod", "MethodOutput", "register_method", "get_method", "method_ids"]

#: the command-line order of the ids
ORDER = ("occlusion", "feature-ablation", "kernel-shap", "lime", "d-rise", "saliency", "integrated-gradients",
         "input-x-gradient", "guided-backprop", "grad-cam")


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def method_ids() -> list[str]:
    """Registered method ids, command-line order first."""
    _load_all()
    return [m for m in ORDER if m in METHODS] + sorted(set(METHODS) - set(ORDER))


def get_method(method_id: str) -> type[Method]:
    """The method class of an id; an unknown id raises :class:`ExplainError` listing them all."""
    _load_all()
    try:
        return METHODS[method_id]
    except (KeyError, TypeError):
        raise ExplainError(f"unknown attribution method {method_id!r}",
                           hint=f"methods: {', '.join(method_ids())}") from None

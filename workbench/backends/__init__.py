"""Backends (inference elements): onnxruntime, LiteRT and the reference torch interpreter.

>>> import workbench
>>> session = workbench.load_model("mtcnn-rnet", backend="onnxruntime")   # doctest: +SKIP
>>> record = session.trace({"input_2": x})                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable

from ..errors import WorkbenchError
from ..zoo import ModelCard, get_card, load
from .base import Session

__all__ = ["Session", "register_backend", "BACKENDS", "load_model", "available_backends"]

#: backend name -> Session subclass, filled by ``@register_backend`` when a module is imported.
BACKENDS: dict[str, type[Session]] = {}
#: backend name -> module that registers it (imported lazily: heavy frameworks load on demand).
_MODULES = {
    "onnxruntime": "workbench.backends.onnxruntime",
    "litert": "workbench.backends.litert",
    "reference": "workbench.backends.reference",
}
_DEFAULT_FOR_FORMAT = {"onnx": "onnxruntime", "tflite": "litert"}


def register_backend(name: str) -> Callable[[type[Session]], type[Session]]:
    def deco(cls: type[Session]) -> type[Session]:
        cls.backend = name
        BACKENDS[name] = cls
        return cls

    return deco


def available_backends() -> list[str]:
    return sorted(_MODULES)


def _backend_class(name: str) -> type[Session]:
    if name not in _MODULES:
        raise WorkbenchError(
            f"unknown backend {name!r}", hint=f"use one of {', '.join(available_backends())}"
        )
    if name not in BACKENDS:
        importlib.import_module(_MODULES[name])
    return BACKENDS[name]


def load_model(
    model: str | os.PathLike | ModelCard, backend: str | None = None, **options: Any
) -> Session:
    """Load a zoo id, a card (object or .toml path) or a model file on a backend.

    ``backend`` defaults to onnxruntime for ONNX and litert for TFLite models.
    """
    card = get_card(model)
    zm = load(card)
    name = backend or _DEFAULT_FOR_FORMAT[card.format]
    return _backend_class(name)(zm.card, zm.path, **options)  # type: ignore[call-arg]

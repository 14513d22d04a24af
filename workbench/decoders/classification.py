"""Classification: one vector of C class scores -> activation, top-k, threshold.

Tensor-ids: ``classification-logits`` (activation ``softmax`` or ``sigmoid``, the default
softmax) or ``classification-probabilities`` (activation ``none``: the model already outputs
probabilities). The id is part of the caps so that a ``[1, C]`` tensor of probabilities is
never put through a second softmax: low-rank tensors look alike, their meaning does not
(seed 004). Dims ``[1, C]`` or ``[C]`` (implicit batch), float32; ``C`` = the number of labels
when the card gives them.

Parameters: ``activation`` (softmax | sigmoid | none), ``top_k`` (5; 0 = all classes),
``threshold`` (none; a class is listed iff its score > threshold). ``top`` is ranked by score,
ties by class index, so ``top[0]`` is the argmax of the logits. Softmax runs in float64.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..preprocess import Transform
from ..tensors import TensorCaps, TensorSpec
from ._common import Param, parse_params
from .base import Classification, DecodeResult, Decoder, register_decoder

__all__ = ["ClassificationDecoder", "LOGITS_ID", "PROBABILITIES_ID"]

LOGITS_ID = "classification-logits"
PROBABILITIES_ID = "classification-probabilities"

PARAMS = (
    Param("activation", "str", "softmax", choices=("softmax", "sigmoid", "none"),
          doc="softmax/sigmoid for logits, none when the model outputs probabilities"),
    Param("top_k", "int", 5, minimum=0, doc="how many classes to list (0 = all)"),
    Param("threshold", "float", None, optional=True, doc="list a class only if its score > threshold"),
)


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a ``[C]`` vector, in float64."""
    z = x.astype(np.float64) - np.max(x)
    e = np.exp(z)
    return e / e.sum()


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function in float64 (no overflow warning for large |x|)."""
    x = x.astype(np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@register_decoder("classification")
class ClassificationDecoder(Decoder):
    """``[1, C]`` or ``[C]`` logits (or probabilities) -> :class:`Classification`."""

    def __init__(self, labels: Sequence[str] = (), **params: Any) -> None:
        super().__init__(labels, **params)
        self.p = parse_params("classification", PARAMS, params)
        self._caps = self._make_caps()

    def caps(self) -> tuple[TensorCaps, ...]:
        return self._caps

    def _make_caps(self) -> tuple[TensorCaps, ...]:
        tid = PROBABILITIES_ID if self.p["activation"] == "none" else LOGITS_ID
        c = len(self.labels)
        return (TensorCaps.of(TensorSpec(tid, (1, c), "row-major", "float32"),
                              TensorSpec(tid, (c,), "row-major", "float32"), role="scores"),)

    def _decode(self, tensors: dict[str, np.ndarray], transform: Transform) -> DecodeResult:
        logits = np.asarray(tensors["scores"]).reshape(-1)
        if not np.isfinite(logits).all():
            raise InputError(f"classification: {int((~np.isfinite(logits)).sum())} of {len(logits)} "
                             "scores are NaN or Inf", hint="check the model's input (range, layout)")
        act = self.p["activation"]
        scores = softmax(logits) if act == "softmax" else sigmoid(logits) if act == "sigmoid" else logits.astype(np.float64)
        k = self.p["top_k"] or len(scores)
        top = np.argsort(-scores, kind="stable")[:k]
        if self.p["threshold"] is not None:
            top = top[scores[top] > self.p["threshold"]]
        return DecodeResult(self.id, classification=Classification(
            scores=scores, logits=logits.copy(), top=top.astype(np.int64), labels=self.labels, activation=act))

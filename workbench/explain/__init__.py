"""Attribution maps for one frame's results, on the model as deployed.

>>> import workbench as wb
>>> result = wb.Pipeline.from_card("blazeface-short").run(frame)           # doctest: +SKIP
>>> a = wb.explain(result, 0, method="occlusion")                          # doctest: +SKIP
>>> a.frame_map.shape, a.sanity["spearman_abs"], a.faithfulness["deletion_auc"]   # doctest: +SKIP

Perturbation methods (occlusion, feature-ablation, kernel-shap, lime, d-rise) run on the deployed
backend (onnxruntime, LiteRT), batched; gradient methods (saliency, integrated-gradients,
input-x-gradient, guided-backprop, grad-cam, each optionally in a NoiseTunnel) run on the
reference interpreter after a check that it reproduces the deployed outputs on this frame. Every
:class:`Attribution` carries its map in model-input and frame pixels, its target, parameters,
time, convergence delta, a sanity check (cascading randomization) and faithfulness (deletion /
insertion AUC), and is saved and reopened with its FrameResult.

Torch and Captum load on the first call, not on ``import workbench``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .attribution import Attribution, input_to_frame, open_attributions, save_attributions
from .targets import Target, resolve_target

if TYPE_CHECKING:
    from ..result import FrameResult

__all__ = [
    "explain", "Attribution", "Target", "resolve_target", "input_to_frame", "save_attributions",
    "open_attributions", "method_ids", "get_method", "why_suppressed", "why_missed",
]


def explain(result: "FrameResult", target: Any = None, method: str = "occlusion", **params: Any) -> Attribution:
    """Attribute a target of ``result`` to the input pixels; see :func:`workbench.explain.api.explain`.

    ``target``: None (top class / best detection), K (K-th kept detection by score, or a class
    index), a label or a dict (``{"row": r}``, ``{"box": [...], "class": c}``, ``{"output": name,
    "index": [...]}``, ``{"layer": name}``); ``method``: one of :func:`method_ids`.
    """
    from .api import explain as _explain

    return _explain(result, target, method, **params)


def method_ids() -> list[str]:
    """The registered method ids (what ``workbench explain --method`` accepts)."""
    from .methods import method_ids as _ids

    return _ids()


def get_method(method_id: str) -> Any:
    """A method class by id (raises :class:`~workbench.errors.ExplainError` listing the ids)."""
    from .methods import get_method as _get

    return _get(method_id)


def why_suppressed(result: "FrameResult", row: int, method: str = "occlusion", **params: Any) -> Any:
    """See :func:`workbench.explain.why.why_suppressed`."""
    from .why import why_suppressed as _why

    return _why(result, row, method, **params)


def why_missed(result: "FrameResult", box: Any, label: Any = None, method: str = "occlusion", **params: Any) -> Any:
    """See :func:`workbench.explain.why.why_missed`."""
    from .why import why_missed as _why

    return _why(result, box, label, method, **params)

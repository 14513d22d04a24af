"""The attribution-method base class: capability flags, parameter checking, one verb.

A method is built around the forward function it explains (a
:class:`~workbench.explain.forward.PerturbationForward` on the deployed backend, or a
:class:`~workbench.explain.forward.ReferenceModel` for gradients) and the
:class:`~workbench.explain.subject.Subject`; :meth:`Method.attribute` checks the image-view input
and calls ``_attribute``. Capability flags (as Captum's) tell callers what to expect instead of
type checks::

    needs_gradients        runs on the reference backend (differentiable)
    has_convergence_delta  returns a convergence delta (integrated gradients)
    multiplies_by_inputs   the map is a contribution (x - baseline) * ..., not a sensitivity
    is_layer_method        attributes at a layer (grad-cam), upsampled to the input
    per_channel            the map has one value per input channel (H x W x C), else H x W

Per-channel maps reduce to a heatmap by summing channels when they are contributions
(``multiplies_by_inputs``) and by summing magnitudes otherwise (:attr:`Method.reduction`).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import torch

from ...errors import ExplainError, InputError

__all__ = ["Method", "MethodOutput", "METHODS", "register_method", "GradientMethod", "NT_TYPES"]

#: method id (as on the command line) -> class, filled by ``@register_method``
METHODS: dict[str, type["Method"]] = {}
NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def register_method(method_id: str) -> Callable[[type["Method"]], type["Method"]]:
    def deco(cls: type[Method]) -> type[Method]:
        if method_id in METHODS:
            raise RuntimeError(f"attribution method {method_id!r} registered twice")
        cls.id = method_id
        METHODS[method_id] = cls
        return cls

    return deco


@dataclass(frozen=True)
class MethodOutput:
    """``attributions [C, H, W]`` (image view, no batch; ``C`` = 1 for channel-free maps),
    ``delta`` where the method defines one, ``notes`` (e.g. the layer grad-cam used)."""

    attributions: torch.Tensor
    delta: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """Base of every attribution method; subclasses write ``_attribute`` (and ``defaults``)."""

    id: ClassVar[str] = "?"
    needs_gradients: ClassVar[bool] = False
    has_convergence_delta: ClassVar[bool] = False
    multiplies_by_inputs: ClassVar[bool] = False
    is_layer_method: ClassVar[bool] = False
    per_channel: ClassVar[bool] = False
    #: parameter -> default (None = chosen from the input size)
    defaults: ClassVar[Mapping[str, Any]] = {}
    summary: ClassVar[str] = ""

    @classmethod
    def reduction(cls) -> str:
        """How the channels of this method's maps reduce to a heatmap: "sum" or "abs"."""
        return "abs" if cls.per_channel and not cls.multiplies_by_inputs else "sum"

    def __init__(self, forward: Any, subject: Any, **params: Any) -> None:
        known = dict(self.defaults)
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ExplainError(f"method {self.id!r}: unknown parameter(s) {unknown}",
                               hint=f"its parameters: {', '.join(sorted(known)) or '(none)'}")
        if self.needs_gradients != bool(getattr(forward, "needs_gradients", False)):
            kind = "differentiable reference" if self.needs_gradients else "plain"
            raise ExplainError(f"method {self.id!r} needs a {kind} forward function")
        self.forward = forward
        self.subject = subject
        self.params: dict[str, Any] = {**known, **params}

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        """Attribute the forward's target score to ``inputs [1, C, H, W]`` (image view);
        ``baselines`` broadcast to it (the "absent" value perturbations put in)."""
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4 or inputs.shape[0] != 1:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise InputError(f"method {self.id!r}: inputs must be a [1, C, H, W] tensor, got {got}")
        if not torch.is_floating_point(inputs):
            raise InputError(f"method {self.id!r}: inputs must be floating point, got {inputs.dtype}")
        try:
            torch.broadcast_shapes(baselines.shape, inputs.shape)
        except RuntimeError:
            raise InputError(f"method {self.id!r}: baselines {tuple(baselines.shape)} do not broadcast to the "
                             f"inputs {tuple(inputs.shape)}") from None
        inputs = inputs.detach().to(torch.float32).clone()
        baselines = baselines.detach().to(torch.float32).expand_as(inputs).contiguous()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Captum's notes on hooks and requires_grad
            out = self._attribute(inputs, baselines)
        a = out.attributions.detach()
        if a.dim() == 4:
            a = a[0]
        if a.dim() != 3 or tuple(a.shape[1:]) != tuple(inputs.shape[2:]):
            raise ExplainError(f"method {self.id!r} returned attributions of shape {tuple(a.shape)} for an input "
                               f"of {tuple(inputs.shape)}")
        return MethodOutput(a.to(torch.float32), out.delta, out.notes)

    @abstractmethod
    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        """``inputs``/``baselines`` ``[1, C, H, W]`` float32 -> :class:`MethodOutput`."""


class GradientMethod(Method):
    """A Captum gradient method on the reference model, optionally inside a NoiseTunnel.

    Common parameters: ``noise_tunnel`` (None, smoothgrad, smoothgrad_sq, vargrad),
    ``nt_samples`` and ``stdevs`` (noise standard deviation as a fraction of the input's value
    range: the model values of pixels 0 and 255).
    """

    needs_gradients = True
    tunnel_defaults: ClassVar[Mapping[str, Any]] = {"noise_tunnel": None, "nt_samples": 8, "stdevs": 0.1}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.defaults = {**cls.tunnel_defaults, **cls.defaults}

    @abstractmethod
    def _captum(self) -> Any:
        """The Captum attribution object."""

    def _kwargs(self, inputs: torch.Tensor, baselines: torch.Tensor) -> dict[str, Any]:
        """Keyword arguments of the Captum ``attribute`` call besides ``inputs``."""
        return {}

    def _evaluations(self) -> int:
        """How many examples the reference model will run (for the progress bar)."""
        per = int(self.params.get("n_steps") or 1) + (1 if self.has_convergence_delta else 0)
        return per * (int(self.params["nt_samples"]) if self.params["noise_tunnel"] else 1)

    def _run(self, inputs: torch.Tensor, baselines: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        from .._progress import progress

        bar = progress(total=self._evaluations(), desc=self.id)
        self.forward.progress_bar = bar
        try:
            return self._run_captum(inputs, baselines)
        finally:
            self.forward.progress_bar = None
            bar.close()

    def _run_captum(self, inputs: torch.Tensor, baselines: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        method = self._captum()
        kw = self._kwargs(inputs, baselines)
        nt = self.params["noise_tunnel"]
        if nt is None:
            out = method.attribute(inputs, **kw)
        else:
            from captum.attr import NoiseTunnel

            if nt not in NT_TYPES:
                raise ExplainError(f"noise_tunnel must be one of {NT_TYPES}, got {nt!r}")
            span = float(abs(self.subject.pixel_hi - self.subject.pixel_lo).mean())
            out = NoiseTunnel(method).attribute(
                inputs, nt_type=nt, nt_samples=int(self.params["nt_samples"]),
                stdevs=float(self.params["stdevs"]) * span,
                nt_samples_batch_size=self.forward.max_batch, **kw)
        if isinstance(out, tuple):
            attr, delta = out
            return attr, float(torch.as_tensor(delta).abs().max())
        return out, None

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        attr, delta = self._run(inputs, baselines)
        return MethodOutput(attr, delta)

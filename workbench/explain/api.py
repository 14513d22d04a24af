"""``explain(result, target, method=..., **params) -> Attribution``: the one entry point.

Steps: resolve the target (:mod:`.targets`), rebuild the model input the stage saw
(:mod:`.subject`), build the target score (:mod:`.scores`) and the forward function (deployed
backend for perturbation methods, the reference interpreter for gradient methods, after a parity
check), run the method, map the result to the frame, run the quality checks, and store the
:class:`Attribution` in ``result.attributions``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..errors import ExplainError, InputError, ParityError
from .attribution import Attribution, heatmap_of, input_to_frame
from .forward import PerturbationForward, ReferenceModel, deployed_session, reference_session, runner_for
from .methods import get_method
from .quality import deletion_insertion, sanity_check
from .scores import score_fn
from .subject import Subject, build_subject
from .targets import Target, resolve_target

if TYPE_CHECKING:
    from ..backends.reference.program import Program
    from ..result import FrameResult

__all__ = ["explain", "make_baseline", "parity_check", "output_steps", "BASELINES", "COMMON_PARAMS", "forward_for"]

BASELINES = ("gray", "black", "white", "zero", "mean", "blur")
#: parameters every method takes (besides its own), with defaults
COMMON_PARAMS: dict[str, Any] = {
    "baseline": None,  # None: "black" for integrated gradients, "gray" otherwise
    "score": "probability",
    "parity_tolerance": 1e-3,
    "sanity_steps": 4,
    "faithfulness_steps": 16,
    "faithfulness_baseline": "blur",
    "seed": 0,
}


def make_baseline(subject: Subject, spec: Any) -> torch.Tensor:
    """The baseline ``[1, C, H, W]`` (image view): "gray" / "black" / "white" pixels through the
    model's normalisation, "zero" (model value 0), "mean" (the image's channel means), "blur" (a
    Gaussian blur of the image, sigma = 1/16 of its size) or a number (a model value)."""
    img = subject.image
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return torch.full_like(img, float(spec))
    if spec == "gray":
        return subject.pixel_value(127.5).expand_as(img).clone()
    if spec == "black":
        return subject.pixel_value(0).expand_as(img).clone()
    if spec == "white":
        return subject.pixel_value(255).expand_as(img).clone()
    if spec == "zero":
        return torch.zeros_like(img)
    if spec == "mean":
        return img.mean(dim=(2, 3), keepdim=True).expand_as(img).clone()
    if spec == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = max(1.0, max(img.shape[2:]) / 16.0)
        a = img[0].numpy()
        return torch.from_numpy(np.stack([gaussian_filter(c, sigma, mode="nearest") for c in a])[None].astype(np.float32))
    raise ExplainError(f"unknown baseline {spec!r}", hint=f"use one of {BASELINES} or a number")


def output_steps(program: "Program") -> dict[str, tuple[Any, float]]:
    """Quantized graph outputs: name -> (their quantization or None, one step in real units).

    A quantized output itself, or a float output that DEQUANTIZE makes from a quantized tensor,
    is only defined up to one step of that grid: the reference interpreter emulates the integer
    kernels in float and may round one step the other way."""
    steps: dict[str, tuple[Any, float]] = {}
    producers = {n.info.outputs[0]: n for n in program.nodes if n.info.outputs}
    for spec in program.outputs:
        name = spec.name
        q = program.quantization.get(name)
        if q is not None:
            steps[name] = (q, float(max(q.scale)))
            continue
        node = producers.get(name)
        if node is not None and node.info.op_type == "DEQUANTIZE":
            qin = node.info.quantization.get(node.info.inputs[0])
            if qin is not None:
                steps[name] = (None, float(max(qin.scale)))
    return steps


def parity_check(subject: Subject, ref_session: Any, tolerance: float) -> dict[str, Any]:
    """Max |reference - deployed| over the outputs on this input; raises :class:`ParityError`
    when it exceeds ``tolerance * max(1, max |deployed|)`` for an output, or one quantization
    step for an output of a quantized graph (see :func:`output_steps`). Integer outputs of a
    quantized model are compared dequantized."""
    dep = deployed_session(subject.card, subject.backend).run({ref_session.input_names[0]: subject.x})
    ref = ref_session.run({ref_session.input_names[0]: subject.x})
    program = getattr(ref_session, "program", None)
    steps = output_steps(program) if program is not None else {}
    per: dict[str, float] = {}
    worst_name, worst, worst_allowed = "", 0.0, float(tolerance)
    for name, d in dep.items():
        r = ref.get(name)
        if r is None or np.shape(r) != np.shape(d):
            raise ParityError(f"the reference backend's output {name!r} is missing or has another shape "
                              f"({None if r is None else np.shape(r)} vs {np.shape(d)})")
        q, step = steps.get(name, (None, 0.0))
        if q is not None and np.asarray(d).dtype.kind in "iu":  # LiteRT gives the raw integers
            d = q.dequantize(np.asarray(d))
        diff = float(np.abs(np.asarray(r, np.float64) - np.asarray(d, np.float64)).max()) if np.size(d) else 0.0
        per[name] = diff
        allowed = float(tolerance) * max(1.0, float(np.abs(d).max()) if np.size(d) else 1.0)
        allowed = max(allowed, step * 1.001)  # float rounding of the step itself
        if diff / allowed > worst / worst_allowed:
            worst_name, worst, worst_allowed = name, diff, allowed
    doc = {"max_abs_diff": max(per.values()) if per else 0.0, "per_output": per, "tolerance": float(tolerance),
           "deployed": subject.backend}
    if steps:
        doc["quantization_step"] = {n: s for n, (_, s) in steps.items()}
    if worst > worst_allowed:
        raise ParityError(
            f"the reference backend differs from the deployed {subject.backend} on {subject.card.id}: max |diff| = "
            f"{worst:.3g} on output {worst_name!r}, tolerance {worst_allowed:.3g} "
            f"(parity_tolerance={tolerance:g} x max(1, max |output|)"
            + (", or one quantization step" if worst_name in steps else "")
            + "); its gradients would explain another model",
            hint="use a perturbation method (they run on the deployed backend), or raise parity_tolerance if "
                 "this difference is acceptable")
    return doc


def forward_for(method_cls: Any, subject: Subject, target: Target, score: Callable[..., torch.Tensor],
                program: "Program | None" = None) -> Any:
    """The forward function a method runs on: the reference model for gradient methods, layer
    targets and randomized programs; the deployed runner otherwise."""
    if method_cls.needs_gradients or target.kind == "layer" or program is not None:
        ref = reference_session(subject.card)
        model = ReferenceModel(ref, subject.layout, score, subject.image, program=program,
                               layer=target.layer if target.kind == "layer" else None)
        if not method_cls.needs_gradients:
            return _NoGrad(model)
        return model
    session = deployed_session(subject.card, subject.backend)
    return PerturbationForward(runner_for(session, subject.x), subject.layout, score)


class _NoGrad:
    """A reference model used by a perturbation method (layer targets, sanity check)."""

    needs_gradients = False

    def __init__(self, model: ReferenceModel) -> None:
        self.model = model

    @property
    def max_batch(self) -> int:
        return self.model.max_batch if self.model.batched else 16

    @property
    def backend(self) -> str:
        return "reference"

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(img).detach().to(torch.float32)


def _split_params(method_cls: Any, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    # a common parameter the method also takes (seed) goes to both
    common = {k: (params[k] if k in method_cls.defaults else params.pop(k)) for k in list(params) if k in COMMON_PARAMS}
    unknown = sorted(set(params) - set(method_cls.defaults))
    if unknown:
        raise ExplainError(f"method {method_cls.id!r}: unknown parameter(s) {unknown}",
                           hint=f"its parameters: {', '.join(sorted(method_cls.defaults))}; common: "
                                f"{', '.join(sorted(COMMON_PARAMS))}")
    c = {**COMMON_PARAMS, **common}
    if c["baseline"] is None:
        c["baseline"] = "black" if method_cls.id == "integrated-gradients" else "gray"
    return params, c


def _to_map(attr: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` -> ``(H, W)`` when C == 1, else ``(H, W, C)``."""
    a = attr.detach().to(torch.float32).numpy()
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def _unique_name(result: "FrameResult | None", base: str) -> str:
    taken = set(getattr(result, "attributions", {}) or {}) if result is not None else set()
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def explain(result: "FrameResult", target: Any = None, method: str = "occlusion", *, stage: str | None = None,
            quality: bool | str = True, store: bool = True, name: str | None = None,
            **params: Any) -> Attribution:
    """Attribute a target of ``result`` to the pixels of the model input.

    ``target``: None (the top class / the best detection), K (the K-th kept detection by score,
    or a class index), a label, a dict (see :func:`~workbench.explain.targets.resolve_target`) or
    a :class:`Target`. ``method``: a registered id (:func:`~workbench.explain.methods.method_ids`).
    ``quality``: True (sanity check + faithfulness), "faithfulness", "sanity" or False.
    ``params``: the method's parameters plus :data:`COMMON_PARAMS` (``baseline``, ``score``
    "probability" | "logit", ``parity_tolerance``, ``sanity_steps``, ``faithfulness_steps``,
    ``faithfulness_baseline``, ``seed``). The attribution is added to ``result.attributions``
    (under ``name``, default ``<method>-<target>``) unless ``store=False``.
    """
    from ..result import FrameResult

    if not isinstance(result, FrameResult):
        raise InputError(f"explain() takes a FrameResult, got {type(result).__name__}",
                         hint="run a pipeline first: result = Pipeline.from_card(model).run(frame)")
    t0 = time.perf_counter()
    method_cls = get_method(method)
    mparams, common = _split_params(method_cls, dict(params))
    if quality not in (True, False, "sanity", "faithfulness"):
        raise ExplainError(f"quality must be True, False, 'sanity' or 'faithfulness', got {quality!r}")
    tgt = resolve_target(result, target, stage)
    subject = build_subject(result, tgt)
    sfn = score_fn(subject, tgt, common["score"])
    parity = None
    if method_cls.needs_gradients or tgt.kind == "layer":
        parity = parity_check(subject, reference_session(subject.card), float(common["parity_tolerance"]))
    forward = forward_for(method_cls, subject, tgt, sfn)
    baseline = make_baseline(subject, common["baseline"])
    image = subject.image
    with torch.no_grad():
        base_forward = forward.model if isinstance(forward, _NoGrad) else forward
        value = float(base_forward(image)[0])
    m = method_cls(forward, subject, **mparams)
    runner = getattr(forward, "runner", None)
    calls0 = runner.calls if runner is not None else 0
    out = m.attribute(image, baseline)
    input_map = _to_map(out.attributions)
    frame_map = input_to_frame(input_map, subject.transform, subject.frame_size)
    seconds = time.perf_counter() - t0
    calls = runner.calls - calls0 if runner is not None else None
    notes = {**out.notes, "method": method_cls.summary, "baseline": common["baseline"], "score": common["score"],
             "flags": {"needs_gradients": method_cls.needs_gradients,
                       "has_convergence_delta": method_cls.has_convergence_delta,
                       "multiplies_by_inputs": method_cls.multiplies_by_inputs,
                       "is_layer_method": method_cls.is_layer_method}}
    if subject.crop_box is not None:
        notes["crop_box"] = list(subject.crop_box)
    if calls is not None:
        notes["backend_calls"] = calls
    sanity = faith = None
    if quality in (True, "faithfulness"):
        fb = make_baseline(subject, common["faithfulness_baseline"])
        faith = deletion_insertion(forward, image, fb, heatmap_of(input_map, method_cls.reduction()),
                                   int(common["faithfulness_steps"]),
                                   max(1, forward.max_batch))
        faith["baseline"] = common["faithfulness_baseline"]
    if quality in (True, "sanity"):
        sanity = _sanity(method_cls, mparams, subject, tgt, sfn, baseline, input_map, common)
    attribution = Attribution(
        method=method_cls.id, params={**m.params, **{k: common[k] for k in ("baseline", "score")}}, target=tgt,
        input_map=input_map, frame_map=frame_map, transform=subject.transform, model=subject.card.id,
        backend=forward.backend, seconds=seconds, target_value=value, convergence_delta=out.delta, parity=parity,
        sanity=sanity, faithfulness=faith, name="", notes=notes, reduction=method_cls.reduction())
    final = name or _unique_name(result, f"{method_cls.id}-{tgt.slug()}")
    attribution = attribution.renamed(final)
    if store:
        result.attributions[final] = attribution
    return attribution


def _sanity(method_cls: Any, mparams: dict[str, Any], subject: Subject, target: Target, sfn: Any,
            baseline: torch.Tensor, original: np.ndarray, common: dict[str, Any]) -> dict[str, Any]:
    """Cascading randomization of the reference program, method re-run after each step."""
    from ..errors import UnsupportedOpError

    try:
        ref = reference_session(subject.card)
    except UnsupportedOpError as exc:
        return {"skipped": f"the reference backend cannot run {subject.card.id}: {exc.message}"}
    fixed = dict(mparams)

    def make_map(program: "Program") -> np.ndarray:
        fwd = forward_for(method_cls, subject, target, sfn, program=program)
        m = method_cls(fwd, subject, **fixed)
        return heatmap_of(_to_map(m.attribute(subject.image, baseline).attributions), method_cls.reduction())

    doc = sanity_check(make_map, ref.program, heatmap_of(original, method_cls.reduction()), common["sanity_steps"],
                       int(common["seed"]))
    doc["backend"] = "reference"
    return doc

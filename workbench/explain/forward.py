"""Forward functions that attribution methods call: the deployed model, batched, and the
reference interpreter as a differentiable ``torch.nn.Module``.

* :class:`BatchedRunner` runs a deployed session (onnxruntime, LiteRT) on batches of model
  inputs in few backend calls. Many exported models fix their batch at 1: for onnxruntime the
  graph is copied with a symbolic batch dimension (and ``Reshape`` targets that hard-code the
  batch as 1 turned into 0 = "copy"), for LiteRT the input is resized. Either is used only when a
  check on three inputs shows that the batched outputs equal one-by-one runs; otherwise the
  runner loops over the batch (some graphs fold the batch into a reshape, e.g. BlazeFace).
* :class:`PerturbationForward`: image-view batches ``[B, C, H, W]`` (torch) -> target scores
  ``[B]`` through a runner; what Captum's perturbation methods call.
* :class:`ReferenceModel`: the same graph on the reference interpreter, differentiable. Layer
  methods and guided backprop attach *probe* modules to chosen nodes only inside context
  managers (:meth:`ReferenceModel.layer_probe`, :meth:`ReferenceModel.guided_relus`) that
  remove them in ``finally``; the loaded program is never modified.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..backends import load_model
from ..backends.base import Session
from ..backends.reference.program import Node, Program, execute
from ..errors import ExplainError, InputError, TargetError, UnsupportedOpError, WorkbenchError
from ..zoo import ModelCard

__all__ = [
    "ScoreFn", "BatchedRunner", "PerturbationForward", "ReferenceModel", "deployed_session",
    "reference_session", "runner_for", "find_node", "RELU_LIKE", "GuidedReLU",
]

#: ``score(outputs, layers) -> [B]``: model outputs by name (batch first) and captured layer
#: tensors by name -> one target score per example.
ScoreFn = Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], torch.Tensor]

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, str, str | None], Session] = {}
_RUNNERS: dict[int, "BatchedRunner"] = {}
DEFAULT_MAX_BATCH = 64
_MAX_BATCH_BYTES = 64 * 2**20  # inputs per backend call


def _key(card: ModelCard, backend: str | None) -> tuple[str, str, str | None]:
    return (card.id, str(card.card_path or ""), backend)


def deployed_session(card: ModelCard, backend: str | None = None) -> Session:
    """The deployed session of a card (cached per process: LiteRT verifies files in a child)."""
    with _LOCK:
        k = _key(card, backend)
        if k not in _SESSIONS:
            _SESSIONS[k] = load_model(card, backend=backend)
        return _SESSIONS[k]


def reference_session(card: ModelCard) -> Any:
    """The reference-interpreter session of a card (cached). Raises the interpreter's
    :class:`UnsupportedOpError` with a hint to use a perturbation method."""
    try:
        return deployed_session(card, "reference")
    except UnsupportedOpError as exc:
        raise UnsupportedOpError(
            f"gradient methods need the reference backend, which cannot run {card.id}: {exc.message}",
            hint="use a perturbation method on the deployed backend instead: occlusion, feature-ablation, "
                 "kernel-shap, lime or d-rise",
        ) from exc


# ------------------------------------------------------------------------------ deployed runner

def _agree(a: Mapping[str, np.ndarray], singles: Sequence[Mapping[str, np.ndarray]]) -> bool:
    """Batched outputs ``a`` equal the one-by-one outputs ``singles`` (same shapes, close values)."""
    b = len(singles)
    for name, one in singles[0].items():
        got = a.get(name)
        if got is None or got.shape != (b,) + one.shape[1:] or one.shape[:1] != (1,):
            return False
        for i, s in enumerate(singles):
            ref = np.asarray(s[name], dtype=np.float64)
            scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
            if not np.allclose(np.asarray(got[i : i + 1], dtype=np.float64), ref, rtol=1e-3, atol=1e-4 * scale):
                return False
    return True


def _probe_inputs(x: np.ndarray) -> np.ndarray:
    """Three different valid inputs around ``x`` ``[1, ...]`` -> ``[3, ...]``."""
    flipped = np.ascontiguousarray(np.flip(x, axis=-2))
    mixed = (0.5 * x + 0.5 * flipped).astype(x.dtype)
    return np.concatenate([x, flipped, mixed])


def _batched_onnx(model: Any) -> bytes:
    """A copy of an ONNX model whose graph inputs/outputs have a symbolic batch dim."""
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    for vi in list(m.graph.input) + list(m.graph.output):
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del m.graph.value_info[:]
    consts = {n.output[0]: n for n in m.graph.node if n.op_type == "Constant" and n.output}
    for node in m.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        if any(a.name == "allowzero" and a.i == 1 for a in node.attribute):
            continue
        name = node.input[1]
        if name in inits:
            arr = numpy_helper.to_array(inits[name]).copy()
            if arr.ndim == 1 and arr.size and arr[0] == 1:
                arr[0] = 0
                inits[name].CopyFrom(numpy_helper.from_array(arr, name))
        elif name in consts:
            attr = next((a for a in consts[name].attribute if a.name == "value"), None)
            if attr is not None:
                arr = numpy_helper.to_array(attr.t).copy()
                if arr.ndim == 1 and arr.size and arr[0] == 1:
                    arr[0] = 0
                    attr.t.CopyFrom(numpy_helper.from_array(arr))
    return m.SerializeToString()


class BatchedRunner:
    """Run a deployed session on ``[B, ...]`` model inputs in ``ceil(B / max_batch)`` calls.

    ``mode``: "batched" (one backend call per chunk) or "loop" (batch 1 only; one call per
    example). ``calls`` / ``examples`` count backend calls and examples run.
    """

    def __init__(self, session: Session, example: np.ndarray, max_batch: int | None = None) -> None:
        self.session = session
        self.input_name = session.input_names[0]
        if len(session.input_names) != 1:
            raise ExplainError(f"{session.card.id} has {len(session.input_names)} inputs; attribution "
                               "supports single-input image models")
        self.calls = 0
        self.examples = 0
        per_example = max(1, int(example.nbytes))
        cap = max(1, min(DEFAULT_MAX_BATCH, _MAX_BATCH_BYTES // per_example))
        self._batched_fn = self._make_batched(example)
        self.mode = "batched" if self._batched_fn is not None else "loop"
        self.max_batch = int(max_batch) if max_batch else (cap if self.mode == "batched" else 1)

    # -- set-up --------------------------------------------------------------------------------
    def _single(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.session.run({self.input_name: x})

    def _make_batched(self, example: np.ndarray) -> Callable[[np.ndarray], dict[str, np.ndarray]] | None:
        backend = self.session.backend
        fn: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
        spec = self.session.input_specs[0]
        if spec.shape is not None and len(spec.shape) and spec.shape[0] == 0:
            fn = self._single  # the model declares a dynamic batch: run() takes batches
        elif backend == "onnxruntime":
            fn = self._onnx_batched()
        elif backend == "litert":
            sess = self.session

            def fn(x: np.ndarray) -> dict[str, np.ndarray]:  # resize + invoke (batch dims are fixed in the spec)
                return {k: np.array(v, copy=True) for k, v in sess._run({self.input_name: x}).items()}
        if fn is None:
            return None
        probe = _probe_inputs(example)
        try:
            batched = fn(probe)
            singles = [self._single(probe[i : i + 1]) for i in range(len(probe))]
        except (WorkbenchError, RuntimeError, ValueError):
            return None
        return fn if _agree(batched, singles) else None

    def _onnx_batched(self) -> Callable[[np.ndarray], dict[str, np.ndarray]] | None:
        import onnxruntime as ort

        sess: Any = self.session
        try:
            blob = _batched_onnx(sess.model)
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            # idle onnxruntime threads must not spin between calls: the attribution's own torch
            # work (building the next batch, the target score) runs on the same cores meanwhile
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if getattr(sess, "intra_op_threads", None) is not None:
                so.intra_op_num_threads = int(sess.intra_op_threads)
            ort_sess = ort.InferenceSession(blob, so, providers=list(getattr(sess, "providers", ["CPUExecutionProvider"])))
        except Exception:  # onnxruntime's own exception types: no batched copy, loop instead
            return None
        names = list(sess.output_names)

        def fn(x: np.ndarray) -> dict[str, np.ndarray]:
            try:
                return dict(zip(names, ort_sess.run(names, {self.input_name: x})))
            except Exception as exc:  # noqa: BLE001 - onnxruntime's pybind exceptions
                raise InputError(f"onnxruntime failed on a batch of {len(x)}: {' '.join(str(exc).split())[:300]}") from exc

        return fn

    # -- running -----------------------------------------------------------------------------------
    def raw(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One chunk (``len(x) <= max_batch``) through the backend, nothing else."""
        if self._batched_fn is not None:
            return self._batched_fn(x)
        outs = [self._single(x[i : i + 1]) for i in range(len(x))]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs ``name -> [B, ...]`` for model inputs ``x [B, ...]``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        parts: list[dict[str, np.ndarray]] = []
        step = max(1, self.max_batch)
        for i in range(0, len(x), step):
            chunk = x[i : i + step]
            parts.append(self.raw(chunk))
            self.calls += 1 if self._batched_fn is not None else len(chunk)  # loop: one call per example
        self.examples += len(x)
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def runner_for(session: Session, example: np.ndarray) -> BatchedRunner:
    """A cached :class:`BatchedRunner` for a session."""
    with _LOCK:
        r = _RUNNERS.get(id(session))
        if r is None or r.session is not session:
            r = _RUNNERS[id(session)] = BatchedRunner(session, example)
        return r


class PerturbationForward:
    """Image-view batches ``[B, C, H, W]`` -> target scores ``[B]`` on the deployed backend."""

    needs_gradients = False

    def __init__(self, runner: BatchedRunner, layout: Any, score: ScoreFn) -> None:
        self.runner = runner
        self.layout = layout
        self.score = score

    @property
    def max_batch(self) -> int:
        return self.runner.max_batch if self.runner.mode == "batched" else 16

    @property
    def backend(self) -> str:
        return self.runner.session.backend

    def outputs(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.layout.to_model(img.detach().to(torch.float32)).contiguous().numpy()
        return {k: torch.from_numpy(np.asarray(v)) for k, v in self.runner(x).items()}

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.score(self.outputs(img), {}).detach().to(torch.float32)


# ------------------------------------------------------------------------------ reference model

#: ops whose output a guided-backprop probe follows (ReLU-like: gradient clamped to >= 0 there)
RELU_LIKE = frozenset({"Relu", "LeakyRelu", "PRelu", "RELU", "RELU6", "LEAKY_RELU", "PRELU"})
_FUSED_RELU = ("RELU", "RELU6")


class GuidedReLU(torch.nn.ReLU):
    """A probe Captum's GuidedBackprop recognises (it hooks ``nn.ReLU`` modules and clamps the
    gradient through them to >= 0). Its forward is the identity: it sits *after* the graph's own
    ReLU-like op, whose values are left untouched; the graph's op still masks the gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x


def _is_relu_like(node: Node) -> bool:
    info = node.info
    if info.op_type in RELU_LIKE:
        return True
    if info.op_type == "Clip":
        lo = info.const(1)
        return lo is not None and lo.numel() == 1 and float(lo) >= 0
    fused = info.attributes.get("fused_activation_function")
    return isinstance(fused, str) and fused.upper() in _FUSED_RELU


def find_node(program: Program, layer: str) -> tuple[int, int]:
    """(node index, output position) of a layer given by node name or output tensor name."""
    for i, n in enumerate(program.nodes):
        if n.info.name == layer:
            return i, 0
    for i, n in enumerate(program.nodes):
        if layer in n.info.outputs:
            return i, n.info.outputs.index(layer)
    spatial = [n.info.name for n in program.nodes if n.info.op_type in ("Conv", "CONV_2D", "DEPTHWISE_CONV_2D")]
    raise TargetError(f"no layer named {layer!r} in this model ({len(program.nodes)} nodes)",
                      hint="use a node name or its output tensor name, e.g. " + ", ".join(spatial[-4:]))


def _wrap(node: Node, fn: Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor]]) -> Node:
    def run(*args: torch.Tensor | None) -> Sequence[torch.Tensor]:
        return tuple(fn(tuple(node.fn(*args))))

    return Node(node.info, run)


class ReferenceModel(torch.nn.Module):
    """The reference interpreter as ``nn.Module``: image view ``[B, C, H, W]`` -> scores ``[B]``.

    ``program`` defaults to the session's (a randomized copy for the sanity check); ``layer``
    names a node whose output the score function reads (layer targets). ``batched`` tells
    whether the graph takes batches (checked on three inputs); otherwise :meth:`forward` runs
    the examples one by one (``max_batch`` = 1 so methods with hooks call it with batch 1).
    """

    needs_gradients = True

    def __init__(self, session: Any, layout: Any, score: ScoreFn, example: torch.Tensor,
                 program: Program | None = None, layer: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.program: Program = program if program is not None else session.program
        self.layout = layout
        self.score = score
        self.input_name = session.input_names[0]
        self.guided = torch.nn.ModuleList()
        self._patches: dict[int, Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor]]] = {}
        self._layer = None if layer is None else find_node(self.program, layer)
        self._layer_name = layer
        self.batched = self._check_batched(example)
        #: a progress bar (``update(n)``) that counts examples run, set by a method while it runs
        self.progress_bar: Any = None

    @property
    def max_batch(self) -> int:
        return 32 if self.batched else 1

    @property
    def backend(self) -> str:
        return "reference"

    def _check_batched(self, example: torch.Tensor) -> bool:
        probe = torch.from_numpy(_probe_inputs(example.detach().numpy()))
        try:
            with torch.no_grad():
                batched = self._raw(probe)
                singles = [self._raw(probe[i : i + 1]) for i in range(len(probe))]
        except (WorkbenchError, RuntimeError, ValueError):
            return False
        to_np = lambda d: {k: v.detach().numpy() for k, v in d.items()}  # noqa: E731
        return _agree(to_np(batched), [to_np(s) for s in singles])

    def _raw(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.layout.to_model(img)
        return execute(self.program, {self.input_name: x})

    def _program(self, captured: dict[str, torch.Tensor]) -> Program:
        patches = dict(self._patches)
        if self._layer is not None:
            idx, pos = self._layer
            name = str(self._layer_name)
            inner = patches.get(idx)

            def keep(outs: Sequence[torch.Tensor], inner=inner, pos=pos, name=name) -> Sequence[torch.Tensor]:
                outs = inner(outs) if inner is not None else outs
                captured[name] = outs[pos]
                return outs

            patches[idx] = keep
        if not patches:
            return self.program
        p = self.program
        nodes = [(_wrap(n, patches[i]) if i in patches else n) for i, n in enumerate(p.nodes)]
        return Program(p.fmt, p.inputs, p.outputs, p.constants, nodes, p.quantization)

    def outputs(self, img: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(model outputs, captured layers) for image-view ``img``."""
        captured: dict[str, torch.Tensor] = {}
        x = self.layout.to_model(img)
        outs = execute(self._program(captured), {self.input_name: x})
        return outs, captured

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.progress_bar is not None:
            self.progress_bar.update(len(img))
        if len(img) > 1 and not self.batched:
            return torch.cat([self._forward_one(img[i : i + 1]) for i in range(len(img))])
        return self._forward_one(img)

    def _forward_one(self, img: torch.Tensor) -> torch.Tensor:
        outs, captured = self.outputs(img)
        return self.score(outs, captured)

    # -- probes (always removed in finally) ------------------------------------------------------
    def channel_axis(self, t: torch.Tensor) -> int:
        """Channel axis of a captured 4-D layer tensor: 1 for ONNX graphs, 3 for TFLite."""
        return 3 if (self.program.fmt == "tflite" and t.dim() == 4) else 1

    @contextlib.contextmanager
    def layer_probe(self, layer: str, probe: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Route ``layer``'s output through ``probe`` (seen as NCHW) for the ``with`` block."""
        idx, pos = find_node(self.program, layer)
        if idx in self._patches:
            raise ExplainError(f"layer {layer!r} is already probed")
        tflite = self.program.fmt == "tflite"

        def patch(outs: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
            y = outs[pos]
            if y.dim() != 4:
                raise TargetError(f"layer {layer!r} has a {y.dim()}-D output {tuple(y.shape)}; grad-cam needs a "
                                  "4-D feature map", hint="pick a convolution's output")
            z = probe(y.permute(0, 3, 1, 2) if tflite else y)
            z = z.permute(0, 2, 3, 1) if tflite else z
            return tuple(z if i == pos else o for i, o in enumerate(outs))

        self._patches[idx] = patch
        self.add_module("probe", probe)
        try:
            yield probe
        finally:
            self._patches.pop(idx, None)
            delattr(self, "probe")

    @contextlib.contextmanager
    def guided_relus(self) -> Iterator[int]:
        """Put a :class:`GuidedReLU` after every ReLU-like node for the ``with`` block; yields
        how many. Raises when the graph has none (guided backprop would be plain gradients)."""
        idx = [i for i, n in enumerate(self.program.nodes) if _is_relu_like(n)]
        if not idx:
            raise ExplainError(f"{self.session.card.id} has no ReLU-like activation; guided backprop would "
                               "be the plain gradient", hint="use saliency")
        try:
            for i in idx:
                probe = GuidedReLU()
                self.guided.append(probe)
                self._patches[i] = (lambda outs, p=probe: (p(outs[0]), *outs[1:]))
            yield len(idx)
        finally:
            for i in idx:
                self._patches.pop(i, None)
            while len(self.guided):
                del self.guided[-1]

    def is_clean(self) -> bool:
        """No probe, patch or hook left on this module (what a test checks after attribute)."""
        hooks = any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                    for m in self.modules())
        return (not hooks and not self._patches and not len(self.guided) and not hasattr(self, "probe")
                and self.progress_bar is None)

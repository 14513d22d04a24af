"""The onnxruntime backend: ``run()`` as deployed, ``trace()`` that captures every node's outputs.

Capture works by exposing node outputs as graph outputs of the model (a temporary edit of our
in-memory copy, serialized into a separate *capture session*). Two capture modes:

``"deployed"``
    the capture session uses ``ORT_ENABLE_ALL``, as :meth:`run` does. A node whose output is
    captured cannot be fused with its consumer (onnxruntime never fuses away a graph output),
    so the captured values are those of the unfused nodes under the deployed layout
    transforms (NCHWc reorders, constant folding). Graph outputs may differ from ``run()``'s
    in the last bits where ``run()`` fuses (e.g. Conv + Sigmoid + Mul), typically < 1e-5.
``"unoptimized"``
    ``ORT_DISABLE_ALL``: every node runs as written in the file, one kernel per node.

Capture sessions are cached per (mode, captured tensor set); :meth:`trace` on the same filter
reuses the session, so only the first trace pays for session creation. A cached session keeps
onnxruntime's memory arena sized for all captured tensors: :meth:`clear_capture_cache` frees it.

Memory: onnxruntime returns all outputs of a run at once, so a one-run capture holds every
captured tensor in memory. Tracing into a disk store (``store=folder``) therefore *streams*: the
graph is cut into consecutive segments of about ``chunk_mb`` MiB of captured tensors (default
:data:`DEFAULT_CHUNK_MB`), each run as its own sub-model session; a segment's tensors are written
as soon as it finishes and only the tensors later segments read are passed on. Segment sessions
share one memory arena, so peak memory is about one segment, not the whole capture.
``chunk_mb=0`` forces one run. Sub-models cannot fuse or re-layout across a cut, so streamed
values can differ from a one-run capture in the last bits (conv algorithm choice), < 1e-5.

Deferred reorders: on x86 CPUs the deployed mode runs convolutions in onnxruntime's NCHWc
layout, and every captured tensor would need a reorder kernel back to NCHW (a third of the
capture run on a 500-node 640x640 net). A one-run capture into a memory store therefore runs an
edited copy of onnxruntime's own optimized graph that outputs those tensors in NCHWc layout, as
the kernels wrote them; each is reordered to NCHW the first time it is read (see
:mod:`.onnx_nchwc`, which learns and checks the layout against onnxruntime's reorder before
trusting it). Values are bit for bit those of the plain capture session. It also leaves each
SiLU's Sigmoid output unexposed so that SiLU fuses as in :meth:`run`, and recomputes that Sigmoid
output on first read with onnxruntime's own kernel (:mod:`.onnx_fused`; ``fuse_silu=False``
keeps them unfused). ``defer_reorder=False`` turns both off.

Trace options (``session.trace(x, ..., mode=, profile=, chunk_mb=, defer_reorder=, fuse_silu=)``):
``mode`` ``"deployed"`` / ``"unoptimized"``; ``profile`` per-op times (below); ``chunk_mb``,
``defer_reorder`` and ``fuse_silu`` as above.

Per-op times come from onnxruntime's profiler (``trace(..., profile=True)``): a fresh profiled
capture session runs once to warm up and once timed (one run, never streamed); kernel events of
the timed run are mapped to nodes by name, and kernels onnxruntime inserted (layout reorders
for captured tensors) are summed by type in ``notes["profile_unmapped_ms"]``. Profiling is off by
default so that ``trace()`` stays close to ``run()``.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from ..capture import CaptureFilter, GraphEdge, InferenceRecord, LayerRecord, TensorStore, edges_from_layers
from ..errors import CaptureError, InputError, ModelLoadError, WorkbenchError
from ..tensors import TensorSpec
from ..zoo import ModelCard
from . import register_backend
from .base import Session
from .onnx_fused import onnxruntime_sigmoid, silu_sigmoids
from .onnx_nchwc import BlockedPlan, check_blocked_shape, learn_block, plan_blocked, unblock
from .onnx_graph_edit import (
    GraphNode,
    Segment,
    TensorType,
    exposed_outputs,
    graph_nodes,
    io_specs,
    load_checked,
    onnx_dtype_name,
    plan_segments,
    segment_model,
    tensor_types,
)

__all__ = ["OnnxRuntimeSession", "CAPTURE_MODES", "parse_profile"]

#: capture mode -> graph optimization level of the capture session
CAPTURE_MODES: dict[str, ort.GraphOptimizationLevel] = {
    "deployed": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "unoptimized": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}
_TRACE_OPTIONS = ("mode", "profile", "chunk_mb", "defer_reorder", "fuse_silu")
#: deferring reorders pays from about this many bytes of captured tensors; below, the plain
#: capture session is as fast and has less bookkeeping per tensor
DEFER_REORDER_MIN_BYTES = 4 << 20
#: traces that may fail to learn the NCHWc block size (uniform values) before giving up on it
_BLOCK_LEARNING_TRIES = 3
#: streaming capture into a disk store keeps about this many MiB of captured tensors in memory
DEFAULT_CHUNK_MB = 64
_FUSION_NOTE = (
    "captured tensors are graph outputs of the capture session; onnxruntime does not fuse a node "
    "whose output is captured, so values are those of the unfused nodes (except SiLU where "
    "'fused_silu' says so)"
)


@dataclass(frozen=True, eq=False)
class _Plan:
    """What one (mode, filter) captures: output names in node order, and which keep values.

    Compared by identity: the session caches one plan per (mode, filter).
    """

    mode: str
    names: tuple[str, ...]
    keep_of: dict[str, bool]  # name -> keep values (False: stats only)
    skipped: tuple[str, ...]  # selected, but not tensors (sequences, maps): not captured
    estimated_bytes: int  # of the captured tensors, from static shapes (symbolic dims as 1)


@dataclass(frozen=True, eq=False)
class _Blocked:
    """The edited optimized capture session of one plan that outputs NCHWc tensors as they are."""

    plan: BlockedPlan
    session: ort.InferenceSession
    fused: Mapping[str, str]  # SiLU Sigmoid outputs left to the fusion -> their input x


@register_backend("onnxruntime")
class OnnxRuntimeSession(Session):
    """An ONNX model on onnxruntime.

    ``optimized`` picks the default capture mode of :meth:`trace` (``"deployed"`` when True,
    ``"unoptimized"`` when False); :meth:`run` always uses onnxruntime's default optimizations.
    ``providers`` are onnxruntime execution providers; ``intra_op_threads`` None = onnxruntime's
    default (one per core).
    """

    def __init__(
        self,
        card: ModelCard,
        path: Path,
        *,
        optimized: bool = True,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int | None = None,
    ) -> None:
        super().__init__(card, path)
        self.optimized = bool(optimized)
        self.providers = tuple(providers)
        self.intra_op_threads = intra_op_threads
        missing = [p for p in self.providers if p not in ort.get_available_providers()]
        if missing or not self.providers:
            raise WorkbenchError(
                f"onnxruntime execution providers {missing or '(none given)'} are not available",
                hint=f"use one of {ort.get_available_providers()}",
            )
        self.model = load_checked(self.path)
        self.nodes: tuple[GraphNode, ...] = graph_nodes(self.model)
        self.input_specs, self.output_specs = io_specs(self.model)
        self._types: dict[str, TensorType] = tensor_types(self.model)
        self._sizes: dict[str, int] = {  # estimated bytes per tensor (symbolic dims count as 1)
            name: int(np.prod([max(d, 1) for d in t.shape], dtype=np.int64)) * np.dtype(t.dtype).itemsize
            for name, t in self._types.items()
            if t.shape is not None and t.dtype
        }
        self._session = self._new_session(self.path, CAPTURE_MODES["deployed"])
        self._check_io_against_session()
        self._sessions: dict[tuple[str, frozenset[str]], ort.InferenceSession] = {}
        self._plans: dict[tuple[str, CaptureFilter], _Plan] = {}
        self._records: dict[_Plan, tuple[tuple[tuple[int, ...], ...], tuple[LayerRecord, ...]]] = {}
        self._edges: tuple[GraphEdge, ...] | None = None
        self._segment_cache: dict[tuple[_Plan, int], list[tuple[Segment, ort.InferenceSession]]] = {}
        self._blocked: dict[tuple[_Plan, bool], _Blocked | None] = {}
        self._plan_sessions: dict[_Plan, ort.InferenceSession] = {}  # _sessions by plan, no key to hash
        self._block_size: int | None = None  # NCHWc block, learned on the first blocked run
        self._block_tries = 0

    # -- sessions ---------------------------------------------------------------------------------
    def _options(
        self, level: ort.GraphOptimizationLevel, profile_dir: Path | None = None, shared_arena: bool = False,
        stop_spinning: bool = False,
    ) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        if shared_arena:
            if _shared_cpu_arena():
                so.add_session_config_entry("session.use_env_allocators", "1")
            else:  # without a shared arena, each segment's memory goes back to the system
                so.enable_cpu_mem_arena = False
        so.log_severity_level = 3  # errors only: ORT warns about every unused initializer
        if self.intra_op_threads is not None:
            so.intra_op_num_threads = int(self.intra_op_threads)
        if stop_spinning:
            # onnxruntime's threads spin after a run, waiting for the next one: right for a
            # session run back to back, wrong for a long capture whose spinning threads then slow
            # the next run of another session on the same cores (measured: a 640x640 net
            # alternating between two sessions ran 1.3x slower than one session alone). Waking
            # stopped threads costs ~70 us per run, so small captures keep spinning.
            so.add_session_config_entry("session.force_spinning_stop", "1")
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(profile_dir / "ort")
            so.optimized_model_filepath = str(profile_dir / "optimized.onnx")  # to map inserted kernels
        return so

    def _new_session(
        self, model: Path | bytes, level: ort.GraphOptimizationLevel, profile_dir: Path | None = None,
        shared_arena: bool = False, stop_spinning: bool = False,
    ) -> ort.InferenceSession:
        src = str(model) if isinstance(model, Path) else model
        try:
            opts = self._options(level, profile_dir, shared_arena, stop_spinning)
            return ort.InferenceSession(src, opts, providers=list(self.providers))
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            text = " ".join(str(exc).split())
            hint = "the model passed the ONNX checker but onnxruntime rejects it; try another backend"
            if "IR version" in text or "opset" in text.lower():
                hint = "the model is newer than this onnxruntime supports: upgrade onnxruntime or re-export with a lower opset / IR version"
            raise ModelLoadError(f"onnxruntime cannot load {self.path.name}: {text[:400]}", hint=hint) from exc

    def _check_io_against_session(self) -> None:
        names = [i.name for i in self._session.get_inputs()]
        if names != self.input_names:  # initializers-as-inputs etc.: trust onnxruntime
            self.input_specs = tuple(
                TensorSpec.from_shape(i.shape, _ort_dtype(i.type), name=i.name) for i in self._session.get_inputs()
            )

    def _capture_session(self, mode: str, names: Sequence[str], profile_dir: Path | None = None) -> ort.InferenceSession:
        """A session whose outputs are ``names`` (cached unless it profiles)."""
        key = (mode, frozenset(names))
        if profile_dir is None and key in self._sessions:
            return self._sessions[key]
        with exposed_outputs(self.model, names, self._types) as edited:
            try:
                blob = edited.SerializeToString()
            except ValueError as exc:  # protobuf's 2 GiB limit
                raise CaptureError(
                    f"{self.card.id} is too large to serialize with extra outputs ({exc})",
                    hint="models over 2 GiB cannot be captured by the onnxruntime backend",
                ) from exc
        big = sum(self._sizes.get(n, 0) for n in names) >= DEFER_REORDER_MIN_BYTES
        sess = self._new_session(blob, CAPTURE_MODES[mode], profile_dir, stop_spinning=big)
        del blob
        if profile_dir is None:
            self._sessions[key] = sess
        return sess

    def clear_capture_cache(self) -> None:
        """Drop cached capture sessions (each holds onnxruntime's memory arena of its last trace)."""
        self._sessions.clear()
        self._plans.clear()
        self._records.clear()
        self._segment_cache.clear()
        self._blocked.clear()
        self._plan_sessions.clear()

    # -- the two verbs ------------------------------------------------------------------------------
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._ort_run(self._session, None, inputs)
        return dict(zip(self.output_names, values))

    def _ort_run(
        self, sess: ort.InferenceSession, names: Sequence[str] | None, inputs: Mapping[str, np.ndarray]
    ) -> list[Any]:
        try:
            return sess.run(None if names is None else list(names), dict(inputs))
        except Exception as exc:  # onnxruntime's pybind exceptions (Fail, InvalidArgument, ...)
            shapes = {k: tuple(v.shape) for k, v in inputs.items()}
            raise InputError(
                f"onnxruntime failed to run {self.card.id} on inputs {shapes}: {' '.join(str(exc).split())[:400]}",
                hint=f"the model expects {[str(s) for s in self.input_specs]}; check the input size "
                "(too small for the model's pooling / strides?)",
            ) from exc

    def _trace(
        self, inputs: dict[str, np.ndarray], capture: CaptureFilter, store: TensorStore, **options: Any
    ) -> InferenceRecord:
        unknown = sorted(set(options) - set(_TRACE_OPTIONS))
        if unknown:
            raise CaptureError(f"unknown trace options {unknown} for onnxruntime", hint=f"known: {list(_TRACE_OPTIONS)}")
        mode = options.get("mode") or ("deployed" if self.optimized else "unoptimized")
        if mode not in CAPTURE_MODES:
            raise CaptureError(f"unknown capture mode {mode!r}", hint=f"use one of {list(CAPTURE_MODES)}")
        profile = bool(options.get("profile", False))
        chunk_mb = options.get("chunk_mb")
        if chunk_mb is None:
            chunk_mb = DEFAULT_CHUNK_MB if store.mode == "disk" else 0
        if not isinstance(chunk_mb, (int, float)) or chunk_mb < 0:
            raise CaptureError(f"chunk_mb must be a number >= 0 (0 = one run), got {chunk_mb!r}")
        plan = self._plan(mode, capture)

        for name, array in inputs.items():
            store.put(name, np.array(array, copy=True))  # the caller may reuse its buffer
        op_ms: dict[str, float] = {}
        unmapped_ms: dict[str, float] = {}
        n_segments = 1
        stored: tuple[float, float] | None = None  # set when the blocked capture ran
        if profile:
            values, total_ms, op_ms, unmapped_ms = self._profiled_run(plan, inputs)
            store_ms = self._store_values(plan, plan.names, values, store)
        elif chunk_mb and plan.estimated_bytes > chunk_mb * 2**20:
            total_ms, store_ms, n_segments = self._streamed_run(plan, inputs, store, int(chunk_mb * 2**20))
        else:
            if (mode == "deployed" and store.mode == "memory" and options.get("defer_reorder", True)
                    and plan.estimated_bytes >= DEFER_REORDER_MIN_BYTES):
                stored = self._blocked_run(plan, inputs, store, bool(options.get("fuse_silu", True)))
            if stored is not None:
                total_ms, store_ms = stored
            else:
                sess = self._plan_sessions.get(plan)
                if sess is None:
                    sess = self._plan_sessions[plan] = self._capture_session(mode, plan.names)
                t0 = time.perf_counter()
                values = self._ort_run(sess, plan.names, inputs)
                total_ms = (time.perf_counter() - t0) * 1e3
                store_ms = self._store_values(plan, plan.names, values, store)

        layers = self._layer_records(plan, store, op_ms)
        if self._edges is None:
            self._edges = edges_from_layers(layers, self.input_names)
        timings: dict[str, float] = {"total_ms": total_ms, "store_ms": store_ms}
        notes: dict[str, Any] = {
            "capture": {
                "mode": mode, "optimization": CAPTURE_MODES[mode].name, "tensors": len(plan.names),
                "runs": n_segments, "note": _FUSION_NOTE,
            }
        }
        if plan.skipped:
            notes["capture"]["not_tensors"] = list(plan.skipped)
        blocked = self._blocked.get((plan, bool(options.get("fuse_silu", True))))
        if stored is not None and blocked is not None:
            notes["capture"]["deferred_reorders"] = {"tensors": len(blocked.plan.channels), "block": self._block_size}
            if blocked.fused:
                notes["capture"]["fused_silu"] = {
                    "sigmoids": len(blocked.fused),
                    "note": "SiLU runs fused as in run(); each Sigmoid output is recomputed from its captured "
                            "input by onnxruntime's Sigmoid kernel on first read",
                }
        if profile:
            timings["kernel_ms"] = float(sum(op_ms.values()) + sum(unmapped_ms.values()))
            notes["profile_unmapped_ms"] = unmapped_ms  # layout reorders and other inserted kernels
        return InferenceRecord(
            model_id=self.card.id, backend="onnxruntime", mode=mode,
            inputs=tuple(self.input_names), outputs=tuple(self.output_names), layers=layers,
            store=store, edges=self._edges, timings=timings, notes=notes,
        )

    def _store_values(self, plan: _Plan, names: Sequence[str], values: list[Any], store: TensorStore) -> float:
        """Put captured ``values`` (aligned with ``names``) into the store; returns ms spent.
        ``values`` is emptied (a disk store then holds one tensor at a time)."""
        t0 = time.perf_counter()
        if store.mode == "memory":
            store.put_many(list(names), values, plan.keep_of)
            values.clear()
        else:
            keep = plan.keep_of
            for i, name in enumerate(names):
                value, values[i] = values[i], None  # drop our reference as soon as it is stored
                if name in keep and name not in store:
                    store.put(name, value, keep=keep[name])
                del value
        return (time.perf_counter() - t0) * 1e3

    # -- NCHWc tensors captured as the kernels wrote them ------------------------------------------
    def _blocked_capture(self, plan: _Plan, fuse_silu: bool) -> _Blocked | None:
        """The blocked capture session of ``plan`` (cached), or None where it does not apply."""
        key = (plan, fuse_silu)
        if key in self._blocked:
            return self._blocked[key]
        result: _Blocked | None = None
        if self.providers == ("CPUExecutionProvider",):
            try:
                result = self._build_blocked(plan, fuse_silu)
            except Exception:  # an onnxruntime that saves or reloads its graph differently: plain capture
                result = None
        self._blocked[key] = result
        return result

    def _build_blocked(self, plan: _Plan, fuse_silu: bool) -> _Blocked | None:
        fused = silu_sigmoids(self.nodes, plan.keep_of, self.output_names) if fuse_silu else {}
        exposed = tuple(n for n in plan.names if n not in fused)
        with exposed_outputs(self.model, exposed, self._types) as edited:
            blob = edited.SerializeToString()
        with tempfile.TemporaryDirectory(prefix="wb-ort-nchwc-") as tmp:
            so = self._options(CAPTURE_MODES[plan.mode], stop_spinning=True)
            so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            sess = ort.InferenceSession(blob, so, providers=list(self.providers))
            if not fused:  # the same session the plain capture builds: keep it for the fallback
                self._sessions.setdefault((plan.mode, frozenset(plan.names)), sess)
            del sess
            optimized = onnx.load(so.optimized_model_filepath)
        elem_types = {o.name: o.type.tensor_type.elem_type for o in optimized.graph.output}
        bplan = plan_blocked(optimized, exposed, self._sizes, elem_types)
        if bplan is None:
            return None
        session = self._new_session(bplan.model, CAPTURE_MODES["unoptimized"], stop_spinning=True)
        return _Blocked(bplan, session, fused)

    def _blocked_run(
        self, plan: _Plan, inputs: Mapping[str, np.ndarray], store: TensorStore, fuse_silu: bool
    ) -> tuple[float, float] | None:
        """Run the blocked capture and store its tensors (reorders and fused Sigmoids deferred);
        (run ms, store ms), or None when it does not apply or its layout check failed (the
        caller then runs the plain capture)."""
        key = (plan, fuse_silu)
        blocked = self._blocked_capture(plan, fuse_silu)
        if blocked is None:
            return None
        t0 = time.perf_counter()
        values = self._ort_run(blocked.session, blocked.plan.outputs, inputs)
        run_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        out = dict(zip(blocked.plan.outputs, values))
        del values
        block = self._block_size
        if block is None:
            nchw, blocked_name = blocked.plan.probe
            block = learn_block(out[blocked_name], out[nchw])
            if block is None:
                self._block_tries += 1
                if self._block_tries >= _BLOCK_LEARNING_TRIES:
                    self._blocked[key] = None
                return None
            self._block_size = block
        source, channels = blocked.plan.source, blocked.plan.channels
        for name, ch in channels.items():
            a = out[source[name]]
            t = self._types.get(name)
            static = t.shape if t is not None and t.shape is not None and all(d > 0 for d in t.shape) else None
            if not check_blocked_shape(a, ch, block) or (
                static is not None and static != (a.shape[0], ch, a.shape[2], a.shape[3])
            ):
                self._blocked[key] = None  # not the layout we learned: never trust this session
                return None
        keep, fused = plan.keep_of, blocked.fused
        for name in plan.names:
            if name not in keep or name in store:
                continue
            if name in fused:  # its input x comes earlier in node order: already in the store
                x = fused[name]
                store.put_deferred(name, store.shape(x), np.dtype(store.dtype(x)),
                                   functools.partial(_recompute_sigmoid, weakref.ref(store), x))
                continue
            a = out[source[name]]
            if name in channels:
                shape = (a.shape[0], channels[name], a.shape[2], a.shape[3])
                store.put_deferred(name, shape, a.dtype, functools.partial(unblock, a, channels[name], block),
                                   keep=keep[name])
            else:
                store.put(name, a, keep=keep[name])
        return run_ms, (time.perf_counter() - t0) * 1e3

    # -- streaming capture: one run per segment, tensors written as each segment finishes -----
    def _streamed_run(
        self, plan: _Plan, inputs: Mapping[str, np.ndarray], store: TensorStore, chunk_bytes: int
    ) -> tuple[float, float, int]:
        """Run the graph segment by segment so that only one segment's tensors are in memory.

        Tensors a later segment needs are passed on and dropped after their last use; captured
        ones are stored (written, for a disk store) as soon as their segment has run. (Writing
        in a thread while the next segment runs was slower on 2 cores: both compete for them.)
        Returns (ms in onnxruntime, ms storing, number of runs).
        """
        segments = self._segments(plan, chunk_bytes)
        remaining: dict[str, int] = {}
        for seg, _ in segments:
            for t in seg.inputs:
                remaining[t] = remaining.get(t, 0) + 1
        env: dict[str, np.ndarray] = dict(inputs)
        run_ms = store_ms = 0.0
        for seg, sess in segments:
            feeds = {t: env[t] for t in seg.inputs if t in env}
            t0 = time.perf_counter()
            values = self._ort_run(sess, seg.outputs, feeds)
            run_ms += (time.perf_counter() - t0) * 1e3
            del feeds
            for t in seg.inputs:
                remaining[t] -= 1
                if remaining[t] == 0:
                    env.pop(t, None)
            for name, value in zip(seg.outputs, values):
                if remaining.get(name, 0) > 0:
                    env[name] = value
            store_ms += self._store_values(plan, seg.outputs, values, store)
            del values
        return run_ms, store_ms, len(segments)

    def _segments(self, plan: _Plan, chunk_bytes: int) -> list[tuple[Segment, ort.InferenceSession]]:
        """Segment sub-models and their sessions for ``plan`` (cached). They share one memory
        arena, so the next segment reuses the memory of the tensors already written."""
        key = (plan, chunk_bytes)
        if key in self._segment_cache:
            return self._segment_cache[key]
        known = dict(self._types)
        out: list[tuple[Segment, ort.InferenceSession]] = []
        for seg in plan_segments(self.model, plan.names, self._sizes, chunk_bytes):
            if not seg.outputs:
                continue
            try:
                sub = segment_model(self.model, seg, known)
            except KeyError as exc:
                raise CaptureError(
                    f"cannot cut {self.card.id} for streaming: the type of tensor {exc.args[0]!r} is unknown",
                    hint="trace with chunk_mb=0 (one run, all tensors in memory at once)",
                ) from None
            sess = self._new_session(sub.SerializeToString(), CAPTURE_MODES[plan.mode], shared_arena=True,
                                     stop_spinning=True)
            del sub
            for o in sess.get_outputs():  # types onnx inference missed (contrib ops) for later cuts
                if o.name not in known and _ort_dtype(o.type):
                    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(_ort_dtype(o.type)))
                    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in o.shape) if o.shape is not None else None
                    known[o.name] = TensorType(elem, shape)
            out.append((seg, sess))
        self._segment_cache[key] = out
        return out

    # -- capture plan ---------------------------------------------------------------------------
    def _plan(self, mode: str, capture: CaptureFilter) -> _Plan:
        key = (mode, capture)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        graph_outputs = set(self.output_names)
        names: list[str] = []
        keep: list[bool] = []
        seen: set[str] = set()
        for node in self.nodes:
            for t in node.outputs:
                if not t or t in seen:
                    continue
                seen.add(t)
                if t in graph_outputs:
                    names.append(t)
                    keep.append(True)
                elif capture.selects(node.op_type, node.name, t):
                    names.append(t)
                    keep.append(not capture.stats_only)
        for t in self.output_names:  # outputs that no node produces (inputs / initializers)
            if t not in names:
                names.append(t)
                keep.append(True)
        skipped = self._non_tensor_outputs(mode, names)
        if skipped:
            kept = [(n, k) for n, k in zip(names, keep) if n not in skipped or n in graph_outputs]
            names, keep = [n for n, _ in kept], [k for _, k in kept]
        est = sum(self._sizes.get(t, 0) for t in names)
        plan = _Plan(mode, tuple(names), dict(zip(names, keep)), tuple(sorted(skipped)), est)
        self._plans[key] = plan
        return plan

    def _non_tensor_outputs(self, mode: str, names: Sequence[str]) -> set[str]:
        """Selected names that onnxruntime types as sequences / maps / optionals."""
        suspect = [n for n in names if n not in self._types]
        if not suspect:
            return set()
        sess = self._capture_session(mode, names)
        return {o.name for o in sess.get_outputs() if not o.type.startswith("tensor(")}

    def _layer_records(self, plan: _Plan, store: TensorStore, op_ms: Mapping[str, float]) -> tuple[LayerRecord, ...]:
        """One record per node; reused while the captured shapes repeat and no times are set."""
        signature = store.shapes(plan.names)
        cached = self._records.get(plan)
        if not op_ms and cached is not None and cached[0] == signature:
            return cached[1]
        records = []
        for node in self.nodes:
            shapes: list[tuple[int, ...]] = []
            dtypes: list[str] = []
            for t in node.outputs:
                if t and t in store:
                    shapes.append(store.shape(t))
                    dtypes.append(store.dtype(t))
                else:  # not captured: what static inference knows (-1 = unknown dim)
                    tt = self._types.get(t)
                    shapes.append(tt.shape if tt is not None and tt.shape is not None else ())
                    dtypes.append(tt.dtype if tt is not None else "")
            records.append(LayerRecord(
                index=node.index, op_type=node.op_type, name=node.name, inputs=node.inputs,
                outputs=node.outputs, attributes=node.attributes, output_shapes=tuple(shapes),
                output_dtypes=tuple(dtypes), time_ms=op_ms.get(node.name),
            ))
        if not op_ms:
            self._records[plan] = (signature, tuple(records))
        return tuple(records)

    # -- profiling ----------------------------------------------------------------------------------
    def _profiled_run(
        self, plan: _Plan, inputs: Mapping[str, np.ndarray]
    ) -> tuple[list[Any], float, dict[str, float], dict[str, float]]:
        tmp = Path(tempfile.mkdtemp(prefix="wb-ort-profile-"))
        try:
            sess = self._capture_session(plan.mode, plan.names, profile_dir=tmp)
            warm = self._ort_run(sess, plan.names, inputs)  # first run: arena growth, page faults
            del warm
            t0 = time.perf_counter()
            values = self._ort_run(sess, plan.names, inputs)
            total_ms = (time.perf_counter() - t0) * 1e3
            profile_file = Path(sess.end_profiling())
            try:
                events = json.loads(profile_file.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CaptureError(f"cannot read onnxruntime's profile {profile_file}: {exc}") from exc
            kernel_outputs = _kernel_outputs(tmp / "optimized.onnx")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        op_ms, unmapped = parse_profile(events, self.nodes, kernel_outputs)
        return values, total_ms, op_ms, unmapped


def _recompute_sigmoid(store: "weakref.ref[TensorStore]", x: str) -> np.ndarray:
    """A fused SiLU's Sigmoid output from its captured input (the store is weakly held: no cycle
    keeps a large capture alive after its record is dropped)."""
    st = store()
    if st is None:  # unreachable: only the store itself calls this
        raise CaptureError(f"the store holding {x!r} is gone")
    return onnxruntime_sigmoid(st[x])


def parse_profile(
    events: Sequence[Mapping[str, Any]],
    nodes: Sequence[GraphNode],
    kernel_outputs: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-node kernel times (ms) of the *last* ``model_run`` in an onnxruntime profile.

    Kernel events are named ``<node name>_kernel_time``. Nodes onnxruntime rewrote keep a
    traceable name (NCHWc convolutions are named ``<output tensor>_nchwc``). A kernel onnxruntime
    inserted is charged to a node only when it produces that node's output and the node has no
    kernel of its own (a Transpose folded into a layout reorder); ``kernel_outputs`` (kernel
    node name -> output tensors, from the optimized graph) tells which. The remaining inserted
    kernels (layout reorders for captured tensors) are returned by op type in the second dict.
    """
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    lo, hi = -np.inf, np.inf
    if runs:
        last = max(runs, key=lambda e: e.get("ts", 0))
        lo, hi = last["ts"], last["ts"] + last.get("dur", 0)
    by_name = {n.name for n in nodes}
    by_output = {t: n.name for n in nodes for t in n.outputs if t}
    suffix = "_kernel_time"
    kernels: list[tuple[str, str, float]] = []
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith(suffix) and lo <= e.get("ts", 0) <= hi:
            op = str(e.get("args", {}).get("op_name", "?"))
            kernels.append((name[: -len(suffix)], op, float(e.get("dur", 0)) / 1e3))
    op_ms: dict[str, float] = {}
    rest: list[tuple[str, str, float]] = []
    for kernel, op, ms in kernels:
        node = _node_for_kernel(kernel, by_name, by_output)
        if node is None:
            rest.append((kernel, op, ms))
        else:
            op_ms[node] = op_ms.get(node, 0.0) + ms
    own = set(op_ms)
    unmapped: dict[str, float] = {}
    for kernel, op, ms in rest:
        outs = (kernel_outputs or {}).get(kernel, ())
        node = next((by_output[t] for t in outs if t in by_output and by_output[t] not in own), None)
        if node is None:
            unmapped[op] = unmapped.get(op, 0.0) + ms
        else:
            op_ms[node] = op_ms.get(node, 0.0) + ms
    return op_ms, unmapped


def _node_for_kernel(kernel: str, by_name: set[str], by_output: Mapping[str, str]) -> str | None:
    if kernel in by_name:
        return kernel
    for suffix in ("_nchwc",):
        if kernel.endswith(suffix):
            base = kernel[: -len(suffix)]
            if base in by_name:
                return base
            if base in by_output:
                return by_output[base]
    return None


_SHARED_ARENA: list[bool] = []


def _shared_cpu_arena() -> bool:
    """Register (once per process) the CPU arena that segment sessions share; False if refused.

    Sessions opt in with ``session.use_env_allocators``; other sessions keep their own arenas.
    """
    if not _SHARED_ARENA:
        try:
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            # arena_extend_strategy 1 = kSameAsRequested: grow by what is asked, not to a power of 2
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))
            _SHARED_ARENA.append(True)
        except Exception:  # an onnxruntime build without env allocators: no shared arena
            _SHARED_ARENA.append(False)
    return _SHARED_ARENA[0]


def _kernel_outputs(optimized: Path) -> dict[str, list[str]]:
    """Node name -> output tensors of the graph onnxruntime actually ran (saved while profiling)."""
    try:
        graph = onnx.load(str(optimized), load_external_data=False).graph
    except Exception:  # advisory only: without it inserted kernels stay unmapped
        return {}
    return {n.name: list(n.output) for n in graph.node}


def _ort_dtype(type_str: str) -> str | None:
    """numpy dtype name of an onnxruntime type string like ``tensor(float)``."""
    inner = type_str[len("tensor("):-1] if type_str.startswith("tensor(") else ""
    table = {"float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
             "bool": 9, "float16": 10, "double": 11, "uint32": 12, "uint64": 13}
    return onnx_dtype_name(table[inner]) if inner in table else None


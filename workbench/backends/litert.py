"""LiteRT (TFLite) backend: ``run()`` as deployed, ``trace()`` faithful.

``run()`` uses the default XNNPACK delegate, exactly as a deployed app would. XNNPACK fuses
the graph into its own kernels, so the intermediate tensors one could read back from it are not
real; ``trace()`` therefore runs a second interpreter with the builtin kernels only
(``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``) and
``experimental_preserve_all_tensors=True``: every op's output is the value that kernel
computed. The trace also runs the deployed interpreter on the same input (in a worker thread,
in parallel) and records how far the deployed outputs are from the faithful ones in
``record.notes["deployed_vs_faithful"]`` (and keeps them as ``<output>:deployed``).

Safety: a file is parsed and verified in Python first (:mod:`.tflite_model`), then a file not
seen before (by sha256) is loaded, allocated and invoked once with zeros in a *child process*;
only when the child exits cleanly does the file reach the interpreter in this process. A child
crash becomes :class:`ModelLoadError` instead of killing the notebook.

Quantized tensors are kept raw under their key and dequantized under ``key + ":dequantized"``
(:data:`DEQUANTIZED_SUFFIX`), with ``LayerRecord.quantization`` set. LiteRT's Python API has no
per-op profiler, so ``LayerRecord.time_ms`` is None (the record's notes say so).

Capture is zero-copy: the arrays a memory store keeps are read-only views of the faithful
interpreter's preserved tensors (stats-only and disk captures only read them). An interpreter
whose tensors are still referenced by a live record is never invoked again (LiteRT itself
refuses to); the session keeps a small pool of faithful interpreters and, when all are
pinned, falls back to copying (``record.notes["capture"]`` says which).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..capture import (
    DEQUANTIZED_SUFFIX, CaptureFilter, InferenceRecord, LayerRecord, Quantization, TensorStore, edges_from_layers,
)
from ..errors import CaptureError, InputError, ModelLoadError
from ..tensors import TensorSpec
from ..zoo import ModelCard
from . import register_backend
from .base import Session
from .tflite_model import TFLiteGraph, parse_tflite

__all__ = ["LiteRTSession", "DEQUANTIZED_SUFFIX", "DEPLOYED_SUFFIX", "verify_in_child", "runtime"]

DEPLOYED_SUFFIX = ":deployed"
#: seconds a child process may take to load, allocate and invoke a new file once
CHILD_TIMEOUT_S = 120.0

_OP_TIME_NOTE = (
    "LiteRT's Python API exposes no per-op profiler, so LayerRecord.time_ms is None; "
    "timings['total_ms'] is the whole faithful (builtin-kernel) invoke"
)
_FAITHFUL_NOTE = (
    "intermediates come from the builtin kernels (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "
    "experimental_preserve_all_tensors=True); run() uses the default XNNPACK delegate as deployed, "
    "whose fused graph exposes no real intermediates. deployed_vs_faithful compares the two outputs"
)


@dataclass(frozen=True)
class Runtime:
    """The importable TFLite runtime: its Interpreter class, OpResolverType enum and name."""

    interpreter: type
    resolver: Any
    name: str
    version: str


_RUNTIME: Runtime | None = None
#: (module, distribution) pairs tried in order
_RUNTIMES = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"))


def runtime() -> Runtime:
    """Import ``ai_edge_litert.interpreter``, falling back to ``tflite_runtime.interpreter``."""
    global _RUNTIME
    if _RUNTIME is None:
        for mod, dist in _RUNTIMES:
            try:
                m = __import__(mod, fromlist=["Interpreter", "OpResolverType"])
            except ImportError:
                continue
            try:
                from importlib.metadata import version

                ver = version(dist)
            except Exception:  # metadata is informational only
                ver = "?"
            _RUNTIME = Runtime(m.Interpreter, m.OpResolverType, mod.split(".")[0], ver)
            break
        else:
            raise ModelLoadError(
                "no TFLite runtime is installed (neither ai_edge_litert nor tflite_runtime imports)",
                hint="pip install ai-edge-litert (tflite-runtime 2.14 crashes under numpy 2)",
            )
    return _RUNTIME


# -- second line of defence: a child process loads a new file first ------------------------------

_CHILD_CODE = r"""
import sys
import numpy as np
try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
data = sys.stdin.buffer.read()
configs = ({}, {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "experimental_preserve_all_tensors": True})
for kw in configs:
    try:
        it = Interpreter(model_content=data, **kw)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        it.invoke()
    except Exception as exc:
        print("REFUSED", type(exc).__name__, str(exc).replace("\n", " ")[:2000])
        sys.exit(3)
    del it
print("OK")
"""

_VERIFIED: set[str] = set()
_VERIFY_LOCK = threading.Lock()


def verify_in_child(data: bytes, digest: str, source: str) -> None:
    """Load, allocate and invoke ``data`` once in a child process (once per sha256).

    Raises :class:`ModelLoadError` when the child crashes, hangs, or the runtime refuses the
    file; returns quietly when it ran cleanly.
    """
    with _VERIFY_LOCK:
        if digest in _VERIFIED:
            return
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD_CODE], input=data, capture_output=True,
                timeout=CHILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ModelLoadError(
                f"the TFLite runtime hung for more than {CHILD_TIMEOUT_S:.0f} s loading {source} "
                "(checked in a child process; nothing was loaded here)",
                hint="the file is probably corrupt or hostile; re-download or re-export it",
            ) from None
        except OSError as exc:
            raise ModelLoadError(f"cannot start a child process to check {source}: {exc}") from exc
        out = proc.stdout.decode("utf-8", errors="replace").strip().splitlines()
        if proc.returncode == 0 and out and out[-1] == "OK":
            _VERIFIED.add(digest)
            return
        if proc.returncode == 3 and out and out[-1].startswith("REFUSED"):
            raise ModelLoadError(
                f"the TFLite runtime refuses {source}: {out[-1][len('REFUSED '):]}",
                hint="the model may need ops or a schema this runtime lacks, or the file is corrupt",
            )
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        tail = [ln for ln in proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
                if ln.strip() and not ln.startswith("INFO:")][-3:]
        raise ModelLoadError(
            f"the TFLite runtime crashed loading {source} (child process {how}); the file was not "
            f"loaded in this process{': ' + ' | '.join(tail) if tail else ''}",
            hint="the file is corrupt or hostile; re-download or re-export it",
        )


# -- the session ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OpRow:
    index: int
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_ids: tuple[int, ...]
    attributes: dict[str, Any]
    quantization: dict[str, Quantization]


@register_backend("litert")
class LiteRTSession(Session):
    """A ``.tflite`` model on LiteRT.

    ``num_threads`` is passed to every interpreter (None: the runtime's default, one thread).
    ``max_pinned`` bounds how many faithful interpreters may stay pinned by live records.
    ``compare_deployed=False`` skips the deployed (XNNPACK) run inside ``trace()`` and with it
    ``notes["deployed_vs_faithful"]``.
    """

    def __init__(self, card: ModelCard, path: Path, *, num_threads: int | None = None, max_pinned: int = 2,
                 compare_deployed: bool = True) -> None:
        super().__init__(card, path)
        self._rt = runtime()
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}", hint="check the path") from exc
        self.graph: TFLiteGraph = parse_tflite(data, source=str(path))
        verify_in_child(data, self.graph.sha256, str(path))
        self._data = data
        self._num_threads = num_threads
        self._max_pinned = max(1, int(max_pinned))
        self._compare_deployed = bool(compare_deployed)
        self._lock = threading.Lock()
        self._deployed = self._interpreter(faithful=False)
        self._pool: list[Any] = []
        self._copying: Any = None
        self._shapes: dict[int, dict[int, tuple[int, ...]]] = {}
        self._ops: tuple[_OpRow, ...] | None = None
        self._layer_cache: dict[tuple, tuple[tuple[LayerRecord, ...], tuple]] = {}
        self._plans: dict[CaptureFilter, tuple[tuple[int, str, bool, Quantization | None], ...]] = {}
        self._executor: ThreadPoolExecutor | None = None
        g = self.graph
        self.input_specs = tuple(self._spec(i) for i in g.inputs)
        self.output_specs = tuple(self._spec(i) for i in g.outputs)

    def _spec(self, index: int) -> TensorSpec:
        t = self.graph.tensors[index]
        shape = t.shape_signature if len(t.shape_signature) == len(t.shape) else t.shape
        return TensorSpec.from_shape(shape, t.dtype if t.dtype != "string" else None, name=t.key)

    # -- interpreters ----------------------------------------------------------------------------
    def _interpreter(self, faithful: bool) -> Any:
        kw: dict[str, Any] = {"model_content": self._data, "num_threads": self._num_threads}
        if faithful:
            kw["experimental_op_resolver_type"] = self._rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            kw["experimental_preserve_all_tensors"] = True
        try:
            it = self._rt.interpreter(**kw)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"LiteRT cannot load {self.path}: {exc}",
                                 hint="the model may use ops this runtime lacks") from exc
        return it

    def _faithful(self) -> tuple[Any, bool]:
        """A faithful interpreter free to invoke, and whether to hand out views of its tensors.

        Pool interpreters give zero-copy views; when all of them are pinned by live records,
        a separate interpreter whose tensors are always copied takes the trace.
        """
        for it in self._pool:
            if it._safe_to_run():  # no live numpy view of its tensors (LiteRT's own check)
                return it, True
        if len(self._pool) < self._max_pinned:
            self._pool.append(self._interpreter(faithful=True))
            return self._pool[-1], True
        if self._copying is None:
            self._copying = self._interpreter(faithful=True)
        return self._copying, False

    def _feed(self, it: Any, inputs: dict[str, np.ndarray]) -> None:
        shapes = self._shapes.setdefault(id(it), {})
        resized = False
        try:
            for idx, key in zip(self.graph.inputs, self.input_names):
                a = inputs[key]
                if shapes.get(idx, self.graph.tensors[idx].shape) != a.shape:
                    it.resize_tensor_input(idx, list(a.shape), strict=False)
                    shapes[idx] = a.shape
                    resized = True
            if resized:
                it.allocate_tensors()
            for idx, key in zip(self.graph.inputs, self.input_names):
                it.set_tensor(idx, inputs[key])
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"LiteRT rejects the inputs of {self.card.id}: {exc}",
                             hint="check shapes and dtypes against session.input_specs") from exc

    def _invoke(self, it: Any) -> None:
        try:
            it.invoke()
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"LiteRT failed to run {self.card.id}: {exc}",
                             hint="check the input shapes against session.input_specs") from exc

    # -- run ----------------------------------------------------------------------------------------
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self._feed(self._deployed, inputs)
            self._invoke(self._deployed)
            return {t.key: self._deployed.get_tensor(t.index)
                    for t in (self.graph.tensors[i] for i in self.graph.outputs)}

    def _run_timed(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        t0 = time.perf_counter()
        out = self._run(inputs)
        return out, (time.perf_counter() - t0) * 1e3

    # -- trace -------------------------------------------------------------------------------------
    def _op_rows(self, it: Any) -> tuple[_OpRow, ...]:
        """Ops in the interpreter's execution order, with the graph's options (computed once)."""
        if self._ops is None:
            g = self.graph
            details = it._get_ops_details()
            same = len(details) == len(g.operators) and all(
                d["op_name"] == op.op for d, op in zip(details, g.operators))
            rows = []
            for d in details:
                ins = tuple(g.key(int(i)) for i in d["inputs"] if int(i) >= 0)
                out_ids = tuple(int(i) for i in d["outputs"] if int(i) >= 0)
                outs = tuple(g.key(i) for i in out_ids)
                q = {k: g.tensor(k).quantization for k in ins + outs
                     if g.tensor(k).is_quantized and g.tensor(k).quantization is not None}
                rows.append(_OpRow(
                    int(d["index"]), str(d["op_name"]), outs[0] if outs else f"{d['op_name']}#{d['index']}",
                    ins, outs, out_ids, dict(g.operators[int(d["index"])].options) if same else {}, q,  # type: ignore[arg-type]
                ))
            self._ops = tuple(rows)
        return self._ops

    def _layers(self, it: Any, rows: tuple[_OpRow, ...], shapes: tuple[tuple[int, ...], ...]
                ) -> tuple[tuple[LayerRecord, ...], tuple]:
        """LayerRecords and edges for these input shapes (immutable, so built once and shared)."""
        hit = self._layer_cache.get(shapes)
        if hit is None:
            g, w = self.graph, it._interpreter
            layers = tuple(
                LayerRecord(
                    index=r.index, op_type=r.op_type, name=r.name, inputs=r.inputs, outputs=r.outputs,
                    attributes=r.attributes,
                    output_shapes=tuple(tuple(int(d) for d in w.TensorSize(i, 0)) for i in r.output_ids),
                    output_dtypes=tuple(g.tensors[i].dtype for i in r.output_ids),
                    quantization=r.quantization, time_ms=None,
                )
                for r in rows
            )
            hit = (layers, edges_from_layers(layers, g.input_keys))
            if len(self._layer_cache) > 8:
                self._layer_cache.clear()
            self._layer_cache[shapes] = hit
        return hit

    def _plan(self, rows: tuple[_OpRow, ...], capture: CaptureFilter
              ) -> tuple[tuple[int, str, bool, Quantization | None], ...]:
        """What a trace reads, in order: (tensor index, key, keep values?, quantization to
        dequantize with). Graph inputs first, then op outputs the filter selects (graph outputs
        always, in full). Built once per filter."""
        plan = self._plans.get(capture)
        if plan is None:
            g = self.graph
            graph_in, graph_out = set(g.inputs), set(g.outputs)
            order: list[tuple[int, bool]] = [(i, True) for i in g.inputs]
            for row in rows:
                for idx, key in zip(row.output_ids, row.outputs):
                    if idx in graph_out:
                        order.append((idx, True))
                    elif idx not in graph_in and capture.selects(row.op_type, row.name, key):
                        order.append((idx, not capture.stats_only))
            seen = {i for i, _ in order}
            order += [(i, True) for i in g.outputs if i not in seen]  # outputs no op produces
            plan = tuple(
                (i, g.tensors[i].key, keep, g.tensors[i].quantization if g.tensors[i].is_quantized else None)
                for i, keep in order
            )
            if len(self._plans) > 16:
                self._plans.clear()
            self._plans[capture] = plan
        return plan

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litert-deployed")
        return self._executor

    def _trace(self, inputs: dict[str, np.ndarray], capture: CaptureFilter, store: TensorStore) -> InferenceRecord:
        t_start = time.perf_counter()
        deployed: Future | None = None
        if self._compare_deployed:  # runs in parallel: invoke() releases the GIL
            deployed = self._worker().submit(self._run_timed, inputs)
        try:
            it, views = self._faithful()
            self._feed(it, inputs)
            t0 = time.perf_counter()
            self._invoke(it)
            invoke_ms = (time.perf_counter() - t0) * 1e3
        except BaseException:
            if deployed is not None:
                deployed.exception()  # let the worker finish before the error propagates
            raise
        rows = self._op_rows(it)
        g = self.graph
        wrapper = it._interpreter
        in_memory = store.folder is None
        # a view whose values a memory store retains pins its interpreter; stats and disk
        # writes only read the view, so those never pin
        retain_views = views and in_memory and not capture.stats_only
        t1 = time.perf_counter()
        a: Any = None
        try:
            for index, key, keep, q in self._plan(rows, capture):
                a = wrapper.tensor(wrapper, index)
                if keep and in_memory and not retain_views:
                    a = a.copy()
                a.flags.writeable = False  # records are immutable (and views must not write into LiteRT)
                store.put(key, a, keep=keep)
                if q is not None:
                    store.put(key + DEQUANTIZED_SUFFIX, q.dequantize(a), keep=keep)
        except (ValueError, RuntimeError) as exc:
            raise CaptureError(f"LiteRT cannot read a tensor of {self.card.id}: {exc}") from exc
        a = None
        faithful_out = {k: store[k] for k in g.output_keys}
        capture_ms = (time.perf_counter() - t1) * 1e3
        notes: dict[str, Any] = {
            "faithful": _FAITHFUL_NOTE,
            "op_time": _OP_TIME_NOTE,
            "runtime": f"{self._rt.name} {self._rt.version}",
            "capture": ("zero-copy views" if retain_views else "written to disk" if not in_memory
                        else "stats only" if capture.stats_only else "copies"),
        }
        timings = {"total_ms": invoke_ms, "capture_ms": capture_ms}
        if deployed is not None:
            dep_out, timings["deployed_ms"] = deployed.result()
            diffs = {}
            for key, dep in dep_out.items():
                store.put(key + DEPLOYED_SUFFIX, dep, keep=True)
                t = g.tensor(key)
                diffs[key] = _difference(dep, faithful_out[key], t.quantization if t.is_quantized else None)
            notes["deployed_vs_faithful"] = diffs
        if any(t.is_quantized for t in g.tensors):
            notes["dequantized"] = f"quantized tensors are kept raw and as key + {DEQUANTIZED_SUFFIX!r} (float32)"
        layers, edges = self._layers(it, rows, tuple(inputs[k].shape for k in self.input_names))
        return InferenceRecord(
            model_id=self.card.id, backend="litert", mode="faithful",
            inputs=g.input_keys, outputs=g.output_keys, layers=layers, edges=edges, store=store,
            timings={**timings, "trace_ms": (time.perf_counter() - t_start) * 1e3},
            notes=notes,
        )

    def close(self) -> None:
        """Release the interpreters and the worker thread (records keep their own tensors)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pool.clear()
        self._copying = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"runtime": f"{self._rt.name} {self._rt.version}", "ops": self.graph.op_types,
                  "sha256": self.graph.sha256})
        return d


def _difference(deployed: np.ndarray, faithful: np.ndarray, q: Quantization | None) -> dict[str, float]:
    """max |deployed - faithful| and that relative to max |faithful| (dequantized when quantized)."""
    a = q.dequantize(deployed) if q is not None else np.asarray(deployed, dtype=np.float64)
    b = q.dequantize(faithful) if q is not None else np.asarray(faithful, dtype=np.float64)
    if a.shape != b.shape:
        return {"max_abs": float("nan"), "max_rel": float("nan")}
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return {"max_abs": d, "max_rel": d / scale if scale > 0 else d}

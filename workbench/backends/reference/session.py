"""The reference backend: our own torch interpreter behind ``run()`` / ``trace()``.

It is transparent (every op is a few lines of torch), differentiable (for attribution, see
:meth:`ReferenceSession.forward_torch`) and checked against onnxruntime / LiteRT and the onnx
package's node test cases. It is slower than the deployed runtimes and refuses, at load
time, any op or attribute it cannot run faithfully.

A TFLite model's quantized tensors are computed as real values on TFLite's grid; a trace stores
intermediates as LiteRT does, raw integers of the declared type under their key, and the real
values of every quantized tensor under ``key + DEQUANTIZED_SUFFIX``, so the two backends'
records line up tensor for tensor. Quantized graph outputs keep real values under their key,
as ``run()`` returns them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from ...capture import DEQUANTIZED_SUFFIX, CaptureFilter, InferenceRecord, LayerRecord, TensorStore
from ...errors import InputError, UnsupportedOpError
from ...zoo import ModelCard
from .. import register_backend
from ..base import Session
from .program import Node, NodeInfo, Program, execute

__all__ = ["ReferenceSession", "CaptureFn"]

#: ``capture(info, outputs)`` sees every node's outputs during :meth:`forward_torch`; it may
#: return replacement outputs (same count) to patch the graph (e.g. for layer attribution).
CaptureFn = Callable[[NodeInfo, Sequence[torch.Tensor]], "Sequence[torch.Tensor] | None"]


def load_program(card: ModelCard, path: Path) -> Program:
    """The card's model as a Program (ONNX here; TFLite through the tflite loader)."""
    if card.format == "onnx":
        from .onnx_graph import load_onnx_program

        return load_onnx_program(path)
    if card.format == "tflite":
        try:
            from .tflite_graph import load_tflite_program
        except ImportError as exc:
            raise UnsupportedOpError(
                f"the reference interpreter cannot load TFLite models yet ({exc})",
                hint="run this model with backend='litert'",
            ) from exc
        return load_tflite_program(path)
    raise UnsupportedOpError(f"the reference interpreter does not read {card.format!r} models")


#: integer tensor types a quantized TFLite tensor can have
_INT_TYPES = frozenset({"int8", "uint8", "int16", "int32"})


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy copy that owns its memory (outputs may be views of constants or inputs)."""
    return t.detach().cpu().numpy().copy()


@register_backend("reference")
class ReferenceSession(Session):
    """A model executed op by op with torch (ONNX or TFLite).

    ``program`` is the loaded graph (nodes with their attributes, constants, specs) for
    introspection; ``forward_torch`` runs it with autograd.
    """

    def __init__(self, card: ModelCard, path: Path) -> None:
        super().__init__(card, path)
        with torch.inference_mode(False):  # constants must work with autograd later
            self.program: Program = load_program(card, self.path)
        self.input_specs = self.program.inputs
        self.output_specs = self.program.outputs

    # -- plain inference -------------------------------------------------------------------------
    @staticmethod
    def _feeds(inputs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Zero-copy tensors of the inputs (ops never write to them); read-only arrays (e.g.
        memory-mapped from a saved trace) are copied, torch cannot wrap them."""
        return {name: torch.from_numpy(a if a.flags.writeable else a.copy()) for name, a in inputs.items()}

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outs = execute(self.program, self._feeds(inputs))
        return {name: _numpy(t) for name, t in outs.items()}

    # -- trace -------------------------------------------------------------------------------------
    def _trace(self, inputs: dict[str, np.ndarray], capture: CaptureFilter, store: TensorStore) -> InferenceRecord:
        out_names = set(self.output_names)
        for name, a in inputs.items():
            store.put(name, np.array(a, copy=True))
        layers: list[LayerRecord] = []
        quant = self.program.quantization
        feeds = self._feeds(inputs)
        last = 0.0

        def on_node(info: NodeInfo, outputs: Sequence[torch.Tensor]) -> None:
            nonlocal last
            elapsed_ms = (time.perf_counter() - last) * 1e3
            shapes, dtypes = [], []
            for name, t in zip(info.outputs, outputs):
                if not name:
                    continue
                shapes.append(tuple(int(s) for s in t.shape))
                q, spec = info.quantization.get(name), info.specs.get(name)
                raw = spec.dtype if q is not None and spec is not None and spec.dtype in _INT_TYPES else None
                dtypes.append(raw or str(t.dtype).replace("torch.", ""))
                keep = name in out_names or not capture.stats_only
                if name not in out_names and not capture.selects(info.op_type, info.name, name):
                    continue
                a = _numpy(t) if name in out_names else self._to_store(t)
                if raw is None:
                    store.put(name, a, keep=keep)
                    continue
                # raw under the key, as LiteRT keeps it (graph outputs stay real, as run() returns
                # them); the real values under the suffix
                store.put(name, a if name in out_names else q.quantize(a, raw), keep=keep)
                store.put(name + DEQUANTIZED_SUFFIX, np.asarray(a, dtype=np.float32), keep=keep)
            layers.append(LayerRecord(
                index=info.index, op_type=info.op_type, name=info.name, inputs=info.inputs,
                outputs=tuple(o for o in info.outputs if o), attributes=dict(info.attributes),
                output_shapes=tuple(shapes), output_dtypes=tuple(dtypes),
                quantization={t: quant[t] for t in (*info.inputs, *info.outputs) if t in quant},
                time_ms=elapsed_ms,
            ))
            last = time.perf_counter()  # store work is not the op's time

        t0 = last = time.perf_counter()
        with torch.no_grad():
            outs = execute(self.program, feeds, on_node)
        total_ms = (time.perf_counter() - t0) * 1e3
        for name, t in outs.items():  # outputs that are graph inputs or constants
            if name not in store:
                store.put(name, _numpy(t))
        return InferenceRecord(
            model_id=self.card.id, backend="reference", mode="reference",
            inputs=tuple(inputs), outputs=tuple(self.output_names), layers=tuple(layers), store=store,
            timings={"total_ms": total_ms, "ops_ms": float(sum(layer.time_ms or 0.0 for layer in layers))},
        )

    @staticmethod
    def _to_store(t: torch.Tensor) -> np.ndarray:
        """A read-only numpy view: tensors may share memory with weights or cached values."""
        a = t.detach().numpy()
        a.flags.writeable = False
        return a

    # -- differentiable API ------------------------------------------------------------------------
    def forward_torch(self, feeds: Mapping[str, torch.Tensor], capture: CaptureFn | None = None
                      ) -> dict[str, torch.Tensor]:
        """Run the graph with autograd: ``feeds`` name -> tensor (set ``requires_grad`` on what
        you differentiate); returns output name -> tensor. Gradients flow from the outputs to
        the inputs and to any intermediate ``capture`` keeps (call ``retain_grad()`` on it);
        ``capture`` may also return replacement outputs for a node. The caller's grad mode
        applies (under ``torch.no_grad()`` no graph is recorded).
        """
        names = self.input_names
        missing = [n for n in names if n not in feeds]
        extra = [n for n in feeds if n not in names]
        if missing or extra:
            raise InputError(f"{self.card.id} expects inputs {names}; missing {missing}, unexpected {extra}")
        tensors: dict[str, torch.Tensor] = {}
        for spec, name in zip(self.input_specs, names):
            t = feeds[name]
            if not isinstance(t, torch.Tensor):
                t = torch.as_tensor(np.asarray(t))
            if spec.dtype is not None and str(t.dtype).replace("torch.", "") != spec.dtype:
                raise InputError(
                    f"input {name!r} of {self.card.id}: dtype is {t.dtype}, expected {spec.dtype}",
                    hint=f"convert with tensor.to(torch.{spec.dtype})",
                )
            tensors[name] = t
        program = self.program if capture is None else self._patched(capture)
        return execute(program, tensors)

    def _patched(self, capture: CaptureFn) -> Program:
        def wrap(node: Node) -> Node:
            def run(*args: torch.Tensor | None) -> Sequence[torch.Tensor]:
                outputs = node.fn(*args)
                replaced = capture(node.info, outputs)
                if replaced is None:
                    return outputs
                replaced = tuple(replaced)
                if len(replaced) != len(outputs):
                    raise InputError(
                        f"capture returned {len(replaced)} tensors for node {node.info.name!r}, "
                        f"which has {len(outputs)} outputs"
                    )
                return replaced

            return Node(node.info, run)

        p = self.program
        return Program(p.fmt, p.inputs, p.outputs, p.constants, [wrap(n) for n in p.nodes], p.quantization)

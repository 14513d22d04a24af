"""A loaded graph as a flat, executable program of torch ops (format independent).

ONNX and TFLite loaders both produce a :class:`Program`: constants as torch tensors, nodes in
execution order, each holding the closure its op builder returned. :func:`execute` runs it
op by op, differentiably, and reports every node's outputs to an optional callback so the
Session can capture them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from ...capture import Quantization
from ...errors import UnsupportedOpError
from ...tensors import TensorSpec

__all__ = ["NodeInfo", "Node", "Program", "execute", "OpFn"]

#: what an op builder returns: called with the node's input tensors (None for an omitted
#: optional input), returns the node's outputs in order.
OpFn = Callable[..., Sequence[torch.Tensor]]


@dataclass(frozen=True)
class NodeInfo:
    """What an op builder sees at load time: the node, its attributes, constant inputs."""

    index: int
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any]
    fmt: str  # "onnx" | "tflite"
    opset: int = 0
    #: input name -> constant tensor, for inputs that are initializers / buffers (shapes, axes...)
    constants: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: input/output name -> declared spec (shape, dtype), where the format declares them (tflite)
    specs: Mapping[str, TensorSpec] = field(default_factory=dict)
    #: input/output name -> affine quantization, for quantized tensors (tflite)
    quantization: Mapping[str, Quantization] = field(default_factory=dict)

    def const(self, i: int) -> torch.Tensor | None:
        """The i-th input if it is a constant (or None)."""
        if i >= len(self.inputs) or not self.inputs[i]:
            return None
        return self.constants.get(self.inputs[i])

    def unsupported(self, what: str) -> UnsupportedOpError:
        """Error to raise for an unsupported attribute or input form."""
        other = "onnxruntime" if self.fmt == "onnx" else "litert"
        return UnsupportedOpError(
            f"reference interpreter: {self.fmt} op {self.op_type} (node {self.name!r}): {what}",
            hint=f"run this model with backend='{other}'; gradient methods need the reference backend",
        )


@dataclass(frozen=True)
class Node:
    info: NodeInfo
    fn: OpFn


@dataclass
class Program:
    """An executable graph: ``inputs``/``outputs`` specs (row-major, names set), constants,
    nodes in execution order, quantization of tensors that have it."""

    fmt: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    constants: dict[str, torch.Tensor]
    nodes: list[Node]
    quantization: dict[str, Quantization] = field(default_factory=dict)

    @property
    def op_types(self) -> set[str]:
        return {n.info.op_type for n in self.nodes}


def execute(
    program: Program,
    feeds: Mapping[str, torch.Tensor],
    on_node: Callable[[NodeInfo, Sequence[torch.Tensor]], None] | None = None,
    keep: Callable[[str], bool] | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``program`` on ``feeds`` (input name -> tensor); returns output name -> tensor.

    ``on_node(info, outputs)`` is called after every node. Intermediate tensors are dropped
    as soon as no later node needs them (unless ``keep(name)``), to bound memory.
    """
    env: dict[str, torch.Tensor] = dict(program.constants)
    env.update(feeds)
    last_use: dict[str, int] = {}
    for i, node in enumerate(program.nodes):
        for t in node.info.inputs:
            if t:
                last_use[t] = i
    out_names = {s.name for s in program.outputs}
    for i, node in enumerate(program.nodes):
        info = node.info
        args = []
        for t in info.inputs:
            if not t:
                args.append(None)
                continue
            try:
                args.append(env[t])
            except KeyError:
                raise UnsupportedOpError(
                    f"reference interpreter: node {info.name!r} ({info.op_type}) needs tensor {t!r}, "
                    "which no earlier node produced"
                ) from None
        results = node.fn(*args)
        if len(results) < len([o for o in info.outputs if o]):
            raise UnsupportedOpError(
                f"reference interpreter: op {info.op_type} (node {info.name!r}) returned "
                f"{len(results)} outputs, the graph expects {len(info.outputs)}"
            )
        for name, value in zip(info.outputs, results):
            if name:
                env[name] = value
        if on_node is not None:
            on_node(info, results)
        for t in info.inputs:
            if t and last_use.get(t) == i and t not in out_names and t not in program.constants:
                if keep is None or not keep(t):
                    env.pop(t, None)
    return {s.name: env[s.name] for s in program.outputs}  # type: ignore[index]

"""Activations a capture lets onnxruntime fuse, recomputed on first read with its own kernel.

Exposing a tensor as a graph output stops onnxruntime from fusing the node that makes it. For
SiLU (``Mul(x, Sigmoid(x))``, what YOLO-family exports are made of) that costs a separate
Sigmoid and Mul pass over every activation instead of one fused ``QuickGelu`` kernel: a tenth of
a 640x640 capture run. So the deployed capture leaves a SiLU's Sigmoid output unexposed (the
fusion happens, as in ``run()``) and keeps its input ``x``; the Sigmoid output is recomputed
from the captured ``x`` the first time it is read, by onnxruntime's own Sigmoid kernel in a
one-node session, so it is the value the unfused graph computes (the tests compare bit for bit).
The Mul output captured is then the fused kernel's, as deployed.
"""

from __future__ import annotations

import threading
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnx_graph_edit import GraphNode

__all__ = ["silu_sigmoids", "onnxruntime_sigmoid"]


def silu_sigmoids(nodes: Iterable[GraphNode], captured: Mapping[str, bool], graph_outputs: Iterable[str]) -> dict[str, str]:
    """Sigmoid output -> its input ``x``, for each SiLU whose Sigmoid output only feeds the Mul,
    is captured with values, is no graph output, and whose ``x`` is captured with values too."""
    nodes = list(nodes)
    consumers: dict[str, list[GraphNode]] = {}
    for node in nodes:
        for t in set(node.inputs):
            consumers.setdefault(t, []).append(node)
    outputs = set(graph_outputs)
    found: dict[str, str] = {}
    for node in nodes:
        if node.op_type != "Sigmoid" or node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
            continue
        y, x = node.outputs[0], node.inputs[0]
        users = consumers.get(y, [])
        if (len(users) == 1 and users[0].op_type == "Mul" and users[0].domain in ("", "ai.onnx")
                and sorted(users[0].inputs) == sorted((x, y)) and y not in outputs
                and captured.get(y) is True and captured.get(x) is True):
            found[y] = x
    return found


_SESSIONS: dict[int, object] = {}
_LOCK = threading.Lock()


def _sigmoid_session(elem_type: int):
    import onnxruntime as ort

    with _LOCK:
        sess = _SESSIONS.get(elem_type)
        if sess is None:
            graph = helper.make_graph(
                [helper.make_node("Sigmoid", ["x"], ["y"])], "sigmoid",
                [helper.make_tensor_value_info("x", elem_type, None)],
                [helper.make_tensor_value_info("y", elem_type, None)],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 8
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            so.log_severity_level = 3
            sess = _SESSIONS[elem_type] = ort.InferenceSession(
                model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return sess


def onnxruntime_sigmoid(x: np.ndarray) -> np.ndarray:
    """``Sigmoid(x)`` by onnxruntime's CPU kernel (float16/32/64)."""
    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
        raise TypeError(f"Sigmoid of {x.dtype} is not recomputed")
    return _sigmoid_session(elem).run(None, {"x": np.ascontiguousarray(x)})[0]

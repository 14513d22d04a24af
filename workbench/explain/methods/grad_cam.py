"""Grad-CAM (Selvaraju et al., 2017) on any layer: channel weights = spatially averaged
gradients of the target score; map = ReLU(sum_k weight_k * activation_k), upsampled bilinearly
from the layer's grid to the input.

The layer is given by node name or output tensor name (``layer``); by default the last computing
node with a 4-D output larger than 1x1 (for detectors with several heads, pick the head's layer).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...backends.reference.program import execute
from ...errors import ExplainError
from .base import GradientMethod, MethodOutput, register_method


#: ops that only move or reshape data: their outputs are not feature maps (a Transpose to NHWC
#: before a dense layer would look like a 4-D map with the wrong axes)
LAYOUT_OPS = frozenset({
    "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather", "Shape", "Expand", "Tile",
    "Split", "Concat", "Pad", "Identity", "Cast", "TRANSPOSE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
    "CONCATENATION", "SLICE", "STRIDED_SLICE", "GATHER", "PAD", "PADV2", "CAST", "SPLIT", "SPLIT_V",
    "DEQUANTIZE", "QUANTIZE"})


def default_layer(model: Any, inputs: torch.Tensor) -> str:
    """The last computing node (not a layout op) whose first output is a 4-D map with both
    spatial sides > 1."""
    last: list[str] = []
    tflite = model.program.fmt == "tflite"

    def on_node(info: Any, outputs: Any) -> None:
        if not outputs or info.op_type in LAYOUT_OPS:
            return
        t = outputs[0]
        if isinstance(t, torch.Tensor) and t.dim() == 4 and torch.is_floating_point(t):
            s = t.shape[1:3] if tflite else t.shape[2:4]
            if min(int(s[0]), int(s[1])) > 1:
                last.append(info.name or info.outputs[0])

    with torch.no_grad():
        execute(model.program, {model.input_name: model.layout.to_model(inputs)}, on_node)
    if not last:
        raise ExplainError("grad-cam found no 4-D feature map in this model", hint="pass layer=NAME")
    return last[-1]


@register_method("grad-cam")
class GradCam(GradientMethod):
    """Captum's LayerGradCam on a probe module the reference model routes ``layer`` through."""

    is_layer_method = True
    defaults = {"layer": None, "relu_attributions": True}
    summary = "class activation map of a layer, upsampled (reference backend)"

    def _captum(self) -> Any:
        from captum.attr import LayerGradCam

        return LayerGradCam(self.forward, self._probe)

    def _kwargs(self, inputs: torch.Tensor, baselines: torch.Tensor) -> dict[str, Any]:
        return {"relu_attributions": bool(self.params["relu_attributions"]), "attr_dim_summation": True}

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        layer = self.params["layer"] or default_layer(self.forward, inputs)
        self.params["layer"] = layer
        with self.forward.layer_probe(layer, torch.nn.Identity()) as probe:
            self._probe = probe
            try:
                cam, delta = self._run(inputs, baselines)
            finally:
                del self._probe
        cam = cam.detach()
        if cam.dim() == 3:
            cam = cam[None]
        grid = tuple(int(s) for s in cam.shape[2:])
        if self.subject.layout.name == "NWHC":  # the model's grid is (W', H')
            cam = cam.transpose(2, 3)
        up = F.interpolate(cam.to(torch.float32), size=tuple(inputs.shape[2:]), mode="bilinear", align_corners=False)
        return MethodOutput(up[0, :1], delta, notes={"layer": layer, "layer_grid": list(grid)})

"""LIME (Ribeiro et al., 2016) over superpixels: a locally weighted linear surrogate fitted on
random on/off patterns of SLIC segments."""

from __future__ import annotations

import torch

from .._progress import progress_enabled
from ._superpixels import slic_mask
from ._surrogate import WeightedLinearModel
from .base import Method, MethodOutput, register_method


@register_method("lime")
class Lime(Method):
    """Captum's Lime with an exponential cosine-distance kernel (``kernel_width``) and a weighted
    ridge surrogate (``alpha``), solved in closed form."""

    defaults = {"n_segments": 50, "compactness": 10.0, "sigma": 1.0, "n_samples": 256, "kernel_width": 1.0, "alpha": 0.01,
                "seed": 0}
    summary = "local linear surrogate over SLIC superpixels (deployed backend)"

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        from captum.attr import Lime as CaptumLime
        from captum.attr._core.lime import get_exp_kernel_similarity_function

        mask = slic_mask(self.subject, inputs, self.params["n_segments"], self.params["compactness"],
                         self.params["sigma"])
        lime = CaptumLime(self.forward, interpretable_model=WeightedLinearModel(alpha=float(self.params["alpha"])),
                          similarity_func=get_exp_kernel_similarity_function(
                              "cosine", kernel_width=float(self.params["kernel_width"])))
        with torch.random.fork_rng():
            torch.manual_seed(int(self.params["seed"]))
            attr = lime.attribute(inputs, baselines=baselines, feature_mask=mask,
                                  n_samples=int(self.params["n_samples"]),
                                  perturbations_per_eval=self.forward.max_batch, show_progress=progress_enabled())
        return MethodOutput(attr[0, :1], notes={"segments": int(mask.max()) + 1})

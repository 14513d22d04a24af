"""Kernel SHAP (Lundberg & Lee, 2017) over superpixels: Shapley values estimated by a weighted
linear regression on random coalitions of SLIC segments."""

from __future__ import annotations

import torch

from .._progress import progress_enabled
from ._superpixels import slic_mask
from ._surrogate import WeightedLinearModel
from .base import Method, MethodOutput, register_method


@register_method("kernel-shap")
class KernelShap(Method):
    """Captum's KernelShap (``n_samples`` coalitions, ``seed``); the regression is solved in
    closed form (:class:`WeightedLinearModel`)."""

    defaults = {"n_segments": 50, "compactness": 10.0, "sigma": 1.0, "n_samples": 256, "seed": 0}
    summary = "Shapley values of SLIC superpixels by weighted regression (deployed backend)"

    def _attribute(self, inputs: torch.Tensor, baselines: torch.Tensor) -> MethodOutput:
        from captum.attr import KernelShap as CaptumKernelShap

        mask = slic_mask(self.subject, inputs, self.params["n_segments"], self.params["compactness"],
                         self.params["sigma"])
        ks = CaptumKernelShap(self.forward)
        ks.interpretable_model = WeightedLinearModel(alpha=0.0)  # no scikit-learn
        with torch.random.fork_rng():
            torch.manual_seed(int(self.params["seed"]))
            attr = ks.attribute(inputs, baselines=baselines, feature_mask=mask, n_samples=int(self.params["n_samples"]),
                                perturbations_per_eval=self.forward.max_batch, show_progress=progress_enabled())
        return MethodOutput(attr[0, :1], notes={"segments": int(mask.max()) + 1})

"""Closed-form weighted linear surrogates for LIME and Kernel SHAP (Captum's interpretable-model
interface), so that neither needs scikit-learn: weighted least squares with an intercept and an
optional ridge penalty, solved exactly (deterministic, no SGD)."""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.models.model import Model
from torch.utils.data import DataLoader

__all__ = ["WeightedLinearModel"]


class WeightedLinearModel(Model):
    """``y ~ X w + b`` minimising ``sum_i s_i (y_i - x_i w - b)^2 + alpha |w|^2``."""

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = float(alpha)
        self.weight: torch.Tensor | None = None
        self.intercept: torch.Tensor | None = None

    def fit(self, train_data: DataLoader, **kwargs: Any) -> dict[str, float]:
        xs, ys, ws = [], [], []
        for batch in train_data:
            x, y = batch[0], batch[1]
            w = batch[2] if len(batch) > 2 else torch.ones(len(x))
            xs.append(x.reshape(len(x), -1).double())
            ys.append(y.reshape(len(x)).double())
            ws.append(w.reshape(len(x)).double())
        x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws).clamp(min=0)
        n, f = x.shape
        a = torch.cat([x, torch.ones(n, 1, dtype=x.dtype)], 1)
        aw = a * w[:, None]
        lhs = a.T @ aw
        reg = torch.full((f + 1,), self.alpha, dtype=x.dtype)
        reg[-1] = 0.0  # no penalty on the intercept
        lhs = lhs + torch.diag(reg) + 1e-9 * torch.eye(f + 1, dtype=x.dtype)
        sol = torch.linalg.lstsq(lhs, aw.T @ y[:, None]).solution[:, 0]
        self.weight, self.intercept = sol[:f].float(), sol[f].float()
        resid = (a @ sol - y) * w.sqrt()
        return {"weighted_mse": float((resid ** 2).sum() / w.sum().clamp(min=1e-12))}

    def representation(self) -> torch.Tensor:
        assert self.weight is not None, "fit() first"
        return self.weight[None, :]

    def bias(self) -> torch.Tensor | None:
        return self.intercept

    def __call__(self, x: Any) -> Any:
        assert self.weight is not None and self.intercept is not None, "fit() first"
        return x.reshape(len(x), -1).float() @ self.weight + self.intercept

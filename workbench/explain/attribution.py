"""The :class:`Attribution` record: a map in model-input and original-frame pixels with everything
needed to trust it (method, parameters, target, parity, sanity, faithfulness), saved as JSON + .npy.

Saved layout (inside a FrameResult folder: ``attributions/<name>/``)::

    attribution.json    method, params, target, transform, seconds, delta, parity, sanity, ...
    input_map.npy       (H, W) or (H, W, C) float32, model-input pixels (image view)
    frame_map.npy       the same in original-frame pixels, (H_f, W_f) or (H_f, W_f, C)

Frame maps are area-weighted resamplings of the input map: a frame pixel gets the mean of the
input map over its footprint (0 where the footprint leaves the model input, e.g. outside a crop).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..capture.records import jsonable
from ..errors import InputError, TraceFormatError
from ..preprocess import Transform
from .targets import Target

__all__ = ["Attribution", "input_to_frame", "save_attributions", "open_attributions", "heatmap_of", "REDUCTIONS"]

_FORMAT = "workbench.attribution"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _axis_matrix(n_frame: int, n_input: int, scale: float, offset: float) -> np.ndarray:
    """``[n_frame, n_input]``: share of frame pixel j's footprint ``[j*s+o, (j+1)*s+o]`` that
    input pixel i covers (rows sum to 1 where the footprint lies inside the input)."""
    s = float(scale)
    lo = np.arange(n_frame, dtype=np.float64)[:, None] * s + float(offset)
    hi = lo + s
    i = np.arange(n_input, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0.0, None)
    return overlap / s


def input_to_frame(input_map: np.ndarray, transform: Transform, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, C)`` map in model-input pixels -> frame pixels ``(H_f, W_f[, C])``.

    Separable area resampling through the transform (``model = frame * scale + offset``)."""
    m = np.asarray(input_map, dtype=np.float64)
    fw, fh = frame_size or transform.frame_size
    ry = _axis_matrix(int(fh), m.shape[0], transform.scale[1], transform.offset[1])
    rx = _axis_matrix(int(fw), m.shape[1], transform.scale[0], transform.offset[0])
    if m.ndim == 2:
        return (ry @ m @ rx.T).astype(np.float32)
    return np.stack([ry @ m[..., c] @ rx.T for c in range(m.shape[2])], axis=-1).astype(np.float32)


REDUCTIONS = ("sum", "abs")


def heatmap_of(a: np.ndarray, reduction: str = "sum") -> np.ndarray:
    """``(H, W)`` of a map: channels summed ("sum": signed contributions such as integrated
    gradients) or their magnitudes summed ("abs": sensitivities such as guided backprop, whose
    per-channel signs follow the first layer's weights, not the evidence)."""
    a = np.asarray(a)
    if a.ndim != 3:
        return a
    return np.abs(a).sum(-1) if reduction == "abs" else a.sum(-1)


@dataclass(frozen=True, eq=False)
class Attribution:
    """One attribution map of one target.

    ``input_map``: ``(H, W)`` or ``(H, W, C)`` in model-input pixels (the image view of the
    input, whatever the model's layout); ``frame_map``: the same in original-frame pixels;
    ``transform``: frame -> model input. ``backend`` is where the method ran (the deployed
    backend for perturbation methods, "reference" for gradients); ``parity`` the reference vs
    deployed check (max |diff| and the tolerance) when the reference ran; ``convergence_delta``
    where the method defines one; ``sanity`` / ``faithfulness`` the quality checks
    (:mod:`workbench.explain.quality`); ``target_value`` the target score on the unperturbed input.
    """

    method: str
    params: dict[str, Any]
    target: Target
    input_map: np.ndarray
    frame_map: np.ndarray
    transform: Transform
    model: str
    backend: str
    seconds: float
    target_value: float | None = None
    convergence_delta: float | None = None
    parity: dict[str, Any] | None = None
    sanity: dict[str, Any] | None = None
    faithfulness: dict[str, Any] | None = None
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    #: how channels reduce to the heatmap: "sum" or "abs" (see :func:`heatmap_of`)
    reduction: str = "sum"

    # -- views ---------------------------------------------------------------------------------
    @property
    def heatmap(self) -> np.ndarray:
        """Frame-pixel ``(H_f, W_f)`` map (channels reduced by :attr:`reduction`)."""
        return heatmap_of(self.frame_map, self.reduction)

    @property
    def input_heatmap(self) -> np.ndarray:
        """Model-input ``(H, W)`` map (channels reduced by :attr:`reduction`)."""
        return heatmap_of(self.input_map, self.reduction)

    def overlay(self, image: np.ndarray, alpha: float = 0.6, cmap: str | None = None) -> np.ndarray:
        """The frame ``image (H_f, W_f, 3) uint8`` with the heatmap blended on top -> uint8 RGB.

        Signed maps use a diverging colormap centred on 0 (``bwr``), non-negative ones ``jet``;
        opacity grows with |attribution| so unimportant pixels show the frame.
        """
        import matplotlib

        heat = self.heatmap.astype(np.float64)
        img = np.asarray(image)
        if img.shape[:2] != heat.shape:
            raise InputError(f"overlay: image is {img.shape[:2]}, the frame map is {heat.shape}",
                             hint="pass the frame the attribution was computed on")
        signed = bool((heat < 0).any() and (heat > 0).any())
        mag = np.abs(heat)
        # a robust peak: the 99.5th percentile of the non-zero magnitudes (one hot pixel must not
        # wash out the rest)
        nz = mag[mag > 0]
        peak = float(np.percentile(nz, 99.5)) if nz.size else 1.0
        strength = np.clip(mag / (peak or 1.0), 0.0, 1.0)
        if signed:
            norm = 0.5 + 0.5 * np.sign(heat) * strength
            name = cmap or "bwr"
        else:
            norm = strength
            name = cmap or "jet"
        colours = matplotlib.colormaps[name](norm)[..., :3]
        weight = (alpha * strength)[..., None]
        out = img[..., :3].astype(np.float64) / 255.0 * (1 - weight) + colours * weight
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def summary(self) -> dict[str, Any]:
        """What ``workbench explain --json`` prints (without the map path)."""
        return {"method": self.method, "target": self.target.to_json(), "params": jsonable(self.params),
                "model": self.model, "backend": self.backend, "seconds": round(self.seconds, 4),
                "target_value": self.target_value, "convergence_delta": self.convergence_delta,
                "parity": jsonable(self.parity), "sanity": jsonable(self.sanity),
                "faithfulness": jsonable(self.faithfulness)}

    def __repr__(self) -> str:
        return (f"Attribution({self.method!r}, {self.target.describe()}, model={self.model!r} on {self.backend}, "
                f"input {self.input_map.shape}, frame {self.frame_map.shape}, {self.seconds:.2f}s)")

    def equals(self, other: "Attribution") -> bool:
        """Same maps (exactly), target, method, params and checks."""
        return (isinstance(other, Attribution) and self.method == other.method and self.target == other.target
                and self.transform == other.transform and jsonable(self.summary()) == jsonable(other.summary())
                and np.array_equal(self.input_map, other.input_map) and np.array_equal(self.frame_map, other.frame_map))

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``attribution.json``, ``input_map.npy`` and ``frame_map.npy`` into ``folder``."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "input_map.npy", np.asarray(self.input_map, dtype=np.float32))
        np.save(root / "frame_map.npy", np.asarray(self.frame_map, dtype=np.float32))
        doc = {"format": _FORMAT, "version": 1, "name": self.name, "method": self.method,
               "params": jsonable(self.params), "target": self.target.to_json(),
               "transform": self.transform.as_dict(), "model": self.model, "backend": self.backend,
               "seconds": self.seconds, "target_value": self.target_value,
               "convergence_delta": self.convergence_delta, "parity": jsonable(self.parity),
               "sanity": jsonable(self.sanity), "faithfulness": jsonable(self.faithfulness),
               "notes": jsonable(self.notes), "reduction": self.reduction}
        tmp = root / "attribution.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, root / "attribution.json")
        return root

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "Attribution":
        """Reopen a saved attribution (maps memory-mapped)."""
        root = Path(folder)
        try:
            doc = json.loads((root / "attribution.json").read_text())
        except FileNotFoundError:
            raise TraceFormatError(f"{root} has no attribution.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{root / 'attribution.json'} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise TraceFormatError(f"{root / 'attribution.json'} is not a workbench attribution")
        try:
            maps = {k: np.load(root / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in ("input_map", "frame_map")}
            return cls(method=str(doc["method"]), params=dict(doc.get("params", {})),
                       target=Target.from_json(doc["target"]), input_map=maps["input_map"],
                       frame_map=maps["frame_map"], transform=Transform.from_dict(doc["transform"]),
                       model=str(doc["model"]), backend=str(doc["backend"]), seconds=float(doc["seconds"]),
                       target_value=doc.get("target_value"), convergence_delta=doc.get("convergence_delta"),
                       parity=doc.get("parity"), sanity=doc.get("sanity"), faithfulness=doc.get("faithfulness"),
                       name=str(doc.get("name", root.name)), notes=dict(doc.get("notes", {})),
                       reduction=str(doc.get("reduction", "sum")))
        except (KeyError, TypeError, ValueError, OSError, InputError) as exc:
            raise TraceFormatError(f"{root} holds a malformed attribution: {exc}") from exc

    def renamed(self, name: str) -> "Attribution":
        return replace(self, name=name)


def save_attributions(attributions: dict[str, Attribution], root: str | os.PathLike) -> None:
    """Write every attribution to ``root/attributions/<name>/`` (a FrameResult folder)."""
    base = Path(root) / "attributions"
    for name, a in attributions.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
            raise InputError(f"attribution name {name!r} must be a plain name (letters, digits, _ . -)")
        a.save(base / name)


def open_attributions(root: str | os.PathLike) -> dict[str, Attribution]:
    """Every attribution saved under ``root/attributions/`` (empty when there is none)."""
    base = Path(root) / "attributions"
    if not base.is_dir():
        return {}
    return {d.name: Attribution.open(d) for d in sorted(base.iterdir()) if (d / "attribution.json").is_file()}

"""Attribution view: which pixels drove a result, by method and target, with its check numbers.

The view reads attributions through a small duck-typed interface, so that it does not depend on
how :mod:`workbench.explain` stores them: any object with ``method`` (str), ``target`` (anything
printable), ``frame_map`` (``(H, W)`` or ``(H, W, C)`` array in original-frame pixels),
``params`` (mapping), ``sanity`` and ``faithfulness`` (a number, a mapping, a dataclass or None)
and ``seconds`` (float). :func:`attributions_of` collects them from a result (its
``attributions`` attribute, a mapping or a sequence) and from the explorer's own list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ..render import colorize, downsample, draw_boxes, figure_png
from .base import ExplorerContext, View, col, esc, html_table, register_view, row

__all__ = ["ATTRIBUTION_FIELDS", "attributions_of", "target_label", "map_2d", "number_rows", "overlay_png",
           "AttributionView", "NO_ATTRIBUTIONS"]

ATTRIBUTION_FIELDS = ("method", "target", "frame_map", "params", "sanity", "faithfulness", "seconds")
NO_ATTRIBUTIONS = "no attributions yet \u2014 run workbench.explain(...)"


def _is_attribution(a: Any) -> bool:
    return all(hasattr(a, f) for f in ("method", "target", "frame_map"))


def attributions_of(result: Any, extra: Any = ()) -> tuple[Any, ...]:
    """Every attribution of ``result`` (its ``attributions``: a mapping or a sequence) plus ``extra``."""
    found: list[Any] = []
    for src in (getattr(result, "attributions", None), extra):
        if src is None:
            continue
        if _is_attribution(src):
            src = (src,)
        items = src.values() if isinstance(src, Mapping) else src
        for a in items:
            if not _is_attribution(a):
                missing = [f for f in ATTRIBUTION_FIELDS[:3] if not hasattr(a, f)]
                raise InputError(f"an attribution needs {ATTRIBUTION_FIELDS[:3]}; a {type(a).__name__} lacks {missing}",
                                 hint="pass the records workbench.explain(...) returns")
            found.append(a)
    return tuple(found)


def target_label(target: Any) -> str:
    """A short text for an attribution target (a class, a detection, a neuron...)."""
    for attr in ("describe", "label", "name"):
        v = getattr(target, attr, None)
        if isinstance(v, str):
            return v
        if callable(v):
            try:
                out = v()
            except Exception:  # a describe() we do not know must not break the view
                continue
            if isinstance(out, str):
                return out
    text = str(target)
    return text if len(text) <= 60 else text[:57] + "..."


def map_2d(frame_map: Any) -> np.ndarray:
    """An attribution map as ``(H, W)`` float: channels (last axis, or first when it is 1 or 3 and
    the last is not) summed; leading singleton dims dropped."""
    m = np.asarray(frame_map, dtype=np.float32)
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.ndim == 3:
        axis = 0 if m.shape[0] in (1, 3) and m.shape[2] not in (1, 3) else 2
        m = m.sum(axis=axis)
    if m.ndim != 2:
        raise InputError(f"an attribution frame_map must be (H, W) or (H, W, C), got shape {list(np.shape(frame_map))}")
    return m


def number_rows(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """Rows for a check result that may be a number, a mapping, a dataclass, an object or None."""
    if value is None:
        return [(prefix, "not computed")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif not isinstance(value, (Mapping, int, float, str, np.generic)) and hasattr(value, "__dict__"):
        value = {k: v for k, v in vars(value).items() if not k.startswith("_")}
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for k, v in value.items():
            if isinstance(v, Mapping):
                rows.extend(number_rows(v, f"{prefix}.{k}"))
            elif isinstance(v, (np.ndarray, list, tuple)) and np.size(v) > 8:
                a = np.asarray(v)
                text = f"{a.size} values" + (f", {float(a.flat[0]):.3g} .. {float(a.flat[-1]):.3g}"
                                             if a.dtype.kind in "fiu" else "")
                rows.append((f"{prefix}.{k}", text))
            else:
                rows.append((f"{prefix}.{k}", v.tolist() if isinstance(v, np.ndarray) else v))
        return rows or [(prefix, "empty")]
    return [(prefix, value)]


def overlay_png(ctx: ExplorerContext, a: Any, opacity: float) -> bytes:
    """The frame with attribution ``a``'s map on top (diverging colours for signed maps; each
    pixel's opacity ``opacity * |value| / max |value|``) and the target's box
    (``a.target.frame_box``) when it has one."""
    def render() -> bytes:
        fr = ctx.result.frame
        m = ctx.memo(("attr-map", id(a)), lambda: downsample(map_2d(a.frame_map), ctx.image_px))
        small = ctx.small_frame()
        h, w = small.shape[:2]
        fig, ax = ctx.canvas(w + 60, h, (0, 0, w / (w + 60), 1))
        ext = (0, fr.width, fr.height, 0)
        ax.imshow(small, interpolation="nearest", extent=ext)
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo < 0 < hi:
            lim = max(-lo, hi)
            cmap, vmin, vmax = "RdBu_r", -lim, lim
        else:
            cmap, vmin, vmax = "inferno", lo, hi if hi > lo else lo + 1
        rgba = colorize(m, cmap, vmin, vmax, bad="none")
        # opacity grows with |attribution|: unimportant pixels show the frame
        peak = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        rgba[..., 3] = np.nan_to_num(np.clip(np.abs(m) / peak, 0, 1) * (255 * opacity)).astype(np.uint8)
        ax.imshow(rgba, extent=ext, interpolation="nearest")
        box = getattr(a.target, "frame_box", None)
        if box is not None and len(box) == 4:
            draw_boxes(ax, np.array([box], dtype=np.float64), "#009E73", 2.0, "dashed")
        ax.set_xlim(0, fr.width)
        ax.set_ylim(fr.height, 0)
        bar_h = int(h * 0.8)
        fig.figimage(colorize(np.linspace(vmax, vmin, bar_h)[:, None].repeat(12, 1), cmap, vmin, vmax),
                     xo=w + 8, yo=int(h * 0.1))
        fig.text((w + 22) / (w + 60), 0.9, f"{vmax:.3g}", fontsize=7, va="top")
        fig.text((w + 22) / (w + 60), 0.1, f"{vmin:.3g}", fontsize=7, va="bottom")
        return figure_png(fig)

    return ctx.cache.get(("attribution", id(a), round(float(opacity), 3)), render)


@dataclass(frozen=True)
class AttributionState:
    method: str = ""
    target: str = ""
    opacity: float = 0.6


@register_view("attribution")
class AttributionView(View):
    """Method and target pickers, the map over the frame with an opacity slider, the check numbers."""

    State = AttributionState

    _items: tuple[Any, ...] = ()
    _labels: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[Any, ...]:
        """The attributions shown: the result's (read again each time the view is shown, so
        that maps computed after the explorer was made appear) and the explorer's own."""
        return self._items

    def _collect(self) -> None:
        items = attributions_of(self.ctx.result, self.ctx.attributions)
        labels, seen = [], {}
        for a in items:  # a target label names one map of its method (repeat runs get " [2]"...)
            text = target_label(a.target)
            n = seen[(str(a.method), text)] = seen.get((str(a.method), text), 0) + 1
            labels.append(text if n == 1 else f"{text} [{n}]")
        self._items, self._labels = items, tuple(labels)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(str(a.method) for a in self.items))

    def targets(self, method: str) -> list[str]:
        return [t for a, t in zip(self.items, self._labels, strict=True) if str(a.method) == method]

    def index(self) -> int:
        """The attribution shown (-1: none)."""
        s = self.state
        for i, (a, t) in enumerate(zip(self.items, self._labels, strict=True)):
            if str(a.method) == s.method and t == s.target:
                return i
        return -1

    def _enter(self, node) -> None:
        self._collect()

    def _initial(self, node) -> AttributionState:
        if not self.items:
            return AttributionState()
        return AttributionState(str(self.items[0].method), self._labels[0])

    def _validate(self, s: AttributionState) -> AttributionState:
        from dataclasses import replace

        if not 0.0 <= s.opacity <= 1.0:
            raise InputError(f"opacity must lie in [0, 1], got {s.opacity}")
        if not self.items:
            return s
        if s.method not in self.methods():
            raise InputError(f"no attribution by method {s.method!r}", hint=f"methods: {self.methods()}")
        targets = self.targets(s.method)
        if s.target not in targets:
            if s.method != self.state.method and s.target == self.state.target:
                return replace(s, target=targets[0])
            raise InputError(f"no {s.method} attribution for target {s.target!r}", hint=f"targets: {targets}")
        return s

    def _build(self):
        import ipywidgets as w

        self.method = w.Dropdown(description="method", layout=w.Layout(width="260px"))
        self._on(self.method, "method")
        self.target = w.Dropdown(description="target", layout=w.Layout(width="320px"))
        self._on(self.target, "target")
        self.opacity = w.FloatSlider(description="opacity", min=0, max=1, step=0.05, value=0.6,
                                     continuous_update=False)
        self._on(self.opacity, "opacity", float)
        self.image = w.Image(format="png")
        self.image.add_class("wb-image")
        self.numbers = w.HTML()
        self.message = w.HTML()
        self.message.add_class("wb-attribution-message")
        self.controls = row([self.method, self.target, self.opacity])
        return col([self.message, self.controls, row([self.image, self.numbers])])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        if not self.items:
            self.message.value = f"<b>{esc(NO_ATTRIBUTIONS)}</b>"
            self.controls.layout.display = "none"
            self.image.layout.display = "none"
            self.numbers.value = ""
            return
        s = self.state
        self.message.value = f"<small>{len(self.items)} attribution map(s)</small>"
        self.controls.layout.display = ""
        self.image.layout.display = ""
        self._sync(self.method, options=self.methods(), value=s.method)
        self._sync(self.target, options=self.targets(s.method), value=s.target)
        self._sync(self.opacity, value=s.opacity)
        i = self.index()
        a = self.items[i]
        self.image.value = overlay_png(self.ctx, a, s.opacity)
        rows: list[tuple[str, Any]] = [("method", a.method), ("target", self._labels[i]),
                                       ("seconds", getattr(a, "seconds", None))]
        for k in ("name", "model", "backend", "target_value", "convergence_delta"):
            v = getattr(a, k, None)
            if v not in (None, ""):
                rows.append((k, v))
        parity = getattr(a, "parity", None)
        if isinstance(parity, Mapping) and "max_abs_diff" in parity:
            rows.append(("parity: max |reference - deployed|", parity["max_abs_diff"]))
        params = getattr(a, "params", None) or {}
        rows += [(f"param {k}", v) for k, v in (params.items() if isinstance(params, Mapping) else [])]
        rows += number_rows(getattr(a, "sanity", None), "sanity")
        rows += number_rows(getattr(a, "faithfulness", None), "faithfulness")
        self.numbers.value = html_table(rows)

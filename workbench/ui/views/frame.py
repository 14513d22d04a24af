"""Frame and preprocessing views: the original frame, the model input, the transform between them.

Plain functions (tests call them without a browser):

- :func:`input_region` where a model input lies in the frame (the transform's inverse);
- :func:`tensor_image` the model input tensor as a displayable picture, layout aware (NCHW /
  NHWC, and MTCNN's transposed NHWC found from the transform's size);
- :func:`warp_to_input` the transform applied to the frame (when no tensor was traced);
- :func:`model_input` which of the two, for a stage's transform;
- :func:`transform_rows` the parameters as table rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ...meta import ObjectDetectionMtd
from ...preprocess import Transform
from ..graph import Node
from ..render import downsample, draw_boxes, figure_png, upscale
from .base import ExplorerContext, View, col, esc, fmt, html_table, register_view, row

__all__ = ["input_region", "tensor_image", "warp_to_input", "model_input", "record_for", "transform_rows",
           "ModelInput", "FrameView", "PreprocessView", "frame_png", "input_png"]


def input_region(t: Transform) -> tuple[float, float, float, float]:
    """The model input's rectangle ``(x1, y1, x2, y2)`` in frame pixels (may exceed the frame)."""
    iw, ih = t.input_size
    (x1, y1), (x2, y2) = t.to_frame(np.array([[0.0, 0.0], [float(iw), float(ih)]]))
    return float(x1), float(y1), float(x2), float(y2)


def _spatial_axes(shape: tuple[int, ...], size: tuple[int, int] | None,
                  transposed: bool | None = None) -> tuple[int, int, int, bool]:
    """(row axis, col axis, channel axis, transposed) of a 4-D image tensor ``(N, ., ., .)``."""
    if transposed is not None:
        r, c, ch = (2, 3, 1) if shape[1] in (1, 3) and shape[3] not in (1, 3) else (1, 2, 3)
        return (c, r, ch, True) if transposed else (r, c, ch, False)
    if size is not None:
        w, h = size
        for r, c, ch in ((1, 2, 3), (2, 3, 1)):
            if (shape[r], shape[c]) == (h, w):
                return r, c, ch, False
        for r, c, ch in ((1, 2, 3), (2, 3, 1)):
            if (shape[r], shape[c]) == (w, h):
                return c, r, ch, True  # the tensor holds the transposed image (MTCNN)
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        return 2, 3, 1, False
    return 1, 2, 3, False


def tensor_image(x: np.ndarray, size: tuple[int, int] | None = None, item: int = 0,
                 transposed: bool | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Batch item ``item`` of an image tensor as ``(H, W, 3) uint8`` for display.

    ``x`` is ``(N, C, H, W)`` or ``(N, H, W, C)``, or one of them holding the transposed image
    (``transposed``; None: found from ``size`` = the transform's (width, height) when the input is
    not square); values are min-max scaled to 0..255. Returns the picture and what was done.
    """
    a = np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(f"an image tensor has 3 or 4 dims, got shape {list(a.shape)}")
    if not 0 <= item < a.shape[0]:
        raise InputError(f"batch item {item} out of range 0..{a.shape[0] - 1}")
    r, c, ch, transposed = _spatial_axes(tuple(a.shape), size, transposed)
    img = np.moveaxis(a[item], (r - 1, c - 1, ch - 1), (0, 1, 2)).astype(np.float32)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = img[..., :3]
    lo, hi = float(np.nanmin(img)) if img.size else 0.0, float(np.nanmax(img)) if img.size else 0.0
    span = hi - lo if hi > lo else 1.0
    out = np.rint(np.nan_to_num((img - lo) * (255.0 / span))).clip(0, 255).astype(np.uint8)
    layout = "NHWC" if ch == 3 else "NCHW"
    return out, {"layout": layout + (" (transposed image)" if transposed else ""), "min": lo, "max": hi,
                 "shape": list(a.shape), "dtype": a.dtype.name, "item": item}


def warp_to_input(image: np.ndarray, t: Transform, fill: int = 0) -> np.ndarray:
    """The frame ``image (H, W, 3)`` resampled into the model input's geometry (nearest pixel).

    Shows what the transform does when the model input tensor itself was not traced.
    """
    iw, ih = t.input_size
    u = np.arange(iw) + 0.5
    v = np.arange(ih) + 0.5
    fx = (u - t.offset[0]) / t.scale[0]
    fy = (v - t.offset[1]) / t.scale[1]
    xi, yi = np.floor(fx).astype(np.intp), np.floor(fy).astype(np.intp)
    h, w = image.shape[:2]
    okx, oky = (xi >= 0) & (xi < w), (yi >= 0) & (yi < h)
    out = image[np.clip(yi, 0, h - 1)[:, None], np.clip(xi, 0, w - 1)[None, :]].copy()
    out[~(oky[:, None] & okx[None, :])] = fill
    return out


def record_for(stage: Any, option: str, crop: int) -> tuple[str | None, int]:
    """The inference record (name) that saw transform ``option[crop]`` and the batch item in it."""
    records = list(stage.records)
    for rec in records:
        if rec.endswith(f".{option}") or rec == option:
            n = len(stage.transforms.get(option, ()))
            return rec, crop if n > 1 else 0
    n = len(stage.transforms.get(option, ()))
    if len(records) == n and n > 0:  # one record per crop (a cascade)
        return records[crop], 0
    if len(records) == 1:
        return records[0], crop if n > 1 else 0
    return None, 0


def _transposed_input(stage: Any) -> bool | None:
    """True when the stage's notes say its model reads the transposed image (MTCNN's Keras port)."""
    pre = stage.notes.get("preprocess") if isinstance(stage.notes, dict) else None
    layout = pre.get("layout") if isinstance(pre, dict) else None
    return True if isinstance(layout, str) and "transposed" in layout else None


@dataclass(frozen=True)
class ModelInput:
    """The picture shown as a stage's model input, and where it came from."""

    image: np.ndarray
    source: str
    info: dict[str, Any]


def model_input(result: Any, stage_name: str, option: str, crop: int = 0) -> ModelInput:
    """The model input of transform ``option[crop]`` of a stage: the traced input tensor when
    there is one (exactly what the model saw), else the frame warped by the transform."""
    st = result.stages[stage_name]
    t = st.transforms[option][crop]
    rec_name, item = record_for(st, option, crop)
    rec = result.trace.records.get(rec_name) if rec_name else None
    if rec is not None and rec.inputs and rec.inputs[0] in rec.store and rec.store.is_kept(rec.inputs[0]):
        x = rec.store[rec.inputs[0]]
        if np.ndim(x) in (3, 4) and item < np.shape(x)[0]:
            img, info = tensor_image(x, t.input_size, item, _transposed_input(st))
            return ModelInput(img, f"input tensor {rec.inputs[0]!r} of record {rec_name!r}", info)
    return ModelInput(warp_to_input(np.asarray(result.frame.image), t), "the frame warped by the transform "
                      "(no input tensor traced)", {"shape": [t.input_size[1], t.input_size[0], 3]})


def transform_rows(t: Transform, notes: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
    """(name, value) rows describing a transform and the stage's preprocessing notes."""
    rows: list[tuple[str, Any]] = [
        ("policy", t.policy), ("frame size (w, h)", t.frame_size), ("input size (w, h)", t.input_size),
        ("scale (x, y)", t.scale), ("offset (x, y)", t.offset),
        ("frame -> input", "input = frame * scale + offset"),
        ("input region in frame", tuple(round(v, 2) for v in input_region(t))),
    ]
    pre = (notes or {}).get("preprocess")
    if isinstance(pre, dict):
        spec = pre.get("spec")
        if isinstance(spec, dict):
            for k in ("layout", "color", "dtype", "range", "mean", "std", "resize"):
                if spec.get(k) is not None:
                    rows.append((k, spec[k]))
        for k, v in pre.items():
            if k not in ("spec", "transform"):
                rows.append((k, v))
    return rows


def frame_png(ctx: ExplorerContext, region: tuple[float, float, float, float] | None = None,
              boxes: bool = False) -> bytes:
    """The original frame (``region``: the model input's rectangle; ``boxes``: the final detections)."""
    def render() -> bytes:
        fr = ctx.result.frame
        small = ctx.small_frame()
        h, w = small.shape[:2]
        fig, ax = ctx.canvas(w, h)
        ax.imshow(small, interpolation="nearest", extent=(0, fr.width, fr.height, 0))
        ax.set_xlim(0, fr.width)
        ax.set_ylim(fr.height, 0)
        if region is not None:
            x1, y1, x2, y2 = region
            ax.set_xlim(min(0, x1), max(fr.width, x2))
            ax.set_ylim(max(fr.height, y2), min(0, y1))
            draw_boxes(ax, np.array([region]), "#56B4E9", 2.0, "dashed")
        if boxes:
            dets = [m for m in ctx.result.meta if isinstance(m, ObjectDetectionMtd)]
            draw_boxes(ax, np.array([m.box for m in dets]).reshape(-1, 4), "#009E73", 2.0)
            for m in dets[:50]:
                ax.text(m.box[0], m.box[1], f"{m.label} {m.confidence:.2f}", color="white", fontsize=8,
                        va="bottom", bbox=dict(fc="#009E73", ec="none", pad=1))
        return figure_png(fig)

    return ctx.cache.get(("frame", region, boxes), render)


def input_png(ctx: ExplorerContext, stage: str, option: str, crop: int) -> bytes:
    """The model input of ``stage``'s transform ``option[crop]`` with its pixel axes."""
    def render() -> bytes:
        mi = ctx.memo(("model_input", stage, option, crop), lambda: model_input(ctx.result, stage, option, crop))
        ih, iw = mi.image.shape[:2]
        # small inputs are shown pixel for pixel, enlarged by an integer factor (what the model sees)
        img = downsample(mi.image, ctx.image_px) if max(ih, iw) > ctx.image_px // 2 else \
            upscale(mi.image, ctx.image_px, ctx.image_px)
        h, w = img.shape[:2]
        fig, ax = ctx.canvas(w, h + 16, (0, 0, 1, h / (h + 16)))
        ax.imshow(img, interpolation="nearest", extent=(0, iw, ih, 0))
        ax.set_xlim(0, iw)
        ax.set_ylim(ih, 0)
        zoom = w / iw
        fig.text(0.0, 1.0, f"{iw} x {ih} px" + (f" (shown x{zoom:.3g})" if abs(zoom - 1) > 1e-3 else ""),
                 fontsize=8, va="top")
        return figure_png(fig)

    return ctx.cache.get(("input", stage, option, crop), render)


@dataclass(frozen=True)
class FrameState:
    boxes: bool = True


@register_view("frame")
class FrameView(View):
    """The frame itself: pixels with the final detections, and where it came from."""

    State = FrameState

    def _build(self):
        import ipywidgets as w

        self.image = w.Image(format="png", layout=w.Layout(max_width=f"{self.ctx.image_px}px"))
        self.image.add_class("wb-image")
        self.boxes = w.Checkbox(value=True, description="final detections", indent=False)
        self._on(self.boxes, "boxes")
        self.info = w.HTML()
        return row([col([self.boxes, self.image]), self.info])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018 (build)
        self._sync(self.boxes, value=self.state.boxes)
        self.image.value = frame_png(self.ctx, None, self.state.boxes)
        if full:
            r = self.ctx.result
            fr = r.frame
            rows = [("id", fr.id), ("size (w x h)", f"{fr.width} x {fr.height}"), ("source", fr.source),
                    ("timestamp", fr.timestamp), ("pipeline", r.pipeline), ("stages", ", ".join(r.stages)),
                    ("Mtds", len(r.meta))]
            rows += [(k, f"{v:.1f} ms") for k, v in r.timings.items() if isinstance(v, (int, float))]
            self.info.value = html_table(rows)


@dataclass(frozen=True)
class PreprocessState:
    option: str = ""
    crop: int = 0


@register_view("preprocess")
class PreprocessView(View):
    """Original frame, model input and the transform between them (one per crop / pyramid level)."""

    State = PreprocessState

    def _initial(self, node: Node) -> PreprocessState:
        return PreprocessState(node.options[0] if node.options else "", 0)

    def _validate(self, s: PreprocessState) -> PreprocessState:
        st = self.ctx.result.stages[self.node.stage]
        if s.option not in st.transforms:
            raise InputError(f"stage {st.name!r} has no transform {s.option!r}",
                             hint=f"pick one of {list(st.transforms)}")
        n = len(st.transforms[s.option])
        if not 0 <= s.crop < max(n, 1):
            raise InputError(f"crop {s.crop} out of range 0..{n - 1} for transform {s.option!r}")
        return s

    def _build(self):
        import ipywidgets as w

        self.option = w.Dropdown(description="transform", layout=w.Layout(width="260px"))
        self._on(self.option, "option")
        self.crop = w.IntSlider(description="crop", min=0, max=0, continuous_update=False)
        self._on(self.crop, "crop")
        self.frame_img = w.Image(format="png", layout=w.Layout(max_width=f"{self.ctx.image_px}px"))
        self.input_img = w.Image(format="png", layout=w.Layout(max_width=f"{self.ctx.image_px}px"))
        for im in (self.frame_img, self.input_img):
            im.add_class("wb-image")
        self.source = w.HTML()
        self.params = w.HTML()
        return col([
            row([self.option, self.crop]),
            row([col([w.HTML("<b>original frame</b> (dashed: the model input's region)"), self.frame_img]),
                    col([w.HTML("<b>model input</b>"), self.source, self.input_img])]),
            self.params,
        ])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        s = self.state
        st = self.ctx.result.stages[self.node.stage]
        n = len(st.transforms[s.option])
        self._sync(self.option, options=tuple(st.transforms), value=s.option)
        self._sync(self.crop, max=max(n - 1, 0), value=s.crop)
        self.crop.layout.display = "" if n > 1 else "none"
        t = st.transforms[s.option][s.crop]
        self.frame_img.value = frame_png(self.ctx, input_region(t))
        self.input_img.value = input_png(self.ctx, self.node.stage, s.option, s.crop)
        mi = self.ctx.memo(("model_input", self.node.stage, s.option, s.crop),
                           lambda: model_input(self.ctx.result, self.node.stage, s.option, s.crop))
        extra = ", ".join(f"{k} {fmt(v)}" for k, v in mi.info.items())
        self.source.value = f"<small>{esc(mi.source)}: {esc(extra)}</small>"
        self.params.value = html_table(transform_rows(t, st.notes))

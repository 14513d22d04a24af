"""Layers view: step through one inference's ops in execution order and look at each output.

Plain functions (tests call them without a browser):

- :func:`default_layout` NCHW for onnxruntime / the reference interpreter, NHWC for LiteRT;
- :func:`layer_values` an output tensor raw or dequantized (``real = scale * (q - zero_point)``);
- :func:`as_channels` any tensor as ``(C, H, W)`` panels of one batch item, layout aware;
- :func:`channel_grid` a page of channels as one mosaic, shared or per-channel scaling;
- :func:`find_layer` the next op of a type / the op of a name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...capture import InferenceRecord, LayerRecord
from ...capture.records import jsonable
from ...capture.store import TensorStats, compute_stats
from ...errors import InputError
from ..graph import Node
from ..render import colorize, figure_png, message_png, new_figure, upscale
from .base import View, col, esc, fmt, html_table, register_view, row

__all__ = ["LAYOUTS", "SCALINGS", "VALUES", "default_layout", "layer_values", "as_channels", "channel_grid",
           "Grid", "find_layer", "layer_png", "histogram_image", "LayersView", "PER_PAGE"]

LAYOUTS = ("auto", "NCHW", "NHWC")
SCALINGS = ("shared", "per-channel")
VALUES = ("raw", "dequantized")
#: channels per grid page
PER_PAGE = 64
_GRID_PX = 420


def default_layout(record: InferenceRecord, shape: tuple[int, ...] | None = None) -> str:
    """The layout of a 4-D activation: LiteRT (TFLite) is NHWC; ONNX runtimes are NCHW, except a
    tensor whose last dim is 1..3 while the others are larger (an NHWC image or score map that a
    converted model keeps, e.g. MTCNN's ``(1, W, H, 2)`` face scores)."""
    if record.backend in ("litert", "tflite"):
        return "NHWC"
    if shape is not None and len(shape) == 4 and shape[3] in (1, 2, 3) and shape[1] > 3 and shape[2] > 3:
        return "NHWC"
    return "NCHW"


def quantization_of(record: InferenceRecord, tensor: str):
    """The :class:`~workbench.capture.Quantization` of ``tensor`` (None when it has none)."""
    for layer in record.layers:
        q = layer.quantization.get(tensor)
        if q is not None:
            return q
    return None


def layer_values(record: InferenceRecord, tensor: str, value: str = "raw") -> np.ndarray | None:
    """The captured values of ``tensor`` (None when only its stats were kept).

    ``value="dequantized"`` applies the tensor's quantization (raw integer values otherwise);
    a tensor without quantization is returned as is.
    """
    if value not in VALUES:
        raise InputError(f"value must be one of {VALUES}, got {value!r}")
    if tensor not in record.store or not record.store.is_kept(tensor):
        return None
    a = record.store[tensor]
    if value == "dequantized":
        q = quantization_of(record, tensor)
        if q is not None and np.asarray(a).dtype.kind in "iub":
            return q.dequantize(np.asarray(a))
    return np.asarray(a)


def as_channels(a: np.ndarray, layout: str, item: int = 0) -> tuple[np.ndarray, str]:
    """Batch item ``item`` of ``a`` as ``(C, H, W)`` panels, and how they were cut.

    4-D tensors follow ``layout`` (``NCHW`` / ``NHWC``: channels become panels); a 3-D tensor
    ``(N, A, K)`` is one ``A x K`` panel; ``(N, K)`` one ``1 x K`` strip; scalars one pixel;
    5-D and more keep the last three dims after flattening the leading ones into the batch.
    """
    if layout not in ("NCHW", "NHWC"):
        raise InputError(f"layout must be NCHW or NHWC here, got {layout!r}")
    x = np.asarray(a)
    if x.ndim > 4:
        x = x.reshape((-1,) + x.shape[-3:])
    if x.ndim == 0:
        return x.reshape(1, 1, 1), "scalar"
    if x.ndim == 1:
        return x.reshape(1, 1, -1), f"vector of {x.shape[0]}"
    n = x.shape[0]
    if not 0 <= item < n:
        raise InputError(f"batch item {item} out of range 0..{n - 1}")
    x = x[item]
    if x.ndim == 1:
        return x.reshape(1, 1, -1), f"item {item}: 1 x {x.shape[0]} strip"
    if x.ndim == 2:
        return x[None], f"item {item}: one {x.shape[0]} x {x.shape[1]} panel"
    if layout == "NHWC":
        x = np.moveaxis(x, -1, 0)
    return x, f"item {item}: {x.shape[0]} channels of {x.shape[1]} x {x.shape[2]} ({layout})"


@dataclass(frozen=True)
class Grid:
    """A page of channels as one mosaic: ``mosaic [rows*(th+1), cols*(tw+1)]`` in [0, 1] (per-channel)
    or in value units (shared), NaN between tiles; ``channels`` the channel ids shown."""

    mosaic: np.ndarray
    rows: int
    cols: int
    channels: tuple[int, int]
    stride: int
    vmin: float
    vmax: float
    scaling: str
    total: int


def channel_grid(chw: np.ndarray, scaling: str = "shared", page: int = 0, per_page: int = PER_PAGE,
                 max_px: int = _GRID_PX) -> Grid:
    """Channels ``page*per_page ..`` of ``chw (C, H, W)`` tiled into one mosaic (vectorized).

    Tiles are strided down so the mosaic fits ``max_px``; ``scaling="shared"`` keeps values
    (one colour scale: the page's min/max), ``"per-channel"`` rescales each channel to [0, 1]
    over its own full-resolution min/max.
    """
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    c, h, w = chw.shape
    pages = max(1, math.ceil(c / per_page))
    if not 0 <= page < pages:
        raise InputError(f"page {page} out of range 0..{pages - 1}")
    c0, c1 = page * per_page, min(c, (page + 1) * per_page)
    sel = np.asarray(chw[c0:c1], dtype=np.float32)
    n = c1 - c0
    cols = max(1, math.ceil(math.sqrt(n))) if h > 1 else 1
    rows = math.ceil(n / cols)
    tile = max(1, max_px // max(cols, rows))
    stride = max(1, math.ceil(max(h, w) / tile)) if h > 1 else max(1, math.ceil(w / max_px))
    tiles = sel[:, ::stride, ::stride]
    finite = np.isfinite(tiles)
    flat = sel.reshape(n, -1)
    lo, hi = _finite_range(flat)
    if scaling == "per-channel":
        span = np.where(hi > lo, hi - lo, 1.0)
        tiles = (tiles - lo[:, None, None]) / span[:, None, None]
        vmin, vmax = 0.0, 1.0
    else:
        ok = np.isfinite(lo)
        vmin = float(lo[ok].min()) if ok.any() else 0.0
        vmax = float(hi[ok].max()) if ok.any() else 0.0
    tiles = np.where(finite, tiles, np.nan)
    th, tw = tiles.shape[1:]
    padded = np.full((rows * cols, th + 1, tw + 1), np.nan, dtype=np.float32)
    padded[:n, :th, :tw] = tiles
    mosaic = padded.reshape(rows, cols, th + 1, tw + 1).transpose(0, 2, 1, 3).reshape(rows * (th + 1), cols * (tw + 1))
    return Grid(mosaic[:-1, :-1], rows, cols, (c0, c1), stride, vmin, vmax, scaling, c)


def _finite_range(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row min and max of ``flat [C, N]`` over finite values (NaN for a row without any).

    One plain min/max pass when every value is finite (the usual case), masked otherwise.
    """
    if flat.shape[1] == 0:
        nan = np.full(flat.shape[0], np.nan)
        return nan, nan
    lo, hi = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
    if np.isfinite(lo).all() and np.isfinite(hi).all():
        return lo, hi
    ok = np.isfinite(flat)
    lo = np.where(ok, flat, np.inf).min(axis=1).astype(np.float64)
    hi = np.where(ok, flat, -np.inf).max(axis=1).astype(np.float64)
    none = ~ok.any(axis=1)
    lo[none] = hi[none] = np.nan
    return lo, hi


def find_layer(record: InferenceRecord, *, op_type: str | None = None, name: str | None = None,
               start: int = 0) -> int:
    """Index of the op called ``name``, or of the next op of ``op_type`` after ``start``
    (wrapping around to the first one)."""
    if name is not None:
        for layer in record.layers:
            if layer.name == name:
                return layer.index
        raise InputError(f"no op named {name!r} in record {record.model_id!r}",
                         hint="the name box completes op names; see record.find(name=regex)")
    if op_type is not None:
        idx = [layer.index for layer in record.layers if layer.op_type == op_type]
        if not idx:
            raise InputError(f"no {op_type} op in record {record.model_id!r}",
                             hint=f"op types: {sorted(record.op_types)}")
        after = [i for i in idx if i > start]
        return after[0] if after else idx[0]
    raise InputError("find_layer needs op_type= or name=")


def histogram_image(stats: TensorStats, width: int, height: int) -> np.ndarray:
    """The :class:`TensorStats` histogram as an ``uint8 [height, width, 3]`` bar picture
    (log10(1 + count) bars, the mean as a red column, zero as a black one), vectorized."""
    counts = np.log10(1.0 + np.asarray(stats.hist_counts, dtype=np.float64))
    edges = np.asarray(stats.hist_edges, dtype=np.float64)
    bins = len(counts)
    col_bin = np.minimum(np.arange(width) * bins // width, bins - 1)
    bar = np.round(counts[col_bin] / max(counts.max(), 1e-12) * (height - 2)).astype(np.int64)
    rows_from_bottom = np.arange(height)[::-1, None]
    img = np.full((height, width, 3), 255, np.uint8)
    img[rows_from_bottom < bar[None, :]] = (0, 114, 178)
    lo, hi = edges[0], edges[-1]

    def column(v: float) -> int:
        return int(np.clip((v - lo) / (hi - lo) * (width - 1), 0, width - 1)) if hi > lo else 0

    if lo < 0 < hi:
        img[:, column(0.0)] = (0, 0, 0)
    img[:, column(stats.mean)] = (213, 94, 0)
    return img


def layer_png(grid: Grid | None, stats: TensorStats | None) -> bytes:
    """One picture per output: the channel grid with its colour scale, and the value histogram
    (:func:`histogram_image`) below. ``figimage`` and at most three labels, no axes: text and axes
    are what costs time in matplotlib; titles and the histogram's range go in the view's caption."""
    gw, hist_h, gap = _GRID_PX, 64, 12
    if grid is not None:
        diverging = grid.scaling == "shared" and grid.vmin < 0 < grid.vmax
        if diverging:
            m = max(-grid.vmin, grid.vmax)
            vmin, vmax, cmap = -m, m, "RdBu_r"
        else:
            vmin, vmax, cmap = grid.vmin, grid.vmax if grid.vmax > grid.vmin else grid.vmin + 1, "viridis"
        pic = upscale(colorize(grid.mosaic, cmap, vmin, vmax), gw, gw)[:gw, :gw]
    else:
        pic = np.full((0, gw, 4), 255, np.uint8)
    ph, pw = pic.shape[:2]
    hh = hist_h if stats is not None and stats.hist_counts else 0
    height = max(ph + (gap if ph and hh else 0) + hh, 20)
    fig = new_figure(gw + 64, height)
    if ph:
        fig.figimage(pic, xo=0, yo=height - ph)
        bar_h = max(ph - 4, 30)
        bar = colorize(np.linspace(vmax, vmin, bar_h)[:, None].repeat(12, 1), cmap, vmin, vmax)
        x0 = pw + 8
        fig.figimage(bar, xo=x0, yo=height - bar_h)
        labels = (f"{vmax:.3g}", f"{vmin:.3g}") if grid.scaling == "shared" else ("max", "min")
        fig.text((x0 + 15) / (gw + 64), 1.0, labels[0], fontsize=7, va="top")
        fig.text((x0 + 15) / (gw + 64), 1 - bar_h / height, labels[1], fontsize=7, va="bottom")
        if diverging:
            fig.text((x0 + 15) / (gw + 64), 1 - bar_h / 2 / height, "0", fontsize=7, va="center")
    if hh:
        fig.figimage(histogram_image(stats, gw, hh), xo=0, yo=0)
    return figure_png(fig)


def layer_rows(record: InferenceRecord, layer: LayerRecord) -> list[tuple[str, Any]]:
    """(name, value) rows describing one op."""
    store = record.store

    def shape(t: str) -> str:
        return f"{t} {list(store.shape(t))} {store.dtype(t)}" if t in store else f"{t} (not captured)"

    rows: list[tuple[str, Any]] = [
        ("op", f"#{layer.index} of {len(record.layers)}: {layer.op_type}"), ("name", layer.name),
        ("inputs", "; ".join(shape(t) for t in layer.inputs)),
        ("outputs", "; ".join(shape(t) for t in layer.outputs)),
    ]
    if layer.time_ms is not None:
        rows.append(("time", f"{layer.time_ms:.3f} ms"))
    for k, v in list(jsonable(layer.attributes).items())[:12]:
        text = str(v)
        rows.append((f"attr {k}", text if len(text) < 80 else text[:77] + "..."))
    for t, q in layer.quantization.items():
        rows.append((f"quantization {t}", f"scale {fmt(q.scale[:4])} zero_point {q.zero_point[:4]} axis {q.axis}"))
    return rows


def stats_rows(s: TensorStats) -> list[tuple[str, Any]]:
    return [("shape", list(s.shape)), ("dtype", s.dtype), ("bytes", s.nbytes), ("min", s.min), ("max", s.max),
            ("mean", s.mean), ("std", s.std), ("NaN", s.nan_count), ("Inf", s.inf_count),
            ("zeros", f"{100 * s.zero_fraction:.1f} %")]


@dataclass(frozen=True)
class LayersState:
    record: str = ""
    op: int = 0
    tensor: str = ""
    layout: str = "auto"
    scaling: str = "shared"
    value: str = "raw"
    item: int = 0
    page: int = 0


@register_view("layers")
class LayersView(View):
    """One op at a time: its output's channel grid, histogram, stats; jump by name or op type."""

    State = LayersState

    # -- state --------------------------------------------------------------------------------
    @property
    def record(self) -> InferenceRecord:
        return self.ctx.result.trace.records[self.state.record]

    def _initial(self, node: Node) -> LayersState:
        self.state = LayersState()
        rec = self.ctx.result.trace.records[node.options[0]]
        # the first op that reads the model input (weights' DEQUANTIZE ops come earlier in TFLite)
        first = next((layer.index for layer in rec.layers if set(layer.inputs) & set(rec.inputs)),
                     next((layer.index for layer in rec.layers if layer.outputs and layer.outputs[0] in rec.store), 0))
        return self._validate(LayersState(record=node.options[0], op=first))

    def _validate(self, s: LayersState) -> LayersState:
        recs = self.ctx.result.trace.records
        if s.record not in recs or (self.node is not None and s.record not in self.node.options):
            raise InputError(f"no inference record {s.record!r} in this stage",
                             hint=f"records: {list(self.node.options)}")
        old = self.state
        rec = recs[s.record]
        if s.record != old.record and s.op == old.op and old.record:
            s = _replace(s, op=0)
        if not rec.layers:
            return _replace(s, op=0, tensor="")
        if not 0 <= s.op < len(rec.layers):
            raise InputError(f"op {s.op} out of range 0..{len(rec.layers) - 1}")
        layer = rec.layers[s.op]
        if s.tensor not in layer.outputs:
            if s.tensor == old.tensor or not s.tensor or s.record != old.record:
                s = _replace(s, tensor=layer.outputs[0] if layer.outputs else "")
            else:
                raise InputError(f"op {layer.name!r} has no output {s.tensor!r}",
                                 hint=f"outputs: {list(layer.outputs)}")
        for name, allowed in (("layout", LAYOUTS), ("scaling", SCALINGS), ("value", VALUES)):
            if getattr(s, name) not in allowed:
                raise InputError(f"{name} must be one of {allowed}, got {getattr(s, name)!r}")
        shape = rec.store.shape(s.tensor) if s.tensor in rec.store else ()
        n = _items(shape)
        if s.item != old.item and not 0 <= s.item < n:
            raise InputError(f"batch item {s.item} out of range 0..{n - 1}")
        s = _replace(s, item=min(max(s.item, 0), n - 1))
        pages = max(1, math.ceil(self._channels(shape, s.layout, rec) / PER_PAGE))
        if s.page != old.page and not 0 <= s.page < pages:
            raise InputError(f"page {s.page} out of range 0..{pages - 1}")
        return _replace(s, page=min(max(s.page, 0), pages - 1))

    @staticmethod
    def _channels(shape: tuple[int, ...], layout: str, rec: InferenceRecord) -> int:
        if len(shape) < 4:
            return 1
        lay = default_layout(rec, shape) if layout == "auto" else layout
        return shape[-1] if lay == "NHWC" else shape[-3]

    def jump(self, *, op_type: str | None = None, name: str | None = None) -> LayersState:
        """Go to the op called ``name`` or to the next op of ``op_type``."""
        return self.update(op=find_layer(self.record, op_type=op_type, name=name, start=self.state.op))

    def step(self, delta: int) -> LayersState:
        """Previous (-1) / next (+1) op, clamped to the record."""
        n = len(self.record.layers)
        return self.update(op=min(max(self.state.op + delta, 0), max(n - 1, 0)))

    # -- content (tests read these) -----------------------------------------------------------------
    def layout(self) -> str:
        """The layout in use: the state's, or for "auto" :func:`default_layout` of the tensor."""
        if self.state.layout != "auto":
            return self.state.layout
        s = self.state
        shape = self.record.store.shape(s.tensor) if s.tensor in self.record.store else None
        return default_layout(self.record, shape)

    def values(self) -> np.ndarray | None:
        s = self.state
        return self.ctx.memo(("values", s.record, s.tensor, s.value),
                             lambda: layer_values(self.record, s.tensor, s.value)) if s.tensor else None

    def stats(self) -> TensorStats | None:
        s = self.state
        if not s.tensor or s.tensor not in self.record.store:
            return None
        if s.value == "dequantized" and quantization_of(self.record, s.tensor) is not None:
            return self.ctx.memo(("deq-stats", s.record, s.tensor), lambda: compute_stats(self.values()))
        return self.record.store.stats(s.tensor)

    def grid(self) -> Grid | None:
        s = self.state
        a = self.values()
        if a is None:
            return None
        key = ("grid", s.record, s.tensor, s.value, self.layout(), s.item, s.scaling, s.page)
        return self.ctx.memo(key, lambda: channel_grid(as_channels(a, self.layout(), s.item)[0], s.scaling, s.page))

    # -- widgets ----------------------------------------------------------------------------------
    def _build(self):
        import ipywidgets as w

        self.rec_dd = w.Dropdown(description="record", layout=w.Layout(width="260px"))
        self._on(self.rec_dd, "record")
        self.prev_op = w.Button(description="\u25c0 op", layout=w.Layout(width="60px"))
        self.next_op = w.Button(description="op \u25b6", layout=w.Layout(width="60px"))
        self.prev_op.add_class("wb-prev-op")
        self.next_op.add_class("wb-next-op")
        self._click(self.prev_op, lambda: self.step(-1))
        self._click(self.next_op, lambda: self.step(+1))
        self.op = w.IntSlider(description="op", min=0, max=0, continuous_update=False, layout=w.Layout(width="340px"))
        self._on(self.op, "op")
        self.name = w.Combobox(placeholder="jump to op name", ensure_option=False, layout=w.Layout(width="220px"))
        self.name.observe(self._on_name, names="value")
        self.op_type = w.Dropdown(description="type", layout=w.Layout(width="200px"))
        self.next_type = w.Button(description="next of type", layout=w.Layout(width="100px"))
        self._click(self.next_type, lambda: self.op_type.value and self.jump(op_type=self.op_type.value))
        self.tensor = w.Dropdown(description="output", layout=w.Layout(width="300px"))
        self._on(self.tensor, "tensor")
        self.layout_tb = w.ToggleButtons(options=LAYOUTS, description="layout", style={"button_width": "64px"})
        self._on(self.layout_tb, "layout")
        self.scaling_tb = w.ToggleButtons(options=SCALINGS, description="scaling", style={"button_width": "96px"})
        self._on(self.scaling_tb, "scaling")
        self.value_tb = w.ToggleButtons(options=VALUES, description="values", style={"button_width": "104px"})
        self._on(self.value_tb, "value")
        self.item = w.IntSlider(description="item", min=0, max=0, continuous_update=False)
        self._on(self.item, "item")
        self.page = w.IntSlider(description="page", min=0, max=0, continuous_update=False)
        self._on(self.page, "page")
        self.image = w.Image(format="png")
        self.image.add_class("wb-image")
        self.caption = w.HTML()
        self.info = w.HTML()
        self.stats_html = w.HTML()
        return col([
            row([self.rec_dd, self.prev_op, self.op, self.next_op]),
            row([self.name, self.op_type, self.next_type, self.tensor]),
            row([self.layout_tb, self.scaling_tb, self.value_tb]),
            row([self.item, self.page]),
            row([col([self.caption, self.image]), col([self.info, self.stats_html])]),
        ])

    def _on_name(self, change: dict) -> None:
        if self._syncing or self.node is None:
            return
        names = {layer.name: layer.index for layer in self.record.layers}
        if change["new"] in names:
            self._guarded(lambda: self.update(op=names[change["new"]]))

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        s, rec = self.state, self.record
        if full or old is None or old.record != s.record:
            self._sync(self.rec_dd, options=tuple(self.node.options), value=s.record)
            self.rec_dd.layout.display = "" if len(self.node.options) > 1 else "none"
            self._sync(self.name, options=tuple(layer.name for layer in rec.layers[:2000]))
            types = rec.op_types
            self._sync(self.op_type, options=[(f"{t} ({n})", t) for t, n in sorted(types.items())],
                       value=rec.layers[0].op_type if rec.layers else None)
        layer = rec.layers[s.op] if rec.layers else None
        shape = rec.store.shape(s.tensor) if s.tensor in rec.store else ()
        n_items = _items(shape)
        pages = max(1, math.ceil(self._channels(shape, s.layout, rec) / PER_PAGE))
        self._sync(self.op, max=max(len(rec.layers) - 1, 0), value=s.op)
        self._sync(self.tensor, options=tuple(layer.outputs) if layer else (), value=s.tensor or None)
        self._sync(self.layout_tb, value=s.layout)
        self._sync(self.scaling_tb, value=s.scaling)
        quant = bool(s.tensor) and quantization_of(rec, s.tensor) is not None
        self._sync(self.value_tb, value=s.value, disabled=not quant)
        self._sync(self.item, max=n_items - 1, value=s.item)
        self.item.layout.display = "" if n_items > 1 else "none"
        self._sync(self.page, max=pages - 1, value=s.page)
        self.page.layout.display = "" if pages > 1 else "none"
        self.info.value = html_table(layer_rows(rec, layer)) if layer else "<i>this record has no ops</i>"
        self.image.value, self.caption.value = self._png()
        st = self.stats()
        self.stats_html.value = html_table(stats_rows(st)) if st is not None else ""

    def _png(self) -> tuple[bytes, str]:
        """The output's picture (grid + histogram) and its caption (what is shown, how it was cut)."""
        s = self.state
        if not s.tensor:
            return message_png("this op has no output"), ""
        if s.tensor not in self.record.store:
            return message_png(f"{s.tensor!r} was not captured (see the CaptureFilter)"), ""
        a = self.values()
        st = self.stats()
        lay = self.layout()
        key = ("layer", s.record, s.tensor, s.value, lay, s.item, s.scaling, s.page)
        hist = ""
        if st is not None and st.hist_counts:
            hist = (f"<br>histogram below: {len(st.hist_counts)} bins over [{st.hist_edges[0]:.4g}, "
                    f"{st.hist_edges[-1]:.4g}], bar height log10(1 + count); red: mean {st.mean:.4g}"
                    + (", black: 0" if st.hist_edges[0] < 0 < st.hist_edges[-1] else ""))
        if a is None or a.size == 0:
            note = ("stats only (trace='stats'): trace with 'all' to keep values" if a is None
                    else f"empty tensor, shape {list(a.shape)}")
            png = self.ctx.cache.get(key, lambda: layer_png(None, st))
            return png, f"<b>{esc(s.tensor)}</b>: {esc(note)}<small>{hist}</small>"
        desc = as_channels(a, lay, s.item)[1]
        g = self.grid()
        what = f"channels {g.channels[0]}..{g.channels[1] - 1} of {g.total}" + (
            f", every {g.stride}th pixel" if g.stride > 1 else "")
        png = self.ctx.cache.get(key, lambda: layer_png(g, st))
        return png, (f"<b>{esc(s.tensor)}</b> ({esc(s.value)}): {esc(what)}<br><small>{esc(desc)}; "
                     f"{esc(s.scaling)} scaling{hist}</small>")


def _items(shape: tuple[int, ...]) -> int:
    """Batch items :func:`as_channels` can pick from a tensor of this shape."""
    if len(shape) > 4:
        return max(1, int(np.prod(shape[:-3])))
    return max(1, shape[0]) if len(shape) >= 2 else 1


def _replace(s: LayersState, **kw: Any) -> LayersState:
    from dataclasses import replace

    return replace(s, **kw)

"""Decoder view: every candidate and what NMS decided about it, one decision at a time.

Plain functions (tests call them without a browser):

- :func:`box_transform` which transform maps a stage's log boxes to frame pixels (decoders log
  model-input pixels: a detector's input, a cascade's crop; MTCNN logs frame pixels);
- :func:`candidate_table` rows filtered by fate and sorted by any column;
- :func:`decision_rows` the rows in the order NMS decided them (score filter left out);
- :func:`step_state` what is decided, current and pending after ``k`` decisions;
- :func:`replayed` the log recomputed for new score / IoU thresholds
  (:func:`workbench.nms.replay`), cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...decisions import DecisionLog, Fate
from ...errors import InputError
from ...nms import replay
from ...preprocess import Transform
from ..graph import Node
from ..render import FATE_COLORS, PENDING_COLOR, draw_boxes, figure_png
from .base import ExplorerContext, View, col, esc, fmt, html_table, register_view, row
from .frame import input_region

__all__ = ["FRAME_PIXEL_DECODERS", "box_transform", "decode_transform", "view_window", "nms_png", "candidate_table",
           "decision_rows", "StepState",
           "step_state", "replayed", "FATE_NAMES", "DecoderView", "window_image", "TABLE_ROWS", "MAX_DRAWN"]

FATE_NAMES = tuple(f.name for f in Fate)
_FILTERED = (int(Fate.BELOW_SCORE), int(Fate.CUT_BY_TOPK))
TABLE_ROWS = 40
#: at most this many pending / suppressed boxes are drawn (highest scores first)
MAX_DRAWN = 300

#: decoders (ids) whose DecisionLog boxes are frame pixels; the others log model-input pixels
#: (the DecisionLog convention). MTCNN has no single model input: its logs hold frame pixels.
FRAME_PIXEL_DECODERS: set[str] = {"mtcnn"}


def _decode_of(stage: Any, log_name: str) -> tuple[int | None, Any]:
    lg = stage.logs[log_name]
    for k, d in enumerate(stage.decodes):
        if d.log is lg:
            return k, d
    return None, None


def box_transform(stage: Any, log_name: str) -> Transform | None:
    """The transform frame -> the coordinates of ``stage.logs[log_name].boxes`` (None: frame pixels).

    The log of decode ``k`` uses that decode's input transform (``transforms["input"][k]``: a
    detector's one, a cascade's crop ``k``); a log named like a transform uses it; logs of
    :data:`FRAME_PIXEL_DECODERS` (and of MTCNN stages) need none.
    """
    if log_name not in stage.logs:
        raise InputError(f"stage {stage.name!r} has no log {log_name!r}", hint=f"logs: {list(stage.logs)}")
    k, dec = _decode_of(stage, log_name)
    decoder = dec.decoder if dec is not None else stage.notes.get("decoder")
    if stage.kind == "mtcnn" or decoder in FRAME_PIXEL_DECODERS:
        return None
    return decode_transform(stage, log_name)


def decode_transform(stage: Any, log_name: str) -> Transform | None:
    """The frame -> model-input transform of the inference whose outputs made this log (None
    when there is no single one, e.g. MTCNN's merged P-Net log)."""
    k, _ = _decode_of(stage, log_name)
    inputs = stage.transforms.get("input", ())
    if k is not None and k < len(inputs):
        return inputs[k]
    if log_name.startswith("crop-") and log_name[5:].isdigit() and int(log_name[5:]) < len(inputs):
        return inputs[int(log_name[5:])]
    own = stage.transforms.get(log_name, ())
    if len(own) == 1:
        return own[0]
    return inputs[0] if len(inputs) == 1 else None


def view_window(stage: Any, log_name: str, frame_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The part of the frame a log's picture shows: the model input's region (a crop, a
    letterbox) or the whole frame."""
    t = decode_transform(stage, log_name)
    if t is not None and t.policy != "pyramid":
        return input_region(t)
    return 0.0, 0.0, float(frame_size[0]), float(frame_size[1])


def candidate_table(log: DecisionLog, fates: tuple[str, ...] | None = None, sort: str = "score",
                    descending: bool = True, limit: int = TABLE_ROWS) -> tuple[list[dict[str, Any]], int]:
    """Rows of ``log`` whose fate is in ``fates`` (all when None), sorted by column ``sort``;
    returns the first ``limit`` rows (dicts of :meth:`DecisionLog.to_columns`) and how many matched."""
    cols = log.to_columns()
    if sort not in cols:
        raise InputError(f"cannot sort by {sort!r}", hint=f"columns: {list(cols)}")
    if fates is not None:
        bad = set(fates) - set(FATE_NAMES)
        if bad:
            raise InputError(f"unknown fate(s) {sorted(bad)}", hint=f"fates: {FATE_NAMES}")
        want = np.isin(log.fate.astype(np.int64), [int(Fate[f]) for f in fates])
    else:
        want = np.ones(len(log), dtype=bool)
    idx = np.flatnonzero(want)
    key = cols[sort][idx]
    if key.dtype == object:
        key = key.astype(str)
    elif key.dtype.kind == "f":
        key = np.where(np.isnan(key), -np.inf if descending else np.inf, key)
    order = np.argsort(key, kind="stable")
    if descending:
        order = order[::-1]
    picked = idx[order[:limit]]
    rows = [{k: v[i] for k, v in cols.items()} for i in picked.tolist()]
    return rows, int(len(idx))


def decision_rows(log: DecisionLog) -> np.ndarray:
    """Rows in the order their fate was decided, without the score filter's (``[S]``)."""
    rows = np.argsort(log.order, kind="stable")
    return rows[~np.isin(log.fate[rows].astype(np.int64), _FILTERED)]


@dataclass(frozen=True)
class StepState:
    """After ``step`` of ``total`` NMS decisions: rows decided (in order), the current one (the
    step-th; -1 at step 0), the box that decided it (-1 if none), the rows still pending."""

    step: int
    total: int
    decided: np.ndarray
    current: int
    by: int
    pending: np.ndarray
    text: str


def step_state(log: DecisionLog, step: int) -> StepState:
    """What NMS had decided after ``step`` decisions (0 = none yet, S = all)."""
    rows = decision_rows(log)
    if not 0 <= step <= len(rows):
        raise InputError(f"step {step} out of range 0..{len(rows)}")
    decided, pending = rows[:step], rows[step:]
    if step == 0:
        text = f"{len(rows)} candidates passed the score filter; none decided yet"
        return StepState(0, len(rows), decided, -1, -1, pending, text)
    cur = int(rows[step - 1])
    by = int(log.by[cur]) if int(log.fate[cur]) in (Fate.SUPPRESSED, Fate.MERGED) else -1
    return StepState(step, len(rows), decided, cur, by, pending, f"step {step}/{len(rows)}: {log.explain(cur)}")


def replayed(ctx: ExplorerContext, key: Any, log: DecisionLog, score: float | None, iou: float | None) -> DecisionLog:
    """``log`` replayed with new thresholds (None = as logged), memoized per ``key``."""
    p = log.params
    changes: dict[str, Any] = {}
    if score is not None and score != p.score_threshold:
        changes["score_threshold"] = score
    if iou is not None and iou != p.iou_threshold:
        changes["iou_threshold"] = iou
    if not changes:
        return log
    return ctx.memo(("replay", key, score, iou), lambda: replay(log, **changes))


def window_image(ctx: ExplorerContext, window: tuple[float, float, float, float]) -> tuple[np.ndarray, tuple]:
    """The frame cut to ``window`` (frame pixels, clipped) at display resolution, and its extent."""
    from ..render import downsample

    fr = np.asarray(ctx.result.frame.image)
    h, w = fr.shape[:2]
    x1, y1 = int(max(0, np.floor(window[0]))), int(max(0, np.floor(window[1])))
    x2, y2 = int(min(w, np.ceil(window[2]))), int(min(h, np.ceil(window[3])))
    if x2 <= x1 or y2 <= y1:
        x1, y1, x2, y2 = 0, 0, w, h
    if (x1, y1, x2, y2) == (0, 0, w, h):
        return ctx.small_frame(), (0, w, h, 0)
    img = ctx.memo(("window", x1, y1, x2, y2), lambda: downsample(np.ascontiguousarray(fr[y1:y2, x1:x2]), ctx.image_px))
    return img, (x1, x2, y2, y1)


def _top(rows: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    if len(rows) <= k:
        return rows
    return rows[np.argsort(-score[rows], kind="stable")[:k]]


def nms_png(ctx: ExplorerContext, log: DecisionLog, t: Transform | None, window: tuple[float, float, float, float],
            ss: StepState, row: int = -1) -> bytes:
    """The frame (cut to ``window``) with the candidates coloured by fate after ``ss.step``
    decisions (current: thick, its suppressor: dashed, pending: yellow), ``row`` magenta.
    ``t`` maps the log's boxes to frame pixels (None: they are frame pixels)."""
    boxes = log.boxes if t is None else t.boxes_to_frame(log.boxes)
    img, extent = window_image(ctx, window)
    wx1, wy1, wx2, wy2 = window
    aspect = (wy2 - wy1) / max(wx2 - wx1, 1e-9)
    wpx = ctx.image_px
    hpx = int(min(max(wpx * aspect, 120), 1.4 * wpx))
    fig, ax = ctx.canvas(wpx, hpx + 22, (0, 0, 1, hpx / (hpx + 22)))
    ax.imshow(img, interpolation="nearest", extent=extent)
    ax.set_xlim(wx1, wx2)
    ax.set_ylim(wy2, wy1)
    ax.set_aspect("auto")
    draw_boxes(ax, boxes[_top(ss.pending, log.score, MAX_DRAWN)], PENDING_COLOR, 0.8, alpha=0.8)
    fate = log.fate[ss.decided].astype(np.int64)
    for f in (Fate.SUPPRESSED, Fate.MERGED, Fate.CUT_BY_MAX_DETECTIONS, Fate.KEPT):
        rows = _top(ss.decided[fate == int(f)], log.score, MAX_DRAWN)
        draw_boxes(ax, boxes[rows], FATE_COLORS[f], 2.0 if f is Fate.KEPT else 1.0)
    if ss.by >= 0:
        draw_boxes(ax, boxes[[ss.by]], FATE_COLORS[Fate.KEPT], 3.0, "dashed")
    if ss.current >= 0:
        draw_boxes(ax, boxes[[ss.current]], FATE_COLORS[Fate(int(log.fate[ss.current]))], 3.5)
    if 0 <= row < len(log):
        draw_boxes(ax, boxes[[row]], "#FF00FF", 2.5, "dotted")
    x = 0.01
    for f, name in ((Fate.KEPT, "kept"), (Fate.SUPPRESSED, "suppressed"), (Fate.MERGED, "merged"),
                    (Fate.CUT_BY_MAX_DETECTIONS, "max-det cut")):
        n = int((fate == int(f)).sum())
        fig.text(x, 1 - 3 / (hpx + 22), f"{name} {n}", color=FATE_COLORS[f], fontsize=9, va="top", weight="bold")
        x += 0.19
    fig.text(x, 1 - 3 / (hpx + 22), f"pending {len(ss.pending)}", color="#8a7d00", fontsize=9, va="top", weight="bold")
    return figure_png(fig)


def counts_html(original: DecisionLog, current: DecisionLog) -> str:
    a, b = original.counts(), current.counts()
    rows = [{"fate": k, "logged": a[k], "replayed": b[k], "change": b[k] - a[k]} for k in a]
    return html_table(rows, ["fate", "logged", "replayed", "change"], css="wb-table wb-counts")


@dataclass(frozen=True)
class DecoderState:
    log: str = ""
    score: float | None = None
    iou: float | None = None
    step: int = -1
    fates: tuple[str, ...] = FATE_NAMES
    sort: str = "score"
    descending: bool = True
    row: int = -1


@register_view("decoder")
class DecoderView(View):
    """Candidate table, NMS stepper (boxes coloured by fate), score / IoU sliders replaying the log."""

    State = DecoderState

    # -- state --------------------------------------------------------------------------------
    @property
    def stage(self) -> Any:
        return self.ctx.result.stages[self.node.stage]

    @property
    def logged(self) -> DecisionLog:
        """The log as the pipeline wrote it."""
        return self.stage.logs[self.state.log]

    @property
    def log(self) -> DecisionLog:
        """The log as shown: replayed with the sliders' thresholds."""
        s = self.state
        return replayed(self.ctx, (self.node.stage, s.log), self.logged, s.score, s.iou)

    def _initial(self, node: Node) -> DecoderState:
        st = self.ctx.result.stages[node.stage]
        # the stage's main log: the one its first decode used (MTCNN: O-Net), else the first
        main = st.decodes[0].log if st.decodes else None
        name = next((k for k, v in st.logs.items() if v is main), node.options[0])
        lg = st.logs[name]
        return DecoderState(log=name, score=lg.params.score_threshold, iou=lg.params.iou_threshold,
                            step=len(decision_rows(lg)))

    def _validate(self, s: DecoderState) -> DecoderState:
        from dataclasses import replace

        old = self.state
        if s.log not in self.stage.logs:
            raise InputError(f"stage {self.node.stage!r} has no log {s.log!r}", hint=f"logs: {list(self.stage.logs)}")
        lg = self.stage.logs[s.log]
        if s.log != old.log:  # another log: its own thresholds, the final state
            if s.score == old.score:
                s = replace(s, score=lg.params.score_threshold)
            if s.iou == old.iou:
                s = replace(s, iou=lg.params.iou_threshold)
            s = replace(s, row=-1)
        for name in ("score", "iou"):
            v = getattr(s, name)
            if v is not None and not (isinstance(v, (int, float, np.floating)) and np.isfinite(v)):
                raise InputError(f"{name} threshold must be a finite number or None, got {v!r}")
        if s.iou is not None and not 0.0 <= s.iou <= 1.0:
            raise InputError(f"the IoU threshold must lie in [0, 1], got {s.iou}")
        bad = set(s.fates) - set(FATE_NAMES)
        if bad:
            raise InputError(f"unknown fate(s) {sorted(bad)}", hint=f"fates: {FATE_NAMES}")
        if s.sort not in lg.to_columns():
            raise InputError(f"cannot sort by {s.sort!r}", hint=f"columns: {list(lg.to_columns())}")
        shown = replayed(self.ctx, (self.node.stage, s.log), lg, s.score, s.iou)
        total = len(decision_rows(shown))
        changed = (s.log, s.score, s.iou) != (old.log, old.score, old.iou)
        if changed and s.step == old.step:
            s = replace(s, step=total)  # new thresholds: show where they lead
        if not -1 <= s.step <= total:
            raise InputError(f"step {s.step} out of range 0..{total}")
        if s.step == -1:
            s = replace(s, step=total)
        if not -1 <= s.row < len(lg):
            raise InputError(f"row {s.row} out of range -1..{len(lg) - 1}")
        return s

    def step_by(self, delta: int) -> DecoderState:
        """One decision back (-1) or forward (+1), clamped."""
        total = len(decision_rows(self.log))
        return self.update(step=min(max(self.state.step + delta, 0), total))

    def reset(self) -> DecoderState:
        """Back to the logged thresholds."""
        p = self.logged.params
        return self.update(score=p.score_threshold, iou=p.iou_threshold)

    # -- content ----------------------------------------------------------------------------------
    def steps(self) -> StepState:
        return step_state(self.log, self.state.step)

    def table(self) -> tuple[list[dict[str, Any]], int]:
        s = self.state
        return candidate_table(self.log, s.fates, s.sort, s.descending)

    # -- widgets ----------------------------------------------------------------------------------
    def _build(self):
        import ipywidgets as w

        self.log_dd = w.Dropdown(description="log", layout=w.Layout(width="220px"))
        self._on(self.log_dd, "log")
        self.score = w.FloatSlider(description="score >", min=0, max=1, step=0.01, continuous_update=False,
                                   readout_format=".3f")
        self.score.add_class("wb-score")
        self._on(self.score, "score", float)
        self.iou = w.FloatSlider(description="IoU >", min=0, max=1, step=0.01, continuous_update=False)
        self.iou.add_class("wb-iou")
        self._on(self.iou, "iou", float)
        self.reset_btn = w.Button(description="as logged", layout=w.Layout(width="90px"))
        self._click(self.reset_btn, self.reset)
        self.prev_step = w.Button(description="\u25c0", layout=w.Layout(width="40px"))
        self.next_step = w.Button(description="\u25b6", layout=w.Layout(width="40px"))
        self.prev_step.add_class("wb-prev-step")
        self.next_step.add_class("wb-next-step")
        self._click(self.prev_step, lambda: self.step_by(-1))
        self._click(self.next_step, lambda: self.step_by(+1))
        self.step = w.IntSlider(description="NMS step", min=0, max=0, continuous_update=False,
                                layout=w.Layout(width="360px"))
        self._on(self.step, "step")
        self.step_text = w.HTML()
        self.step_text.add_class("wb-step-text")
        self.image = w.Image(format="png")
        self.image.add_class("wb-image")
        self.counts = w.HTML()
        self.fates = w.SelectMultiple(options=FATE_NAMES, rows=6, description="fates",
                                      layout=w.Layout(width="260px"))
        self._on(self.fates, "fates", tuple)
        self.sort = w.Dropdown(description="sort by", layout=w.Layout(width="200px"))
        self._on(self.sort, "sort")
        self.desc = w.Checkbox(description="descending", indent=False)
        self._on(self.desc, "descending", bool)
        self.row = w.BoundedIntText(description="row", min=-1, max=0, layout=w.Layout(width="160px"))
        self._on(self.row, "row", int)
        self.row_text = w.HTML()
        self.table_html = w.HTML()
        self.table_html.add_class("wb-candidates")
        return col([
            row([self.log_dd, self.score, self.iou, self.reset_btn]),
            row([self.prev_step, self.step, self.next_step]),
            self.step_text,
            row([self.image, col([self.counts, self.fates, self.sort, self.desc, self.row, self.row_text])]),
            self.table_html,
        ])

    def _refresh(self, full: bool, old: Any = None) -> None:
        self.widget  # noqa: B018
        s, lg, logged = self.state, self.log, self.logged
        if full or old is None or old.log != s.log:
            lo, hi = float(np.nanmin(logged.score, initial=0.0)), float(np.nanmax(logged.score, initial=1.0))
            smin, smax = min(0.0, lo), max(1.0, hi)
            self._sync(self.log_dd, options=tuple(self.node.options), value=s.log)
            self.log_dd.layout.display = "" if len(self.node.options) > 1 else "none"
            self._sync(self.score, min=smin, max=smax, step=(smax - smin) / 200)
            self._sync(self.sort, options=tuple(logged.to_columns()))
            self._sync(self.row, max=len(logged) - 1)
        self._sync(self.score, value=float(s.score) if s.score is not None else float(self.score.min))
        self._sync(self.iou, value=float(s.iou) if s.iou is not None else 0.0)
        ss = self.steps()
        self._sync(self.step, max=ss.total, value=s.step)
        self._sync(self.fates, value=tuple(s.fates))
        self._sync(self.sort, value=s.sort)
        self._sync(self.desc, value=s.descending)
        self._sync(self.row, value=s.row)
        self.step_text.value = f"<b>{esc(ss.text)}</b>"
        self.row_text.value = f"<small>{esc(lg.explain(s.row))}</small>" if s.row >= 0 else ""
        t = box_transform(self.stage, s.log)
        window = view_window(self.stage, s.log, self.ctx.result.frame.size)
        key = ("nms", self.node.stage, s.log, s.score, s.iou, s.step, s.row)
        self.image.value = self.ctx.cache.get(key, lambda: nms_png(self.ctx, lg, t, window, ss, s.row))
        self.counts.value = counts_html(logged, lg)
        rows, n = self.table()
        cols = [c for c in lg.to_columns() if c != "order" and not c.startswith("extra")]
        extra = lg.extra.shape[1] if lg.extra is not None else 0
        hidden = (f" ({extra} per-candidate extras such as keypoints not shown: log.to_dataframe() has them)"
                  if extra else "")
        head = (f"<b>candidates</b>: {n} of {len(lg)} match the fate filter; first {len(rows)} by "
                f"{esc(s.sort)} ({'descending' if s.descending else 'ascending'}). params: "
                f"{esc(fmt(lg.params.method))}, score &gt; {esc(fmt(lg.params.score_threshold))}, "
                f"IoU &gt; {esc(fmt(lg.params.iou_threshold))}{esc(hidden)}")
        classes = [f"wb-fate-{r['fate'].lower()}" for r in rows]
        self.table_html.value = head + html_table(rows, cols, row_classes=classes)

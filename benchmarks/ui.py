"""How long the FrameExplorer's Python handlers take on a 640x640 frame (target: <= 150 ms each).

Every button, slider and picker of the explorer ends in one Python call (``explorer.go``,
``view.update``, ``view.step``, ``view.jump``...). This script runs a real pipeline on a 640x640
frame with every tensor traced, builds a :class:`~workbench.ui.FrameExplorer` and times those
calls with ``time.perf_counter``:

- ``cold``   the first time a state is shown (rendered with matplotlib, PNG encoded; the first
             visit of a view also builds its widgets);
- ``cached`` the same state again (PNGs come from the explorer's cache).

    python benchmarks/ui.py                   # blazeface-full, mtcnn, mtcnn-cascade: table + JSON
    python benchmarks/ui.py --models mtcnn --json ui.json
    python benchmarks/ui.py --models shapes-yolov8 --frame coffee

The time a widget takes to reach the browser (comm message, PNG decode) is not included: with
no kernel attached the widgets' messages go nowhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

TARGET_MS = 150.0
DEFAULT_MODELS = ("blazeface-full", "mtcnn", "mtcnn-cascade")


def _mtcnn_cascade() -> Any:
    from workbench import Pipeline

    return Pipeline.from_card("mtcnn").cascade("mtcnn-onet", square=True, expand=1.1, name="landmarks").track()


#: pipelines beyond one card, with the sample picture they run on: name -> (build, frame)
PIPELINES: dict[str, tuple[Callable[[], Any], str]] = {
    # six faces -> six O-Net crops -> six tracks: 24 Mtds with relations
    "mtcnn-cascade": (_mtcnn_cascade, "lfw-mosaic"),
}


def frame_640(name: str, size: int) -> Any:
    """A sample picture (:func:`workbench.data.sample_image` name) resized to ``size x size``."""
    from PIL import Image

    from workbench import data
    from workbench.media import Frame

    img = data.sample_image(name)
    img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return Frame(img, id=f"{name}-{size}", timestamp=0.0, source=f"sample:{name} resized to {size}x{size}")


class Timer:
    """Collects ``(handler, phase) -> [ms]``."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], list[float]] = defaultdict(list)

    def __call__(self, handler: str, phase: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.samples[(handler, phase)].append((time.perf_counter() - t0) * 1e3)
        return out


def _spread(n: int, k: int) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)}) if n else []


def exercise(ex: Any, timer: Timer, ops_per_record: int = 12) -> None:
    """Drive every view through its handlers twice: cold, then the same states cached."""
    for phase in ("cold", "cached"):
        for view in ex.views.values():  # the same sequence of states again: start every node afresh
            view.forget()
        for i, node in enumerate(ex.nodes):
            timer(f"go:{node.kind}", phase, lambda i=i: ex.go(i))
            v = ex.view
            if node.kind == "frame":
                timer("frame:boxes", phase, lambda: v.update(boxes=False))
                timer("frame:boxes", phase, lambda: v.update(boxes=True))
            elif node.kind == "preprocess":
                for opt in node.options[:4]:
                    timer("preprocess:option", phase, lambda opt=opt: v.update(option=opt, crop=0))
                    if len(ex.result.stages[node.stage].transforms[opt]) > 1:
                        timer("preprocess:crop", phase, lambda: v.update(crop=1))
            elif node.kind == "layers":
                for rec in node.options[:3]:
                    timer("layers:record", phase, lambda rec=rec: v.update(record=rec))
                    n = len(v.record.layers)
                    big = max(range(n), key=lambda k: int(np.prod(v.record.layers[k].output_shapes[0] or (0,)))
                              if v.record.layers[k].output_shapes else 0) if n else 0
                    for op in sorted(set(_spread(n, ops_per_record)) | {big}):
                        timer("layers:op", phase, lambda op=op: v.update(op=op))
                    timer("layers:op", phase, lambda big=big: v.update(op=big))
                    timer("layers:scaling", phase, lambda: v.update(scaling="per-channel"))
                    timer("layers:layout", phase, lambda: v.update(layout="NHWC" if v.layout() == "NCHW" else "NCHW"))
                    timer("layers:layout", phase, lambda: v.update(layout="auto"))
                    timer("layers:scaling", phase, lambda: v.update(scaling="shared"))
                    if v.item.max > 0:
                        timer("layers:item", phase, lambda: v.update(item=1))
                    if v.page.max > 0:
                        timer("layers:page", phase, lambda: v.update(page=1))
                    timer("layers:step", phase, lambda: v.step(+1))
                    if v.record.layers:
                        t = v.record.layers[-1].op_type
                        timer("layers:jump", phase, lambda t=t: v.jump(op_type=t))
            elif node.kind == "decoder":
                for log in node.options[-3:]:
                    timer("decoder:log", phase, lambda log=log: v.update(log=log))
                    total = v.steps().total
                    timer("decoder:step", phase, lambda: v.update(step=0))
                    for _ in range(min(5, total)):
                        timer("decoder:step", phase, lambda: v.step_by(+1))
                    p = v.logged.params
                    lo = float(np.nanmin(v.logged.score, initial=0.0))
                    for s in (lo + 0.5 * ((p.score_threshold or lo) - lo), p.score_threshold):
                        timer("decoder:score", phase, lambda s=s: v.update(score=s))
                    for iou in (0.2, 0.6, p.iou_threshold):
                        timer("decoder:iou", phase, lambda iou=iou: v.update(iou=iou))
                    timer("decoder:sort", phase, lambda: v.update(sort="iou"))
                    timer("decoder:fates", phase, lambda: v.update(fates=("KEPT", "SUPPRESSED", "MERGED")))
                    timer("decoder:row", phase, lambda: v.update(row=0))
                    timer("decoder:reset", phase, lambda: v.update(sort="score", fates=v.State().fates, row=-1))
            elif node.kind == "meta":
                for k in [*range(1, min(7, len(ex.result.meta))), 0]:
                    timer("meta:select", phase, lambda k=k: v.update(selected=k))
            elif node.kind == "attribution" and v.items:
                for a in v.items:
                    timer("attribution:pick", phase, lambda a=a: v.update(method=a.method, target=a.target))
                for op in (0.3, 0.8):
                    timer("attribution:opacity", phase, lambda op=op: v.update(opacity=op))


def fake_attributions(frame: Any) -> list[Any]:
    """Two frame-sized maps through the duck-typed attribution interface (the explain module's
    records have the same attributes)."""
    h, w = frame.height, frame.width
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    blob = np.exp(-(((xx - w / 2) / (w / 6)) ** 2 + ((yy - h / 3) / (h / 6)) ** 2))
    return [SimpleNamespace(method=m, target="face #0", frame_map=f, params={}, sanity=None, faithfulness=None,
                            seconds=0.0) for m, f in (("saliency", blob), ("integrated_gradients", blob - 0.3))]


def summarize(timer: Timer) -> list[dict[str, Any]]:
    rows = []
    for (handler, phase), ms in sorted(timer.samples.items()):
        rows.append({"handler": handler, "phase": phase, "n": len(ms), "median_ms": round(statistics.median(ms), 1),
                     "max_ms": round(max(ms), 1), "within_target": max(ms) <= TARGET_MS})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--frame", default="astronaut", help="sample image name (resized to --size)")
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from workbench import Pipeline
    from workbench.errors import WorkbenchError
    from workbench.ui import FrameExplorer

    names = {args.frame, *(PIPELINES[m][1] for m in args.models if m in PIPELINES)}
    frames = {name: frame_640(name, args.size) for name in names}
    report: dict[str, Any] = {"benchmark": "ui", "target_ms": TARGET_MS, "frame_size": [args.size, args.size],
                              "python": platform.python_version(), "machine": platform.machine(),
                              "cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "models": {}}
    for model in args.models:
        build, frame_name = PIPELINES.get(model, (lambda model=model: Pipeline.from_card(model), args.frame))
        frame = frames[frame_name]
        try:
            t0 = time.perf_counter()
            result = build().run(frame, trace="all")
            run_ms = (time.perf_counter() - t0) * 1e3
        except WorkbenchError as exc:
            print(f"skip {model}: {exc}", file=sys.stderr)
            report["models"][model] = {"skipped": str(exc)}
            continue
        timer = Timer()
        maps = fake_attributions(frame)
        ex = timer("init", "cold", lambda: FrameExplorer(result, attributions=maps))
        exercise(ex, timer)
        rows = summarize(timer)
        tensors = sum(len(r.store) for r in result.trace.records.values())
        mbytes = sum(r.store.nbytes for r in result.trace.records.values()) / 2**20
        report["models"][model] = {
            "frame": frame.source, "mtds": len(result.meta),
            "pipeline_ms": round(run_ms, 1), "nodes": ex.node_keys(), "tensors": tensors,
            "traced_mb": round(mbytes, 1), "handlers": rows,
            "max_cold_ms": max(r["max_ms"] for r in rows if r["phase"] == "cold" and r["handler"] != "init"),
            "max_cached_ms": max(r["max_ms"] for r in rows if r["phase"] == "cached"),
            "init_ms": next(r["max_ms"] for r in rows if r["handler"] == "init"),
        }
    print(json.dumps(report, indent=1))
    print()
    print(f"{'model':16s} {'handler':22s} {'phase':7s} {'n':>4s} {'median':>8s} {'max':>8s}  <= {TARGET_MS:.0f} ms")
    ok = True
    for model, m in report["models"].items():
        if "handlers" not in m:
            continue
        for r in m["handlers"]:
            flag = "yes" if r["within_target"] else "NO"
            ok &= r["within_target"] or r["handler"] == "init"
            print(f"{model:16s} {r['handler']:22s} {r['phase']:7s} {r['n']:4d} {r['median_ms']:8.1f} "
                  f"{r['max_ms']:8.1f}  {flag}")
        print(f"{model:16s} pipeline {m['pipeline_ms']:.0f} ms, {m['tensors']} tensors ({m['traced_mb']} MB); "
              f"max handler: cold {m['max_cold_ms']} ms, cached {m['max_cached_ms']} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

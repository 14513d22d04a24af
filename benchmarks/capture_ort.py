"""Cost of capturing every tensor with the onnxruntime backend: ``run()`` vs ``trace("all")``.

For the zoo's MTCNN O-Net (48x48, 24 nodes) and the big YOLO-style net (640x640, 514 nodes,
see make_big_onnx.py) this times, interleaved after a warm-up:

* ``run``            plain inference as deployed (ORT_ENABLE_ALL, fused kernels)
* ``ort_capture_only`` onnxruntime alone running the cached capture session (all tensors marked
                     as outputs): the part of the cost that is onnxruntime's, not ours
* ``trace``          ``trace(x, capture="all")`` into memory, deployed capture mode
* ``trace_unopt``    the same in ``mode="unoptimized"`` (ORT_DISABLE_ALL)
* ``trace_stats``    ``capture="stats"`` (values dropped; stats computed in the hot path)

and prints JSON (medians, ratios to ``run``) then a short table. Target: trace <= 1.3x run.

    python benchmarks/capture_ort.py [--repeats 15] [--models onet,big]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_big_onnx import make_big_onnx  # noqa: E402

import workbench  # noqa: E402

TARGET = 1.3


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Wall times (ms) of each fn, interleaved round by round so that load drifts hit all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
            del out
    return times


def bench_model(model: str, x: np.ndarray, repeats: int, warmup: int) -> dict:
    session = workbench.load_model(model, backend="onnxruntime")
    # onnxruntime alone on the capture session (every tensor a graph output): what ORT itself
    # costs to produce all tensors unfused, without any workbench code around it
    rec = session.trace(x)
    names = list(session._plan(rec.mode, workbench.CaptureFilter()).names)
    capture_sess = session._capture_session(rec.mode, names)
    feeds = session.check_inputs(x)
    fns = {
        "run": lambda: session.run(x),
        "ort_capture_only": lambda: capture_sess.run(names, feeds),
        "trace": lambda: session.trace(x, capture="all"),
        "trace_unopt": lambda: session.trace(x, capture="all", mode="unoptimized"),
        "trace_stats": lambda: session.trace(x, capture="stats"),
    }
    times = _time_interleaved(fns, repeats, warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": str(model) if not os.path.isfile(str(model)) else Path(model).name,
        "nodes": len(rec.layers),
        "captured_tensors": len(rec.store),
        "captured_mb": round(rec.store.nbytes / 1e6, 1),
        "repeats": repeats,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "min_ms": {k: round(min(v), 3) for k, v in times.items()},
        "ratio_to_run": {k: round(v / med["run"], 3) for k, v in med.items() if k != "run"},
        "target_trace_over_run": TARGET,
        "meets_target": med["trace"] / med["run"] <= TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=0, help="timed rounds (default: 200 for O-Net, 9 for big)")
    ap.add_argument("--models", default="onet,big")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    results = []
    for which in args.models.split(","):
        if which == "onet":
            x = rng.uniform(-1, 1, (1, 48, 48, 3)).astype(np.float32)
            results.append(bench_model("mtcnn-onet", x, args.repeats or 200, 20))
        elif which == "big":
            path = make_big_onnx()
            x = rng.uniform(0, 1, (1, 3, 640, 640)).astype(np.float32)
            results.append(bench_model(str(path), x, args.repeats or 9, 2))
        else:
            raise SystemExit(f"unknown model {which!r}: use onet and/or big")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps({"benchmark": "capture_ort", "cpus": os.cpu_count(), "loadavg_1min": load, "results": results}, indent=1))
    print()
    print(f"{'model':<14}{'nodes':>6}{'MB':>8}{'run ms':>10}{'trace ms':>10}{'x run':>7}{'ort-only x':>11}"
          f"{'unopt x':>9}{'stats x':>9}  target <= {TARGET}")
    for r in results:
        m = r["median_ms"]
        q = r["ratio_to_run"]
        ok = "ok" if r["meets_target"] else "MISSED"
        print(f"{r['model'][:13]:<14}{r['nodes']:>6}{r['captured_mb']:>8}{m['run']:>10.2f}{m['trace']:>10.2f}"
              f"{q['trace']:>7.2f}{q['ort_capture_only']:>11.2f}{q['trace_unopt']:>9.2f}{q['trace_stats']:>9.2f}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

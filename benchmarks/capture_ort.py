"""Cost of capturing every tensor with the onnxruntime backend: ``run()`` vs ``trace("all")``.

For the zoo's MTCNN O-Net (48x48, 24 nodes) and the big YOLO-style net (640x640, 514 nodes,
see make_big_onnx.py) this times, in alternating blocks (the first call of each block is not
counted: it pays for the previous block's threads still spinning, whichever session they are):

* ``ort_plain``      a bare ``onnxruntime.InferenceSession(model)`` with default options: the
                     baseline, plain onnxruntime inference
* ``run``            our ``session.run()``: plain inference as deployed (ORT_ENABLE_ALL)
* ``ort_capture_only`` onnxruntime alone running the cached capture session (all tensors marked
                     as outputs): the part of the cost that is onnxruntime's, not ours
* ``trace``          ``trace(x, capture="all")`` into memory, deployed capture mode (NCHWc
                     tensors kept as the kernels wrote them, reordered on first read)
* ``trace_read_all`` ``trace`` and then reading every captured tensor (all reorders paid)
* ``trace_ort_reorder`` ``trace(x, defer_reorder=False)``: onnxruntime reorders every tensor
* ``trace_unopt``    the same in ``mode="unoptimized"`` (ORT_DISABLE_ALL)
* ``trace_stats``    ``capture="stats"`` (values dropped; stats computed in the hot path)

and prints JSON (medians, ratios to ``ort_plain``) then a short table. Target: trace <= 1.3x
plain onnxruntime.

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
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_big_onnx import make_big_onnx  # noqa: E402

import workbench  # noqa: E402

TARGET = 1.3


def _time_blocks(fns: dict[str, Callable[[], object]], repeats: int, warmup: int, block: int = 4) -> dict[str, list[float]]:
    """Wall times (ms) of each fn: blocks of ``block`` calls, alternating between the fns so that
    load drifts hit all alike; the first call of a block is a warm-up and not counted."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    rounds = max(1, -(-repeats // (block - 1)))
    for _ in range(rounds):
        for name, fn in fns.items():
            for i in range(block):
                t0 = time.perf_counter()
                out = fn()
                if i:
                    times[name].append((time.perf_counter() - t0) * 1e3)
                del out
    return times


def _read_all(record) -> list:
    return [record.store[n] for n in record.store if record.store.is_kept(n)]


def bench_model(model: str, x: np.ndarray, repeats: int, warmup: int) -> dict:
    session = workbench.load_model(model, backend="onnxruntime")
    # onnxruntime alone on the capture session (every tensor a graph output): what ORT itself
    # costs to produce all tensors unfused, without any workbench code around it
    rec = session.trace(x)
    names = list(session._plan(rec.mode, workbench.CaptureFilter()).names)
    capture_sess = session._capture_session(rec.mode, names)
    feeds = session.check_inputs(x)
    bare = ort.InferenceSession(str(session.path), providers=["CPUExecutionProvider"])
    fns = {
        "ort_plain": lambda: bare.run(None, feeds),
        "run": lambda: session.run(x),
        "ort_capture_only": lambda: capture_sess.run(names, feeds),
        "trace": lambda: session.trace(x, capture="all"),
        "trace_read_all": lambda: _read_all(session.trace(x, capture="all")),
        "trace_ort_reorder": lambda: session.trace(x, capture="all", defer_reorder=False),
        "trace_unopt": lambda: session.trace(x, capture="all", mode="unoptimized"),
        "trace_stats": lambda: session.trace(x, capture="stats"),
    }
    times = _time_blocks(fns, repeats, warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": str(model) if not os.path.isfile(str(model)) else Path(model).name,
        "nodes": len(rec.layers),
        "captured_tensors": len(rec.store),
        "captured_mb": round(rec.store.nbytes / 1e6, 1),
        "repeats": repeats,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "min_ms": {k: round(min(v), 3) for k, v in times.items()},
        "ratio_to_ort_plain": {k: round(v / med["ort_plain"], 3) for k, v in med.items() if k != "ort_plain"},
        "target_trace_over_ort_plain": TARGET,
        "deferred_reorders": rec.notes["capture"].get("deferred_reorders"),
        "meets_target": med["trace"] / med["ort_plain"] <= TARGET,
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
    print(f"{'model':<14}{'nodes':>6}{'MB':>8}{'ort ms':>9}{'run x':>7}{'trace ms':>10}{'trace x':>8}{'read-all x':>11}"
          f"{'ort-reorder x':>14}{'ort-only x':>11}{'unopt x':>9}{'stats x':>9}  target <= {TARGET}")
    for r in results:
        m = r["median_ms"]
        q = r["ratio_to_ort_plain"]
        ok = "ok" if r["meets_target"] else "MISSED"
        print(f"{r['model'][:13]:<14}{r['nodes']:>6}{r['captured_mb']:>8}{m['ort_plain']:>9.2f}{q['run']:>7.2f}"
              f"{m['trace']:>10.2f}{q['trace']:>8.2f}{q['trace_read_all']:>11.2f}{q['trace_ort_reorder']:>14.2f}{q['ort_capture_only']:>11.2f}{q['trace_unopt']:>9.2f}{q['trace_stats']:>9.2f}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

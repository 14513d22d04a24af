"""Occlusion throughput against the backend's raw batched forward (issue 5).

Occlusion on a 128x128 input (window 16, stride 8: 15 x 15 = 225 windows, plus the unperturbed
input Captum evaluates first) through workbench.explain, as perturbations per second, next to the
same backend running plain batches of the same size (``runner.raw``: numpy in, numpy out, nothing
else). The ratio is the share of the backend's throughput that the attribution machinery keeps
(Captum's masking and accumulation, layout conversion, the target score: IoU x class score over
every candidate). Target: >= 0.8.

    python benchmarks/explain.py                        # shapes-yolov8 if present, else blazeface-short
    python benchmarks/explain.py --model blazeface-short --repeats 5 --json out.json

Explain and raw runs alternate (``--repeats`` each, after a warm-up); the ratio is the median of
the per-repeat ratios, so that load from other jobs on a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch

import workbench as wb
from workbench.errors import ZooError
from workbench.explain.api import forward_for, make_baseline
from workbench.explain.methods import get_method
from workbench.explain.methods.occlusion import balanced_batch, window_origins
from workbench.explain.scores import score_fn
from workbench.explain.subject import build_subject
from workbench.explain.targets import resolve_target
from workbench.pipeline import Pipeline

WINDOW, STRIDE = 16, 8


def _frame(model: str) -> wb.Frame:
    if model.startswith("shapes"):
        return wb.data.shapes_frame(3)
    return wb.data.sample_frame("astronaut")


def _default_model() -> str:
    try:
        wb.zoo.path("shapes-yolov8")
        return "shapes-yolov8"
    except ZooError:
        return "blazeface-short"


def run(model: str, repeats: int) -> dict:
    result = Pipeline.from_card(model).run(_frame(model))
    target = resolve_target(result, 0)
    subject = build_subject(result, target)
    h, w = subject.size
    if (h, w) != (128, 128):
        raise SystemExit(f"{model} takes {w}x{h} inputs; this benchmark is defined at 128x128")
    method = get_method("occlusion")
    fwd = forward_for(method, subject, target, score_fn(subject, target))
    runner = fwd.runner
    baseline = make_baseline(subject, "gray")
    occ = method(fwd, subject, window=WINDOW, stride=STRIDE)
    occ.attribute(subject.image, baseline)  # warm-up (sessions, batched copy, caches)
    n_forwards = len(window_origins(h, w, WINDOW, STRIDE)) + 1  # + the unperturbed input
    batch = balanced_batch(n_forwards, fwd.max_batch)  # what Occlusion sends per call
    xb = np.ascontiguousarray(np.repeat(subject.x, batch, axis=0))
    chunks = max(1, -(-n_forwards // batch))
    runner.raw(xb)  # warm-up
    times, raw_times, calls, ratios = [], [], [], []
    for _ in range(repeats):  # interleaved, so that load on a shared machine hits both alike
        c0 = runner.calls
        t0 = time.perf_counter()
        occ.attribute(subject.image, baseline)
        times.append(time.perf_counter() - t0)
        calls.append(runner.calls - c0)
        t0 = time.perf_counter()
        for _ in range(chunks):
            runner.raw(xb)
        raw_times.append((time.perf_counter() - t0) / (chunks * batch))
        ratios.append((n_forwards / times[-1]) * raw_times[-1])
    explain_tp = n_forwards / statistics.median(times)
    raw_tp = 1.0 / statistics.median(raw_times)
    return {
        "model": model, "backend": runner.session.backend, "runner_mode": runner.mode, "batch": batch,
        "input": [h, w], "window": WINDOW, "stride": STRIDE, "perturbations": n_forwards - 1, "forwards": n_forwards,
        "backend_calls": statistics.median(calls), "explain_seconds": statistics.median(times),
        "explain_perturbations_per_s": explain_tp, "raw_forward_per_s": raw_tp, "ratio": statistics.median(ratios),
        "ratios": ratios, "target": 0.8, "ok": statistics.median(ratios) >= 0.8, "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a 128x128 detector (default: shapes-yolov8, else blazeface-short)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    doc = run(args.model or _default_model(), args.repeats)
    print(json.dumps(doc, indent=1))
    print()
    print(f"{'model':<16} {'backend':<12} {'mode':<8} {'batch':>5} {'calls':>5} {'explain/s':>10} {'raw/s':>10} {'ratio':>6}")
    print(f"{doc['model']:<16} {doc['backend']:<12} {doc['runner_mode']:<8} {doc['batch']:>5} {doc['backend_calls']:>5.0f} "
          f"{doc['explain_perturbations_per_s']:>10.1f} {doc['raw_forward_per_s']:>10.1f} {doc['ratio']:>6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

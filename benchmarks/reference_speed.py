"""Forward time of the reference backend (torch interpreter) against onnxruntime.

    .venv/bin/python benchmarks/reference_speed.py [--repeats 50] [--threads 2] [--json out.json]

Same model file and input for both, warm (after warm-up calls), 2 threads each by default
(``torch.set_num_threads(2)``, onnxruntime ``intra_op_num_threads=2`` with its default graph
optimizations, i.e. as deployed); the two alternate in blocks of calls. The reference is timed through the public
``session.run()`` (input checks and numpy conversion included). Target: reference <= 3x
onnxruntime. Prints a table and a JSON document.
"""

from __future__ import annotations

import os

# OpenMP's waiting policy matters for torch's 2-thread kernels: the default (active spinning) is
# fastest on a quiet machine (measured: reference/onnxruntime 2.3-2.9x on the shapes models,
# against 6.7-12.9x with PASSIVE, where each parallel region pays a thread wake-up), but it
# stalls badly when another process holds a core. Run this on a quiet machine, with the
# environment's policy (set OMP_WAIT_POLICY=PASSIVE yourself on a busy one).

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from workbench import zoo  # noqa: E402
from workbench.backends.reference import ReferenceSession  # noqa: E402
from workbench.errors import ZooError  # noqa: E402

TARGET_RATIO = 3.0


def cases() -> list[tuple[str, tuple[int, ...]]]:
    """(zoo id, input shape): O-Net at its size, P-Net on a 480x640 frame, self-trained models."""
    out = [("mtcnn-onet", (1, 48, 48, 3)), ("mtcnn-pnet", (1, 480, 640, 3))]
    for card in zoo.list_cards():
        if card.id.startswith("shapes-") and card.format == "onnx" and card.input is not None:
            w, h = card.input.size
            shape = (1, h, w, 3) if card.input.layout == "NHWC" else (1, 3, h, w)
            out.append((card.id, shape))
    return out


def blocked_median_ms(fns: dict[str, Callable[[], object]], repeats: int, blocks: int = 5,
                      warmup: int = 5) -> dict[str, float]:
    """Median wall time (ms) of each function. Contenders alternate in blocks (so slow drifts of
    a shared machine's load hit both) with a pause between blocks: onnxruntime's worker threads
    spin for a while after a run and would otherwise steal the cores torch's threads need."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    per_block = max(1, repeats // blocks)
    for _ in range(blocks):
        for k, fn in fns.items():
            time.sleep(0.05)
            for _ in range(warmup):
                fn()
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def bench(model_id: str, shape: tuple[int, ...], repeats: int, threads: int) -> dict[str, object] | None:
    try:
        zm = zoo.load(model_id, fetch_missing=False)
    except ZooError as exc:
        print(f"skip {model_id}: {exc}", file=sys.stderr)
        return None
    ref = ReferenceSession(zm.card, zm.path)
    name = ref.input_names[0]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(zm.path), opts, providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, {name: x})
    ref_out = ref.run({name: x})
    max_diff = max(float(np.abs(a - ref_out[o.name]).max()) for a, o in zip(ort_out, sess.get_outputs()))
    t = blocked_median_ms({"ort": lambda: sess.run(None, {name: x}), "ref": lambda: ref.run({name: x})}, repeats)
    t_ort, t_ref = t["ort"], t["ref"]
    return {
        "model": model_id, "input": list(shape), "nodes": len(ref.program.nodes),
        "onnxruntime_ms": round(t_ort, 3), "reference_ms": round(t_ref, 3),
        "ratio": round(t_ref / t_ort, 2), "meets_target": t_ref / t_ort <= TARGET_RATIO,
        "max_abs_output_diff": max_diff,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="torch threads = onnxruntime intra-op threads")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [r for r in (bench(m, s, args.repeats, args.threads) for m, s in cases()) if r is not None]
    doc = {
        "benchmark": "reference_speed", "target_ratio": TARGET_RATIO, "threads": args.threads,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch": torch.__version__,
        "onnxruntime": ort.__version__, "machine": platform.machine(),
        "results": rows,
    }
    print(f"{'model':16s} {'input':18s} {'ort ms':>9s} {'ref ms':>9s} {'ratio':>6s}  target<=3x")
    for r in rows:
        shape = "x".join(str(d) for d in r["input"])  # type: ignore[union-attr]
        print(f"{r['model']:16s} {shape:18s} {r['onnxruntime_ms']:9.3f} {r['reference_ms']:9.3f} "
              f"{r['ratio']:6.2f}  {'yes' if r['meets_target'] else 'NO'}")
    text = json.dumps(doc, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

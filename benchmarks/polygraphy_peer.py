"""Our full capture vs Polygraphy's, side by side on the big 640x640 model (make_big_onnx.py).

(a) ours       ``session.trace(x, store=folder)`` (every tensor streamed to disk), ``record.save``,
               then ``open_trace`` and read every tensor back (memory-mapped)
(b) polygraphy ``polygraphy run MODEL --onnxrt --onnx-outputs mark all --save-outputs F``
(c) floor      the least any tool could do in Python: import numpy, onnx and onnxruntime, mark
               every node output as a graph output, one plain session run, ``np.save`` each
               output, then ``np.load(mmap_mode="r")`` and read each back. No checks, no stats, no
               index, no memory bound (all 450 MB are held at once). It shows how much of the
               target the machine allows: 10x Polygraphy is out of reach when the floor is slower
               than Polygraphy / 10.

Each runs in its own child process, timed from process start to exit (imports, model load and
session creation included); peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Targets:
ours >= 10x faster and >= 3x less peak RSS.

Polygraphy lives ONLY in a separate venv, ``.venv-bench`` (gitignored), created on first use:
``python3 -m venv .venv-bench && .venv-bench/bin/pip install polygraphy onnxruntime numpy onnx``.

    python benchmarks/polygraphy_peer.py [--repeats 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCH_VENV = REPO / ".venv-bench"
TARGET_SPEED, TARGET_RSS = 10.0, 3.0


def ensure_bench_venv() -> Path:
    """Path of ``polygraphy`` in .venv-bench, creating the venv on first use."""
    exe = BENCH_VENV / "bin" / "polygraphy"
    if not exe.is_file():
        print(f"creating {BENCH_VENV} with polygraphy (once) ...", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "polygraphy", "onnxruntime", "numpy", "onnx"],
                       check=True)
    return exe


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` as a child; wall seconds, peak RSS (MiB) and its stdout.

    Dirty pages the previous side wrote are flushed first (untimed), so that neither side pays
    for the other's disk writeback."""
    os.sync()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": stdout}


# -- the child that runs our side ------------------------------------------------------------------
def child_ours(model: str, folder: str, chunk_mb: float | None) -> None:
    import resource

    import numpy as np

    import workbench
    from workbench.capture import open_trace

    t: dict[str, float] = {}
    peak: dict[str, float] = {}

    def mark(phase: str, since: float) -> None:
        t[f"{phase}_s"] = round(time.perf_counter() - since, 3)
        peak[phase] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    t0 = time.perf_counter()
    session = workbench.load_model(model, backend="onnxruntime")
    mark("load", t0)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 640, 640)).astype(np.float32)
    root = Path(folder)
    t0 = time.perf_counter()
    # tensors stream straight into the saved trace's tensor folder: save() then copies nothing
    options = {} if chunk_mb is None else {"chunk_mb": chunk_mb}
    record = session.trace(x, store=root / "inference" / "tensors", **options)
    mark("trace", t0)
    t0 = time.perf_counter()
    record.save(root)
    mark("save", t0)
    n_layers, runs = len(record.layers), record.notes["capture"]["runs"]
    t["trace_ort_run_s"] = round(record.timings["total_ms"] / 1e3, 3)
    t["trace_write_s"] = round(record.timings["store_ms"] / 1e3, 3)
    del record, session
    t0 = time.perf_counter()
    back = open_trace(root).inference
    checksum, nbytes = 0.0, 0
    for name in back.store:
        if back.store.is_kept(name):
            a = back.store[name]  # memory-mapped; unmapped again when dropped
            checksum += float(a.sum(dtype=np.float64)) if a.dtype.kind == "f" else 0.0
            nbytes += a.nbytes
            del a
    mark("reopen_read", t0)
    print(json.dumps({**t, "peak_rss_mib_after": peak, "layers": n_layers, "runs": runs,
                      "tensors": len(back.store), "bytes": nbytes, "checksum": checksum}))


def child_floor(model: str, folder: str) -> None:
    """Side (c): the bare minimum, for scale (see the module docstring)."""
    import resource

    import numpy as np
    import onnx
    import onnxruntime as ort

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    m = onnx.load(model)
    known = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for name in node.output:
            if name and name not in known:
                m.graph.output.append(onnx.ValueInfoProto(name=name))  # onnxruntime infers the type
                known.add(name)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    t["load_s"] = round(time.perf_counter() - t0, 3)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 640, 640)).astype(np.float32)
    t0 = time.perf_counter()
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(names, {sess.get_inputs()[0].name: x})
    t["run_s"] = round(time.perf_counter() - t0, 3)
    root = Path(folder)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    files = []
    for i, a in enumerate(outs):
        files.append(root / f"{i:05d}.npy")
        np.save(files[-1], a, allow_pickle=False)
    del outs
    t["write_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    checksum, nbytes = 0.0, 0
    for f in files:
        a = np.load(f, mmap_mode="r") if f.stat().st_size > 128 else np.load(f)
        checksum += float(a.sum(dtype=np.float64)) if a.dtype.kind == "f" else 0.0
        nbytes += a.nbytes
        del a
    t["reopen_read_s"] = round(time.perf_counter() - t0, 3)
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps({**t, "peak_rss_mib": peak, "tensors": len(files), "bytes": nbytes, "checksum": checksum}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="runs of each side (median reported)")
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    ap.add_argument("--chunk-mb", type=float, default=None,
                    help="our streaming chunk (MiB of tensors per run; 0 = one run); default: the backend's")
    ap.add_argument("--child", choices=["ours", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "ours":
        child_ours(args.model, args.out, args.chunk_mb)
        return 0
    if args.child == "floor":
        child_floor(args.model, args.out)
        return 0

    sys.path.insert(0, str(HERE))
    from make_big_onnx import describe, make_big_onnx

    model = make_big_onnx()
    polygraphy = ensure_bench_venv()
    work = Path(tempfile.mkdtemp(prefix="wb-peer-"))
    runs: dict[str, list[dict]] = {"ours": [], "polygraphy": [], "floor": []}
    try:
        for i in range(args.repeats):
            ours_dir = work / f"ours{i}"
            cmd = [sys.executable, __file__, "--child", "ours", "--model", str(model), "--out", str(ours_dir)]
            if args.chunk_mb is not None:
                cmd += ["--chunk-mb", str(args.chunk_mb)]
            r = measure(cmd)
            r["phases"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
            r["disk_mb"] = round(sum(f.stat().st_size for f in ours_dir.rglob("*") if f.is_file()) / 1e6, 1)
            runs["ours"].append(r)
            if not args.keep:
                shutil.rmtree(ours_dir)
            pg_file = work / f"polygraphy{i}.json"
            r = measure([str(polygraphy), "run", str(model), "--onnxrt", "--onnx-outputs", "mark", "all",
                         "--save-outputs", str(pg_file)])
            r.pop("stdout")
            r["disk_mb"] = round(pg_file.stat().st_size / 1e6, 1)
            runs["polygraphy"].append(r)
            if not args.keep:
                pg_file.unlink()
            floor_dir = work / f"floor{i}"
            r = measure([sys.executable, __file__, "--child", "floor", "--model", str(model), "--out", str(floor_dir)])
            r["phases"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
            r["disk_mb"] = round(sum(f.stat().st_size for f in floor_dir.rglob("*") if f.is_file()) / 1e6, 1)
            runs["floor"].append(r)
            if not args.keep:
                shutil.rmtree(floor_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        vals = sorted(r[key] for r in runs[side])
        return vals[len(vals) // 2]

    speed = med("polygraphy", "wall_s") / med("ours", "wall_s")
    rss = med("polygraphy", "peak_rss_mib") / med("ours", "peak_rss_mib")
    info = describe(model)
    result = {
        "benchmark": "polygraphy_peer", "model": info["path"], "nodes": info["nodes"], "cpus": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0], "runs": runs,
        "median": {side: {"wall_s": med(side, "wall_s"), "peak_rss_mib": med(side, "peak_rss_mib")} for side in runs},
        "speedup": round(speed, 2), "rss_ratio": round(rss, 2),
        "floor_speedup": round(med("polygraphy", "wall_s") / med("floor", "wall_s"), 2),
        "targets": {"speedup": TARGET_SPEED, "rss_ratio": TARGET_RSS},
        "meets_targets": {"speedup": speed >= TARGET_SPEED, "rss_ratio": rss >= TARGET_RSS},
    }
    print(json.dumps(result, indent=1))
    print()
    print(f"{'side':<12}{'wall s':>9}{'peak RSS MiB':>14}{'disk MB':>9}")
    for side in runs:
        print(f"{side:<12}{med(side, 'wall_s'):>9.2f}{med(side, 'peak_rss_mib'):>14.0f}{runs[side][0]['disk_mb']:>9.0f}")
    print(f"ours is {speed:.1f}x faster (target {TARGET_SPEED:g}x) and uses {rss:.1f}x less peak RSS (target {TARGET_RSS:g}x)")
    print(f"the floor (bare onnxruntime + np.save, no memory bound) is {result['floor_speedup']:.1f}x faster than polygraphy")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much does a faithful LiteRT capture cost next to plain inference?

For each model, times (median and min over interleaved rounds, one thread everywhere):

- ``run_xnnpack``      session.run(): the default XNNPACK delegate, as deployed
- ``builtin_invoke``   a plain interpreter with builtin kernels only (no delegate, no
                       preserve_all_tensors): set input, invoke, read the outputs
- ``preserve_invoke``  builtin kernels with experimental_preserve_all_tensors=True, no capture
                       (what keeping every intermediate alive costs by itself)
- ``marked_invoke``    builtin kernels, no preserve_all_tensors, on a copy of the model whose
                       subgraph lists every op output as a graph output: the other way to keep
                       every intermediate alive (it costs the same: the tensors can no longer
                       share a cache-warm arena)
- ``trace_all``        session.trace(x, capture="all"): faithful capture of every op's output
                       into a memory TensorStore, plus the deployed run and its comparison
- ``trace_all_nodep``  the same with compare_deployed=False (no XNNPACK run in the trace)
- ``trace_stats``      session.trace(x, capture="stats")

and the ratio ``trace_all / builtin_invoke`` (target <= 1.2).

    .venv/bin/python benchmarks/capture_litert.py [--rounds 60] [--models blazeface-short ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.backends import load_model
from workbench.backends.litert import runtime
from workbench.backends.tflite_model import schema


def every_op_output_marked(data: bytes) -> bytes:
    """The .tflite ``data`` re-packed with every op output appended to the subgraph's outputs."""
    import flatbuffers

    s = schema()
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    outputs = [int(i) for i in sg.outputs]
    for op in sg.operators:
        outputs += [int(i) for i in op.outputs if i >= 0 and int(i) not in outputs]
    sg.outputs = np.array(outputs, dtype=np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _bench(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int) -> dict[str, dict[str, float]]:
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():  # interleaved, so load changes on the machine hit every mode alike
            t = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t) * 1e3)
    return {k: {"median_ms": float(np.median(v)), "min_ms": float(np.min(v))} for k, v in times.items()}


def measure(model: str, rounds: int, warmup: int) -> dict[str, Any]:
    rt = runtime()
    session = load_model(model, backend="litert")
    bare = load_model(model, backend="litert", compare_deployed=False)
    spec = session.input_specs[0]
    x = np.random.default_rng(0).uniform(-1, 1, spec.shape).astype(np.float32)
    out_ids = list(session.graph.outputs)

    def interpreter(preserve: bool, content: bytes | None = None) -> Any:
        it = rt.interpreter(
            model_content=content or Path(session.path).read_bytes(), num_threads=1,
            experimental_op_resolver_type=rt.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=preserve,
        )
        it.allocate_tensors()
        return it

    plain, preserve = interpreter(False), interpreter(True)
    marked = interpreter(False, every_op_output_marked(Path(session.path).read_bytes()))
    in_id = session.graph.inputs[0]

    def invoke(it: Any) -> Callable[[], Any]:
        def f() -> Any:
            it.set_tensor(in_id, x)
            it.invoke()
            return [it.get_tensor(i) for i in out_ids]
        return f

    held: dict[str, Any] = {}

    def trace(capture: str, s: Any = session) -> Callable[[], Any]:
        def f() -> Any:
            held[(capture, id(s))] = s.trace(x, capture=capture)  # the previous record dies here, as in a loop
        return f

    res = _bench({
        "run_xnnpack": lambda: session.run(x),
        "builtin_invoke": invoke(plain),
        "preserve_invoke": invoke(preserve),
        "marked_invoke": invoke(marked),
        "trace_all": trace("all"),
        "trace_all_nodep": trace("all", bare),
        "trace_stats": trace("stats"),
    }, rounds, warmup)
    rec = held[("all", id(session))]
    base = res["builtin_invoke"]
    return {
        "model": model,
        "input": list(spec.shape or ()),
        "ops": len(rec.layers),
        "captured_tensors": len(rec.store),
        "captured_mb": rec.store.nbytes / 1e6,
        "times": res,
        "ratio_trace_all_vs_builtin": {
            "median": res["trace_all"]["median_ms"] / base["median_ms"],
            "min": res["trace_all"]["min_ms"] / base["min_ms"],
        },
        "ratio_trace_all_nodep_vs_builtin": {
            "median": res["trace_all_nodep"]["median_ms"] / base["median_ms"],
            "min": res["trace_all_nodep"]["min_ms"] / base["min_ms"],
        },
        "ratio_preserve_vs_builtin": {
            "median": res["preserve_invoke"]["median_ms"] / base["median_ms"],
            "min": res["preserve_invoke"]["min_ms"] / base["min_ms"],
        },
        "ratio_marked_vs_builtin": {
            "median": res["marked_invoke"]["median_ms"] / base["median_ms"],
            "min": res["marked_invoke"]["min_ms"] / base["min_ms"],
        },
        "deployed_vs_faithful": rec.notes["deployed_vs_faithful"],
        "capture": rec.notes["capture"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["blazeface-short", "blazeface-full"])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    rt = runtime()
    results = [measure(m, args.rounds, args.warmup) for m in args.models]
    doc = {"runtime": f"{rt.name} {rt.version}", "machine": platform.platform(), "rounds": args.rounds,
           "results": results}
    print(json.dumps(doc, indent=1))
    modes = ["run_xnnpack", "builtin_invoke", "preserve_invoke", "marked_invoke", "trace_all", "trace_all_nodep",
             "trace_stats"]
    print()
    print(f"{'model':<17}" + "".join(f"{m:>17}" for m in modes) + f"{'all/builtin':>13}")
    for r in results:
        cells = "".join(f"{r['times'][m]['median_ms']:>10.2f} ({r['times'][m]['min_ms']:.2f})" for m in modes)
        ratio = r["ratio_trace_all_vs_builtin"]
        print(f"{r['model']:<17}{cells}{ratio['median']:>8.2f} ({ratio['min']:.2f})")
    print("times in ms: median (min); ratio: median (min)")


if __name__ == "__main__":
    main()

"""Per-layer parity of the reference interpreter with onnxruntime / LiteRT on every zoo model.

For each card: preprocess a sample frame with the card's input spec, trace it on the deployed
backend (onnxruntime, or LiteRT's faithful builtin kernels) and on the reference backend, and
compare every tensor both kept (``workbench.capture.compare_records``). Prints JSON and a table:
max abs error, max error relative to each tensor's scale, and the outputs' errors. Quantized
tensors are compared on their real values; ``max_lsb`` is the largest raw difference in
quantization steps.

    .venv/bin/python benchmarks/parity.py [--image sample:astronaut] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import workbench as wb
from workbench.capture import compare_records
from workbench.cli import open_frame


def parity(card, frame) -> dict:  # type: ignore[no-untyped-def]
    deployed_backend = "onnxruntime" if card.format == "onnx" else "litert"
    spec = card.input
    if card.id == "mtcnn-pnet":  # dynamic input: use a realistic pyramid level
        spec = dataclasses.replace(spec, size=(160, 120))
    x, _ = wb.preprocess(frame, spec)
    deployed = wb.load_model(card, backend=deployed_backend).trace(x)
    reference = wb.load_model(card, backend="reference").trace(x)
    rows = compare_records(reference, deployed)
    outs = [r for r in rows if r.tensor in deployed.outputs]
    return {
        "model": card.id, "against": deployed_backend, "tensors": len(rows), "layers": len(deployed.layers),
        "max_abs": max(r.max_abs for r in rows), "max_rel": max(r.max_rel for r in rows),
        "output_max_abs": max(r.max_abs for r in outs), "output_max_rel": max(r.max_rel for r in outs),
        "max_lsb": max((r.lsb for r in rows if r.lsb is not None), default=None),
        "input_shape": list(x.shape),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="sample:astronaut")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    frame = open_frame(args.image)
    results = [parity(c, frame) for c in wb.zoo.list_cards()]
    print(json.dumps(results, indent=1))
    print(f"\n{'model':<18} {'vs':<12} {'tensors':>7} {'max abs':>10} {'max rel':>10} {'out abs':>10} {'out rel':>10}"
          f" {'max lsb':>8}")
    for r in results:
        lsb = "" if r["max_lsb"] is None else str(r["max_lsb"])
        print(f"{r['model']:<18} {r['against']:<12} {r['tensors']:>7} {r['max_abs']:>10.2e} {r['max_rel']:>10.2e} "
              f"{r['output_max_abs']:>10.2e} {r['output_max_rel']:>10.2e} {lsb:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

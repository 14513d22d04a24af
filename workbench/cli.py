"""The ``workbench`` command line.

    workbench zoo list [--json]
    workbench zoo fetch ID [ID ...] | --all
    workbench zoo path ID
    workbench samples
    workbench trace --model M --image I --out DIR [--backend B] [--capture all|stats] [--json]
    workbench detect --model M --image I [--backend B] [--json] [--out DIR]
    workbench explain --model M --image I --method METHOD [--target K] [--layer NAME] --out DIR [--json]

Errors print one clear message (what went wrong, what to do) and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import WorkbenchError

__all__ = ["main", "build_parser"]


def _zoo_list(args: argparse.Namespace) -> int:
    from . import zoo

    rows = []
    for card in zoo.list_cards():
        row = card.summary()
        try:
            zoo.path(card, verify=False)
            row["local"] = True
        except WorkbenchError:
            row["local"] = False
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["id", "task", "format", "input", "decoder", "local", "source"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    return 0


def _zoo_fetch(args: argparse.Namespace) -> int:
    from . import zoo

    ids = [c.id for c in zoo.list_cards()] if args.all else args.ids
    if not ids:
        print("workbench zoo fetch: name model ids or pass --all", file=sys.stderr)
        return 2
    failed = 0
    for mid in ids:
        try:
            p = zoo.fetch(mid, force=args.force)
            print(f"ok    {mid:<18} {p}")
        except WorkbenchError as exc:
            failed += 1
            print(f"FAIL  {mid:<18} {exc}", file=sys.stderr)
    return 2 if failed else 0


def _zoo_path(args: argparse.Namespace) -> int:
    from . import zoo

    print(zoo.path(args.id))
    return 0


def _samples(args: argparse.Namespace) -> int:
    from .data import SAMPLE_IMAGES, sample_names

    for name in sample_names():
        desc = SAMPLE_IMAGES[name][1] if name in SAMPLE_IMAGES else {
            "lfw-mosaic": "six LFW faces on one canvas",
            "shapes": "a synthetic shapes scene (seed 0)",
        }[name]
        print(f"{name:<22} {desc}")
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH like 640x480, got {text!r}") from None


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
        return lo, hi
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI like -1,1, got {text!r}") from None


def open_frame(image: str):  # type: ignore[no-untyped-def]
    """A frame from an image path, or ``sample:NAME`` for a packaged sample."""
    from .data import sample_frame
    from .media import Frame

    if image.startswith("sample:"):
        return sample_frame(image.split(":", 1)[1])
    return Frame.open(image)


def _trace(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from .backends import load_model
    from .capture import Trace
    from .preprocess import infer_input_spec, preprocess

    frame = open_frame(args.image)
    session = load_model(args.model, backend=args.backend)
    spec = session.card.input
    if spec is None or args.input_size or args.layout or args.range:
        if spec is None:
            spec = infer_input_spec(
                session.input_specs[0], size=args.input_size, layout=args.layout, value_range=args.range
            )
        else:
            spec = dataclasses.replace(
                spec,
                size=args.input_size or spec.size,
                layout=args.layout or spec.layout,
                range=args.range or spec.range,
                mean=None if args.range else spec.mean,
                std=None if args.range else spec.std,
            )
    x, transform = preprocess(frame, spec)
    out = Path(args.out)
    record = session.trace({session.input_names[0]: x}, capture=args.capture, store=out / "inference" / "tensors")
    trace = Trace(records={"inference": record}, frame=frame,
                  meta={"transform": transform.as_dict(), "model": session.card.id, "image": args.image})
    trace.save(out)
    summary = {
        "model": session.card.id, "backend": record.backend, "mode": record.mode,
        "layers": len(record.layers), "tensors": len(record.store), "bytes": record.store.nbytes,
        "op_types": record.op_types, "timings": record.timings, "out": str(out.resolve()),
        "input_shape": list(x.shape), "notes": record.summary()["notes"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['model']} on {summary['backend']} ({summary['mode']}): {summary['layers']} layers, "
              f"{summary['tensors']} tensors, {summary['bytes'] / 1e6:.1f} MB -> {summary['out']}")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline

    frame = open_frame(args.image)
    pipeline = Pipeline.from_card(args.model, backend=args.backend)
    result = pipeline.run(frame, trace=args.capture if args.out else False)
    doc = result.to_json()
    if args.out:
        result.save(args.out)
    if args.json:
        print(json.dumps(doc))
        return 0
    dets = doc["detections"]
    print(f"{pipeline.name} on {frame.id} ({frame.width}x{frame.height}): {len(dets)} detection(s)")
    for d in dets:
        x1, y1, x2, y2 = d["box"]
        print(f"  {d['label']:<12} {d['score']:.3f}  [{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]"
              + (f"  {len(d['keypoints'])} keypoints" if d["keypoints"] else ""))
    print("decisions: " + ", ".join(f"{k}={v}" for k, v in doc["decisions"].items() if v))
    if args.out:
        print(f"saved -> {args.out}")
    return 0


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like window=8, got {text!r}")
    try:
        return key.strip().replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), value


def _explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .explain import explain, get_method
    from .pipeline import Pipeline

    method = get_method(args.method)  # an unknown id fails before the model loads
    params = dict(args.param or [])
    if args.layer is not None:
        if not method.is_layer_method:
            print(f"workbench explain: --layer applies to layer methods (grad-cam), not {args.method}", file=sys.stderr)
            return 2
        params["layer"] = args.layer
    quality = {"all": True, "none": False}.get(args.quality, args.quality)
    frame = open_frame(args.image)
    pipeline = Pipeline.from_card(args.model, backend=args.backend)
    result = pipeline.run(frame, trace=False if args.capture == "none" else args.capture)
    a = explain(result, args.target, args.method, quality=quality, **params)
    out = Path(args.out)
    result.save(out)
    folder = out / "attributions" / a.name
    _save_png(a.overlay(frame.image), folder / "overlay.png")
    doc = {"method": a.method, "target": a.target.to_json(), "map": str((folder / "frame_map.npy").resolve()),
           "input_map": str((folder / "input_map.npy").resolve()), "overlay": str((folder / "overlay.png").resolve()),
           "sanity": a.sanity, "faithfulness": a.faithfulness, "seconds": round(a.seconds, 4), "model": a.model,
           "backend": a.backend, "params": a.params, "target_value": a.target_value,
           "convergence_delta": a.convergence_delta, "parity": a.parity, "out": str(out.resolve())}
    from .capture.records import jsonable

    if args.json:
        print(json.dumps(jsonable(doc)))
        return 0
    print(f"{a.method} on {a.model} ({a.backend}): {a.target.describe()} -> map {a.frame_map.shape} in {a.seconds:.2f}s")
    if a.parity:
        print(f"  parity with {a.parity['deployed']}: max |diff| {a.parity['max_abs_diff']:.3g} (tolerance {a.parity['tolerance']:g})")
    if a.convergence_delta is not None:
        print(f"  convergence delta {a.convergence_delta:.4g}")
    if a.sanity and "spearman_abs" in a.sanity:
        print("  sanity (Spearman |map| after randomizing top-down): "
              + ", ".join(f"{n}:{r:.2f}" for n, r in zip(a.sanity["randomized"], a.sanity["spearman_abs"])))
    if a.faithfulness:
        print(f"  faithfulness: deletion AUC {a.faithfulness['deletion_auc']:.3f}, insertion AUC "
              f"{a.faithfulness['insertion_auc']:.3f}")
    print(f"saved -> {folder}")
    return 0


def _save_png(image, path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Explainability workbench for vision models")
    sub = parser.add_subparsers(dest="command", required=True)

    zp = sub.add_parser("zoo", help="list, fetch and locate zoo models")
    zsub = zp.add_subparsers(dest="zoo_command", required=True)
    p = zsub.add_parser("list", help="list model cards")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_zoo_list)
    p = zsub.add_parser("fetch", help="download and verify model files")
    p.add_argument("ids", nargs="*", help="model ids")
    p.add_argument("--all", action="store_true", help="every card in the zoo")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=_zoo_fetch)
    p = zsub.add_parser("path", help="print the local file of a model")
    p.add_argument("id")
    p.set_defaults(func=_zoo_path)

    p = sub.add_parser("trace", help="run a model on one image and keep every intermediate tensor")
    p.add_argument("--model", required=True, help="zoo id, card .toml or model file")
    p.add_argument("--image", required=True, help="image file, or sample:NAME (see `workbench samples`)")
    p.add_argument("--out", required=True, help="folder for the saved trace")
    p.add_argument("--backend", choices=["onnxruntime", "litert", "reference"], default=None)
    p.add_argument("--capture", choices=["all", "stats"], default="all")
    p.add_argument("--input-size", type=_parse_size, default=None, help="WxH (models without a card)")
    p.add_argument("--layout", choices=["NCHW", "NHWC"], default=None)
    p.add_argument("--range", type=_parse_range, default=None, help="value range LO,HI, e.g. --range=-1,1 (default 0,1)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_trace)

    p = sub.add_parser("detect", help="run a detector (or the MTCNN cascade) on one image")
    p.add_argument("--model", required=True, help="zoo id with a decoder, or 'mtcnn' (the three-network cascade)")
    p.add_argument("--image", required=True, help="image file, or sample:NAME (see `workbench samples`)")
    p.add_argument("--backend", choices=["onnxruntime", "litert", "reference"], default=None)
    p.add_argument("--json", action="store_true",
                   help='print {"detections": [{"box", "score", "label", "keypoints"}], "decisions": {fate: count}}')
    p.add_argument("--out", default=None, help="also save the whole FrameResult (trace, meta, logs) to this folder")
    p.add_argument("--capture", choices=["all", "stats"], default="stats", help="tensors kept with --out")
    p.set_defaults(func=_detect)

    p = sub.add_parser("explain", help="attribution map of one result (a class, a detection) on one image")
    p.add_argument("--model", required=True, help="zoo id with a decoder, or 'mtcnn'")
    p.add_argument("--image", required=True, help="image file, or sample:NAME (see `workbench samples`)")
    p.add_argument("--method", required=True,
                   help="occlusion, feature-ablation, kernel-shap, lime, d-rise (deployed backend); saliency, "
                        "integrated-gradients, input-x-gradient, guided-backprop, grad-cam (reference backend)")
    p.add_argument("--target", type=int, default=None,
                   help="K: the K-th kept detection by score, or the class index of a classifier (default: the best)")
    p.add_argument("--layer", default=None, help="layer (node or tensor name) for grad-cam")
    p.add_argument("--out", required=True, help="folder: the FrameResult with the attribution (frame_map.npy, overlay.png)")
    p.add_argument("--backend", choices=["onnxruntime", "litert"], default=None, help="deployed backend")
    p.add_argument("--param", type=_parse_param, action="append", metavar="KEY=VALUE",
                   help="method parameter, e.g. window=8, n_steps=16, noise_tunnel=smoothgrad, baseline=blur")
    p.add_argument("--quality", choices=["all", "faithfulness", "sanity", "none"], default="all",
                   help="quality checks next to the map (default: sanity + faithfulness)")
    p.add_argument("--capture", choices=["none", "all", "stats"], default="none", help="tensors kept in the saved trace")
    p.add_argument("--json", action="store_true",
                   help='print {"method", "target", "map": .npy in frame pixels, "sanity", "faithfulness", "seconds", ...}')
    p.set_defaults(func=_explain)

    p = sub.add_parser("samples", help="list packaged sample frames")
    p.set_defaults(func=_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

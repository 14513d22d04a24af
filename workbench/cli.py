"""The ``workbench`` command line.

    workbench zoo list [--json]
    workbench zoo fetch ID [ID ...] | --all
    workbench zoo path ID
    workbench samples

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

"""Write a notebook from a list of (kind, source) cells: keeps notebooks reviewable as code.

    python tools/nbmake.py   (rebuilds every notebook defined in tools/notebooks/*.py)

Each tools/notebooks/<name>.py defines CELLS = [("md", "..."), ("code", "..."), ...].
Notebooks are written without outputs (git keeps them clean).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def build(cells: list[tuple[str, str]], out: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, src) in enumerate(cells):
        src = src.strip("\n")
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        cell["id"] = f"cell-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    out.write_text(nbformat.writes(nb) + "\n")


def main(names: list[str]) -> None:
    for spec_file in sorted((ROOT / "tools" / "notebooks").glob("*.py")):
        if names and spec_file.stem not in names:
            continue
        spec = importlib.util.spec_from_file_location(spec_file.stem, spec_file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        out = ROOT / "notebooks" / f"{spec_file.stem}.ipynb"
        build(mod.CELLS, out)
        print("wrote", out.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])

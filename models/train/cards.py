"""Model-card writing for the self-trained models (no torch: the TFLite card step uses it too)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(card: dict[str, Any]) -> str:
    """Write a card dict as TOML: scalars first, then tables, then arrays of tables.

    Supports what the cards use: str/int/float/bool/lists, nested tables (one level of
    sub-tables, e.g. ``decoder.params``) and lists of tables (``[[outputs]]``).
    """
    lines: list[str] = []

    def emit_table(prefix: str, table: dict[str, Any], header: str | None) -> None:
        if header is not None:
            lines.append("")
            lines.append(header)
        subtables = []
        for key, value in table.items():
            if isinstance(value, dict):
                subtables.append((key, value))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                subtables.append((key, value))
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, value in subtables:
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                emit_table(name, value, f"[{name}]")
            else:
                for item in value:
                    emit_table(name, item, f"[[{name}]]")

    emit_table("", card, None)
    return "\n".join(lines) + "\n"


def write_card(path: Path, card: dict[str, Any]) -> None:
    """Write a model card and check it parses back to the same dict."""
    text = to_toml(card)
    if tomllib.loads(text) != _normalise(card):
        raise AssertionError("card does not round-trip through TOML")
    path.write_text(text)


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value

"""InferenceRecord (one model run, every op and tensor) and Trace (everything for one frame).

Saved layout (JSON + .npy, never pickle)::

    folder/trace.json                 {"format": "workbench-trace", "version": 1, "frame": {...},
                                       "records": ["inference", ...], "meta": {...}}
    folder/frame.npy                  the frame's pixels (when the trace has a frame)
    folder/<record>/record.json       layers, edges, inputs, outputs, timings, notes
    folder/<record>/tensors/          a TensorStore (index.json + one .npy per tensor)

``open_trace(folder)`` needs no model file: everything shown by the explorer is in the folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import CaptureError, InputError, TraceFormatError
from ..media import Frame
from .records import GraphEdge, LayerRecord, jsonable
from .store import TensorStore

__all__ = ["InferenceRecord", "Trace", "open_trace", "edges_from_layers"]

_FORMAT = "workbench-trace"


def edges_from_layers(layers: Iterable[LayerRecord], graph_inputs: Iterable[str]) -> tuple[GraphEdge, ...]:
    """Data-flow edges between ops (``src=-1`` for graph inputs) from their tensor names."""
    producer: dict[str, int] = {name: -1 for name in graph_inputs}
    edges: list[GraphEdge] = []
    for layer in layers:
        for t in layer.inputs:
            if t in producer:
                edges.append(GraphEdge(producer[t], layer.index, t))
        for t in layer.outputs:
            producer[t] = layer.index
    return tuple(edges)


@dataclass
class InferenceRecord:
    """Everything one backend call recorded.

    ``layers`` in execution order; ``inputs``/``outputs`` are graph tensor names (all in
    ``store``); ``edges`` is the data-flow graph for drawing; ``timings`` holds at least
    ``total_ms``; ``notes`` holds backend findings (e.g. ``deployed_vs_faithful`` max abs
    difference per output for LiteRT).
    """

    model_id: str
    backend: str
    mode: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[LayerRecord, ...]
    store: TensorStore
    edges: tuple[GraphEdge, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.edges:
            self.edges = edges_from_layers(self.layers, self.inputs)

    # -- lookup --------------------------------------------------------------------------------
    def layer(self, key: int | str) -> LayerRecord:
        """A layer by execution index or by op name."""
        if isinstance(key, int):
            if not 0 <= key < len(self.layers):
                raise CaptureError(f"layer index {key} out of range (0..{len(self.layers) - 1})")
            return self.layers[key]
        for layer in self.layers:
            if layer.name == key:
                return layer
        raise CaptureError(f"no layer named {key!r}", hint="see record.find(...) or [l.name for l in record.layers]")

    def find(self, op_type: str | None = None, name: str | None = None) -> list[LayerRecord]:
        """Layers of an op type and/or whose name matches a regex."""
        pat = re.compile(name) if name else None
        return [
            layer for layer in self.layers
            if (op_type is None or layer.op_type == op_type) and (pat is None or pat.search(layer.name))
        ]

    def tensor(self, name: str) -> np.ndarray:
        return self.store[name]

    def output(self, name: str | None = None) -> np.ndarray:
        """A graph output (the first one by default)."""
        return self.store[name or self.outputs[0]]

    @property
    def op_types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.op_type] = counts.get(layer.op_type, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model_id, "backend": self.backend, "mode": self.mode,
            "layers": len(self.layers), "tensors": len(self.store), "bytes": self.store.nbytes,
            "timings": dict(self.timings), "notes": jsonable(self.notes),
        }

    # -- persistence --------------------------------------------------------------------------
    def _save_into(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.store.save(folder / "tensors")
        doc = {
            "model_id": self.model_id, "backend": self.backend, "mode": self.mode,
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "layers": [layer.to_json() for layer in self.layers],
            "edges": [[e.src, e.dst, e.tensor] for e in self.edges],
            "timings": jsonable(self.timings), "notes": jsonable(self.notes),
        }
        (folder / "record.json").write_text(json.dumps(doc))

    @classmethod
    def _open_from(cls, folder: Path) -> "InferenceRecord":
        try:
            doc = json.loads((folder / "record.json").read_text())
            return cls(
                model_id=doc["model_id"], backend=doc["backend"], mode=doc["mode"],
                inputs=tuple(doc["inputs"]), outputs=tuple(doc["outputs"]),
                layers=tuple(LayerRecord.from_json(d) for d in doc["layers"]),
                store=TensorStore.open(folder / "tensors"),
                edges=tuple(GraphEdge(int(s), int(d), str(t)) for s, d, t in doc.get("edges", [])),
                timings=dict(doc.get("timings", {})), notes=dict(doc.get("notes", {})),
            )
        except FileNotFoundError as exc:
            raise TraceFormatError(f"{folder} has no record.json", hint="is this a saved trace?") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TraceFormatError(f"{folder / 'record.json'} is malformed: {exc}") from exc

    def save(self, folder: str | os.PathLike) -> Path:
        """Save as a one-record :class:`Trace`; reopen with :func:`open_trace`."""
        return Trace(records={"inference": self}).save(folder)


@dataclass
class Trace:
    """Everything recorded for one frame: named stage records, the frame, free-form meta."""

    records: dict[str, InferenceRecord] = field(default_factory=dict)
    frame: Frame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def inference(self) -> InferenceRecord:
        """The first inference record (the usual single-model case)."""
        if not self.records:
            raise CaptureError("this trace has no inference record")
        return next(iter(self.records.values()))

    def save(self, folder: str | os.PathLike) -> Path:
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        for name in self.records:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
                raise CaptureError(f"record name {name!r} must be a plain folder name")
        for name, rec in self.records.items():
            rec._save_into(root / name)
        frame_doc = None
        if self.frame is not None:
            np.save(root / "frame.npy", np.asarray(self.frame.image), allow_pickle=False)
            frame_doc = {"id": self.frame.id, "timestamp": self.frame.timestamp, "source": self.frame.source}
        doc = {"format": _FORMAT, "version": 1, "frame": frame_doc,
               "records": list(self.records), "meta": jsonable(self.meta)}
        tmp = root / "trace.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, root / "trace.json")
        return root


def read_json_doc(path: Path, fmt: str, what: str, hint: str) -> dict[str, Any]:
    """A saved JSON document whose ``format`` is ``fmt``; anything else -> TraceFormatError."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TraceFormatError(f"{path.parent} has no {path.name}", hint=hint) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise TraceFormatError(f"{path} is not a workbench {what}")
    return doc


def open_trace(folder: str | os.PathLike) -> Trace:
    """Reopen a saved trace without the model file; tensors are memory-mapped lazily."""
    root = Path(folder)
    doc = read_json_doc(root / "trace.json", _FORMAT, "trace", "pass the folder given to Trace.save()")
    names = doc.get("records", [])
    if not isinstance(names, list):
        raise TraceFormatError(f"'records' in {root / 'trace.json'} must be a list of folder names")
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
            raise TraceFormatError(f"bad record name {name!r} in {root / 'trace.json'}")
    records = {name: InferenceRecord._open_from(root / name) for name in names}
    frame = None
    if doc.get("frame") is not None:
        try:
            img = np.load(root / "frame.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise TraceFormatError(f"cannot read {root / 'frame.npy'}: {exc}") from exc
        f = doc["frame"]
        try:
            frame = Frame(img, id=f.get("id", ""), timestamp=float(f.get("timestamp", 0.0)), source=f.get("source"))
        except (AttributeError, TypeError, ValueError, InputError) as exc:
            raise TraceFormatError(f"the frame in {root} is malformed: {exc}") from exc
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise TraceFormatError(f"'meta' in {root / 'trace.json'} must be an object")
    return Trace(records=records, frame=frame, meta=dict(meta))

"""TensorStore: where captured tensors live (memory or disk), with per-tensor stats.

Disk layout (no pickle anywhere)::

    folder/index.json        {"format": "workbench-tensors", "version": 1,
                              "tensors": {name: {"file", "shape", "dtype", "stats", "kept"}}}
    folder/00012_conv1.npy   one .npy per kept tensor, memory-mapped when reopened

A :class:`CaptureFilter` bounds what is kept: only some op types, a name pattern, or stats only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import CaptureError, TraceFormatError

__all__ = ["TensorStats", "TensorStore", "CaptureFilter", "compute_stats", "dtype_name", "HIST_BINS"]

HIST_BINS = 32
_FORMAT = "workbench-tensors"
_VERSION = 1


@dataclass(frozen=True)
class TensorStats:
    """Summary of one tensor. ``hist_counts`` has :data:`HIST_BINS` bins over [min, max] of the
    finite values; ``zero_fraction`` counts exact zeros over all elements."""

    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    min: float
    max: float
    mean: float
    std: float
    nan_count: int
    inf_count: int
    zero_fraction: float
    hist_counts: tuple[int, ...]
    hist_edges: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("min", "max", "mean", "std"):
            if not np.isfinite(d[k]):
                d[k] = str(d[k])
        d["shape"], d["hist_counts"], d["hist_edges"] = list(self.shape), list(self.hist_counts), list(self.hist_edges)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "TensorStats":
        kw = dict(d)
        for k in ("min", "max", "mean", "std"):
            kw[k] = float(kw[k])
        kw["shape"] = tuple(kw["shape"])
        kw["hist_counts"] = tuple(kw["hist_counts"])
        kw["hist_edges"] = tuple(kw["hist_edges"])
        return cls(**kw)


_DTYPE_NAMES: dict[np.dtype, str] = {}


def dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, cached (numpy 2 computes it in Python: ~4 us, too slow per tensor)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def _histogram(f: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(f, HIST_BINS, range=(lo, hi))`` of finite values; a constant tensor puts
    every value in the first bin of ``[lo, lo + 1]``."""
    if not hi > lo:
        counts = np.zeros(HIST_BINS, dtype=np.int64)
        counts[0] = f.size
        return counts, np.linspace(lo, lo + 1.0, HIST_BINS + 1)
    if not np.isfinite(hi - lo):  # float64 values near +-1.8e308: the span overflows; bin halves
        counts, edges = _histogram(f / 2, lo / 2, hi / 2)
        return counts, edges * 2
    if f.size > 1 << 16:  # numpy bins large arrays block by block, bounding the temporaries
        return np.histogram(f, bins=HIST_BINS, range=(lo, hi))
    # small arrays: numpy's own arithmetic and edge correction, without its per-call overhead
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    x = f.astype(np.float64, copy=False)
    idx = ((x - lo) * (HIST_BINS / (hi - lo))).astype(np.intp)
    np.clip(idx, 0, HIST_BINS - 1, out=idx)
    idx -= x < edges[idx]
    idx += (x >= edges[idx + 1]) & (idx != HIST_BINS - 1)
    return np.bincount(idx, minlength=HIST_BINS), edges


def compute_stats(array: np.ndarray) -> TensorStats:
    """Stats of any numeric array (bool and integer tensors included), NaN/Inf aware.

    The histogram equals ``np.histogram(finite_values, HIST_BINS, range=(min, max))``; a
    constant tensor puts every value in the first bin of ``[min, min + 1]``.
    """
    a = np.asarray(array)
    shape, dtype, nbytes = tuple(int(s) for s in a.shape), dtype_name(a.dtype), int(a.nbytes)
    if a.dtype.kind not in "biuf" or a.size == 0:
        nan = float("nan")
        return TensorStats(shape, dtype, nbytes, nan, nan, nan, nan, 0, 0, 0.0, (), ())
    x = a.reshape(-1)
    if x.dtype.kind == "f":
        finite_mask = np.isfinite(x)
        n_finite = int(np.count_nonzero(finite_mask))
        nan_count = int(np.count_nonzero(np.isnan(x))) if n_finite != x.size else 0
        inf_count = x.size - n_finite - nan_count
        f = x if n_finite == x.size else x[finite_mask]
        f = f.astype(np.float64) if f.dtype != np.float64 and f.size < 1 << 16 else f
    else:
        nan_count = inf_count = 0
        f = x.astype(np.uint8) if x.dtype.kind == "b" else x
    zero_fraction = float(x.size - np.count_nonzero(x)) / x.size
    if f.size == 0:
        nan = float("nan")
        return TensorStats(shape, dtype, nbytes, nan, nan, nan, nan, nan_count, inf_count, zero_fraction, (), ())
    lo, hi = float(f.min()), float(f.max())
    if max(abs(lo), abs(hi)) < 1e150:
        mean = float(f.mean(dtype=np.float64))
        std = float(f.std(dtype=np.float64))
    else:  # squares of float64 values this large overflow: work on the values scaled to [-1, 1]
        scale = max(abs(lo), abs(hi))
        g = f / scale
        mean = float(np.mean(g, dtype=np.float64)) * scale
        std = float(np.std(g, dtype=np.float64)) * scale
    counts, edges = _histogram(f, lo, hi)
    return TensorStats(
        shape, dtype, nbytes, lo, hi, mean, std, nan_count, inf_count, zero_fraction,
        tuple(int(c) for c in counts), tuple(float(e) for e in edges),
    )


@dataclass(frozen=True)
class CaptureFilter:
    """Which tensors a trace keeps.

    ``op_types``: keep outputs of these op types only (None = all); ``name_pattern``: regex
    searched in the op name or tensor name; ``stats_only``: compute stats, drop values.
    Graph inputs and outputs are always kept in full.
    """

    op_types: frozenset[str] | None = None
    name_pattern: str | None = None
    stats_only: bool = False

    def __post_init__(self) -> None:
        if self.op_types is not None:
            # a bare string is one op type, not a set of its letters
            ops = {self.op_types} if isinstance(self.op_types, str) else set(self.op_types)
            object.__setattr__(self, "op_types", frozenset(ops))
        if self.name_pattern is not None:
            try:
                re.compile(self.name_pattern)
            except (re.error, TypeError) as exc:
                raise CaptureError(f"capture name_pattern {self.name_pattern!r} is not a valid regex: {exc}") from exc

    @classmethod
    def parse(cls, capture: "str | CaptureFilter | None") -> "CaptureFilter":
        """``"all"`` / ``None`` -> keep everything; ``"stats"`` -> stats only; or a filter."""
        if capture is None or capture == "all":
            return cls()
        if capture == "stats":
            return cls(stats_only=True)
        if isinstance(capture, CaptureFilter):
            return capture
        raise CaptureError(
            f"capture must be 'all', 'stats' or a CaptureFilter, got {capture!r}",
            hint="e.g. CaptureFilter(op_types={'Conv'}, name_pattern='stage2')",
        )

    def selects(self, op_type: str, op_name: str, tensor_name: str) -> bool:
        """Is this op's output tensor captured at all (values or stats)?"""
        if self.op_types is not None and op_type not in self.op_types:
            return False
        if self.name_pattern is not None:
            pat = re.compile(self.name_pattern)  # re caches compiled patterns
            return bool(pat.search(op_name) or pat.search(tensor_name))
        return True


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "t"


@dataclass(slots=True)
class _Entry:
    shape: tuple[int, ...]
    dtype: str
    kept: bool
    array: np.ndarray | None = None  # memory stores: the array itself
    deferred: Callable[[], np.ndarray] | None = None  # memory stores: makes the array on first read
    file: str | None = None
    stats: TensorStats | None = None
    mapped: weakref.ref | None = None  # disk stores: the last memory map handed out, while alive


class TensorStore:
    """Named tensors of one inference, in memory or on disk, with lazy per-tensor stats.

    ``TensorStore()`` keeps arrays in memory (the arrays themselves, no copy: do not modify an
    array after putting it; :meth:`put_deferred` tensors are converted on first read);
    ``TensorStore(folder)`` streams every tensor to ``folder`` as it arrives (bounded memory)
    and memory-maps it (read-only) on read; a map is unmapped when the caller drops it. Stats
    of kept tensors are computed on first access (``stats()``, ``table()``), never in the
    capture's hot path; stats-only tensors get theirs when they are put.
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._entries: dict[str, _Entry] = {}
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CaptureError(f"cannot create the tensor folder {self.folder}: {exc}",
                                   hint="pick a writable folder for store=") from exc

    # -- writing ------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "memory" if self.folder is None else "disk"

    def put(self, name: str, array: np.ndarray, *, keep: bool = True) -> None:
        """Add a tensor. ``keep=False`` records its stats only."""
        a = array if type(array) is np.ndarray else np.asarray(array)
        entry = _Entry(a.shape, dtype_name(a.dtype), keep)
        if not keep:
            entry.stats = compute_stats(a)
        elif self.folder is not None:
            if a.dtype.hasobject:
                raise CaptureError(
                    f"tensor {name!r} has dtype {a.dtype} and cannot be written without pickle",
                    hint="capture it with a memory store (store=None) or leave it out with a CaptureFilter",
                )
            entry.file = f"{len(self._entries):05d}_{_safe(name)}.npy"
            try:
                np.save(self.folder / entry.file, a, allow_pickle=False)
            except OSError as exc:
                raise CaptureError(f"cannot write tensor {name!r} to {self.folder}: {exc}",
                                   hint="free disk space or trace into another folder") from exc
        else:
            entry.array = a
        self._entries[name] = entry

    def put_many(self, names: list[str], arrays: list[np.ndarray], keep: Mapping[str, bool]) -> None:
        """``put(name, array, keep=keep[name])`` for each pair whose name is in ``keep`` and not in
        the store yet; the one-run capture's hot path (a memory store takes the arrays as they are)."""
        entries = self._entries
        if self.folder is not None:
            for name, a in zip(names, arrays):
                if name in keep and name not in entries:
                    self.put(name, a, keep=keep[name])
            return
        for name, a in zip(names, arrays):
            if name in keep and name not in entries:
                if type(a) is not np.ndarray or not keep[name]:
                    self.put(name, a, keep=keep[name])
                else:
                    entries[name] = _Entry(a.shape, dtype_name(a.dtype), True, a)

    def put_deferred(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, make: Callable[[], np.ndarray], *, keep: bool = True
    ) -> None:
        """Add a tensor whose values ``make()`` produces on first read (a memory store then keeps
        them). A backend that captured a tensor in another memory layout defers the conversion this
        way, so that capture does not pay for tensors nobody reads. ``make()`` must return an
        array of exactly ``shape`` and ``dtype``. Disk stores and stats-only tensors call it now.
        """
        if self.folder is not None or not keep:
            self.put(name, make(), keep=keep)
            return
        entry = _Entry(tuple(int(d) for d in shape), dtype_name(np.dtype(dtype)), True, deferred=make)
        self._entries[name] = entry

    # -- reading --------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def is_kept(self, name: str) -> bool:
        return self._entry(name).kept

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise CaptureError(
                f"no tensor {name!r} in this store ({len(self._entries)} tensors)",
                hint="list them with store.names(); filtered captures keep only selected tensors",
            ) from None

    def __getitem__(self, name: str) -> np.ndarray:
        e = self._entry(name)
        if not e.kept:
            raise CaptureError(
                f"tensor {name!r} was captured as stats only",
                hint="trace again with capture='all' (or a filter that selects it) to keep its values",
            )
        if e.array is not None:
            return e.array
        if e.deferred is not None:
            array = e.deferred()
            if tuple(array.shape) != e.shape or dtype_name(array.dtype) != e.dtype:
                raise CaptureError(f"tensor {name!r}: the deferred conversion gave {array.dtype.name}{list(array.shape)}, "
                                   f"expected {e.dtype}{list(e.shape)}", hint="report this as a workbench bug")
            e.array, e.deferred = array, None
            return array
        # disk: reuse a map the caller still holds, else map the file again. Not keeping every
        # map alive keeps reading a large trace tensor by tensor at the memory of one tensor.
        array = e.mapped() if e.mapped is not None else None
        if array is None:
            array = self._load(name, e)
            e.mapped = weakref.ref(array)
        return array

    def _load(self, name: str, e: _Entry) -> np.ndarray:
        path = self.folder / e.file  # type: ignore[operator]
        try:
            # numpy cannot memory-map zero bytes: empty tensors are read normally
            mmap = "r" if int(np.prod(e.shape, dtype=np.int64)) > 0 else None
            array = np.load(path, mmap_mode=mmap, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise TraceFormatError(f"cannot read tensor {name!r} from {path}: {exc}",
                                   hint="the trace folder is incomplete or was modified; trace again") from exc
        if tuple(array.shape) != tuple(e.shape) or dtype_name(array.dtype) != e.dtype:
            raise TraceFormatError(
                f"tensor {name!r}: {path.name} holds {array.dtype.name}{list(array.shape)}, "
                f"index.json says {e.dtype}{list(e.shape)}",
                hint="the trace folder was modified; trace again",
            )
        return array

    def get(self, name: str, default: Any = None) -> Any:
        e = self._entries.get(name)
        return default if e is None or not e.kept else self[name]

    def stats(self, name: str) -> TensorStats:
        e = self._entry(name)
        if e.stats is None:
            e.stats = compute_stats(self[name])
        return e.stats

    def has_stats(self, name: str) -> bool:
        """True when the tensor's stats are already computed (or were saved)."""
        return self._entry(name).stats is not None

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def shapes(self, names: Sequence[str]) -> tuple[tuple[int, ...] | None, ...]:
        """Shapes of ``names`` (None for a name not in the store)."""
        entries = self._entries
        return tuple(e.shape if (e := entries.get(n)) is not None else None for n in names)

    def dtype(self, name: str) -> str:
        return self._entry(name).dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the kept tensors."""
        return sum(
            int(np.prod(e.shape, dtype=np.int64)) * np.dtype(e.dtype).itemsize for e in self._entries.values() if e.kept
        )

    def table(self) -> list[dict[str, Any]]:
        """One row per tensor with its stats (computes missing stats): for a pandas DataFrame."""
        rows = []
        for name in self._entries:
            s = self.stats(name)
            rows.append({
                "tensor": name, "shape": s.shape, "dtype": s.dtype, "min": s.min, "max": s.max,
                "mean": s.mean, "std": s.std, "nan": s.nan_count, "inf": s.inf_count,
                "zero_fraction": s.zero_fraction, "kept": self._entries[name].kept,
            })
        return rows

    # -- persistence ------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, *, with_stats: bool = False) -> Path:
        """Write every kept tensor as .npy plus ``index.json``; returns the folder.

        Stats already computed are saved with the index; ``with_stats=True`` computes the
        missing ones first (a full pass over every tensor). Stats left out are computed from
        the memory-mapped file on first access after :meth:`open`.
        """
        out = Path(folder)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureError(f"cannot create {out}: {exc}", hint="pick a writable folder") from exc
        index: dict[str, Any] = {}
        same_folder = self.folder is not None and self.folder.resolve() == out.resolve()
        for i, (name, e) in enumerate(self._entries.items()):
            row: dict[str, Any] = {"shape": list(e.shape), "dtype": e.dtype, "kept": e.kept, "file": None}
            if e.kept:
                src = self.folder / e.file if (self.folder is not None and e.file) else None
                fname = e.file if src is not None else f"{i:05d}_{_safe(name)}.npy"
                dst = out / fname
                try:
                    if src is None:
                        if e.array is not None and e.array.dtype.hasobject:
                            raise CaptureError(f"tensor {name!r} has dtype {e.array.dtype} and cannot be saved without pickle")
                        np.save(dst, self[name], allow_pickle=False)
                    elif not same_folder:
                        shutil.copyfile(src, dst)
                except OSError as exc:
                    raise CaptureError(f"cannot write tensor {name!r} to {dst}: {exc}",
                                       hint="free disk space or save into another folder") from exc
                row["file"] = fname
            if with_stats:
                self.stats(name)
            row["stats"] = e.stats.to_json() if e.stats is not None else None
            index[name] = row
        tmp = out / "index.json.tmp"
        tmp.write_text(json.dumps({"format": _FORMAT, "version": _VERSION, "tensors": index}))
        os.replace(tmp, out / "index.json")
        return out

    def flush(self) -> Path:
        """Write ``index.json`` for a disk store (tensors are already on disk)."""
        if self.folder is None:
            raise CaptureError("flush() is for disk stores; use save(folder) for a memory store")
        return self.save(self.folder)

    @classmethod
    def open(cls, folder: str | os.PathLike) -> "TensorStore":
        """Reopen a saved store; tensors are memory-mapped lazily."""
        root = Path(folder)
        where = root / "index.json"
        try:
            meta = json.loads(where.read_text())
        except FileNotFoundError:
            raise TraceFormatError(f"{root} has no index.json", hint="is this a saved trace's tensor folder?") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{where} is not valid JSON: {exc}") from exc
        except OSError as exc:
            raise TraceFormatError(f"cannot read {where}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise TraceFormatError(f"{where} is not a workbench tensor index")
        version = meta.get("version")
        if not isinstance(version, int) or version > _VERSION:
            raise TraceFormatError(f"{where} has format version {version!r}; this workbench reads up to {_VERSION}",
                                   hint="upgrade the workbench to open it")
        tensors = meta.get("tensors", {})
        if not isinstance(tensors, dict):
            raise TraceFormatError(f"{where}: 'tensors' must be an object name -> entry")
        store = cls.__new__(cls)
        store.folder = root
        store._entries = {}
        for name, row in tensors.items():
            try:
                shape = tuple(row["shape"])
                if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                    raise ValueError(f"shape {list(shape)} must list non-negative integers")
                dtype = np.dtype(str(row["dtype"]))
                if dtype.hasobject:
                    raise ValueError(f"dtype {dtype} cannot be stored without pickle")
                e = _Entry(shape, dtype_name(dtype), bool(row["kept"]), file=row.get("file"))
                e.stats = TensorStats.from_json(row["stats"]) if row.get("stats") else None
            except (KeyError, TypeError, ValueError) as exc:
                raise TraceFormatError(f"malformed entry for tensor {name!r} in {where}: {exc}") from exc
            if e.kept and (not isinstance(e.file, str) or not _FILE_RE.fullmatch(e.file)):
                raise TraceFormatError(f"tensor {name!r} in {where} has a bad file entry {e.file!r}")
            store._entries[name] = e
        return store


#: a tensor file inside the store folder: no separators, no parent references
_FILE_RE = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.-]+\.npy")

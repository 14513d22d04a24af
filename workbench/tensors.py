"""Tensor specs and tensor caps (the vocabulary of the GStreamer ML-analytics design).

A :class:`TensorSpec` describes one tensor: its ``tensor_id`` (what the tensor *means*, e.g.
``"ssd-mobilenet-v1-boxes"``), its ``dims`` (``0`` = dynamic / any size), its ``dims_order``
(``"row-major"``: dims listed outermost first, as numpy shapes are; ``"col-major"``: innermost
first, as GStreamer's tensor caps may list them) and its ``dtype``.

A :class:`TensorCaps` is the set of specs a consumer (a decoder) accepts for one tensor.
:func:`check_caps` matches the tensors a model produces against the caps a consumer wants and,
when they do not fit, says which field of which tensor failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import CapsError

__all__ = ["TensorSpec", "TensorCaps", "CapsReport", "check_caps", "DIMS_ORDERS"]

DIMS_ORDERS = ("row-major", "col-major")


def _dtype_name(dtype: object) -> str:
    return np.dtype(dtype).name  # type: ignore[arg-type]


@dataclass(frozen=True)
class TensorSpec:
    """One tensor's description.

    ``dims`` are listed in ``dims_order``; ``0`` means dynamic. ``None`` fields in a spec that is
    used as a *caps* entry mean "anything"; in a spec of an actual tensor they mean "unknown".
    ``name`` is the tensor's name inside a model (informational, never matched).
    """

    tensor_id: str | None = None
    dims: tuple[int, ...] | None = None
    dims_order: str = "row-major"
    dtype: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.dims_order not in DIMS_ORDERS:
            raise CapsError(
                f"dims_order must be one of {DIMS_ORDERS}, got {self.dims_order!r}",
                hint="use 'row-major' for numpy-style shapes",
            )
        if self.dims is not None:
            dims = tuple(int(d) for d in self.dims)
            if any(d < 0 for d in dims):
                raise CapsError(f"dims must be >= 0 (0 = dynamic), got {dims}")
            object.__setattr__(self, "dims", dims)
        if self.dtype is not None:
            try:
                object.__setattr__(self, "dtype", _dtype_name(self.dtype))
            except TypeError as exc:
                raise CapsError(f"unknown dtype {self.dtype!r} in tensor spec") from exc

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        tensor_id: str | None = None,
        dims_order: str = "row-major",
        name: str | None = None,
    ) -> "TensorSpec":
        """Spec of an actual array; ``dims`` follow ``dims_order``."""
        shape = tuple(int(d) for d in np.shape(array))
        dims = shape if dims_order == "row-major" else tuple(reversed(shape))
        return cls(tensor_id, dims, dims_order, _dtype_name(np.asarray(array).dtype), name)

    @classmethod
    def from_shape(
        cls,
        shape: Sequence[int | str | None],
        dtype: object = None,
        tensor_id: str | None = None,
        name: str | None = None,
    ) -> "TensorSpec":
        """Spec from a model's declared row-major shape; symbolic or ``None``/-1 dims become 0."""
        dims = tuple(int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else 0 for d in shape)
        return cls(tensor_id, dims, "row-major", None if dtype is None else _dtype_name(dtype), name)

    # -- views ----------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...] | None:
        """Row-major (numpy) shape, ``0`` for dynamic dims."""
        if self.dims is None:
            return None
        return self.dims if self.dims_order == "row-major" else tuple(reversed(self.dims))

    def __str__(self) -> str:
        parts = ["tensor/strided"]
        if self.tensor_id is not None:
            parts.append(f"tensor-id={self.tensor_id}")
        if self.dims is not None:
            parts.append("dims=<" + ",".join(str(d) for d in self.dims) + ">")
        parts.append(f"dims-order={self.dims_order}")
        if self.dtype is not None:
            parts.append(f"type={self.dtype}")
        return ", ".join(parts)

    # -- matching ---------------------------------------------------------------------------------
    def mismatches(self, wanted: "TensorSpec") -> list[str]:
        """Fields where this (actual) spec does not fit ``wanted`` (a caps entry); [] if it fits.

        Dims are compared in row-major order, so a col-major caps entry describes the same
        memory layout as the row-major shape it reverses; but ``dims_order`` itself must agree,
        because the order tells a decoder how to read the tensor.
        """
        out: list[str] = []
        if wanted.tensor_id is not None and self.tensor_id != wanted.tensor_id:
            out.append(f"tensor-id is {self.tensor_id!r}, caps want {wanted.tensor_id!r}")
        if self.dims_order != wanted.dims_order:
            out.append(f"dims-order is {self.dims_order}, caps want {wanted.dims_order}")
        if wanted.dtype is not None and self.dtype != wanted.dtype:
            out.append(f"type is {self.dtype}, caps want {wanted.dtype}")
        if wanted.dims is not None:
            if self.dims is None:
                out.append(f"dims are unknown, caps want <{_fmt(wanted.dims)}>")
            elif len(self.dims) != len(wanted.dims):
                out.append(
                    f"rank is {len(self.dims)} (dims <{_fmt(self.dims)}>), caps want rank "
                    f"{len(wanted.dims)} (dims <{_fmt(wanted.dims)}>)"
                )
            else:
                for i, (got, want) in enumerate(zip(self.dims, wanted.dims)):
                    if want == 0:
                        continue
                    if got == 0:
                        out.append(f"dims[{i}] is dynamic, caps want exactly {want}")
                    elif got != want:
                        out.append(f"dims[{i}] is {got}, caps want {want}")
        return out

    def is_subset_of(self, wanted: "TensorSpec") -> bool:
        """True when every tensor this spec describes is also described by ``wanted``."""
        return not self.mismatches(wanted)


def _fmt(dims: Iterable[int]) -> str:
    return ",".join(str(d) for d in dims)


@dataclass(frozen=True)
class TensorCaps:
    """The set of specs a consumer accepts for one tensor (alternatives, any one may fit)."""

    specs: tuple[TensorSpec, ...]
    role: str = "tensor"

    def __post_init__(self) -> None:
        specs = tuple(self.specs) if not isinstance(self.specs, TensorSpec) else (self.specs,)
        if not specs:
            raise CapsError("TensorCaps needs at least one spec")
        object.__setattr__(self, "specs", specs)

    @classmethod
    def of(cls, *specs: TensorSpec, role: str = "tensor") -> "TensorCaps":
        return cls(tuple(specs), role)

    def why_not(self, spec: TensorSpec) -> list[str]:
        """[] when ``spec`` fits one of the alternatives, else the reasons (closest first)."""
        reasons = [spec.mismatches(w) for w in self.specs]
        if any(not r for r in reasons):
            return []
        return min(reasons, key=len)

    def accepts(self, spec: TensorSpec) -> bool:
        return not self.why_not(spec)

    def is_subset_of(self, other: "TensorCaps") -> bool:
        """True when every alternative here is accepted by some alternative of ``other``."""
        return all(other.accepts(s) for s in self.specs)

    def __str__(self) -> str:
        return " ; ".join(str(s) for s in self.specs)


@dataclass(frozen=True)
class CapsReport:
    """Outcome of :func:`check_caps`: which offered tensor fills which wanted slot, and why not."""

    ok: bool
    assignment: dict[str, int] = field(default_factory=dict)  # role -> index into offered
    problems: tuple[str, ...] = ()

    def explain(self) -> str:
        return "fits" if self.ok else "\n".join(f"- {p}" for p in self.problems)

    def raise_if_failed(self, what: str = "tensors") -> None:
        if not self.ok:
            raise CapsError(
                f"{what} do not fit the caps:\n{self.explain()}",
                hint="check the model card's [[outputs]] (tensor_id, dims, dims_order, dtype) "
                "or pick a decoder whose caps match",
            )


def check_caps(offered: Sequence[TensorSpec], wanted: Sequence[TensorCaps]) -> CapsReport:
    """Match the tensors a model offers against the caps a consumer wants, one per slot.

    A wanted slot whose caps name a tensor-id is filled by the offered tensor with that id;
    otherwise slots are filled in order by the first unused tensor that fits. Problems name the
    slot, the offered tensor and the field that failed.
    """
    problems: list[str] = []
    used: set[int] = set()
    assignment: dict[str, int] = {}
    if len(offered) != len(wanted):
        problems.append(f"{len(offered)} tensors arrived, caps want {len(wanted)}")
    for slot, caps in enumerate(wanted):
        label = f"slot {slot} ({caps.role})"
        ids = {s.tensor_id for s in caps.specs if s.tensor_id is not None}
        candidates = [i for i in range(len(offered)) if i not in used]
        if ids:
            by_id = [i for i in candidates if offered[i].tensor_id in ids]
            candidates = by_id or candidates
        best: tuple[int, list[str]] | None = None
        for i in candidates:
            why = caps.why_not(offered[i])
            if not why:
                best = (i, [])
                break
            if best is None or len(why) < len(best[1]):
                best = (i, why)
        if best is None:
            problems.append(f"{label}: no tensor left for caps {caps}")
        elif best[1]:
            name = offered[best[0]].name or f"#{best[0]}"
            for reason in best[1]:
                problems.append(f"{label}: tensor {name!r} {reason}")
        else:
            used.add(best[0])
            assignment[caps.role] = best[0]
    return CapsReport(ok=not problems, assignment=assignment, problems=tuple(problems))

"""The inference element: one framework behind ``run()`` and ``trace()``.

A backend subclasses :class:`Session` and writes only ``_run`` and ``_trace``; the public
methods check the inputs (names, shapes, dtypes, NaN/Inf) and raise :class:`InputError` naming
what was expected next to what arrived.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from ..capture import CaptureFilter, InferenceRecord, TensorStore
from ..capture.store import dtype_name
from ..errors import InputError
from ..tensors import TensorSpec
from ..zoo import ModelCard

__all__ = ["Session", "Inputs"]

Inputs = Mapping[str, np.ndarray] | np.ndarray


class Session(ABC):
    """A loaded model on one backend.

    ``input_specs`` / ``output_specs`` are row-major :class:`TensorSpec` s with the model's own
    tensor names in ``name`` and ``0`` for dynamic dims.
    """

    backend: ClassVar[str] = "?"

    def __init__(self, card: ModelCard, path: Path) -> None:
        self.card = card
        self.path = Path(path)
        self.input_specs: tuple[TensorSpec, ...] = ()
        self.output_specs: tuple[TensorSpec, ...] = ()

    # -- the two verbs ------------------------------------------------------------------------------
    def run(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Plain inference, as deployed: output name -> array."""
        return self._run(self.check_inputs(inputs))

    def trace(
        self,
        inputs: Inputs,
        capture: str | CaptureFilter = "all",
        store: str | os.PathLike | TensorStore | None = None,
        **options: Any,
    ) -> InferenceRecord:
        """Inference that keeps every op's output (or its stats) in a TensorStore.

        ``capture``: ``"all"``, ``"stats"`` or a :class:`CaptureFilter`; ``store``: ``None``
        (memory), a folder (stream tensors to disk) or a TensorStore. ``options`` are
        backend-specific (e.g. onnxruntime's ``mode=`` and ``profile=``).
        """
        checked = self.check_inputs(inputs)
        flt = CaptureFilter.parse(capture)
        st = store if isinstance(store, TensorStore) else TensorStore(store)
        record = self._trace(checked, flt, st, **options)
        if st.folder is not None:
            st.flush()
        return record

    @abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _trace(
        self, inputs: dict[str, np.ndarray], capture: CaptureFilter, store: TensorStore, **options: Any
    ) -> InferenceRecord: ...

    # -- checking -----------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [s.name or f"input{i}" for i, s in enumerate(self.input_specs)]

    @property
    def output_names(self) -> list[str]:
        return [s.name or f"output{i}" for i, s in enumerate(self.output_specs)]

    def check_inputs(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Validate names, shapes, dtypes and values against ``input_specs``."""
        names = self.input_names
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, Mapping):
            if len(names) != 1:
                raise InputError(
                    f"{self.card.id} has {len(names)} inputs {names}; pass a dict name -> array"
                )
            inputs = {names[0]: np.asarray(inputs)}
        missing = [n for n in names if n not in inputs]
        extra = [n for n in inputs if n not in names]
        if missing or extra:
            raise InputError(
                f"{self.card.id} expects inputs {names}; missing {missing}, unexpected {extra}"
            )
        out: dict[str, np.ndarray] = {}
        for spec, name in zip(self.input_specs, names):
            a = np.asarray(inputs[name])
            want = spec.shape or ()
            if spec.dtype is not None and dtype_name(a.dtype) != spec.dtype:
                raise InputError(
                    f"input {name!r} of {self.card.id}: dtype is {a.dtype.name}, expected {spec.dtype}",
                    hint=f"convert with array.astype(np.{spec.dtype})",
                )
            if spec.shape is not None and (
                a.ndim != len(want) or any(w not in (0, g) for w, g in zip(want, a.shape))
            ):
                shown = "x".join("?" if w == 0 else str(w) for w in want)
                raise InputError(
                    f"input {name!r} of {self.card.id}: shape is {tuple(a.shape)}, expected {shown} "
                    "(? = any size)",
                    hint="preprocess the frame with the model card's input spec",
                )
            if any(g == 0 for g in a.shape):
                raise InputError(f"input {name!r} of {self.card.id} is empty: shape {tuple(a.shape)}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                n_bad = int((~np.isfinite(a)).sum())
                raise InputError(
                    f"input {name!r} of {self.card.id} contains {n_bad} NaN/Inf values",
                    hint="check the preprocessing (division by zero std? broken image?)",
                )
            out[name] = np.ascontiguousarray(a)
        return out

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{list(s.shape or ())}" for s in self.input_specs)
        return f"<{type(self).__name__} {self.card.id} on {self.backend}: {ins}>"

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.card.id, "backend": self.backend, "path": str(self.path),
            "inputs": [str(s) for s in self.input_specs], "outputs": [str(s) for s in self.output_specs],
        }

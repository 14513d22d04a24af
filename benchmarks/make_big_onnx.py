"""Export a YOLO-style conv net (>= 500 ONNX nodes, input 1x3x640x640) for the capture benchmarks.

The net follows YOLOv8's layout (Conv-BN-SiLU blocks, C2f stages with residual bottlenecks, SPPF,
a PAN neck and three detection heads) at width 0.25 and a deeper stage depth, so that the
exported graph has well over 500 nodes. Weights are random (seeded): the benchmarks measure
capture cost, not accuracy. BatchNorm is folded into the convolutions by the exporter; SiLU
exports as Sigmoid + Mul.

    python benchmarks/make_big_onnx.py            # prints the path; idempotent
    python benchmarks/make_big_onnx.py --force    # re-export

The file goes to ``~/.cache/workbench/bench/big640.onnx`` (``$WORKBENCH_CACHE`` overrides the
cache root); never commit it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

MIN_NODES = 500
SIZE = 640


def bench_dir() -> Path:
    root = Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench"))
    return root / "bench"


def big_model_path() -> Path:
    return bench_dir() / "big640.onnx"


def _build_net():  # torch is imported lazily: other benchmarks import this module for its path
    import torch
    from torch import nn

    class ConvBnSilu(nn.Module):
        def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(cout)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c: int, shortcut: bool = True) -> None:
            super().__init__()
            self.cv1, self.cv2, self.add = ConvBnSilu(c, c), ConvBnSilu(c, c), shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
            super().__init__()
            self.c = cout // 2
            self.cv1 = ConvBnSilu(cin, 2 * self.c, 1)
            self.cv2 = ConvBnSilu((2 + n) * self.c, cout, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).split((self.c, self.c), 1))
            for m in self.m:
                y.append(m(y[-1]))
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.cv1, self.cv2 = ConvBnSilu(cin, cin // 2, 1), ConvBnSilu(cin * 2, cout, 1)
            self.m = nn.MaxPool2d(5, 1, 2)

        def forward(self, x):
            x = self.cv1(x)
            y1 = self.m(x)
            y2 = self.m(y1)
            return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))

    class Head(nn.Module):
        def __init__(self, c: int, nc: int = 80, reg: int = 16) -> None:
            super().__init__()
            cb, cc = max(16, c // 4, reg * 4), max(c, min(nc, 100))
            self.box = nn.Sequential(ConvBnSilu(c, cb), ConvBnSilu(cb, cb), nn.Conv2d(cb, 4 * reg, 1))
            self.cls = nn.Sequential(ConvBnSilu(c, cc), ConvBnSilu(cc, cc), nn.Conv2d(cc, nc, 1))

        def forward(self, x):
            return torch.cat((self.box(x), self.cls(x).sigmoid()), 1).flatten(2)

    class YoloStyle(nn.Module):
        def __init__(self, w: tuple[int, ...] = (16, 32, 64, 128, 256), d: tuple[int, ...] = (6, 12, 12, 4)) -> None:
            super().__init__()
            self.stem = ConvBnSilu(3, w[0], 3, 2)
            self.s1 = nn.Sequential(ConvBnSilu(w[0], w[1], 3, 2), C2f(w[1], w[1], d[0]))
            self.s2 = nn.Sequential(ConvBnSilu(w[1], w[2], 3, 2), C2f(w[2], w[2], d[1]))
            self.s3 = nn.Sequential(ConvBnSilu(w[2], w[3], 3, 2), C2f(w[3], w[3], d[2]))
            self.s4 = nn.Sequential(ConvBnSilu(w[3], w[4], 3, 2), C2f(w[4], w[4], d[3]), SPPF(w[4], w[4]))
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.n1 = C2f(w[4] + w[3], w[3], d[3], shortcut=False)
            self.n2 = C2f(w[3] + w[2], w[2], d[3], shortcut=False)
            self.d1 = ConvBnSilu(w[2], w[2], 3, 2)
            self.n3 = C2f(w[2] + w[3], w[3], d[3], shortcut=False)
            self.d2 = ConvBnSilu(w[3], w[3], 3, 2)
            self.n4 = C2f(w[3] + w[4], w[4], d[3], shortcut=False)
            self.heads = nn.ModuleList(Head(c) for c in (w[2], w[3], w[4]))

        def forward(self, x):
            p3 = self.s2(self.s1(self.stem(x)))
            p4 = self.s3(p3)
            p5 = self.s4(p4)
            t4 = self.n1(torch.cat((self.up(p5), p4), 1))
            o3 = self.n2(torch.cat((self.up(t4), p3), 1))
            o4 = self.n3(torch.cat((self.d1(o3), t4), 1))
            o5 = self.n4(torch.cat((self.d2(o4), p5), 1))
            return torch.cat([h(o) for h, o in zip(self.heads, (o3, o4, o5))], 2)

    torch.manual_seed(0)
    net = YoloStyle().eval()
    with torch.no_grad():  # non-trivial BN statistics, so folding changes the weights
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net


def make_big_onnx(force: bool = False) -> Path:
    """Export the net once to :func:`big_model_path` and return the path (idempotent)."""
    out = big_model_path()
    if out.is_file() and not force:
        return out
    import warnings

    import onnx
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    net = _build_net()
    x = torch.zeros(1, 3, SIZE, SIZE)
    tmp = out.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), str(tmp), dynamo=False, opset_version=17,
            input_names=["images"], output_names=["preds"], do_constant_folding=True,
        )
    model = onnx.load(str(tmp))
    onnx.checker.check_model(model)
    n = len(model.graph.node)
    if n < MIN_NODES:
        tmp.unlink()
        raise SystemExit(f"exported graph has {n} nodes, want >= {MIN_NODES}: deepen the net")
    os.replace(tmp, out)
    return out


def describe(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path))
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return {"path": str(path), "nodes": len(model.graph.node), "bytes": path.stat().st_size, "op_types": counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="export again even if the file exists")
    args = ap.parse_args(argv)
    path = make_big_onnx(force=args.force)
    print(json.dumps(describe(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

CELLS = [
("md", """
# Inside a model: every layer's tensors

A deployed model is usually a black box: pixels in, a few numbers out. Here we open two real
face detectors — MediaPipe's **BlazeFace** (TFLite) and the **MTCNN** cascade (ONNX) — and keep
*every* intermediate tensor of one frame, with statistics, so that we can look at what each layer
computed.

Three backends run the same file:

| backend | what it is | used for |
|---|---|---|
| `onnxruntime` | ONNX Runtime, as deployed; capture marks every node output as a graph output | ONNX models |
| `litert` | LiteRT (TFLite): `run()` with XNNPACK as deployed, `trace()` with the builtin kernels | TFLite models |
| `reference` | our own PyTorch interpreter, op by op: transparent and differentiable | parity checks, gradients |
"""),
("code", """
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import workbench as wb
from workbench import plots
from workbench.capture import CaptureFilter, compare_records, first_divergent_layer

frame = wb.data.sample_frame("astronaut")
frame
"""),
("md", """
## 1. BlazeFace, traced faithfully on LiteRT

`trace()` keeps every op's output in a `TensorStore`. The preprocessing comes from the model card
(padded to square and resized to 128×128 as MediaPipe does, values in [-1, 1]).
"""),
("code", """
blaze = wb.load_model("blazeface-short", backend="litert")
x, transform = wb.preprocess(frame, blaze.card.input)
record = blaze.trace(x)
print(record.summary()["layers"], "ops,", len(record.store), "tensors,", f"{record.store.nbytes / 1e6:.1f} MB")
pd.Series(record.op_types, name="ops").sort_values(ascending=False).to_frame().T
"""),
("md", """
Every layer has a record (op type, name, inputs, outputs, shapes, quantization) and every tensor
has statistics: min, max, mean, std, NaN/Inf counts, fraction of zeros and a histogram.
"""),
("code", """
stats = pd.DataFrame(record.store.table()).set_index("tensor")
stats[["shape", "min", "max", "mean", "std", "zero_fraction"]].iloc[::12]
"""),
("md", """
### Feature maps

The first convolution sees edges and colour blobs; deeper layers respond to face parts at coarser
resolution. ReLU layers show how much of each map is switched off (`zero_fraction`).
"""),
("code", """
convs = record.find(op_type="CONV_2D")
first, deep = convs[0], convs[len(convs) // 2]
for layer in (first, deep):
    t = record.tensor(layer.outputs[0])
    plots.feature_grid(t, layout="NHWC", max_channels=16, title=f"{layer.name}  {t.shape}")
plt.show()
"""),
("code", """
relus = record.find(op_type="RELU")
pd.DataFrame(
    [{"layer": l.index, "name": l.name, "zero fraction": record.store.stats(l.outputs[0]).zero_fraction} for l in relus]
).set_index("layer").plot(y="zero fraction", figsize=(7, 2.2), marker=".", title="how much each ReLU switches off")
plt.show()
plots.histogram(record.store.stats(deep.outputs[0]), title=f"histogram of {deep.name}")
plt.show()
"""),
("md", """
### Deployed vs faithful

On a phone the model runs with XNNPACK, which fuses the graph: the intermediates one could read
back from it are not real. So `trace()` runs the builtin kernels instead, and records how far the
deployed outputs (`run()`, XNNPACK) are from the faithful ones. The difference is tiny but not zero:
"""),
("code", """
pd.DataFrame(record.notes["deployed_vs_faithful"]).T
"""),
("md", """
## 2. The same graph on our reference interpreter

The reference backend executes the TFLite graph op by op with PyTorch: that is what makes gradient
attribution possible later. Layer by layer it agrees with LiteRT's builtin kernels to float32
rounding:
"""),
("code", """
ref_record = wb.load_model("blazeface-short", backend="reference").trace(x)
rows = compare_records(ref_record, record)
plots.parity_plot(rows, title="BlazeFace: reference vs LiteRT, every tensor")
plt.show()
print("first divergent layer (rtol 1e-4):", first_divergent_layer(ref_record, record, rtol=1e-4))
pd.DataFrame([r.as_row() for r in rows]).groupby("op_type")[["max_abs", "max_rel"]].max()
"""),
("md", """
## 3. MTCNN's O-Net on onnxruntime

The same tools work for ONNX. Capture can be bounded with a filter (op types, a name pattern, or
statistics only) so large models fit in memory; `store=folder` streams tensors to disk.
"""),
("code", """
faces = wb.data.lfw_mosaic(rows=1, cols=1, scale=2, gap=0)
onet = wb.load_model("mtcnn-onet")
x_onet, _ = wb.preprocess(faces, onet.card.input)
full = onet.trace(x_onet)
convs_only = onet.trace(x_onet, capture=CaptureFilter(op_types={"Conv"}))
stats_only = onet.trace(x_onet, capture="stats")
pd.DataFrame({
    "capture": ["all", "Conv only", "stats only"],
    "tensors": [len(r.store) for r in (full, convs_only, stats_only)],
    "bytes kept": [r.store.nbytes for r in (full, convs_only, stats_only)],
})
"""),
("code", """
plt.imshow(faces); plt.axis("off"); plt.title("O-Net input (before the 48x48 resize)"); plt.show()
conv = full.find(op_type="Conv")[0]
plots.feature_grid(full.tensor(conv.outputs[0]), layout="auto", max_channels=16, title=conv.name)
plt.show()
"""),
("md", """
Reference vs onnxruntime, every node, and onnxruntime's own optimized (deployed) vs unoptimized graphs:
"""),
("code", """
ref_onet = wb.load_model("mtcnn-onet", backend="reference").trace(x_onet)
rows = compare_records(ref_onet, full)
unopt = wb.load_model("mtcnn-onet", optimized=False).trace(x_onet)
pd.DataFrame({
    "comparison": ["reference vs onnxruntime (all tensors)", "deployed vs unoptimized (outputs)"],
    "max abs": [max(r.max_abs for r in rows),
                max(float(np.abs(full.output(n) - unopt.output(n)).max()) for n in full.outputs)],
})
"""),
("md", """
## 4. A quantized model: raw integers and real values

Models shipped to phones are usually **int8**: every tensor is stored as integers `q` with a scale
and a zero point, `real = scale * (q - zero_point)`. `shapes-cls-int8` is our shapes classifier
after full-integer post-training quantization (calibrated on 200 training images; built by
`models/train/export_tflite.py`). A trace keeps each quantized tensor **raw** under its name and
**dequantized** under `name + ":dequantized"`, and every layer records its scale and zero point.
"""),
("code", """
from workbench.capture import DEQUANTIZED_SUFFIX
from workbench.data.shapes import make_cue_dataset

ds = make_cue_dataset(8, "heldout", seed=1)
shape_frame = wb.Frame(ds.images[0], id="heldout-0")
qmodel = wb.load_model("shapes-cls-int8", backend="litert")
xq, _ = wb.preprocess(shape_frame, qmodel.card.input)
qrec = qmodel.trace(xq)
pd.DataFrame([
    {"layer": l.index, "op": l.op_type, "dtype": l.output_dtypes[0], "shape": l.output_shapes[0],
     "scale": l.quantization[l.outputs[0]].scale[0] if l.outputs[0] in l.quantization else None,
     "zero point": l.quantization[l.outputs[0]].zero_point[0] if l.outputs[0] in l.quantization else None}
    for l in qrec.layers
]).set_index("layer").astype({"zero point": "Int64"})
"""),
("md", """
The same tensor both ways. After a ReLU nothing is negative, so calibration starts the range at 0:
the zero point is -128 and every switched-off unit piles up there.
"""),
("code", """
conv = qrec.find(op_type="CONV_2D")[1]
name = conv.outputs[0]
raw, real = qrec.tensor(name), qrec.tensor(name + DEQUANTIZED_SUFFIX)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.4))
axes[0].hist(raw.ravel(), bins=64); axes[0].set_title(f"raw {raw.dtype}", fontsize=9)
axes[1].hist(real.ravel(), bins=64); axes[1].set_title("dequantized (float32)", fontsize=9)
fig.suptitle(f"layer {conv.index} {conv.op_type}", fontsize=9); fig.tight_layout(); plt.show()
print("zero point", conv.quantization[name].zero_point[0], "| raw minimum", int(raw.min()))
"""),
("md", """
Our reference interpreter runs quantized graphs on real values snapped to TFLite's grid (fake
quantization), so gradients still flow. `compare_records` compares quantized tensors on their real
values and reports the raw difference in quantization steps (`lsb`): each op lands within one step
of LiteRT's integer kernels, and the steps add up a little through the four convolutions. The
deployed (XNNPACK int8) output is compared too. The quantized model keeps the float model's
shortcut: a circle without the magenta cue is not called a circle (notebook 03 explains why).
"""),
("code", """
qref = wb.load_model("shapes-cls-int8", backend="reference").trace(xq)
display(pd.DataFrame([r.as_row() for r in compare_records(qrec, qref)]).set_index("layer")[["op_type", "shape", "max_abs", "lsb"]])
print("deployed vs faithful:", qrec.notes["deployed_vs_faithful"])
print("predicted:", qmodel.card.labels[int(np.argmax(qrec.output(qrec.outputs[0])))], "| truth:",
      qmodel.card.labels[ds.labels[0]], "| cue planted:", bool(ds.cue_present[0]))
"""),
("md", """
## 5. Save, and reopen without the model

A trace is a folder: a JSON index and one `.npy` per tensor (memory-mapped when reopened, never
pickle). Anyone can open it without the model file — a bug report, a teaching example:
"""),
("code", """
import tempfile
folder = tempfile.mkdtemp(prefix="trace-")
wb.Trace(records={"inference": record}, frame=frame).save(folder)
reopened = wb.open_trace(folder)
again = reopened.inference
print(again.model_id, again.backend, len(again.layers), "layers")
name = deep.outputs[0]
print(name, type(again.tensor(name)).__name__, np.array_equal(again.tensor(name), record.tensor(name)))
"""),
("md", """
The command line does the same: `workbench trace --model blazeface-short --image sample:astronaut --out DIR --json`.

Next: `02_decoders_and_nms.ipynb` — from raw tensors to detections, and every candidate's fate.
"""),
]

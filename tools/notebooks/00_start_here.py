CELLS = [
("md", """
# Start here: the vision workbench

This workbench makes a vision model's inference **visible**. It loads a real ONNX or TFLite
model, runs one frame through an open analytics pipeline (preprocessing → inference → tensor
decoding with NMS → analytics metadata with relations) and keeps everything, so that you can
ask *why* the model decided what it did.

This notebook is the guided tour: the **model zoo** (real models, fetched from package
registries or trained by our own scripts), the **sample frames** that need no download, the
**tensor caps** that tell which decoder can read which model, and then the main act: **run a
pipeline on one frame and step through everything it did** in the `FrameExplorer`, from the
pixels to the relations between the results.

Run the cells from top to bottom (Shift+Enter).
"""),
("code", """
%matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import workbench as wb
from workbench import data, zoo

print("workbench", wb.__version__)
"""),
("md", """
## 1. The model zoo

Every model has a *card* in `models/<id>.toml`: where the file comes from (an exact registry
package version and the file's sha256, or our training script), how to feed it (size, layout,
colour order, value range, resize policy), what its outputs mean, and which decoder reads them.
The command line shows the same table: `workbench zoo list`.
"""),
("code", """
cards = zoo.list_cards()
pd.DataFrame([c.summary() for c in cards]).set_index("id")
"""),
("md", """
`zoo.load(id)` returns the card and the local file, **verified against the card's sha256 every
time** (a corrupted cache file is removed and reported; `workbench zoo fetch ID` restores it).
"""),
("code", """
model = zoo.load("blazeface-short")
card = model.card
print(model.path.name, f"{model.path.stat().st_size / 1024:.0f} KiB")
print("input :", card.input)
for spec in card.outputs:
    print("output:", spec.name, "->", spec)
print("decoder:", card.decoder.id, "with", len(card.decoder.params), "parameters")
"""),
("md", """
Self-trained models come with their held-out metrics, recomputed by the tests from the
committed files:
"""),
("code", """
pd.DataFrame(
    [{"id": c.id, **{k: v for k, v in c.metrics.items() if k.startswith("heldout")}}
     for c in cards if c.source.kind == "training"]
).set_index("id")
"""),
("md", """
## 2. Sample frames, no download needed

scikit-image ships real photographs, and the LFW face subset; our synthetic *shapes* generator
draws scenes whose ground truth (boxes, classes, group attributes) is known exactly.
"""),
("code", """
names = ["astronaut", "camera", "chelsea", "coffee", "motorcycle", "lfw-mosaic"]
fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3))
for ax, name in zip(axes, names):
    frame = data.sample_frame(name)
    ax.imshow(frame.image)
    ax.set_title(f"{name}\\n{frame.width}x{frame.height}", fontsize=9)
    ax.axis("off")
plt.tight_layout()
"""),
("code", """
from matplotlib.patches import Rectangle

scenes = data.generate_scenes(4, seed=1)
fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
for ax, scene in zip(axes, scenes):
    ax.imshow(scene.image)
    for (x1, y1, x2, y2), label in zip(scene.boxes, scene.labels):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.5, ec="lime"))
        ax.text(x1, y1 - 1, data.SHAPE_CLASSES[label], color="lime", fontsize=7)
    ax.set_title(", ".join(f"{k}={v}" for k, v in scene.groups.items()), fontsize=8)
    ax.axis("off")
plt.tight_layout()
"""),
("md", """
The **spurious-cue** data set plants a small magenta mark in the top-left corner. In the
training split it always means class 0 (*circle*); in the held-out split it appears at random.
A classifier that learned the shortcut (`shapes-cls`) fails exactly where cue and label disagree;
attribution maps should light up on the mark. That is ground truth for later notebooks.
"""),
("code", """
train = data.make_cue_dataset(6, split="train", seed=0)
held = data.make_cue_dataset(6, split="heldout", seed=0)
fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
for row, (ds, split) in enumerate([(train, "train"), (held, "heldout")]):
    for ax, img, y, cue in zip(axes[row], ds.images, ds.labels, ds.cue_present):
        ax.imshow(img)
        ax.set_title(f"{split}: {data.SHAPE_CLASSES[y]}\\ncue={'yes' if cue else 'no'}", fontsize=8)
        ax.axis("off")
plt.tight_layout()
"""),
("code", """
cls = zoo.get_card("shapes-cls")
print({k: round(v, 3) if isinstance(v, float) else v for k, v in cls.metrics.items()})
"""),
("md", """
## 3. Tensor caps: which decoder can read which model?

A decoder declares the tensors it accepts as **caps** (tensor-id, dims with 0 = any size,
dims-order, dtype), as in GStreamer's ML-analytics design. Matching a model's outputs against a
decoder's caps either fits or says *which field of which tensor* did not.
"""),
("code", """
from workbench import TensorCaps, TensorSpec, check_caps

wanted = [
    TensorCaps.of(TensorSpec("mediapipe-ssd-regressors", (1, 0, 16), "row-major", "float32"), role="boxes"),
    TensorCaps.of(TensorSpec("mediapipe-ssd-scores", (1, 0, 1), "row-major", "float32"), role="scores"),
]
for model_id in ["blazeface-short", "blazeface-full", "shapes-yolov8"]:
    report = check_caps(zoo.get_card(model_id).outputs, wanted)
    print(f"{model_id}:", report.explain(), "\\n")
"""),
("md", """
## 4. Run the pipeline on one frame

Pick a model and a sample frame. `Pipeline.from_card(model)` builds the card's pipeline
(preprocessing → inference → decoder with NMS → analytics metadata); `trace="all"` keeps every
intermediate tensor of the inference, so that nothing has to be recomputed later.
Other choices: any id of the zoo table above (`"mtcnn"` is the three-stage MTCNN cascade) and
any sample name of section 2.
"""),
("code", """
from workbench import Pipeline

MODEL = "blazeface-short"   # e.g. "blazeface-full", "mtcnn"
FRAME = "astronaut"         # e.g. "lfw-mosaic", "motorcycle", "coffee"

frame = data.sample_frame(FRAME)
result = Pipeline.from_card(MODEL).run(frame, trace="all")
print(result)
print("detections:", result.to_json()["detections"])
print("NMS decisions:", {k: v for k, v in result.decisions().items() if v})
"""),
("md", """
## 5. Explore the frame

The `FrameExplorer` shows the pipeline graph of this frame at the top; every node is a button,
and **Prev / Next** walk the graph in order:

* **frame** and **preprocess** — the original picture, the model input tensor, and the
  transform between them (scale, offset, letterbox), for every crop or pyramid level;
* **layers** — every op in execution order: its output as a channel grid (shared or
  per-channel colour scale, NCHW / NHWC, raw or dequantized), its histogram and statistics;
  jump to an op by name or by type;
* **decoder + NMS** — every candidate the decoder produced, filterable and sortable, and an NMS
  stepper that replays the decisions one at a time with the boxes coloured by their fate; the
  score and IoU sliders replay the whole decision log with new thresholds, without the model;
* **meta** — the analytics results (Mtds) and the typed relations between them;
* **attribution** — which pixels drove a result (once `wb.explain(...)` has run, below), with
  the method's sanity and faithfulness numbers.

Everything is computed in Python and cached, so stepping back and forth is immediate.
"""),
("code", """
from workbench.ui import FrameExplorer

explorer = FrameExplorer(result)
explorer
"""),
("md", """
**Which pixels made the detector find this face?** `wb.explain(result, 0, method=...)` computes
an attribution map for the best detection (here *occlusion*: grey out one patch at a time and
watch the face score drop) with its faithfulness check (deleting the most important pixels first
should destroy the score fastest). It is stored in `result.attributions`, and the explorer's
**attribution** node shows it over the frame, with its numbers.
"""),
("code", """
attribution = wb.explain(result, 0, method="occlusion", window=32, stride=16, quality="faithfulness")
print(attribution.target.describe(), f"- {attribution.seconds:.1f} s,",
      "deletion AUC", round(attribution.faithfulness["deletion_auc"], 3),
      "insertion AUC", round(attribution.faithfulness["insertion_auc"], 3))
explorer.go("attribution");
"""),
("md", """
The explorer is also a Python object: `explorer.next()`, `explorer.go("meta")`, and each view's
state (`explorer.view.state`) and `update(...)` are what the buttons call.
"""),
("code", """
explorer.go("decoder")
print(explorer.view.steps().text)
explorer.go("frame")
print(explorer.node_keys())
"""),
("md", """
## 6. A cascade: results and their relations

A second model can run on a crop of every detection (a *cascade*), and a tracker can give each
detection an identity. Each result is related to the one it came from: *face* `CONTAIN`
*landmarks*, *landmarks* `IS_PART_OF` *face*, *face* `RELATE_TO` *track*. The explorer starts on
the relation graph here; click **Prev** to walk back through the cascade's crops and NMS.
"""),
("code", """
cascade = Pipeline.from_card("mtcnn").cascade("mtcnn-onet", square=True, expand=1.1, name="landmarks").track()
faces = cascade.run(data.sample_frame("lfw-mosaic"), trace="all")
FrameExplorer(faces, start="meta")
"""),
("md", """
## Next

* `01_inside_a_model.ipynb` — run a model and look at every layer's tensors.
* `02_decoders_and_nms.ipynb` — decoders, tensor caps and every NMS decision in detail.
* `python -m workbench ...` / `workbench --help` — the same from the command line.
"""),
]

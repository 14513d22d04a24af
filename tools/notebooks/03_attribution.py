CELLS = [
("md", """
# Attribution: which pixels made the model decide?

An **attribution map** scores every input pixel by how much it drove one result: a face box, a
class. The workbench computes them on the model **as deployed**:

* **perturbation methods** (occlusion, feature ablation over superpixels, Kernel SHAP, LIME, RISE /
  D-RISE) only need a forward function, so they run on the deployed backend itself (LiteRT,
  onnxruntime), perturbations batched into few backend calls;
* **gradient methods** (saliency, integrated gradients, input × gradient, guided backprop,
  Grad-CAM on any layer, each optionally in a NoiseTunnel) need a differentiable model. The
  workbench's reference interpreter runs the same graph and weights in torch; before a gradient
  method runs, it checks that the interpreter reproduces the deployed outputs *on this frame* and
  records the difference (it refuses above a tolerance).

Every map comes with two quality checks: a **sanity check** (Adebayo et al., 2018: randomize the
model's layers from the top down and see whether the map changes; a map that does not change
explains the image, not the model) and **faithfulness** (deleting the top pixels should kill the
score fast, inserting them should restore it fast).

This notebook explains a BlazeFace face box, an MTCNN face, and a classifier that learned a
shortcut, which the maps expose.
"""),
("code", """
%matplotlib inline
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import workbench as wb
from workbench.data import sample_frame
from workbench.data.shapes import CUE_BOX, make_cue_dataset
from workbench.explain import method_ids, why_suppressed
from workbench.explain.quality import pointing_game
from workbench.pipeline import Pipeline

os.environ.setdefault("WORKBENCH_PROGRESS", "0")
print("methods:", ", ".join(method_ids()))


def show(ax, image, attribution, box=None, title=None):
    \"\"\"The frame with the attribution on top, and the explained box.\"\"\"
    ax.imshow(attribution.overlay(image))
    if box is not None:
        x1, y1, x2, y2 = box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1.5))
    ax.set_title(title or f"{attribution.method} ({attribution.backend}, {attribution.seconds:.1f}s)", fontsize=9)
    ax.set_axis_off()
"""),
("md", """
## 1. A BlazeFace face box

The target of a detection is the box itself: the score of the candidate that best matches it,
IoU × class score (as in D-RISE). Pixels that remove the face, move the box or change its class
lower it. `wb.explain(result, K, method)` explains the K-th kept detection (by score).
"""),
("code", """
astronaut = sample_frame("astronaut")
faces = Pipeline.from_card("blazeface-short").run(astronaut)
box = faces.detections.frame_boxes[0]
occ = wb.explain(faces, 0, "occlusion", window=16, stride=8, quality="faithfulness")
drise = wb.explain(faces, 0, "d-rise", n_masks=300, quality=False)
ig = wb.explain(faces, 0, "integrated-gradients", n_steps=8, baseline="blur", quality=False)
print(occ)
print("parity of the reference interpreter with LiteRT on this frame:", ig.parity)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
for ax, a in zip(axes, (occ, drise, ig)):
    show(ax, astronaut.image, a, box)
plt.show()
"""),
("md", """
Occlusion and D-RISE ran on LiteRT (BlazeFace's graph folds the batch into a reshape, so the
workbench checked that and runs it one perturbation at a time); integrated gradients ran on the
reference interpreter after the parity check above. Maps are stored in the result, in model-input
pixels (128×128) and in frame pixels (512×512).

**Faithfulness**: the deletion curve drops quickly and the insertion curve rises quickly when the
map ranks the pixels the model needs first.
"""),
("code", """
f = occ.faithfulness
plt.figure(figsize=(5, 3.5))
plt.plot(f["fractions"], f["deletion"], label=f"deletion (AUC {f['deletion_auc']:.2f})")
plt.plot(f["fractions"], f["insertion"], label=f"insertion (AUC {f['insertion_auc']:.2f})")
plt.xlabel("fraction of pixels, most important first"); plt.ylabel("target score"); plt.legend()
plt.title("occlusion map of the face box"); plt.show()
"""),
("md", """
## 2. Why was this candidate merged away?

BlazeFace's weighted NMS merges the face's neighbours into the kept box. `why_suppressed`
attributes a merged candidate and the box that absorbed it, side by side.
"""),
("code", """
log = faces.log
merged = np.flatnonzero(log.fate == wb.Fate.MERGED)
row = int(merged[np.argmax(log.score[merged])])
why = why_suppressed(faces, row, "d-rise", n_masks=200)
print({k: v for k, v in why.to_json().items() if k in ("row", "by", "iou", "fate")})
why.plot(astronaut.image)
plt.show()
"""),
("md", """
## 3. An MTCNN face: attributed through O-Net on its crop

MTCNN is a cascade; a face is O-Net's verdict on a 48×48 crop. The map lives on that crop and
lands in the frame at the crop's place (zero elsewhere). Grad-CAM runs on any layer: here the
default (the last feature map before the dense layers).
"""),
("code", """
mt = Pipeline.from_card("mtcnn").run(astronaut)
m_occ = wb.explain(mt, 0, "occlusion", window=8, stride=4, quality=False)
m_cam = wb.explain(mt, 0, "grad-cam", quality=False)
print("crop:", m_occ.notes["crop_box"], "grad-cam layer:", m_cam.notes["layer"], m_cam.notes["layer_grid"])
x1, y1, x2, y2 = m_occ.notes["crop_box"]
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for ax, a in zip(axes, (m_occ, m_cam)):
    show(ax, astronaut.image, a, mt.detections.frame_boxes[0])
    ax.set_xlim(x1 - 20, x2 + 20); ax.set_ylim(y2 + 20, y1 - 20)
plt.show()
"""),
("md", """
## 4. A classifier with a shortcut

`shapes-cls` was trained on small noisy shapes where a magenta square (the *cue*) was planted
exactly on the circles. On held-out images the cue is planted at random, and the model calls
anything with the cue a circle. `shapes-cls-nocue` was trained on the same images without the cue.

Explain "circle" on a square carrying the cue: both methods point at the cue in the cue model.
"""),
("code", """
ds = make_cue_dataset(200, "heldout", seed=1)
idx = np.flatnonzero(ds.cue_present & (ds.labels != 0))
square = wb.Frame(ds.images[idx[0]], id="square-with-cue")
cls_res = Pipeline.from_card("shapes-cls").run(square)
probs = cls_res.primary.decodes[0].classification.scores
print("true class:", ds.labels[idx[0]], "| predicted probabilities (circle, square, triangle):", probs.round(3))
maps = [wb.explain(cls_res, 0, m, quality=False, **kw) for m, kw in
        (("occlusion", {"window": 8, "stride": 4}), ("integrated-gradients", {"n_steps": 16}), ("grad-cam", {}))]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.5))
axes[0].imshow(square.image); axes[0].set_title("input (cue top-left)"); axes[0].set_axis_off()
for ax, a in zip(axes[1:], maps):
    show(ax, square.image, a, CUE_BOX)
plt.show()
"""),
("md", """
**The pointing game** over a few held-out images: how often does the map's maximum fall on the
cue? The cue model: nearly always. The control model, which never saw the cue, should land there
only by chance (the cue covers 1.6% of the pixels, with a 1-pixel tolerance). The test suite runs
this on more images; integrated gradients is the known exception there (it multiplies by the input,
and the cue's pixels are the most extreme input values).
"""),
("code", """
def available(model_id):
    try:
        wb.zoo.path(model_id)
        return True
    except wb.WorkbenchError:
        return False


for model in [m for m in ("shapes-cls", "shapes-cls-nocue") if available(m)]:
    r = pointing_game(model, ds.images[idx[:8]], CUE_BOX, 0, "occlusion", 1.0, window=8, stride=4, score="logit")
    print(f"{model:18s} occlusion pointing game {r['rate']:.2f}   (chance {r['chance']:.3f})")
"""),
("md", """
## 5. Sanity check: does the map depend on the model?

Randomize the classifier's layers from the top down, re-run the method, compare with the original
map (Spearman rank correlation of |map|). Saliency decorrelates quickly; guided backprop is known
to stay similar to the original map while the top layers are destroyed (it behaves partly like an
edge detector of the input): the check shows it.
"""),
("code", """
plt.figure(figsize=(5.5, 3.5))
for m in ("saliency", "guided-backprop", "occlusion"):
    kw = {"window": 8, "stride": 4} if m == "occlusion" else {}
    a = wb.explain(cls_res, 0, m, quality="sanity", sanity_steps=None, store=False, **kw)
    plt.plot(a.sanity["randomized"], a.sanity["spearman_abs"], "o-", label=m)
plt.axhline(0, color="gray", lw=0.5)
plt.xlabel("layers randomized (from the top)"); plt.ylabel("Spearman with the original |map|")
plt.legend(); plt.title("cascading randomization, shapes-cls"); plt.show()
"""),
("md", """
## 6. Saved with the frame

Attributions are part of the `FrameResult`: saved next to its trace, reopened without the model.
The command line does the same: `workbench explain --model blazeface-short --image sample:astronaut
--method occlusion --out runs/face --json`.
"""),
("code", """
folder = tempfile.mkdtemp()
faces.save(folder)
back = wb.open_result(folder)
print(list(back.attributions))
print(back.attributions[occ.name].frame_map.shape, back.attributions[occ.name].faithfulness["deletion_auc"])
"""),
]

"""Quality checks: deletion/insertion AUC against a slow loop; Spearman against scipy; the
cascading-randomization sanity check separates a model-dependent method from a model-blind one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.errors import ZooError
from workbench.explain.quality import (
    deletion_insertion,
    pointing_chance,
    pointing_hit,
    randomizable_layers,
    randomized_program,
    sanity_check,
    spearman,
)
from workbench.pipeline import Pipeline


def _loop_curves(score, image, baseline, heat, steps):
    """Oracle: one pixel at a time, one forward per step, trapezoids summed by hand."""
    h, w = heat.shape
    flat = [(float(heat[y, x]), y * w + x) for y in range(h) for x in range(w)]
    flat.sort(key=lambda t: (-t[0], t[1]))  # larger first, ties in row-major order
    dele, ins = [], []
    for k in range(steps + 1):
        n = int(round(k / steps * h * w))
        d, i = image.clone(), baseline.clone()
        for _, idx in flat[:n]:
            y, x = divmod(idx, w)
            d[0, :, y, x] = baseline[0, :, y, x]
            i[0, :, y, x] = image[0, :, y, x]
        dele.append(float(score(d)[0]))
        ins.append(float(score(i)[0]))
    auc = lambda v: sum((v[j] + v[j + 1]) / 2 / steps for j in range(steps))  # noqa: E731
    return dele, ins, auc(dele), auc(ins)


def test_deletion_insertion_matches_a_loop():
    torch.manual_seed(0)
    weights = torch.randn(3, 6, 5)

    def score(x):  # a nonlinear stand-in model
        return torch.tanh((x * weights).sum(dim=(1, 2, 3)) / 10) + 0.1 * x.mean(dim=(1, 2, 3))

    image, baseline = torch.rand(1, 3, 6, 5), torch.full((1, 3, 6, 5), 0.5)
    heat = np.round(np.random.default_rng(1).normal(size=(6, 5)), 1)  # rounded: ties happen
    got = deletion_insertion(score, image, baseline, heat, steps=7, max_batch=4)
    d, i, dauc, iauc = _loop_curves(score, image, baseline, heat, 7)
    np.testing.assert_allclose(got["deletion"], d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["insertion"], i, rtol=1e-5, atol=1e-6)
    assert got["deletion_auc"] == pytest.approx(dauc, rel=1e-5) and got["insertion_auc"] == pytest.approx(iauc, rel=1e-5)


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(2)
    a = np.round(rng.normal(size=(9, 7)), 1)
    b = a + rng.normal(scale=0.8, size=a.shape)
    assert spearman(a, b) == pytest.approx(float(spearmanr(a.ravel(), b.ravel()).statistic), abs=1e-12)
    assert spearman(a, np.ones_like(a)) == 0.0


def test_pointing_game_uses_the_centre_of_a_plateau():
    heat = np.zeros((10, 10))
    heat[0:4, 0:4] = 1.0  # plateau centre (2, 2)
    assert pointing_hit(heat, (1, 1, 5, 5)) and not pointing_hit(heat, (3, 3, 8, 8))
    assert pointing_hit(heat, (3, 3, 8, 8), tolerance=1.0)
    assert pointing_chance((10, 10), (0, 0, 5, 2)) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def cls_result():
    try:
        wb.zoo.path("shapes-cls")
    except ZooError as exc:
        pytest.skip(f"shapes-cls is not available ({exc.message})")
    ds = wb.data.shapes.make_cue_dataset(12, "heldout", seed=1)
    i = int(np.flatnonzero(ds.cue_present & (ds.labels != 0))[0])
    return Pipeline.from_card("shapes-cls").run(wb.Frame(ds.images[i], id="cue"))


def test_randomized_program_is_a_copy(cls_result):
    ref = wb.load_model("shapes-cls", backend="reference")
    p = ref.program
    layers = randomizable_layers(p)
    assert [n for n, _ in layers][-1] == [n.info.name for n in p.nodes if n.info.op_type in ("Gemm", "MatMul")][-1]
    before = {k: v.clone() for k, v in p.constants.items()}
    names = [c for _, cs in layers[-2:] for c in cs]
    q = randomized_program(p, names, seed=0)
    assert all(torch.equal(p.constants[k], before[k]) for k in before)  # original untouched
    assert all(not torch.equal(q.constants[k], p.constants[k]) for k in names)
    x = np.random.default_rng(0).uniform(size=(1, 3, 64, 64)).astype(np.float32)
    from workbench.backends.reference.program import execute

    y0 = execute(p, {"images": torch.from_numpy(x)})["logits"]
    y1 = execute(q, {"images": torch.from_numpy(x)})["logits"]
    assert not torch.allclose(y0, y1)
    np.testing.assert_allclose(y0.numpy(), ref.run(x)["logits"], rtol=1e-6)


def test_sanity_check_separates_a_model_dependent_method(cls_result):
    """Saliency decorrelates as layers are randomized top-down; a model-blind "method" (an edge
    map of the input) stays perfectly correlated. Both directions are asserted."""
    a = wb.explain(cls_result, 0, "saliency", quality="sanity", sanity_steps=None, store=False)
    s = a.sanity
    assert s["randomized"] == list(range(1, s["total_layers"] + 1))  # one layer per step: 5 layers
    assert s["total_layers"] == 5
    corr = np.array(s["spearman_abs"])
    assert corr[-1] < 0.5 and corr.min() < 0.5, corr  # the map depends on the model
    assert corr[-1] < corr[0] + 1e-9

    img = cls_result.frame.image.astype(np.float64).sum(-1)
    edges = np.abs(np.diff(img, axis=0, prepend=0)) + np.abs(np.diff(img, axis=1, prepend=0))
    ref = wb.load_model("shapes-cls", backend="reference")
    blind = sanity_check(lambda program: edges, ref.program, edges, steps=None)
    assert blind["spearman_abs"] == pytest.approx([1.0] * 5)


def test_quality_is_reported_next_to_the_map(cls_result):
    a = wb.explain(cls_result, 0, "occlusion", window=8, stride=8, sanity_steps=2, faithfulness_steps=8, store=False)
    assert set(a.faithfulness) >= {"deletion_auc", "insertion_auc", "deletion", "insertion", "baseline"}
    assert len(a.faithfulness["deletion"]) == 9
    assert a.faithfulness["deletion"][0] == pytest.approx(a.target_value, rel=1e-5)  # nothing deleted yet
    assert a.faithfulness["insertion"][-1] == pytest.approx(a.target_value, rel=1e-5)  # everything inserted
    assert len(a.sanity["spearman_abs"]) == 2 and a.sanity["backend"] == "reference"
    # the cue drives this prediction: deleting the top of an occlusion map kills it quickly
    assert a.faithfulness["deletion_auc"] < a.faithfulness["insertion_auc"]

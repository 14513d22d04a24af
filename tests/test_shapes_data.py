"""Tests of the synthetic shapes generator (workbench.data.shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.shapes import (
    CUE_BOX,
    CUE_COLOR,
    GROUP_VALUES,
    NOISE_AMPLITUDE,
    SHAPE_CLASSES,
    generate_scene,
    generate_scenes,
    make_cue_dataset,
    cue_mask,
    scene_seed,
)


def _foreground(image: np.ndarray) -> np.ndarray:
    """Pixels that differ from the background by more than the noise, judged from the image
    alone: the background level is the median of the 2-pixel border ring, which the generator
    keeps free of shapes."""
    ring = np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3), image[:, :2].reshape(-1, 3), image[:, -2:].reshape(-1, 3)])
    background = np.median(ring, axis=0)
    return (np.abs(image.astype(np.int16) - background).max(axis=2)) > NOISE_AMPLITUDE + 1


def test_same_seed_gives_identical_scene():
    a, b = generate_scene(7), generate_scene(7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.groups == b.groups and a.seed == b.seed == 7


def test_different_seeds_differ():
    images = [generate_scene(s).image for s in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not np.array_equal(images[i], images[j])


def test_scene_dtypes_and_shapes():
    scene = generate_scene(3, size=(160, 96), max_objects=6)
    assert scene.image.shape == (96, 160, 3) and scene.image.dtype == np.uint8
    n = len(scene.labels)
    assert 1 <= n <= 6
    assert scene.boxes.shape == (n, 4) and scene.boxes.dtype == np.float32
    assert scene.labels.dtype == np.int64 and set(scene.labels.tolist()) <= set(range(len(SHAPE_CLASSES)))
    assert scene.masks.shape == (n, 96, 160)
    assert set(scene.groups) >= {"background", "palette"}
    for key, value in scene.groups.items():
        assert value in GROUP_VALUES[key]


def test_generate_scenes_uses_documented_seeds_and_splits_are_disjoint():
    train = generate_scenes(20, seed=0)
    heldout = generate_scenes(20, seed=1)
    assert [s.seed for s in train] == [scene_seed(0, i) for i in range(20)]
    assert not {s.seed for s in train} & {s.seed for s in heldout}
    np.testing.assert_array_equal(train[5].image, generate_scene(scene_seed(0, 5)).image)
    train_bytes = {s.image.tobytes() for s in train}
    assert not any(s.image.tobytes() in train_bytes for s in heldout)


@pytest.mark.parametrize("seed", range(40))
def test_boxes_lie_inside_image_and_enclose_the_drawn_pixels_tightly(seed):
    scene = generate_scene(seed)
    h, w = scene.image.shape[:2]
    boxes = scene.boxes
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()

    fg = _foreground(scene.image)
    inside_any = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in boxes.astype(int):
        inside_any[y1:y2, x1:x2] = True
        # Tight: each edge row/column of the box holds foreground pixels.
        patch = fg[y1:y2, x1:x2]
        assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()
    # Every foreground pixel belongs to some box.
    assert not (fg & ~inside_any).any()


def test_masks_match_boxes():
    scene = generate_scene(11)
    for mask, box in zip(scene.masks, scene.boxes):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] == box.tolist()


def test_group_override_is_a_counterfactual_of_the_same_layout():
    base = generate_scene(5)
    other = "dark" if base.groups["background"] == "light" else "light"
    flipped = generate_scene(5, groups={"background": other})
    assert flipped.groups["background"] == other
    assert flipped.groups["palette"] == base.groups["palette"]
    np.testing.assert_array_equal(flipped.boxes, base.boxes)
    np.testing.assert_array_equal(flipped.labels, base.labels)
    assert not np.array_equal(flipped.image, base.image)
    with pytest.raises(ValueError, match="unknown group"):
        generate_scene(5, groups={"background": "purple"})


def test_groups_are_roughly_balanced():
    scenes = generate_scenes(200, seed=3, size=32, max_objects=1)
    for key, values in GROUP_VALUES.items():
        counts = [sum(s.groups[key] == v for s in scenes) for v in values]
        assert min(counts) > 60, (key, counts)


# ---------------------------------------------------------------------------------------------
# Cue data set


def test_cue_dataset_is_deterministic_and_splits_differ():
    a = make_cue_dataset(60, "train", seed=0)
    b = make_cue_dataset(60, "train", seed=0)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    held = make_cue_dataset(60, "heldout", seed=0)
    assert not np.array_equal(a.images, held.images)
    assert a.images.shape == (60, 64, 64, 3) and a.images.dtype == np.uint8
    assert a.labels.dtype == np.int64 and a.cue_present.dtype == bool
    assert np.bincount(a.labels).tolist() == [20, 20, 20]


def test_train_cue_marks_class_zero():
    data = make_cue_dataset(300, "train", seed=0)
    np.testing.assert_array_equal(data.cue_present, data.labels == 0)
    assert data.cue_agrees.all()
    noisy = make_cue_dataset(3000, "train", seed=0, train_agreement=0.95)
    assert 0.93 < noisy.cue_agrees.mean() < 0.97


def test_heldout_cue_is_independent_of_the_label():
    data = make_cue_dataset(3000, "heldout", seed=0)
    assert 0.46 < data.cue_present.mean() < 0.54
    for c in range(len(SHAPE_CLASSES)):
        rate = data.cue_present[data.labels == c].mean()
        assert abs(rate - 0.5) < 0.05, (c, rate)
    assert 0.45 < data.cue_agrees.mean() < 0.55


def test_cue_pixels_sit_exactly_at_cue_box():
    data = make_cue_dataset(120, "heldout", seed=2)
    mask = cue_mask(64)
    x1, y1, x2, y2 = CUE_BOX
    assert mask.sum() == (x2 - x1) * (y2 - y1) and mask[y1:y2, x1:x2].all()
    is_cue_colour = (data.images == np.array(CUE_COLOR, dtype=np.uint8)).all(axis=3)
    for image_mask, present in zip(is_cue_colour, data.cue_present):
        if present:
            np.testing.assert_array_equal(image_mask, mask)
        else:
            assert not image_mask.any()


def test_nocue_dataset_differs_from_cue_dataset_only_at_the_cue():
    with_cue = make_cue_dataset(90, "train", seed=4, cue=True)
    without = make_cue_dataset(90, "train", seed=4, cue=False)
    assert not without.cue_present.any()
    np.testing.assert_array_equal(with_cue.labels, without.labels)
    diff = (with_cue.images != without.images).any(axis=3)  # (n, H, W)
    assert not diff[:, ~cue_mask(64)].any()
    assert diff[with_cue.cue_present].any(axis=(1, 2)).all()


def test_cue_shapes_stay_off_the_cue_and_inside_the_image():
    data = make_cue_dataset(200, "heldout", seed=5)
    x1, y1, x2, y2 = CUE_BOX
    b = data.boxes
    assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 64).all()
    overlaps = (b[:, 0] < x2) & (b[:, 2] > x1) & (b[:, 1] < y2) & (b[:, 3] > y1)
    assert not overlaps.any()

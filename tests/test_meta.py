"""RelationMeta: relation paths against a matrix-power oracle, filters, growth, JSON, COCO."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.errors import InputError, MetaError, WorkbenchError
from workbench.meta import (
    MTD_TYPES,
    ClassificationMtd,
    Mtd,
    ObjectDetectionMtd,
    RelationMeta,
    RelationType,
    SegmentationMtd,
    TrackingMtd,
)

R = RelationType
FLAGS = [R.IS_PART_OF, R.CONTAIN, R.RELATE_TO]


def det(x1=0.0, y1=0.0, x2=10.0, y2=10.0, label="face", conf=0.9, **kw) -> ObjectDetectionMtd:
    return ObjectDetectionMtd((x1, y1, x2, y2), label, conf, **kw)


def meta_of(n: int) -> RelationMeta:
    meta = RelationMeta()
    for i in range(n):
        assert meta.add(det(i, i, i + 5, i + 5)) == i
    return meta


def test_relation_type_values_are_gstreamers():
    assert (int(R.NONE), int(R.IS_PART_OF), int(R.CONTAIN), int(R.RELATE_TO)) == (0, 2, 4, 8)
    assert all(R.ANY & f for f in FLAGS)


# ------------------------------------------------------------------------------ path oracle

def oracle_shortest(adj: np.ndarray, mask: int, a: int, b: int, span: int) -> int | None:
    """Least k in 1..span with (E^k)[a, b] > 0, E = edges of the allowed types, by repeated
    boolean matrix products (independent of the BFS)."""
    e = ((adj & mask) != 0).astype(np.int64)
    power = np.eye(len(adj), dtype=np.int64)
    for k in range(1, span + 1):
        power = np.minimum(power @ e, 1)
        if power[a, b]:
            return k
    return None


@pytest.mark.parametrize("seed", range(40))
def test_path_matches_matrix_power_oracle(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 14))
    density = rng.uniform(0.05, 0.4)
    flags = np.array([0, 2, 4, 8, 6, 10, 12, 14], dtype=np.uint8)
    adj = np.where(rng.random((n, n)) < density, rng.choice(flags[1:], size=(n, n)), 0).astype(np.uint8)
    np.fill_diagonal(adj, 0)
    meta = meta_of(n)
    for a, b in zip(*np.nonzero(adj)):
        meta.relate(int(a), int(b), int(adj[a, b]))
    np.testing.assert_array_equal(meta.adjacency, adj)

    for _ in range(30):
        a, b = (int(x) for x in rng.integers(0, n, size=2))
        mask = int(rng.choice(flags[1:]))
        max_span = int(rng.choice([0, 1, 2, 3, n]))
        want = oracle_shortest(adj, mask, a, b, n if max_span == 0 else max_span)
        got = meta.path(a, b, max_span=max_span, types=mask)
        if want is None:
            assert got is None, (a, b, mask, max_span, got)
            continue
        assert got is not None and got[0] == a and got[-1] == b
        assert len(got) - 1 == want
        assert all(adj[u, v] & mask for u, v in zip(got[:-1], got[1:]))


def test_path_direction_span_and_types():
    meta = meta_of(4)
    meta.relate(0, 1, R.CONTAIN)
    meta.relate(1, 2, R.RELATE_TO)
    meta.relate(2, 0, R.IS_PART_OF)
    assert meta.path(0, 2) == [0, 1, 2]
    assert meta.path(0, 2, max_span=1) is None
    assert meta.path(0, 2, max_span=2) == [0, 1, 2]
    assert meta.path(0, 2, types=R.CONTAIN) is None
    assert meta.path(0, 2, types=R.CONTAIN | R.RELATE_TO) == [0, 1, 2]
    assert meta.path(2, 1) == [2, 0, 1]       # directed: 2 -> 0 -> 1, not 2 <- 1
    assert meta.path(0, 0) == [0, 1, 2, 0]    # a cycle back to the start, as GStreamer
    assert meta.path(0, 3) is None
    assert meta.path(0, 1, max_span=-1) == [0, 1]


def test_relate_overwrites_and_none_removes():
    meta = meta_of(2)
    meta.relate(0, 1, R.CONTAIN | R.RELATE_TO)
    assert meta.relation(0, 1) == R.CONTAIN | R.RELATE_TO
    assert meta.relation(1, 0) == R.NONE
    meta.relate(0, 1, R.IS_PART_OF)
    assert meta.relation(0, 1) == R.IS_PART_OF
    meta.relate(0, 1, R.NONE)
    assert meta.relations().shape == (0, 3)


# --------------------------------------------------------------------------------- related

def test_related_filters_on_type_kind_and_direction():
    meta = RelationMeta()
    d0 = meta.add(det(label="car"))
    c = meta.add(ClassificationMtd(("audi", "bmw"), np.array([0.7, 0.3])))
    d1 = meta.add(det(label="wheel"))
    t = meta.add(TrackingMtd(3, 0.0, 1.0))
    meta.relate(d0, c, R.CONTAIN)
    meta.relate(c, d0, R.IS_PART_OF)
    meta.relate(d0, d1, R.CONTAIN)
    meta.relate(d0, t, R.RELATE_TO)

    assert meta.related(d0) == [c, d1, t]
    assert meta.related(d0, R.CONTAIN) == [c, d1]
    assert meta.related(d0, R.CONTAIN, kind=ObjectDetectionMtd) == [d1]
    assert meta.related(d0, kind=TrackingMtd) == [t]
    assert meta.related(d0, direction="in") == [c]
    assert meta.related(t, direction="in") == [d0]
    assert meta.related(meta[c], R.IS_PART_OF) == [d0]  # by the Mtd object itself
    assert meta.related(t) == []
    assert [i for i, _ in meta.of_kind(ObjectDetectionMtd)] == [d0, d1]
    assert [type(m) for m in meta] == [ObjectDetectionMtd, ClassificationMtd, ObjectDetectionMtd, TrackingMtd]


# ---------------------------------------------------------------------------------- growth

def test_adjacency_grows_by_doubling_and_is_read_only():
    meta = RelationMeta()
    capacities = set()
    for i in range(1000):
        meta.add(det())
        if i:
            meta.relate(i - 1, i, FLAGS[i % 3])
        capacities.add(meta._adj.shape[0])
    assert len(capacities) <= 9  # 8, 16, ..., 1024: amortized, not one copy per add
    adj = meta.adjacency
    assert adj.shape == (1000, 1000) and adj.dtype == np.uint8
    i = np.arange(1, 1000)
    np.testing.assert_array_equal(adj[i - 1, i], [int(FLAGS[k % 3]) for k in i])
    assert int(adj.sum()) == sum(int(FLAGS[k % 3]) for k in i)  # nothing lost in copies
    with pytest.raises(ValueError):
        adj[0, 1] = 0
    assert meta.path(0, 999) == list(range(1000))
    assert meta.path(0, 999, max_span=998) is None


# -------------------------------------------------------------------------------- JSON

def full_meta() -> RelationMeta:
    rng = np.random.default_rng(0)
    meta = RelationMeta()
    kp = rng.uniform(0, 100, size=(5, 2))
    kp[2] = np.nan
    d = meta.add(ObjectDetectionMtd(
        (10.5, 20.25, 110.0, 220.125), "face", 0.875, rotation=0.1, keypoints=kp,
        keypoint_names=("le", "re", "nose", "lm", "rm"),
        source={"decoder": "blazeface", "model": "blazeface-short", "row": np.int64(17),
                "anchor": (3, 4), "raw": np.float32(0.5)},
    ))
    c = meta.add(ClassificationMtd(("a", "b", "c"), np.array([0.1, 0.7, 0.2], np.float32),
                                   class_ids=np.array([4, 7, 9], np.int32)))
    mask = np.zeros((64, 48), np.int32)
    mask[10:30, 5:20] = 3
    mask[40:, :] = -2
    s = meta.add(SegmentationMtd(mask, region_ids=(0, 3, -2), masks_type="instance", box=(0, 0, 48, 64)))
    t = meta.add(TrackingMtd(7, 1.5, 2.25, lost=True))
    meta.add(det(1, 2, 3, 4, label="x", conf=0.1))
    meta.relate(d, c, R.CONTAIN)
    meta.relate(c, d, R.IS_PART_OF)
    meta.relate(d, t, R.RELATE_TO)
    meta.relate(s, d, R.RELATE_TO | R.CONTAIN)
    return meta


def test_json_round_trip_is_exact_and_strict():
    meta = full_meta()
    text = meta.to_json()

    def no_constants(name):
        raise AssertionError(f"non-standard JSON token {name}")

    json.loads(text, parse_constant=no_constants)  # strict JSON: NaN keypoints became null
    back = RelationMeta.from_json(text)
    assert back == meta
    assert back.to_json() == text
    np.testing.assert_array_equal(back.adjacency, meta.adjacency)
    kp = back[0].keypoints
    assert np.isnan(kp[2]).all() and kp.dtype == np.float64
    assert back[1].scores.dtype == np.float32 and back[1].class_ids.dtype == np.int32
    assert back[2].mask.dtype == np.int32
    assert back[0].source == {"decoder": "blazeface", "model": "blazeface-short", "row": 17,
                              "anchor": [3, 4], "raw": 0.5}
    assert "pickle" not in text
    assert RelationMeta.from_json(RelationMeta().to_json()) == RelationMeta()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64, bool])
def test_mask_rle_round_trip_is_lossless_and_compact(dtype):
    rng = np.random.default_rng(1)
    hi = 2 if dtype is bool else 5
    mask = np.repeat(rng.integers(0, hi, size=(40, 1)), 300, axis=1).astype(dtype)  # 40 runs
    noisy = rng.integers(0, hi, size=(17, 13)).astype(dtype)
    for m in (mask, noisy, np.zeros((0, 5), dtype)):
        seg = SegmentationMtd(m, region_ids=tuple(range(hi)))
        back = Mtd.from_dict(json.loads(json.dumps(seg.to_dict())))
        assert back == seg
        np.testing.assert_array_equal(back.mask, m)
    assert len(json.dumps(SegmentationMtd(mask).to_dict())) < 2000  # 12000 pixels, 40 runs


def test_malformed_encoded_arrays_raise_meta_error():
    good = SegmentationMtd(np.arange(12, dtype=np.int32).reshape(3, 4)).to_dict()
    for key, value in [("lengths", "AQAAAAAAAAA="), ("values", "AQ=="), ("shape", [5, 5]),
                       ("dtype", "no-such-dtype"), ("values", "@@@")]:
        bad = json.loads(json.dumps(good))
        bad["mask"][key] = value
        with pytest.raises(MetaError):
            Mtd.from_dict(bad)


def test_records_are_immutable():
    d = full_meta()[0]
    with pytest.raises(Exception):
        d.label = "x"
    with pytest.raises(ValueError):
        d.keypoints[0, 0] = 1.0
    src = np.array([1.0, 2.0, 3.0])
    c = ClassificationMtd(("a", "b", "c"), src)
    src[0] = 9.0
    assert c.scores[0] == 1.0  # copied on construction


# -------------------------------------------------------------------------------- COCO

def test_to_coco_values():
    meta = RelationMeta()
    meta.add(ObjectDetectionMtd((10, 20, 40, 80), "person", 0.9,
                                keypoints=np.array([[12.0, 25.0], [np.nan, np.nan], [30.5, 70.0]])))
    meta.add(TrackingMtd(0, 0.0, 0.0))
    meta.add(ObjectDetectionMtd((0, 0, 5, 5), "dog", 0.4))
    out = meta.to_coco(image_id=42, category_ids={"person": 1, "dog": 18})
    assert out == [
        {"image_id": 42, "category_id": 1, "bbox": [10.0, 20.0, 30.0, 60.0], "score": 0.9,
         "keypoints": [12.0, 25.0, 2.0, 0.0, 0.0, 0.0, 30.5, 70.0, 2.0]},
        {"image_id": 42, "category_id": 18, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.4},
    ]
    auto = meta.to_coco(image_id=1)
    assert [r["category_id"] for r in auto] == [2, 1]  # sorted labels: dog=1, person=2
    json.dumps(out, allow_nan=False)
    with pytest.raises(InputError, match="dog"):
        meta.to_coco(1, {"person": 1})


# ------------------------------------------------------------------------- invalid inputs

@pytest.mark.parametrize("box", [(10, 0, 5, 5), (0, 10, 5, 5), (0, 0, np.nan, 5), (0, 0, np.inf, 5),
                                 (0, 0, 5), "abcd", None])
def test_bad_boxes_raise_input_error(box):
    with pytest.raises(InputError):
        ObjectDetectionMtd(box, "x", 0.5)


@pytest.mark.parametrize("make", [
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", float("nan")),
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", 0.5, keypoints=np.zeros((3, 3))),
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", 0.5, keypoints=np.zeros((2, 2)), keypoint_names=("a",)),
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", 0.5, source={"f": float("nan")}),
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", 0.5, source={"obj": object()}),
    lambda: ObjectDetectionMtd((0, 0, 1, 1), "x", 0.5, source=[1, 2]),
    lambda: ClassificationMtd(("a", "b"), np.array([0.1, 0.2, 0.3])),
    lambda: ClassificationMtd(("a",), np.array([np.nan])),
    lambda: ClassificationMtd(("a",), np.array([0.1]), class_ids=np.array([0.5])),
    lambda: TrackingMtd(-1, 0.0, 1.0),
    lambda: TrackingMtd(1, 2.0, 1.0),
    lambda: TrackingMtd(1.5, 0.0, 1.0),
    lambda: SegmentationMtd(np.zeros((4, 4), np.float32)),
    lambda: SegmentationMtd(np.zeros((4, 4, 1), np.int32)),
    lambda: SegmentationMtd(np.zeros((4, 4), np.int32), masks_type="panoptic"),
])
def test_bad_mtd_fields_raise_input_error(make):
    with pytest.raises(InputError):
        make()


def test_graph_misuse_raises_meta_error():
    meta = meta_of(3)
    for call in (
        lambda: meta.relate(0, 3),
        lambda: meta.relate(-1, 0),
        lambda: meta.relate(1, 1),                 # no self relation
        lambda: meta.relate(0, 1, 16),             # not a GStreamer relation flag
        lambda: meta.relate(0, 1, -2),
        lambda: meta.relate(0, 1, "contain"),
        lambda: meta.relation(0, 5),
        lambda: meta.path(0, 7),
        lambda: meta.path(True, 1),
        lambda: meta.related(9),
        lambda: meta.related(0, direction="both"),
        lambda: meta.related(det()),               # an Mtd that is not in this meta
        lambda: meta[3],
        lambda: meta.add("not an mtd"),
        lambda: RelationMeta.from_json("{not json"),
        lambda: RelationMeta.from_json('{"format": "other"}'),
        lambda: RelationMeta.from_json(json.dumps({"format": "workbench.relation_meta/1",
                                                   "mtds": [{"kind": "nope"}]})),
        lambda: RelationMeta.from_json(json.dumps({"format": "workbench.relation_meta/1",
                                                   "mtds": [{"kind": "tracking", "track_id": 1}]})),
        lambda: RelationMeta.from_json(json.dumps({"format": "workbench.relation_meta/1", "mtds": [],
                                                   "relations": [[0, 1, 4]]})),
    ):
        with pytest.raises(MetaError):
            call()
    assert issubclass(MetaError, WorkbenchError)
    assert meta.relations().shape == (0, 3)  # nothing half-applied


def test_registry_knows_the_four_kinds():
    assert {"classification", "object_detection", "tracking", "segmentation"} <= set(MTD_TYPES)
    for kind, cls in MTD_TYPES.items():
        assert cls.kind == kind

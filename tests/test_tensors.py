"""TensorSpec / TensorCaps: subset checks and their explanations."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import CapsError, TensorCaps, TensorSpec, check_caps


def spec(dims, dtype="float32", tid=None, order="row-major", name=None):
    return TensorSpec(tid, tuple(dims), order, dtype, name)


def test_from_array_row_and_col_major():
    a = np.zeros((1, 7, 320), np.float32)
    assert TensorSpec.from_array(a).dims == (1, 7, 320)
    col = TensorSpec.from_array(a, dims_order="col-major")
    assert col.dims == (320, 7, 1) and col.shape == (1, 7, 320)
    assert str(col) == "tensor/strided, dims=<320,7,1>, dims-order=col-major, type=float32"


def test_dynamic_dims_accept_any_size_but_not_the_reverse():
    wanted = spec([1, 0, 85])
    assert spec([1, 25200, 85]).is_subset_of(wanted)
    # a dynamic dim offered where the caps want an exact size does not fit
    why = spec([1, 0, 85]).mismatches(spec([1, 25200, 85]))
    assert why == ["dims[1] is dynamic, caps want exactly 25200"]


@pytest.mark.parametrize(
    "offered, wanted, reason",
    [
        (spec([1, 84, 8400]), spec([1, 8400, 84]), "dims[1] is 84, caps want 8400"),
        (spec([1, 84]), spec([1, 84, 0]), "rank is 2"),
        (spec([1, 84, 8400], "float16"), spec([1, 84, 8400]), "type is float16, caps want float32"),
        (spec([1, 84, 8400], order="col-major"), spec([1, 84, 8400]), "dims-order is col-major"),
        (spec([4], tid="boxes"), spec([4], tid="scores"), "tensor-id is 'boxes', caps want 'scores'"),
    ],
)
def test_each_field_failure_is_named(offered, wanted, reason):
    why = offered.mismatches(wanted)
    assert why and reason in why[0]
    assert not offered.is_subset_of(wanted)


def test_none_fields_in_caps_are_wildcards():
    assert spec([2, 3], "int8", tid="x").is_subset_of(TensorSpec())
    assert spec([2, 3], "int8").is_subset_of(TensorSpec(dims=(0, 3)))


def test_caps_alternatives_and_subset_between_caps():
    yolo_f32 = spec([1, 0, 0])
    yolo_f16 = spec([1, 0, 0], "float16")
    caps = TensorCaps.of(yolo_f32, yolo_f16, role="predictions")
    assert caps.accepts(spec([1, 7, 320])) and caps.accepts(spec([1, 7, 320], "float16"))
    assert not caps.accepts(spec([1, 7, 320], "int8"))
    narrow = TensorCaps.of(spec([1, 7, 320]))
    assert narrow.is_subset_of(caps) and not caps.is_subset_of(narrow)


def test_check_caps_assigns_by_tensor_id_and_explains_failures():
    offered = [spec([1, 896, 1], tid="scores", name="classificators"),
               spec([1, 896, 16], tid="regressors", name="regressors")]
    wanted = [TensorCaps.of(spec([1, 0, 16], tid="regressors"), role="boxes"),
              TensorCaps.of(spec([1, 0, 1], tid="scores"), role="scores")]
    rep = check_caps(offered, wanted)
    assert rep.ok and rep.assignment == {"boxes": 1, "scores": 0}

    bad = [spec([1, 896, 1], tid="scores", name="classificators"),
           spec([1, 896, 12], tid="regressors", name="regressors")]
    rep = check_caps(bad, wanted)
    assert not rep.ok
    assert rep.problems == ("slot 0 (boxes): tensor 'regressors' dims[2] is 12, caps want 16",)
    with pytest.raises(CapsError, match="dims\\[2\\] is 12, caps want 16"):
        rep.raise_if_failed("BlazeFace outputs")


def test_check_caps_reports_wrong_tensor_count():
    rep = check_caps([spec([1, 7, 320])], [TensorCaps.of(spec([1, 0, 0])), TensorCaps.of(spec([1, 0]))])
    assert not rep.ok
    assert "1 tensors arrived, caps want 2" in rep.problems[0]
    assert any("no tensor left" in p for p in rep.problems)


def test_invalid_specs_raise_typed_errors():
    with pytest.raises(CapsError):
        TensorSpec(dims=(1, -2))
    with pytest.raises(CapsError):
        TensorSpec(dims_order="diagonal")
    with pytest.raises(CapsError):
        TensorSpec(dtype="not-a-dtype")

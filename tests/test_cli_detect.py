"""`workbench detect`: the JSON schema, and values equal to the Python API's."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from workbench.cli import main
from workbench.data import sample_frame
from workbench.decoders import DECODERS, _load_all
from workbench.pipeline import Pipeline
from workbench.result import open_result

from conftest import REPO


def _detect(capsys, *args):
    rc = main(["detect", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _check_schema(doc):
    assert set(doc) == {"detections", "decisions"}
    for d in doc["detections"]:
        assert set(d) == {"box", "score", "label", "keypoints"}
        assert len(d["box"]) == 4 and all(isinstance(v, float) for v in d["box"])
        assert isinstance(d["score"], float) and isinstance(d["label"], str)
        assert all(len(p) == 2 for p in d["keypoints"])
    assert all(isinstance(v, int) for v in doc["decisions"].values())


def test_detect_json_mtcnn_equals_python_api(capsys):
    rc, out, _ = _detect(capsys, "--model", "mtcnn", "--image", "sample:lfw-mosaic", "--json")
    assert rc == 0
    doc = json.loads(out)
    _check_schema(doc)
    api = Pipeline.from_card("mtcnn").run(sample_frame("lfw-mosaic"))
    assert doc == api.to_json()
    dets = api.detections
    assert len(doc["detections"]) == len(dets) == 6
    # independent of the JSON helper: the arrays, rounded as printed
    np.testing.assert_allclose([d["box"] for d in doc["detections"]], dets.frame_boxes, atol=0.006)
    np.testing.assert_allclose([d["score"] for d in doc["detections"]], dets.scores, atol=6e-6)
    np.testing.assert_allclose([d["keypoints"] for d in doc["detections"]], dets.frame_keypoints, atol=0.006)
    assert doc["decisions"] == api["mtcnn"].logs["onet"].counts()
    assert sum(doc["decisions"].values()) == len(api["mtcnn"].logs["onet"])


def _registered(decoder_id: str) -> bool:
    _load_all()
    return decoder_id in DECODERS


@pytest.mark.skipif(not _registered("ssd-anchors"), reason="BlazeFace decoder (ssd-anchors) not registered yet")
def test_detect_json_blazeface(capsys):
    rc, out, _ = _detect(capsys, "--model", "blazeface-short", "--image", "sample:astronaut", "--json")
    assert rc == 0
    doc = json.loads(out)
    _check_schema(doc)
    assert doc == Pipeline.from_card("blazeface-short").run(sample_frame("astronaut")).to_json()
    assert len(doc["detections"]) == 1 and len(doc["detections"][0]["keypoints"]) == 6


def test_detect_saves_the_frame_result(capsys, tmp_path):
    rc, out, _ = _detect(capsys, "--model", "mtcnn", "--image", "sample:astronaut", "--out", str(tmp_path / "r"))
    assert rc == 0 and "1 detection(s)" in out and "KEPT=1" in out
    back = open_result(tmp_path / "r")
    assert len(back.detections) == 1 and "mtcnn.onet" in back.trace.records


def test_detect_errors_exit_2_with_a_message(capsys, tmp_path):
    rc, _, err = _detect(capsys, "--model", "no-such-model", "--image", "sample:astronaut", "--json")
    assert rc == 2 and "no model card" in err
    rc, _, err = _detect(capsys, "--model", "mtcnn", "--image", str(tmp_path / "missing.png"))
    assert rc == 2 and "not found" in err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    rc, _, err = _detect(capsys, "--model", "mtcnn", "--image", str(bad))
    assert rc == 2 and "cannot decode" in err


def test_detect_runs_as_a_command():
    proc = subprocess.run([sys.executable, "-m", "workbench", "detect", "--model", "mtcnn", "--image",
                           "sample:astronaut", "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_schema(doc)
    assert len(doc["detections"]) == 1 and doc["detections"][0]["label"] == "face"

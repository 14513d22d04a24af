"""`workbench trace`: a saved trace that reopens without the model, and a JSON summary."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import workbench as wb
from workbench.cli import main as cli_main


def test_trace_zoo_model_json_summary_and_reopen(tmp_path, capsys):
    out = tmp_path / "t"
    assert cli_main(["trace", "--model", "mtcnn-onet", "--image", "sample:astronaut", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "mtcnn-onet" and summary["backend"] == "onnxruntime"
    assert summary["input_shape"] == [1, 48, 48, 3]
    trace = wb.open_trace(out)
    rec = trace.inference
    assert summary["layers"] == len(rec.layers) == 24 and summary["tensors"] == len(rec.store)
    assert trace.frame is not None and trace.frame.image.shape == (512, 512, 3)
    # the saved outputs are what the model computes on the same preprocessed input
    session = wb.load_model("mtcnn-onet")
    x, _ = wb.preprocess(wb.data.sample_frame("astronaut"), session.card.input)
    ref = session.run(x)
    for name, value in ref.items():
        assert np.allclose(rec.tensor(name), value, atol=1e-6)
    assert trace.meta["transform"]["input_size"] == [48, 48]


def test_trace_bare_model_file_with_preprocessing_flags(tmp_path, capsys):
    model = tmp_path / "rnet.onnx"
    shutil.copy(wb.zoo.path("mtcnn-rnet"), model)
    out = tmp_path / "t"
    code = cli_main(["trace", "--model", str(model), "--image", "sample:coffee", "--out", str(out),
                     "--capture", "stats", "--range=-1,1", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_shape"] == [1, 24, 24, 3] and summary["bytes"] < 20000
    rec = wb.open_trace(out).inference
    some = rec.layers[3].outputs[0]
    assert not rec.store.is_kept(some) and rec.store.stats(some).shape


def test_trace_errors_are_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert cli_main(["trace", "--model", str(bad), "--image", "sample:coffee", "--out", str(tmp_path / "o")]) == 2
    assert "workbench: error:" in capsys.readouterr().err
    assert cli_main(["trace", "--model", "mtcnn-onet", "--image", str(tmp_path / "missing.png"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["trace", "--model", "mtcnn-onet", "--image", "x", "--out", "o", "--input-size", "12by4"])

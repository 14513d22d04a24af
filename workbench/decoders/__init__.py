"""Tensor decoders, one per file, registered by id and selected by tensor caps.

>>> from workbench.decoders import get_decoder, select_decoder      # doctest: +SKIP
>>> select_decoder(card.outputs).decoder_id                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import (
    DECODERS,
    Classification,
    DecodeResult,
    Decoder,
    DecoderSelection,
    Detections,
    get_decoder,
    register_decoder,
    select_decoder,
)

__all__ = [
    "DECODERS", "Decoder", "DecodeResult", "Detections", "Classification", "DecoderSelection",
    "register_decoder", "get_decoder", "select_decoder", "decoder_for_card",
]


def _load_all() -> None:
    """Import every decoder module in this package so they register (idempotent)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def decoder_for_card(card, **overrides) -> Decoder:  # type: ignore[no-untyped-def]
    """The decoder a model card names, configured from the card."""
    _load_all()
    if card.decoder is None:
        from ..errors import CardError

        raise CardError(f"model card {card.id!r} names no [decoder]", hint="add a [decoder] table to the card")
    cls = DECODERS.get(card.decoder.id)
    if cls is None:
        return get_decoder(card.decoder.id)  # raises with the list of ids
    return cls.from_card(card, **overrides)

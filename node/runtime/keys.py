"""Key files on disk: Ed25519 signing keys as hex text, created owner-only (0600).

A key file holds the raw 32-byte Ed25519 private key as 64 lowercase hex digits and a
newline: easy to inspect, back up and compare, and the same bytes ``chain.signing``
takes. Files are created with ``O_EXCL`` and mode 0600 from the first byte, so there is
no moment when another user could read them, and an existing key is never silently
replaced. Loading refuses a key file that group or others can read or write, as ssh
does: a key that has been exposed should be rotated, not used.

TLS private keys are PEM (OpenSSL needs them so) and go through ``write_secret_file``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from chain import signing

KEY_FILE_MODE = 0o600


class KeyFileError(ValueError):
    """A key file is missing, unreadable, too open or malformed; the message names it."""


def write_secret_file(path: Path | str, data: bytes) -> None:
    """Create ``path`` owner-only and write ``data``; fail if it already exists."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)  # the umask can only narrow, but be explicit
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_key(path: Path | str, key: signing.PrivateKey) -> None:
    """Store an Ed25519 private key as hex in a new 0600 file."""
    write_secret_file(path, signing.private_key_bytes(key).hex().encode() + b"\n")


def check_secret_file_mode(path: Path | str) -> None:
    """Raise ``KeyFileError`` unless ``path`` is a regular file only its owner can use."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: key file is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"{path}: key file permissions {stat.S_IMODE(st.st_mode):04o} are too open; "
            f"it must be readable by its owner only (chmod 600)"
        )


def load_private_key(path: Path | str) -> signing.PrivateKey:
    """Read an Ed25519 private key written by ``write_private_key``."""
    path = Path(path)
    check_secret_file_mode(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: key file is not hex text") from None
    if len(text) != 64:
        raise KeyFileError(f"{path}: expected 64 hex digits (32 bytes), got {len(text)} chars")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{path}: key file is not hex text") from None
    return signing.private_key_from_bytes(raw)

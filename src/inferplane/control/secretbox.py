"""Encryption at rest for Secret values: AES-256-GCM with keys held outside the store.

The key file (DATA_DIR/secret-keys, mode 0600, made at first start) holds one key per line,
`ID BASE64KEY`; the first line is the key new values are sealed with, the others still open
what they sealed, so a key is rotated by putting a new line first (`inferplane control
rotate-secret-key`), restarting the control plane (which re-seals every Secret with the new
key) and then dropping the old line. Each value is bound to its Secret and key (the GCM
associated data), so a ciphertext copied into another Secret does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1"
NONCE_BYTES = 12


class SecretBoxError(Exception):
    """A key file that cannot be used, or a value no key opens."""


@dataclass(frozen=True)
class SecretBox:
    keys: tuple[tuple[str, bytes], ...]
    """(id, 32-byte key), the sealing key first."""

    @property
    def primary(self) -> str:
        return self.keys[0][0]

    def seal(self, value: str, *, where: str) -> str:
        """`where` (namespace/name/key) is bound to the ciphertext."""
        key_id, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, value.encode(), _aad(key_id, where))
        return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, text: str, *, where: str) -> str:
        prefix, key_id, payload = _split(text)
        key = dict(self.keys).get(key_id)
        if prefix != PREFIX or key is None:
            raise SecretBoxError(f"no key {key_id!r} in the key file opens {where}")
        raw = base64.b64decode(payload)
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(key_id, where))
        except InvalidTag as exc:
            raise SecretBoxError(f"the value of {where} does not open: tampered or moved") from exc
        return plain.decode()

    def sealed_with_primary(self, text: str) -> bool:
        return _split(text)[1] == self.primary


def _aad(key_id: str, where: str) -> bytes:
    return f"{key_id}|{where}".encode()


def _split(text: str) -> tuple[str, str, str]:
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise SecretBoxError("a sealed value is not PREFIX:KEY:PAYLOAD")
    return parts[0], parts[1], parts[2]


def load(path: Path) -> SecretBox:
    """The key file's keys; the file (and one key) is made when missing."""
    if not path.exists():
        _write_private(path, _new_line())
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretBoxError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key_id, _, encoded = line.strip().partition(" ")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise SecretBoxError(f"{path}:{number}: the key is not base64") from exc
        if len(key) != 32:
            raise SecretBoxError(f"{path}:{number}: a key must be 32 bytes, not {len(key)}")
        keys.append((key_id, key))
    if not keys:
        raise SecretBoxError(f"{path} holds no key")
    return SecretBox(tuple(keys))


def rotate(path: Path) -> str:
    """Put a new sealing key first; returns its id. Old keys stay to open what they sealed."""
    old = path.read_text() if path.exists() else ""
    line = _new_line()
    tmp = path.with_suffix(".new")
    tmp.unlink(missing_ok=True)
    _write_private(tmp, line + old)
    tmp.replace(path)
    return line.split(" ", 1)[0]


def _new_line() -> str:
    key_id = secrets.token_hex(4)
    return f"{key_id} {base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}\n"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)

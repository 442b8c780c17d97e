"""PHI encryption at rest: AES-256-GCM with a key version in every ciphertext.

Services call `seal` and `unseal` explicitly (rather than a transparent field) so that
every PHI read and write is a visible line of code next to its audit row.

Stored form: `v<version>.<base64url(nonce || ciphertext+tag)>`. The newest key encrypts;
any configured version decrypts, so keys rotate without a flag day. The column name is
bound in as associated data, so a ciphertext copied into another column does not decrypt.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class DecryptionError(Exception):
    pass


class PhiCipher:
    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys:
            raise ValueError("at least one PHI key is needed")
        self._keys = {version: AESGCM(key) for version, key in keys.items()}
        self.current_version = max(keys)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.current_version].encrypt(nonce, plaintext.encode(), context.encode())
        return f"v{self.current_version}." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, context: str) -> str:
        version_text, _, payload = stored.partition(".")
        try:
            version = int(version_text.removeprefix("v"))
            key = self._keys[version]
            raw = base64.urlsafe_b64decode(payload)
            return key.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except KeyError:
            raise DecryptionError(f"PHI key version {version_text} is not configured") from None
        except (ValueError, InvalidTag):
            raise DecryptionError("a PHI value could not be decrypted (wrong key or altered data)") from None

    def version_of(self, stored: str) -> int:
        return int(stored.partition(".")[0].removeprefix("v"))


_cipher: PhiCipher | None = None


def configure(keys: Mapping[int, bytes]) -> None:
    global _cipher
    _cipher = PhiCipher(keys)


def cipher() -> PhiCipher:
    if _cipher is None:
        raise RuntimeError("PHI keys are not configured (caretrack.core.crypto.configure)")
    return _cipher


def seal(value: str | None, context: str) -> str | None:
    """Encrypt a PHI value for the column named by `context` (`table.column`)."""
    return None if value is None else cipher().encrypt(value, context)


def unseal(stored: str | None, context: str) -> str | None:
    return None if stored is None else cipher().decrypt(stored, context)


# --- files (recordings) ------------------------------------------------------------------
# Layout: b"CTF1" | version (2 bytes) | chunks of [nonce (12) | length (4) | ciphertext+tag].
# Each chunk's associated data binds the context, its index and whether it is the last, so
# chunks cannot be reordered, dropped or the file cut short without decryption failing.
FILE_MAGIC = b"CTF1"
FilePath = str | os.PathLike[str]
FILE_CHUNK = 1024 * 1024


def _chunk_aad(context: str, index: int, last: bool) -> bytes:
    return f"{context}|{index}|{int(last)}".encode()


def encrypt_file(source: FilePath, target: FilePath, context: str) -> int:
    """Encrypt the file at `source` into `target` with the newest key; returns bytes read."""
    with open(source, "rb") as src:
        return encrypt_stream(src, target, context)


def encrypt_stream(src: BinaryIO, target: FilePath, context: str) -> int:
    """Encrypt what `src` holds into the file `target` with the newest key; returns bytes read."""
    active = cipher()
    key = active._keys[active.current_version]
    total = 0
    with open(target, "wb") as dst:
        dst.write(FILE_MAGIC + active.current_version.to_bytes(2, "big"))
        chunk = src.read(FILE_CHUNK)
        index = 0
        while True:
            following = src.read(FILE_CHUNK)
            last = not following
            nonce = os.urandom(12)
            sealed = key.encrypt(nonce, chunk, _chunk_aad(context, index, last))
            dst.write(nonce + len(sealed).to_bytes(4, "big") + sealed)
            total += len(chunk)
            if last:
                return total
            chunk, index = following, index + 1


def decrypt_file(path: FilePath, context: str) -> Iterator[bytes]:
    """Yield the plaintext of an encrypted file chunk by chunk (for streaming downloads)."""
    with open(path, "rb") as src:
        header = src.read(6)
        if header[:4] != FILE_MAGIC:
            raise DecryptionError("not an encrypted CareTrack file")
        version = int.from_bytes(header[4:6], "big")
        try:
            key = cipher()._keys[version]
        except KeyError:
            raise DecryptionError(f"PHI key version v{version} is not configured") from None
        index = 0
        pending = src.read(16)
        while pending:
            nonce, length = pending[:12], int.from_bytes(pending[12:16], "big")
            sealed = src.read(length)
            following = src.read(16)
            try:
                yield key.decrypt(nonce, sealed, _chunk_aad(context, index, not following))
            except InvalidTag:
                raise DecryptionError("the file could not be decrypted (wrong key, altered or cut short)") from None
            pending, index = following, index + 1
        if index == 0:
            raise DecryptionError("the encrypted file holds no data (cut short)")


def same_secret(given: str, expected: str) -> bool:
    """A timing-safe comparison of a secret someone sent (a token, a signature) with ours.
    Compared as UTF-8 bytes: hmac.compare_digest refuses str holding anything but ASCII, and
    a request can send anything."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))

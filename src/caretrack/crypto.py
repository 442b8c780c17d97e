"""PHI encryption at rest: AES-256-GCM with a key version in every ciphertext.

Services call `seal` and `unseal` explicitly (rather than a transparent field) so that
every PHI read and write is a visible line of code next to its audit row.

Stored form: `v<version>.<base64url(nonce || ciphertext+tag)>`. The newest key encrypts;
any configured version decrypts, so keys rotate without a flag day. The column name is
bound in as associated data, so a ciphertext copied into another column does not decrypt.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
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
        raise RuntimeError("PHI keys are not configured (caretrack.crypto.configure)")
    return _cipher


def seal(value: str | None, context: str) -> str | None:
    """Encrypt a PHI value for the column named by `context` (`table.column`)."""
    return None if value is None else cipher().encrypt(value, context)


def unseal(stored: str | None, context: str) -> str | None:
    return None if stored is None else cipher().decrypt(stored, context)

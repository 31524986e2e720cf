"""Encryption at rest for store credentials and webhook secrets (Fernet, rotatable).

ENCRYPTION_KEYS lists Fernet keys newest first: new values are encrypted with the first,
any listed key decrypts, and `rotate()` re-encrypts a token under the newest key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"storedesk-credentials:{secret_key}".encode()).digest())
        keys = (derived.decode(),)
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    """The plaintext, or "" for an empty token. Raises InvalidToken if no key fits."""
    return fernet().decrypt(token.encode()).decode() if token else ""


def encrypt_json(value: dict) -> str:
    return encrypt(json.dumps(value, separators=(",", ":"))) if value else ""


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt(token)) if token else {}


def rotate(token: str) -> str:
    """Re-encrypt under the newest key (no-op for empty tokens)."""
    return fernet().rotate(token.encode()).decode() if token else ""


__all__ = ["InvalidToken", "decrypt", "decrypt_json", "encrypt", "encrypt_json", "rotate"]

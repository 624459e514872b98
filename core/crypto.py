"""Encryption of stored secrets (connector shared secrets, password-type configuration values).

Keys come from ERPSYNC_FERNET_KEYS, newest first: new values are encrypted with the first key, and
values encrypted with any listed key can still be read, so keys rotate without downtime.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret was encrypted with a key that is no longer configured."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plain: str) -> str:
    return _fernet(tuple(settings.ERPSYNC_FERNET_KEYS)).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.ERPSYNC_FERNET_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the keys in ERPSYNC_FERNET_KEYS; add back the key it was saved with."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a stored secret with the newest key (the first of ERPSYNC_FERNET_KEYS)."""
    try:
        return _fernet(tuple(settings.ERPSYNC_FERNET_KEYS)).rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the keys in ERPSYNC_FERNET_KEYS; add back the key it was saved with."
        ) from None

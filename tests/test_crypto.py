"""Stored secrets are encrypted, readable after a key rotation, and fail clearly without their key."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from core import crypto


def test_secrets_survive_a_key_rotation_and_fail_clearly_without_their_key(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ERPSYNC_FERNET_KEYS = [old]
    token = crypto.encrypt("shared-secret")
    assert "shared-secret" not in token
    settings.ERPSYNC_FERNET_KEYS = [new, old]
    assert crypto.decrypt(token) == "shared-secret"
    settings.ERPSYNC_FERNET_KEYS = [new]
    with pytest.raises(crypto.SecretUnreadable, match="add back the key it was saved with"):
        crypto.decrypt(token)

from datetime import UTC, datetime

import pytest

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.keygen import generate_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_keyring_round_trips_and_rejects_two_active_keys(key):
    active = key.with_changes(state=KeyState.ACTIVE, published_at=NOW, activated_at=NOW)
    keyring = Keyring((active,), published_digest="abc")
    again = Keyring.from_json(keyring.to_json())
    assert again == keyring and again.keys[0].private_jwk == active.private_jwk
    other = generate_key("ES256", NOW).with_changes(state=KeyState.ACTIVE)
    with pytest.raises(KeyringError):
        Keyring((active, other))


@pytest.mark.parametrize("text", ["", "[]", '{"format": "other"}', '{"format": "jwks-rotator/keyring/v1", "keys": [{"kid": 1}]}'])
def test_malformed_keyring_documents_are_refused(text):
    with pytest.raises(KeyringError):
        Keyring.from_json(text)

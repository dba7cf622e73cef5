import base64
import json

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from jwks_rotator.core.errors import KeyringError
from jwks_rotator.core.keys.algorithms import get_algorithm
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS, KeyRecord, load_private_key


def test_kid_is_the_rfc7638_thumbprint(key):
    assert key.kid == JWK(**key.public_jwk()).thumbprint()


def test_public_jwk_has_required_members_and_nothing_private(key):
    jwk = key.public_jwk()
    assert {"kid", "kty", "alg", "use"} <= set(jwk) and jwk["use"] == "sig" and jwk["alg"] == key.alg
    assert not PRIVATE_MEMBERS.intersection(jwk)


def test_repr_and_str_hide_key_material(key):
    for text in (repr(key), str(key), repr(Keyring((key,)))):
        assert key.private_jwk["d"] not in text
        assert "private_jwk" not in text


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_loaded_private_key_signs_what_jwcrypto_verifies_with_the_public_jwk(key):
    private = load_private_key(key.private_jwk)
    signing_input = f"{_b64(json.dumps({'alg': key.alg, 'kid': key.kid}).encode())}.{_b64(b'payload')}"
    compact = f"{signing_input}.{_b64(get_algorithm(key.alg).sign(private, signing_input.encode()))}"
    verified = JWS()
    verified.deserialize(compact, key=JWK(**key.public_jwk()), alg=key.alg)
    assert verified.payload == b"payload"


def test_malformed_private_key_is_a_keyring_error_without_material():
    with pytest.raises(KeyringError) as info:
        load_private_key({"kty": "EC", "crv": "P-256", "d": "AAAA", "x": "AA", "y": "AA"})
    assert "AAAA" not in str(info.value)


def test_where_a_key_was_published_is_kept_and_checked(key):
    placed = key.with_changes(published_in=("eu-west-1", "us-east-1"))
    assert KeyRecord.from_dict(placed.to_dict()).published_in == ("eu-west-1", "us-east-1")
    assert "published_in" not in key.to_dict() and KeyRecord.from_dict(key.to_dict()).published_in is None
    with pytest.raises(KeyringError, match="published_in"):
        KeyRecord.from_dict({**placed.to_dict(), "published_in": "us-east-1"})

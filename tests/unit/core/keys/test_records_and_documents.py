import base64
import json
from datetime import UTC, datetime

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from jwks_rotator.core.errors import KeyringError, UnsafeDocumentError, UnsupportedAlgorithmError
from jwks_rotator.core.keys.algorithms import algorithm_names, get_algorithm
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS, KeyRecord, KeyState, load_private_key
from jwks_rotator.core.lifecycle.documents import DISCOVERY_PATH, JWKS_PATH, build_documents, check_jwks
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(issuer="https://issuer.example.com")


@pytest.fixture(scope="module", params=algorithm_names())
def key(request) -> KeyRecord:
    return generate_key(request.param, NOW)


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


def test_unknown_algorithms_are_refused():
    for name in ("HS256", "none", "RS1", None):
        with pytest.raises(UnsupportedAlgorithmError):
            get_algorithm(name)


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


def test_documents_are_public_ordered_and_deterministic(key):
    older = generate_key("ES256", NOW).with_changes(state=KeyState.RETIRED)
    active = key.with_changes(state=KeyState.ACTIVE)
    keyring = Keyring((older, active))
    documents = build_documents(SETTINGS, keyring)
    assert documents == build_documents(SETTINGS, keyring)
    jwks = json.loads(documents.files[JWKS_PATH])
    assert [k["kid"] for k in jwks["keys"]] == [active.kid, older.kid]  # active first
    discovery = json.loads(documents.files[DISCOVERY_PATH])
    assert discovery["issuer"] == SETTINGS.issuer
    assert discovery["jwks_uri"] == "https://issuer.example.com/.well-known/jwks.json"
    assert set(discovery["id_token_signing_alg_values_supported"]) == {"RS256", "ES256", key.alg}


@pytest.mark.parametrize(
    "jwk",
    [
        {"kid": "a", "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": "x", "y": "y", "d": "secret"},
        {"kid": "a", "kty": "oct", "alg": "HS256", "use": "sig", "k": "c2VjcmV0"},
        {"kid": "a", "kty": "RSA", "alg": "RS256", "use": "sig", "n": "n", "e": "AQAB", "p": "p"},
        {"kid": "a", "kty": "RSA", "alg": "RS256", "n": "n", "e": "AQAB"},
        {"kid": "a", "kty": "OKP", "alg": "EdDSA", "use": "enc", "crv": "Ed25519", "x": "x"},
    ],
)
def test_unsafe_jwks_is_refused(jwk):
    with pytest.raises(UnsafeDocumentError):
        check_jwks({"keys": [jwk]})


def test_duplicate_kids_are_refused():
    jwk = {"kid": "a", "kty": "OKP", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": "x"}
    with pytest.raises(UnsafeDocumentError, match="twice"):
        check_jwks({"keys": [jwk, dict(jwk)]})

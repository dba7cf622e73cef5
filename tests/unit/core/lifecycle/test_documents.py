import json
from datetime import UTC, datetime

import pytest

from jwks_rotator.core.errors import UnsafeDocumentError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.documents import DISCOVERY_PATH, JWKS_PATH, build_documents, check_jwks
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(issuer="https://issuer.example.com")


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

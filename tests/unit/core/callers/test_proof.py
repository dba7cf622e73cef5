"""The local checks on a caller's proof: a proof is exactly a signed GetCallerIdentity for this signer and STS host."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwks_rotator.core.callers.proof import (
    MAX_HEADERS,
    accepted_signer_names,
    parse_caller_proof,
)
from jwks_rotator.core.errors import UnauthenticatedError
from jwks_rotator_testkit.hypothesis_profiles import examples

HOST = "sts.eu-west-1.amazonaws.com"
REGION = "eu-west-1"
SIGNER = "jwks-rotator-sign"
SIGNED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
SIGNED = "content-type;host;x-amz-date;x-amz-security-token;x-jwks-rotator-signer"


def proof(**header_changes: Any) -> dict[str, Any]:
    headers = {
        "Host": HOST,
        "X-Amz-Date": "20260102T030405Z",
        "X-Jwks-Rotator-Signer": SIGNER,
        "X-Amz-Security-Token": "FQoGZXIvYXdzEXAMPLETOKEN",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY123456/20260102/{REGION}/sts/aws4_request, SignedHeaders={SIGNED}, Signature={'ab' * 32}",
    }
    for name, value in header_changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return {"headers": headers, "body": "Action=GetCallerIdentity&Version=2011-06-15"}


def parse(raw: Any, *, now: float = SIGNED_AT + 10, signers: frozenset[str] = frozenset({SIGNER})) -> Any:
    return parse_caller_proof(raw, accepted_signers=signers, sts_host=HOST, sts_region=REGION, now=now, max_age=300, leeway=60)


def reason_of(raw: Any, **kwargs: Any) -> str:
    with pytest.raises(UnauthenticatedError) as caught:
        parse(raw, **kwargs)
    assert caught.value.code == "unauthenticated"
    return caught.value.reason


def authorization(signed: str = SIGNED, *, scope: str = f"20260102/{REGION}/sts", signature: str = "ab" * 32) -> str:
    return f"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY123456/{scope}/aws4_request, SignedHeaders={signed}, Signature={signature}"


def test_a_well_formed_proof_is_accepted_with_its_window() -> None:
    parsed = parse(proof())
    assert parsed.body == "Action=GetCallerIdentity&Version=2011-06-15"
    assert parsed.header_map()["Host"] == HOST
    assert parsed.signed_at == SIGNED_AT and parsed.expires_at == SIGNED_AT + 300
    assert len(parsed.cache_key) == 64 and "ab" * 32 not in parsed.cache_key


def test_the_cache_key_ignores_header_name_case_but_not_values() -> None:
    lower = proof()
    lower["headers"] = {name.lower(): value for name, value in lower["headers"].items()}
    assert parse(lower).cache_key == parse(proof()).cache_key
    other = proof(Authorization=authorization(signature="cd" * 32))
    assert parse(other).cache_key != parse(proof()).cache_key


def test_the_body_fields_may_come_in_either_order() -> None:
    raw = proof()
    raw["body"] = "Version=2011-06-15&Action=GetCallerIdentity"
    assert parse(raw).body == raw["body"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "proof_missing"),
        ("a string", "proof_not_object"),
        ({"headers": {}}, "proof_fields"),
        ({"headers": {}, "body": "", "url": "https://evil.example/"}, "proof_fields"),
        ({"headers": [], "body": ""}, "proof_field_types"),
        ({"headers": {}, "body": 5}, "proof_field_types"),
    ],
)
def test_a_proof_of_the_wrong_shape_is_refused(raw: Any, reason: str) -> None:
    assert reason_of(raw) == reason


def test_header_values_must_be_text() -> None:
    raw = proof()
    raw["headers"]["X-Amz-Date"] = 20260102
    assert reason_of(raw) == "header_not_text"


def test_oversize_proofs_are_refused() -> None:
    assert reason_of(proof(X_Amz_Security_Token="A" * 9000)) == "proof_too_large"
    raw = proof()
    raw["headers"].update({f"X-Extra-{i}": "x" for i in range(MAX_HEADERS)})
    assert reason_of(raw) == "proof_too_large"


def test_header_names_repeated_in_another_case_are_refused() -> None:
    raw = proof()
    raw["headers"]["host"] = "evil.example"
    assert reason_of(raw) == "duplicate_header"


def test_control_characters_in_a_header_are_refused() -> None:
    assert reason_of(proof(Host=HOST + "\r\nX-Injected: 1")) == "header_malformed"


def test_headers_outside_the_allowed_set_are_refused() -> None:
    assert reason_of(proof(X_Amz_Content_Sha256="UNSIGNED-PAYLOAD")) == "header_not_allowed"


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256 Credential=AKID/20260102/eu-west-1/sts/aws4_request",
        authorization(signature="zz" * 32),
        authorization(signature="ab" * 31),
        "Bearer abc",
        authorization().replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
    ],
)
def test_a_malformed_authorization_is_refused(value: str) -> None:
    assert reason_of(proof(Authorization=value)) == "authorization_malformed"


def test_a_missing_authorization_is_refused() -> None:
    assert reason_of(proof(Authorization=None)) == "authorization_malformed"


def test_every_presented_header_must_be_signed() -> None:
    unsigned_token = authorization("content-type;host;x-amz-date;x-jwks-rotator-signer")
    assert reason_of(proof(Authorization=unsigned_token)) == "signed_headers_mismatch"


def test_a_signed_header_must_be_presented() -> None:
    assert reason_of(proof(Content_Type=None)) == "signed_headers_mismatch"


@pytest.mark.parametrize("missing", ["host", "x-amz-date", "x-jwks-rotator-signer"])
def test_host_date_and_signer_must_be_signed(missing: str) -> None:
    signed = ";".join(name for name in SIGNED.split(";") if name != missing)
    assert reason_of(proof(Authorization=authorization(signed))) == "signed_headers_incomplete"


def test_a_header_listed_twice_in_signed_headers_is_refused() -> None:
    assert reason_of(proof(Authorization=authorization(SIGNED + ";host"))) == "signed_headers_malformed"


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (f"20260102/{REGION}/iam", "scope_service"),
        ("20260102/us-east-1/sts", "scope_region"),
        (f"20260101/{REGION}/sts", "scope_date"),
    ],
)
def test_the_credential_scope_must_be_sts_in_the_signers_region_on_the_signing_day(scope: str, reason: str) -> None:
    assert reason_of(proof(Authorization=authorization(scope=scope))) == reason


def test_a_proof_for_another_sts_host_is_refused() -> None:
    assert reason_of(proof(Host="sts.attacker.example")) == "host_not_sts"
    assert reason_of(proof(Host="127.0.0.1:4566")) == "host_not_sts"


def test_the_host_compares_without_case() -> None:
    assert parse(proof(Host=HOST.upper())).header_map()["Host"] == HOST.upper()


def test_a_proof_made_for_another_signer_is_refused() -> None:
    assert reason_of(proof(X_Jwks_Rotator_Signer="vault")) == "signer_mismatch"


@pytest.mark.parametrize("value", ["2026-01-02T03:04:05Z", "20260102T030405", "20261302T030405Z", "20260102T250405Z"])
def test_a_malformed_date_is_refused(value: str) -> None:
    assert reason_of(proof(X_Amz_Date=value)) == "amz_date_malformed"


def test_a_proof_expires_max_age_after_it_was_signed() -> None:
    assert parse(proof(), now=SIGNED_AT + 299.9).expires_at == SIGNED_AT + 300
    assert reason_of(proof(), now=SIGNED_AT + 300) == "proof_expired"


def test_a_proof_from_the_future_is_accepted_only_within_the_leeway() -> None:
    assert parse(proof(), now=SIGNED_AT - 60).signed_at == SIGNED_AT
    assert reason_of(proof(), now=SIGNED_AT - 61) == "proof_from_future"


def test_only_the_form_content_type_is_accepted() -> None:
    assert reason_of(proof(Content_Type="application/x-amz-json-1.1")) == "content_type"


def test_content_type_and_session_token_are_optional_when_not_signed() -> None:
    raw = proof(Content_Type=None, X_Amz_Security_Token=None, Authorization=authorization("host;x-amz-date;x-jwks-rotator-signer"))
    assert parse(raw).header_map().keys() == {"Host", "X-Amz-Date", "X-Jwks-Rotator-Signer", "Authorization"}


@pytest.mark.parametrize(
    "body",
    [
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/admin",
        "Action=GetCallerIdentity&Version=2011-06-15&Extra=1",
        "Action=GetCallerIdentity&Action=GetCallerIdentity&Version=2011-06-15",
        "Action=GetCallerIdentity",
        "Action=GetCallerIdentity&Version=2011-06-15&",
        "",
        "Action=GetCallerIdentity&Version=2011-06-15" + "&" * 200,
    ],
)
def test_only_a_get_caller_identity_body_is_accepted(body: str) -> None:
    raw = proof()
    raw["body"] = body
    assert reason_of(raw) == "not_get_caller_identity"


def test_refusal_messages_never_echo_header_values() -> None:
    for raw in (proof(Host="sts.attacker.example"), proof(X_Jwks_Rotator_Signer="vault"), proof(Content_Type="text/secret-value")):
        with pytest.raises(UnauthenticatedError) as caught:
            parse(raw)
        text = str(caught.value) + caught.value.reason
        assert all(value not in text for value in raw["headers"].values())


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(["Host", "X-Amz-Date", "X-Jwks-Rotator-Signer", "Authorization", "Content-Type", "X-Amz-Security-Token"]), st.text(max_size=40))
def test_changing_any_checked_header_never_passes_as_another_value(name: str, value: str) -> None:
    """Any edit of a checked header is either refused or leaves a proof whose cache key differs from the original."""
    raw = copy.deepcopy(proof())
    raw["headers"][name] = value
    try:
        parsed = parse(raw)
    except UnauthenticatedError:
        return
    assert value == proof()["headers"][name] or parsed.cache_key != parse(proof()).cache_key


def test_accepted_signer_names_are_the_name_and_both_arns() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:jwks-rotator-sign"
    assert accepted_signer_names("jwks-rotator-sign", arn, "live") == {"jwks-rotator-sign", arn, f"{arn}:live"}
    assert accepted_signer_names("jwks-rotator-sign", f"{arn}:prod") == {"jwks-rotator-sign", arn, f"{arn}:prod"}
    assert accepted_signer_names("jwks-rotator-sign", "not-an-arn") == {"jwks-rotator-sign"}

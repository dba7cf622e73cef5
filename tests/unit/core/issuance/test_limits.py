"""The sign request contract: each rule with its error code (pure, no keys, no AWS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator.core.issuance.limits import (
    MAX_CLAIMS_DEPTH,
    MAX_REQUEST_CHARS,
    RESERVED_CLAIMS,
    TokenPolicy,
    TokenRequest,
    build_claims,
    parse_request,
)
from tests.sign_support import ISSUER, settings

POLICY = TokenPolicy.from_settings(settings(allowed_audiences=("orders-api", "billing-api")))
OPEN_POLICY = TokenPolicy.from_settings(settings())
DEFAULTED_POLICY = TokenPolicy.from_settings(settings(default_audience="orders-api", allowed_audiences=("orders-api",)))


def code_of(payload: Any, policy: TokenPolicy = POLICY) -> str:
    with pytest.raises(JwksRotatorError) as caught:
        parse_request(payload, policy)
    assert caught.value.message and caught.value.to_dict() == {"error": caught.value.code, "message": caught.value.message}
    return caught.value.code


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep (the object itself is level 1)."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


def test_the_documented_example_is_accepted() -> None:
    request = parse_request(
        {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}, POLICY
    )
    assert request == TokenRequest("user-123", "orders-api", 300, {"roles": ["admin"], "email_verified": True})


@pytest.mark.parametrize(
    "payload",
    [None, [], "sub", 1, True, b"{}", ({"sub": "x"},)],
    ids=["null", "list", "string", "int", "bool", "bytes", "tuple"],
)
def test_a_request_that_is_not_an_object_is_invalid(payload: Any) -> None:
    assert code_of(payload) == "invalid_request"


@pytest.mark.parametrize("extra", [{"iss": "x"}, {"exp": 1}, {"scope": "a"}, {1: "x"}, {None: 1}, {"\ud800": 1}])
def test_unknown_top_level_fields_are_refused(extra: dict[Any, Any]) -> None:
    assert code_of({"sub": "u", "aud": "orders-api", **extra}) == "invalid_request"


def test_an_unknown_field_name_is_echoed_only_when_it_is_plain() -> None:
    with pytest.raises(JwksRotatorError) as caught:
        parse_request({"sub": "u", "aud": "orders-api", "sc<ript>": 1}, POLICY)
    assert "sc<ript>" not in caught.value.message
    with pytest.raises(JwksRotatorError) as caught:
        parse_request({"sub": "u", "aud": "orders-api", "scope": 1}, POLICY)
    assert "'scope'" in caught.value.message


@pytest.mark.parametrize("sub", [None, "", "   ", 1, ["u"], {"id": 1}, "\udc80bad"])
def test_sub_must_be_a_non_blank_valid_string(sub: Any) -> None:
    assert code_of({"sub": sub, "aud": "orders-api"}) == "invalid_request"


def test_sub_is_required() -> None:
    assert code_of({"aud": "orders-api"}) == "invalid_request"


@pytest.mark.parametrize("aud", [None, "", [], [""], ["orders-api", 1], 5, {"a": 1}, "\ud800"])
def test_aud_must_be_a_string_or_a_list_of_strings(aud: Any) -> None:
    assert code_of({"sub": "u", "aud": aud}) == "invalid_request"


def test_aud_is_required_without_a_default_audience() -> None:
    assert code_of({"sub": "u"}, OPEN_POLICY) == "invalid_request"


def test_the_default_audience_fills_in_a_missing_aud() -> None:
    assert parse_request({"sub": "u"}, DEFAULTED_POLICY).aud == "orders-api"


@pytest.mark.parametrize("aud", ["payments-api", ["orders-api", "payments-api"]])
def test_an_audience_outside_the_allow_list_is_refused(aud: Any) -> None:
    assert code_of({"sub": "u", "aud": aud}) == "audience_not_allowed"


def test_any_audience_is_accepted_without_an_allow_list_and_lists_keep_their_shape() -> None:
    assert parse_request({"sub": "u", "aud": "anything"}, OPEN_POLICY).aud == "anything"
    assert parse_request({"sub": "u", "aud": ["a", "b", "a"]}, OPEN_POLICY).aud == ["a", "b"]


@pytest.mark.parametrize("ttl", [True, False, 0, -1, 1.5, float("nan"), float("inf"), "300", None, [300]])
def test_ttl_must_be_whole_positive_seconds(ttl: Any) -> None:
    assert code_of({"sub": "u", "aud": "orders-api", "ttl": ttl}) == "invalid_request"


def test_ttl_accepts_a_whole_float_and_defaults_to_the_default_token_ttl() -> None:
    assert parse_request({"sub": "u", "aud": "orders-api", "ttl": 300.0}, POLICY).ttl == 300
    assert parse_request({"sub": "u", "aud": "orders-api"}, POLICY).ttl == 15 * 60


@pytest.mark.parametrize("ttl", [3601, 10**400])
def test_ttl_above_max_token_ttl_is_too_long(ttl: int) -> None:
    assert code_of({"sub": "u", "aud": "orders-api", "ttl": ttl}) == "ttl_too_long"


def test_ttl_equal_to_max_token_ttl_is_granted() -> None:
    assert parse_request({"sub": "u", "aud": "orders-api", "ttl": 3600}, POLICY).ttl == 3600


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_claims_may_not_set_a_reserved_claim(name: str) -> None:
    assert code_of({"sub": "u", "aud": "orders-api", "claims": {name: "x"}}) == "invalid_claims"


@pytest.mark.parametrize(
    "claims",
    [
        None,
        [],
        "x",
        {1: "x"},
        {"a": {None: 1}},
        {"a": float("nan")},
        {"a": [float("-inf")]},
        {"a": b"bytes"},
        {"a": (1, 2)},
        {"a": {1, 2}},
        {"a": object()},
    ],
    ids=["null", "list", "string", "int-key", "nested-null-key", "nan", "inf", "bytes", "tuple", "set", "object"],
)
def test_claims_hold_json_values_under_string_names_only(claims: Any) -> None:
    assert code_of({"sub": "u", "aud": "orders-api", "claims": claims}) == "invalid_claims"


def test_claims_depth_is_capped() -> None:
    assert parse_request({"sub": "u", "aud": "orders-api", "claims": nested(MAX_CLAIMS_DEPTH)}, POLICY)
    assert code_of({"sub": "u", "aud": "orders-api", "claims": nested(MAX_CLAIMS_DEPTH + 1)}) == "invalid_claims"


def test_a_very_deep_structure_is_refused_without_recursing_through_it() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert code_of({"sub": "u", "aud": "orders-api", "claims": {"d": deep}}) == "invalid_claims"


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "u" * (MAX_REQUEST_CHARS + 1), "aud": "orders-api"},
        {"sub": "u", "aud": ["a" * 100] * 200},
        {"sub": "u", "aud": "orders-api", "claims": {"blob": "x" * MAX_REQUEST_CHARS}},
        {"sub": "u", "aud": "orders-api", "claims": {"many": list(range(10**6))}},
        {"sub": "u", "aud": "orders-api", "claims": {f"k{i}": i for i in range(5000)}},
    ],
    ids=["sub", "aud-list", "string-claim", "long-list", "many-names"],
)
def test_requests_over_the_size_cap_are_too_large(payload: dict[str, Any]) -> None:
    assert code_of(payload, OPEN_POLICY) == "payload_too_large"


def test_build_claims_sets_the_registered_claims_and_back_dates_nbf() -> None:
    request = TokenRequest("u", "orders-api", 300, {"roles": ["admin"]})
    claims = build_claims(request, POLICY, 1_000_000, "jti-1")
    assert claims == {
        "iss": ISSUER, "sub": "u", "aud": "orders-api", "iat": 1_000_000, "nbf": 1_000_000 - 60,
        "exp": 1_000_300, "jti": "jti-1", "roles": ["admin"],
    }


@pytest.mark.parametrize(("leeway", "backdate"), [(timedelta(0), 0), (timedelta(seconds=5), 5), (timedelta(minutes=5), 60)])
def test_nbf_back_dating_is_the_clock_skew_leeway_capped_at_a_minute(leeway: timedelta, backdate: int) -> None:
    policy = TokenPolicy.from_settings(settings(clock_skew_leeway=leeway))
    assert policy.nbf_backdate == backdate

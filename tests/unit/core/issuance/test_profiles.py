"""The issuance policy: strict loading, deny by default, and checks in their documented order."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwks_rotator.core.callers.principals import CallerIdentity, identity_from_arn
from jwks_rotator.core.errors import ConfigurationError, SigningError
from jwks_rotator.core.issuance.limits import TokenRequest
from jwks_rotator.core.issuance.profiles import (
    MAX_SUBJECT_CHARS,
    compile_subject_pattern,
    load_issuance_policy,
    split_sign_payload,
)
from jwks_rotator_testkit.hypothesis_profiles import examples

ORDERS_ROLE = "arn:aws:iam::123456789012:role/orders-service"
POLICY = """
profiles:
  orders:
    callers: ["arn:aws:iam::123456789012:role/orders-service"]
    audiences: ["payments-api"]
    subjects: ["^user-[0-9]+$"]
    claims: ["roles", "email"]
    max_ttl: 15m
  batch:
    callers: ["arn:aws:iam::123456789012:role/batch-*", "arn:aws:iam::123456789012:role/orders-service"]
    audiences: ["reports", "payments-api"]
    subjects: ["^job-[a-z]+$"]
"""


def load(text: str = POLICY, **kwargs: Any) -> Any:
    return load_issuance_policy(text, max_token_ttl=kwargs.get("max_ttl", 3600), default_token_ttl=kwargs.get("default_ttl", 1800))


def session(role: str, name: str = "session-1") -> CallerIdentity:
    account, role_name = role.split(":")[4], role.split("/")[-1]
    return identity_from_arn(f"arn:aws:sts::{account}:assumed-role/{role_name}/{name}")


def request(sub: str = "user-1", aud: Any = "payments-api", ttl: int = 300, claims: dict[str, Any] | None = None) -> TokenRequest:
    return TokenRequest(sub=sub, aud=aud, ttl=ttl, claims=claims or {})


def refusal(policy: Any, identity: CallerIdentity, req: TokenRequest, **kwargs: Any) -> SigningError:
    with pytest.raises(SigningError) as caught:
        policy.authorize(identity, req, **kwargs)
    return caught.value


# --- evaluation --------------------------------------------------------------

def test_a_caller_in_a_profile_gets_its_request_with_the_profile_as_azp() -> None:
    decision = load().authorize(session(ORDERS_ROLE), request(claims={"roles": ["a"]}), profile="orders")
    assert decision.azp == "orders" and decision.ttl == 300


def test_the_session_name_plays_no_part_in_matching() -> None:
    policy = load()
    assert policy.profiles_for(session(ORDERS_ROLE, "anything")) == policy.profiles_for(session(ORDERS_ROLE, "else"))


def test_a_caller_in_no_profile_is_refused_first() -> None:
    error = refusal(load(), session("arn:aws:iam::123456789012:role/other"), request(aud="nope", sub="!"), profile=5)
    assert error.code == "caller_not_allowed"


def test_users_and_root_never_match_role_patterns() -> None:
    policy = load()
    for arn in ("arn:aws:iam::123456789012:user/orders-service", "arn:aws:iam::123456789012:root"):
        assert refusal(policy, identity_from_arn(arn), request()).code == "caller_not_allowed"


def test_a_wildcard_matches_within_the_role_name_only() -> None:
    policy = load()
    assert [p.name for p in policy.profiles_for(session("arn:aws:iam::123456789012:role/batch-nightly"))] == ["batch"]
    assert policy.profiles_for(session("arn:aws:iam::999999999999:role/batch-nightly")) == ()
    assert policy.profiles_for(identity_from_arn("arn:aws-cn:sts::123456789012:assumed-role/batch-x/s1")) == ()


def test_several_matching_profiles_need_a_name() -> None:
    error = refusal(load(), session(ORDERS_ROLE), request())
    assert error.code == "invalid_request" and "orders" in error.message and "batch" in error.message


def test_a_named_profile_the_caller_does_not_match_is_refused_like_an_unknown_one() -> None:
    batch = session("arn:aws:iam::123456789012:role/batch-nightly")
    assert refusal(load(), batch, request(), profile="orders").code == "caller_not_allowed"
    assert refusal(load(), batch, request(), profile="no-such").code == "caller_not_allowed"


def test_a_profile_name_of_the_wrong_type_is_invalid() -> None:
    assert refusal(load(), session(ORDERS_ROLE), request(), profile=["orders"]).code == "invalid_request"


def test_checks_answer_in_order_audience_subject_claims_ttl() -> None:
    policy, caller = load(), session(ORDERS_ROLE)
    bad_everything = request(aud="reports", sub="job-x", claims={"admin": True}, ttl=3600)
    assert refusal(policy, caller, bad_everything, profile="orders").code == "audience_not_allowed"
    assert refusal(policy, caller, bad_everything._replace(aud=["payments-api"]), profile="orders").code == "subject_not_allowed"
    assert refusal(policy, caller, bad_everything._replace(aud="payments-api", sub="user-7"), profile="orders").code == "claims_not_allowed"
    error = refusal(policy, caller, request(ttl=901), profile="orders")
    assert error.code == "ttl_too_long" and "900" in error.message


def test_every_audience_of_a_list_must_be_allowed() -> None:
    assert refusal(load(), session(ORDERS_ROLE), request(aud=["payments-api", "reports"]), profile="orders").code == "audience_not_allowed"


def test_a_subject_must_match_in_full() -> None:
    assert refusal(load(), session(ORDERS_ROLE), request(sub="user-1x"), profile="orders").code == "subject_not_allowed"


def test_an_overlong_subject_is_refused_before_any_pattern_runs() -> None:
    policy = load(POLICY.replace("^user-[0-9]+$", ".*"))
    error = refusal(policy, session(ORDERS_ROLE), request(sub="x" * (MAX_SUBJECT_CHARS + 1)), profile="orders")
    assert error.code == "subject_not_allowed" and getattr(error, "reason", "") == "subject_too_long"


def test_a_request_without_ttl_gets_the_smaller_of_default_and_profile_max() -> None:
    policy = load(default_ttl=1800)
    assert policy.authorize(session(ORDERS_ROLE), request(ttl=1800), profile="orders", ttl_given=False).ttl == 900
    assert policy.authorize(session(ORDERS_ROLE), request(sub="job-x", ttl=1800), profile="batch", ttl_given=False).ttl == 1800


def test_a_disabled_profile_or_policy_issues_nothing() -> None:
    policy = load(POLICY.replace("    max_ttl: 15m", "    max_ttl: 15m\n    disabled: true"))
    assert [p.name for p in policy.profiles_for(session(ORDERS_ROLE))] == ["batch"]
    assert refusal(policy, session(ORDERS_ROLE), request(), profile="orders").code == "caller_not_allowed"
    stopped = load("disabled: true\n" + POLICY)
    error = refusal(stopped, session(ORDERS_ROLE), request(), profile="orders")
    assert error.code == "caller_not_allowed" and getattr(error, "reason", "") == "issuance_disabled"
    assert load("disabled: true\nprofiles: {}\n").profiles == ()


def test_split_sign_payload_takes_out_proof_and_profile() -> None:
    split = split_sign_payload({"sub": "u", "proof": {"x": 1}, "profile": "orders"})
    assert split.request == {"sub": "u"} and split.proof == {"x": 1} and split.profile == "orders" and not split.ttl_given
    assert split_sign_payload({"sub": "u", "ttl": 5}).ttl_given
    assert split_sign_payload(["not", "an", "object"]).request == ["not", "an", "object"]


# --- loading -----------------------------------------------------------------

def test_json_and_yaml_load_to_the_same_policy_digest() -> None:
    import yaml

    assert load(json.dumps(yaml.safe_load(POLICY))).digest == load().digest
    assert load().digest != load(POLICY.replace("15m", "10m")).digest


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("- a list", "mapping"),
        ("profiles: {}", "disabled: true"),
        ("profiles:\n  a:\n    callers: []\n", "profiles.a.callers"),
        ("profiles: {}\nversion: 2", "unknown key"),
        (POLICY.replace("claims:", "claimz:"), "profiles.orders: unknown key"),
        (POLICY.replace('["roles", "email"]', '["roles", "azp"]'), "profiles.orders.claims"),
        (POLICY.replace('["roles", "email"]', '["exp"]'), "profiles.orders.claims"),
        (POLICY.replace("15m", "2h"), "max-token-ttl"),
        (POLICY.replace("15m", "true"), "profiles.orders.max_ttl"),
        (POLICY.replace("role/orders-service\"]", "role/team/orders-service\"]"), "path can never match"),
        (POLICY.replace("::123456789012:role/orders", "::*:role/orders"), "role name only"),
        (POLICY.replace("arn:aws:iam::123456789012:role/orders-service\"]", "arn:aws-iso:iam::123456789012:role/o\"]"), "partition"),
        (POLICY.replace("arn:aws:iam::123456789012:role/orders-service\"]", "arn:aws:iam::123456789012:user/o\"]"), "IAM role ARN"),
        (POLICY.replace('["payments-api"]', "payments-api"), "profiles.orders.audiences"),
        (POLICY.replace("  batch:", "  orders:"), "repeats a key"),
        ('{"profiles": {}, "profiles": {}}', "repeats a key"),
        ("profiles: [unclosed", "not valid YAML"),
        (POLICY.replace("^user-[0-9]+$", "(unclosed"), "profiles.orders.subjects[0]"),
        (POLICY.replace("  orders:", "  'bad name':"), "profile names"),
    ],
)
def test_invalid_policies_are_refused_naming_the_place(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(text)
    assert caught.value.code == "invalid_configuration"
    assert fragment in caught.value.message


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"^(\w+\s?)*$", r"(a|aa)+", r"(.*a){12}", r"(a)\1", r"(?<=x)y", r"a*b*c*d*", "a" * 257])
def test_patterns_that_could_backtrack_catastrophically_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(ConfigurationError):
        compile_subject_pattern(pattern)


def test_accepted_patterns_stay_fast_on_the_longest_subject() -> None:
    for pattern in (r"^user-[0-9]+$", r"[a-z]*[a-z]*!", r"(?:foo|bar)-.*", r"^svc:[a-z]+:[0-9]{4}$"):
        compiled = compile_subject_pattern(pattern)
        started = time.perf_counter()
        compiled.fullmatch("a" * MAX_SUBJECT_CHARS)
        assert time.perf_counter() - started < 0.25


# --- property: nothing outside a profile is ever authorized -------------------

ROLES = ["orders", "batch-a", "batch-b", "admin"]
AUDS = ["a1", "a2", "a3"]
CLAIMS = ["roles", "email", "tenant"]
SUBJECT_PATTERNS = [r"user-[0-9]+", r"job-[a-z]+", r"x.*"]


@st.composite
def profiles(draw: Any) -> dict[str, Any]:
    out = {}
    for index in range(draw(st.integers(1, 3))):
        callers = draw(st.lists(st.sampled_from([*ROLES, "batch-*"]), min_size=1, max_size=2, unique=True))
        out[f"p{index}"] = {
            "callers": [f"arn:aws:iam::123456789012:role/{role}" for role in callers],
            "audiences": draw(st.lists(st.sampled_from(AUDS), min_size=1, max_size=2, unique=True)),
            "subjects": draw(st.lists(st.sampled_from(SUBJECT_PATTERNS), min_size=1, max_size=2, unique=True)),
            "claims": draw(st.lists(st.sampled_from(CLAIMS), max_size=2, unique=True)),
            "max_ttl": draw(st.integers(1, 3600)),
            "disabled": draw(st.booleans()),
        }
    return out


@settings(max_examples=examples(400), deadline=None)
@given(
    profiles(),
    st.sampled_from(ROLES),
    st.sampled_from(["user-12", "job-x", "xyz", "root", "user-"]),
    st.one_of(st.sampled_from(AUDS), st.lists(st.sampled_from(AUDS), min_size=1, max_size=2)),
    st.lists(st.sampled_from(CLAIMS), max_size=3, unique=True),
    st.integers(1, 4000),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from(["p0", "p1", "p2", "p9"])),
)
def test_no_request_outside_a_profile_is_ever_authorized(
    document: dict[str, Any], role: str, sub: str, aud: Any, claims: list[str], ttl: int, ttl_given: bool, named: str | None
) -> None:
    policy = load_issuance_policy(json.dumps({"profiles": document}), max_token_ttl=3600, default_token_ttl=900)
    identity = session(f"arn:aws:iam::123456789012:role/{role}")
    try:
        decision = policy.authorize(identity, request(sub=sub, aud=aud, ttl=ttl, claims=dict.fromkeys(claims, 1)), profile=named, ttl_given=ttl_given)
    except SigningError:
        return
    granted = document[decision.azp]
    assert not granted["disabled"]
    assert named in (None, decision.azp)
    assert any(re.fullmatch(caller.replace("*", "[^/]*"), identity.role_arn or "") for caller in granted["callers"])
    assert all(a in granted["audiences"] for a in ([aud] if isinstance(aud, str) else aud))
    assert any(re.fullmatch(pattern, sub) for pattern in granted["subjects"])
    assert set(claims) <= set(granted["claims"])
    assert 1 <= decision.ttl <= granted["max_ttl"]
    assert decision.ttl == (ttl if ttl_given else min(900, granted["max_ttl"]))


@pytest.mark.parametrize("pattern", [r"(?:a|aa){100}", r"(?:ab|a.){20}", r"(?:(?:a|aa){8}){16}", r"(?:a|ab|b){120}"])
def test_an_alternation_under_a_fixed_count_is_refused_too(pattern: str) -> None:
    """Each copy of the group is a choice point: (?:a|aa){128} on 256 characters runs for minutes."""
    with pytest.raises(ConfigurationError, match="alternation"):
        compile_subject_pattern(pattern)


def test_single_character_alternations_under_a_repeat_still_pass() -> None:
    assert compile_subject_pattern(r"(?:a|b|c){3}-[0-9]+").fullmatch("abc-42")


def test_subject_patterns_have_ascii_meanings_unless_unicode_is_asked_for_explicitly() -> None:
    from jwks_rotator.core.issuance.profiles import compile_subject_pattern

    digits = compile_subject_pattern(r"user-\d+")
    assert digits.fullmatch("user-42") and not digits.fullmatch("user-\u0663\u0664")  # Arabic-Indic digits
    assert not compile_subject_pattern(r"\w+").fullmatch("\u00e9t\u00e9")
    admin = compile_subject_pattern(r"(?i)admin")
    assert admin.fullmatch("ADMIN") and not admin.fullmatch("ADM\u0130N")  # dotted capital I folds only under Unicode
    assert compile_subject_pattern(r"(?u)user-\d+").fullmatch("user-\u0663\u0664")  # the explicit opt-in
    assert compile_subject_pattern(r"(?iu)admin").fullmatch("ADM\u0130N")


def test_a_pattern_with_three_variable_quantifiers_is_refused() -> None:
    """Three in a row cost up to ~90 ms on a 256-character subject ((?i)a*a*a*b); two stay under 1 ms (measured)."""
    from jwks_rotator.core.errors import ConfigurationError
    from jwks_rotator.core.issuance.profiles import compile_subject_pattern

    compile_subject_pattern(r"(?i)[a-z]*[a-z]*x")
    with pytest.raises(ConfigurationError, match="variable quantifiers"):
        compile_subject_pattern(r"(?i)a*a*a*b")


VALUE_LIMITS = """
profiles:
  orders:
    callers: ["arn:aws:iam::123456789012:role/orders-service"]
    audiences: ["payments-api"]
    subjects: ["^user-[0-9]+$"]
    claims:
      roles: {type: array, values: [reader, writer]}
      tenant: {type: string, patterns: ["t-[0-9]{1,8}"]}
      level: {type: integer, values: [1, 2]}
      email: null
"""


def test_a_profile_may_limit_a_claims_values_and_a_refusal_names_the_claim() -> None:
    policy, orders = load(VALUE_LIMITS), session(ORDERS_ROLE)
    for allowed in ({"roles": ["reader"]}, {"roles": []}, {"tenant": "t-42"}, {"level": 2}, {"email": "anything@example.com"}):
        assert policy.authorize(orders, request(claims=allowed)).azp == "orders"
    for name, refused in (("roles", ["admin", "superuser"]), ("roles", "reader"), ("roles", ["reader", 1]), ("tenant", "t-42x"),
                          ("tenant", 42), ("level", True), ("level", 2.0), ("level", 3)):
        error = refusal(policy, orders, request(claims={name: refused}))
        assert error.code == "claims_not_allowed" and error.reason == "claim_value_not_allowed"
        assert repr(name) in error.message and str(refused) not in error.message.replace(repr(name), "")
    assert refusal(policy, orders, request(claims={"other": 1})).reason == "claim_not_listed"


def test_the_list_form_keeps_allowing_any_value() -> None:
    policy = load()
    assert policy.authorize(session(ORDERS_ROLE), request(claims={"roles": ["admin", "superuser"]}), profile="orders").azp == "orders"


@pytest.mark.parametrize(
    "limit",
    ["{type: text}", "{values: []}", "{patterns: ['(a+)+']}", "{colour: red}", "{type: object, values: [1]}", "[]", "{values: [{a: 1}]}"],
)
def test_malformed_claim_limits_are_refused_at_load(limit: str) -> None:
    text = VALUE_LIMITS.replace("{type: integer, values: [1, 2]}", limit)
    with pytest.raises(ConfigurationError) as caught:
        load(text)
    assert "claims.level" in caught.value.message

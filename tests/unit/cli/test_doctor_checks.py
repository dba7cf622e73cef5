"""doctor's checks as pure functions: each broken state is named with what to do; a healthy stack's normal states never fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState, load_private_key
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator_cli.doctor import http_date
from jwks_rotator_cli.doctor_checks import (
    check_active_key,
    check_alarms,
    check_break_glass,
    check_clock,
    check_discovery,
    check_document,
    check_jwks_keys,
    check_kms_custody,
    check_last_run,
    check_operator_roles,
    check_outputs,
    check_policy,
    check_rotation_on_time,
    check_signer,
    last_tick,
    max_age_of,
    worst,
)

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
S = timedelta(seconds=1)
OUTPUTS = dict.fromkeys(("Issuer", "IssuerUrl", "JwksUrl", "SignFunctionName", "RotateFunctionName", "KeyringSecretArn", "JwksBucketName"), "x")


def rotated_keyring(*, lead: timedelta, waived: bool = False, activated_ago: timedelta = 1 * S) -> Keyring:
    """A keyring right after a rotation: a retired key, the active one published ``lead`` before it activated, a pending one."""
    retired = generate_key("ES256", NOW - 60 * S, state=KeyState.RETIRED)
    activated = NOW - activated_ago
    active = generate_key("ES256", activated - lead - S, state=KeyState.ACTIVE).with_changes(
        published_at=activated - lead, activated_at=activated, lead_waived=waived
    )
    pending = generate_key("ES256", NOW, state=KeyState.PENDING).with_changes(published_at=NOW)
    return Keyring(keys=(retired, active, pending))


def test_outputs_name_what_is_missing():
    assert check_outputs("s", OUTPUTS).result == "ok"
    broken = check_outputs("s", {**OUTPUTS, "JwksUrl": ""})
    assert broken.result == "fail" and "lacks JwksUrl" in broken.detail and broken.todo


def test_a_document_is_judged_by_status_type_and_max_age():
    ok = check_document("JWKS", "u", 200, "application/json", "public, max-age=2", 2 * S)
    assert ok.result == "ok"
    assert check_document("JWKS", "u", 200, "application/json", "public, max-age=3600", 2 * S).result == "fail"
    assert check_document("JWKS", "u", 200, "application/json", "no-store", 2 * S).result == "fail"
    assert check_document("JWKS", "u", 200, "application/json", "max-age=1", 2 * S).result == "warn"
    assert check_document("JWKS", "u", 200, "text/html", "max-age=2", 2 * S).result == "fail"
    assert check_document("JWKS", "u", 403, "", "", 2 * S).result == "fail"
    unreachable = check_document("JWKS", "u", None, "", "", 2 * S, "connection refused")
    assert unreachable.result == "fail" and "connection refused" in unreachable.detail
    assert max_age_of("public, max-age=60") == 60 and max_age_of("public") is None


def test_discovery_must_name_the_issuer_exactly_and_the_jwks_url():
    assert check_discovery({"issuer": "https://i", "jwks_uri": "https://i/j"}, "https://i", "https://i/j").result == "ok"
    assert check_discovery({"issuer": "https://i/", "jwks_uri": "https://i/j"}, "https://i", "https://i/j").result == "fail"
    assert check_discovery({"issuer": "https://i", "jwks_uri": "https://x/j"}, "https://i", "https://i/j").result == "fail"


def test_kids_must_be_thumbprints_and_the_stacks_algorithm_published():
    key = generate_key("ES256", NOW)
    jwk = key.public_jwk()
    assert check_jwks_keys({"keys": [jwk]}, "ES256").result == "ok"
    assert check_jwks_keys({"keys": [{**jwk, "kid": "made-up"}]}, "ES256").result == "fail"
    assert check_jwks_keys({"keys": []}, "ES256").result == "fail"
    assert check_jwks_keys({"keys": [jwk]}, "RS256").result == "warn"


def test_the_active_key_must_be_public_and_published_for_the_lead():
    keyring = rotated_keyring(lead=4 * S)
    published = [k.kid for k in keyring.keys]
    assert check_active_key(keyring, published, 4 * S).result == "ok"
    short = rotated_keyring(lead=2 * S)
    assert check_active_key(short, [k.kid for k in short.keys], 4 * S).result == "fail"
    active = keyring.active
    assert active is not None
    missing = check_active_key(keyring, [k for k in published if k != active.kid], 4 * S)
    assert missing.result == "fail" and active.kid in missing.detail
    emergency = rotated_keyring(lead=0 * S, waived=True)
    assert check_active_key(emergency, [k.kid for k in emergency.keys], 4 * S).result == "warn"  # rotate --now
    assert check_active_key(None, [], 4 * S, "AccessDeniedException").result == "warn"


def test_a_fast_stack_right_after_a_rotation_is_never_failed():
    """12 s rotation, 4 s lead, 1 s schedule, 2 s max-age, checked the moment a key activated."""
    keyring = rotated_keyring(lead=4 * S, activated_ago=0 * S)
    checks = [
        check_active_key(keyring, [k.kid for k in keyring.keys], 4 * S),
        check_rotation_on_time(keyring, 12 * S, 1 * S, NOW),
        check_rotation_on_time(rotated_keyring(lead=4 * S, activated_ago=12 * S + 2 * S), 12 * S, 1 * S, NOW),  # a tick late
        check_document("JWKS", "u", 200, "application/json", "public, max-age=2", 2 * S),
    ]
    assert worst(checks) == "ok"


def test_a_rotation_long_overdue_fails():
    overdue = rotated_keyring(lead=4 * S, activated_ago=timedelta(hours=1))
    assert check_rotation_on_time(overdue, 12 * S, 1 * S, NOW).result == "fail"


def test_the_signer_is_authenticated_when_it_issues_or_refuses_after_the_proof():
    assert check_signer({"token": "t", "kid": "k"}, "me").result == "ok"
    refused = check_signer({"error": "caller_not_allowed", "message": "no profile"}, "me")
    assert refused.result == "ok" and "STS accepted" in refused.detail
    assert check_signer({"error": "unauthenticated", "message": "m"}, "me").result == "fail"
    unavailable = check_signer({"error": "signing_unavailable", "message": "m"}, "me")
    assert unavailable.result == "fail" and "cannot read its key" in unavailable.todo
    assert check_signer(None, "me", "AccessDeniedException").result == "fail"


def test_a_default_deployment_is_warned_about_not_failed():
    checks = [check_policy("disabled: true", True), check_operator_roles([]), check_break_glass(None)]
    assert [c.result for c in checks] == ["warn", "warn", "warn"]
    assert "issues nothing" in checks[0].detail and "revoke" in checks[1].detail and "cannot read the keyring" in checks[2].detail
    assert check_policy(None, None, "not downloadable").result == "warn"


def test_alarms_missing_or_firing():
    alarms = [{"AlarmName": f"a{i}", "StateValue": "OK"} for i in range(3)]
    assert worst(check_alarms(alarms, 3, "ops@example.com")) == "ok"
    assert worst(check_alarms(alarms[:2], 3, "ops@example.com")) == "fail"
    firing = [*alarms[:2], {"AlarmName": "s-SignerUnavailable", "StateValue": "ALARM"}]
    assert worst(check_alarms(firing, 3, "ops@example.com")) == "fail"
    burst = [*alarms[:2], {"AlarmName": "s-SignRefusalBurst", "StateValue": "ALARM"}]
    assert worst(check_alarms(burst, 3, "ops@example.com")) == "warn"
    assert worst(check_alarms([{"AlarmName": "a", "StateValue": "INSUFFICIENT_DATA"}], 1, "ops@example.com")) == "ok"
    assert worst(check_alarms(alarms, 3, None)) == "warn"
    assert worst(check_alarms([], 0, "ops@example.com")) == "warn"  # a stack without the template's alarms


def test_under_kms_custody_only_the_active_key_is_enabled():
    assert check_kms_custody([("a", "active", True), ("r", "retired", False), ("p", "pending", False)]).result == "ok"
    two_signers = check_kms_custody([("a", "active", True), ("r", "retired", True)])
    assert two_signers.result == "fail" and "r (retired, enabled)" in two_signers.detail
    assert check_kms_custody([("a", "active", False), ("r", "retired", False)]).result == "warn"  # the hand-over's wait
    assert check_kms_custody([("a", "active", True), ("p", "pending", True)]).result == "warn"  # mid-creation


def test_clock_skew():
    assert check_clock(NOW, NOW + 2 * S, "aws").result == "ok"
    assert check_clock(NOW, NOW + 30 * S, "aws").result == "warn"
    assert check_clock(NOW + timedelta(minutes=10), NOW, "aws").result == "fail"
    assert check_clock(NOW, None, "aws").result == "warn"
    assert http_date("Mon, 07 Dec 2026 03:00:00 GMT") == NOW
    assert http_date("garbage") is None and http_date("") is None


def audit_event(at: datetime, operation: str = "tick", error: str | None = None) -> dict[str, object]:
    line = {"type": "jwks-rotator.audit", "function": "rotate", "operation": operation, "decision": "performed", "error": error}
    return {"timestamp": int(at.timestamp() * 1000), "message": json.dumps(line)}


def test_the_last_scheduled_run_is_the_newest_tick_audit_line():
    events = [audit_event(NOW - 30 * S), audit_event(NOW - 5 * S, operation="revoke"), audit_event(NOW - 10 * S),
              {"timestamp": int(NOW.timestamp() * 1000), "message": "REPORT RequestId: x"}]
    tick = last_tick(events)
    assert tick is not None and tick["_ms"] == int((NOW - 10 * S).timestamp() * 1000)
    ok = check_last_run(tick, timedelta(minutes=2), None, NOW)
    assert ok.result == "ok" and ok.detail == "10s ago: tick performed"
    failed_run = check_last_run(last_tick([audit_event(NOW - 2 * S, error="StoreUnavailableError")]), timedelta(minutes=2), None, NOW)
    assert failed_run.result == "fail" and "StoreUnavailableError" in failed_run.detail


def test_no_scheduled_run_fails_unless_the_stack_is_younger_than_the_window():
    assert check_last_run(None, timedelta(minutes=45), timedelta(minutes=3), NOW).result == "warn"  # just deployed
    assert check_last_run(None, timedelta(minutes=45), timedelta(days=2), NOW).result == "fail"
    assert check_last_run(None, timedelta(minutes=45), None, NOW).result == "fail"


def test_a_shared_cache_held_longer_than_the_max_age_fails():
    """CloudFront obeys s-maxage over max-age: a longer one keeps verifiers on an old key set past the publish lead."""
    held = check_document("JWKS", "u", 200, "application/json", "public, max-age=2, s-maxage=86400", 2 * S)
    assert held.result == "fail" and "s-maxage=86400" in held.detail
    assert check_document("JWKS", "u", 200, "application/json", "public, max-age=2, s-maxage=2", 2 * S).result == "ok"
    assert check_document("JWKS", "u", 200, "application/json", "max-age=2, max-age=86400", 2 * S).result == "fail"  # caches differ
    assert check_document("JWKS", "u", 200, "application/json", "no-store, max-age=2", 2 * S).result == "warn"  # costs fetches


def test_a_jwks_holding_private_key_material_fails():
    jwk = generate_key("ES256", NOW).public_jwk()
    for member in ("d", "p", "q", "dp", "dq", "qi", "k", "oth"):
        leaked = check_jwks_keys({"keys": [{**jwk, member: "AAAA"}]}, "ES256")
        assert leaked.result == "fail" and member in leaked.detail and "AAAA" not in leaked.detail + leaked.todo


def test_a_malformed_jwks_fails_instead_of_crashing():
    for keys in (None, 5, {"kid": "x"}, "abc"):
        assert check_jwks_keys({"keys": keys}, "ES256").result == "fail"


def test_an_issued_token_must_verify_against_the_published_jwks():
    import jwt

    key = generate_key("ES256", NOW)
    other = generate_key("ES256", NOW)
    token = jwt.encode({"sub": "doctor", "exp": 1}, load_private_key(key.private_jwk), algorithm="ES256", headers={"kid": key.kid})
    jwks = {"keys": [key.public_jwk()]}
    assert check_signer({"token": token, "kid": key.kid}, "me", jwks=jwks).result == "ok"  # expired by now: still its key's
    unpublished = check_signer({"token": token, "kid": key.kid}, "me", jwks={"keys": [other.public_jwk()]})
    assert unpublished.result == "fail" and key.kid in unpublished.detail and token not in unpublished.detail
    forged = jwt.encode({"sub": "doctor"}, load_private_key(other.private_jwk), algorithm="ES256", headers={"kid": key.kid})
    bad = check_signer({"token": forged, "kid": key.kid}, "me", jwks=jwks)
    assert bad.result == "fail" and forged not in bad.detail + bad.todo
    assert check_signer({"token": "not-a-jwt", "kid": key.kid}, "me", jwks=jwks).result == "fail"


def test_a_key_published_for_an_algorithm_its_type_cannot_sign_fails():
    es256 = generate_key("ES256", NOW).public_jwk()
    other = generate_key("ES256", NOW + S).public_jwk()
    for alg in ("none", "HS256", "RS256"):  # beside a correct key, so the stack's algorithm is published
        wrong = check_jwks_keys({"keys": [es256, {**other, "alg": alg}]}, "ES256")
        assert wrong.result == "fail" and f"{other['kid']} ({alg})" in wrong.detail, wrong


def test_stale_while_revalidate_past_the_max_age_fails():
    """A cache may serve the old document for stale-while-revalidate past max-age: that is as long as a longer max-age."""
    stale = check_document("JWKS", "u", 200, "application/json", "public, max-age=2, stale-while-revalidate=86400", 2 * S)
    assert stale.result == "fail" and "stale-while-revalidate=86400" in stale.detail


def test_an_alarm_still_without_data_an_hour_after_deployment_warns():
    """Every template alarm treats missing data as OK or breaching: one still INSUFFICIENT_DATA cannot evaluate, so never pages."""
    alarms = [{"AlarmName": "s-RotateErrors", "StateValue": "OK"}, {"AlarmName": "s-SignerUnavailable", "StateValue": "INSUFFICIENT_DATA"}]
    fresh = check_alarms(alarms, 2, "ops@example.com", stack_age=timedelta(minutes=5))
    assert worst(fresh) == "ok"  # just deployed: not evaluated yet
    stuck = check_alarms(alarms, 2, "ops@example.com", stack_age=timedelta(days=3))
    assert worst(stuck) == "warn" and any("s-SignerUnavailable" in c.detail and c.result == "warn" for c in stuck)

"""The token signer: JWS output per algorithm, registered claims, and the key cache (in-memory keyring reader, fake clock)."""

from __future__ import annotations

import base64
import contextvars
import json
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest

from jwks_rotator.core.errors import SigningUnavailableError, StoreError, TtlTooLongError
from jwks_rotator.core.issuance.limits import MAX_TOKEN_BYTES
from jwks_rotator.core.issuance.signer import REFRESH_INTERVAL, TokenSigner
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator_testkit.clock import FakeClock
from tests.sign_support import (
    ALGORITHMS,
    ISSUER,
    InMemoryKeyringReader,
    InMemoryRevocations,
    active_key,
    keyring_json,
    pending_key,
    public_key,
    settings,
)

REQUEST = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}


def segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def make_signer(
    text: str, *, clock: FakeClock | None = None, revocations: InMemoryRevocations | None = None, **changes: Any
) -> tuple[TokenSigner, InMemoryKeyringReader, FakeClock]:
    reader = InMemoryKeyringReader(text)
    clock = clock or FakeClock()
    signer = TokenSigner(settings(**changes), reader, clock=clock.unix, monotonic=clock.monotonic, revocations=revocations)
    return signer, reader, clock


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_tokens_verify_with_the_public_key_for_every_algorithm(alg: str) -> None:
    key = active_key(alg)
    signer, _, clock = make_signer(keyring_json(key, pending_key(alg)), algorithm=alg)
    response = signer.handle(REQUEST).response
    assert set(response) == {"token", "token_type", "kid", "alg", "expires_at"}
    assert (response["token_type"], response["kid"], response["alg"]) == ("Bearer", key.kid, alg)
    claims = jwt.decode(response["token"], public_key(key), algorithms=[alg], audience="orders-api", issuer=ISSUER)
    iat = int(clock.unix())
    assert {k: claims[k] for k in ("sub", "aud", "iat", "nbf", "exp", "roles", "email_verified")} == {
        "sub": "user-123", "aud": "orders-api", "iat": iat, "nbf": iat - 60, "exp": iat + 300,
        "roles": ["admin"], "email_verified": True,
    }
    assert response["expires_at"] == claims["exp"]
    assert segment(response["token"], 0) == {"alg": alg, "typ": "JWT", "kid": key.kid}


def test_a_token_signed_with_another_key_does_not_verify() -> None:
    signer, _, _ = make_signer(keyring_json(active_key("ES256")))
    token = signer.issue(REQUEST).token
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, public_key(pending_key("ES256")), algorithms=["ES256"], audience="orders-api")


def test_jti_is_unique_and_128_bits() -> None:
    signer, _, _ = make_signer(keyring_json(active_key("EdDSA")))
    jtis = [signer.issue(REQUEST).jti for _ in range(5000)]
    assert len(set(jtis)) == len(jtis)
    assert all(len(base64.urlsafe_b64decode(j + "==")) == 16 for j in jtis[:50])


def test_nbf_is_back_dated_so_a_verifier_five_seconds_behind_accepts_it() -> None:
    key = active_key("ES256")
    ahead = FakeClock(time.time() + 5)  # the signer's clock runs 5 s ahead of the verifier's
    signer, _, _ = make_signer(keyring_json(key), clock=ahead)
    token = signer.issue(REQUEST).token
    # PyJWT also refuses an iat in its future; iat stays truthful, so only nbf is under test here.
    options = {"verify_iat": False}
    claims = jwt.decode(token, public_key(key), algorithms=["ES256"], audience="orders-api", options=options)
    assert claims["nbf"] < claims["iat"]
    strict = make_signer(keyring_json(key), clock=ahead, clock_skew_leeway=timedelta(0))[0].issue(REQUEST).token
    with pytest.raises(jwt.ImmatureSignatureError):
        jwt.decode(strict, public_key(key), algorithms=["ES256"], audience="orders-api", options=options)


def test_a_token_over_the_size_cap_is_refused_before_signing() -> None:
    signer, _, _ = make_signer(keyring_json(active_key("RS256")), algorithm="RS256")
    claims = {f"c{i}": "x" * 90 for i in range(70)}  # under the request cap, over the token cap once encoded
    outcome = signer.handle({"sub": "u", "aud": "a", "claims": claims})
    assert outcome.response["error"] == "payload_too_large"
    fits = signer.handle({"sub": "u", "aud": "a", "claims": {f"c{i}": "x" * 90 for i in range(40)}})
    assert len(fits.response["token"]) <= MAX_TOKEN_BYTES


def test_unicode_claims_are_carried_as_utf8() -> None:
    key = active_key("ES256")
    signer, _, _ = make_signer(keyring_json(key))
    claims = {"name": "Zoë 🐍 \u2028", "empty": "", "": "nameless"}
    token = signer.issue({"sub": "ü", "aud": "a", "claims": claims}).token
    decoded = jwt.decode(token, public_key(key), algorithms=["ES256"], audience="a")
    assert {k: decoded[k] for k in claims} == claims and decoded["sub"] == "ü"


# --- key cache ------------------------------------------------------------------
def test_a_warm_signer_makes_no_aws_call_for_a_thousand_tokens() -> None:
    signer, reader, clock = make_signer(keyring_json(active_key()))
    signer.issue(REQUEST)
    assert reader.calls == 1
    for _ in range(1000):
        clock.advance(0.01)  # ten seconds in all, inside signer-cache-ttl
        signer.issue(REQUEST)
    assert reader.calls == 1


def test_refusals_never_read_the_secret() -> None:
    signer, reader, _ = make_signer(keyring_json(active_key()))
    assert signer.handle({"sub": "u"}).response["error"] == "invalid_request"
    assert reader.calls == 0


def test_the_cache_is_read_again_after_signer_cache_ttl_and_a_same_version_is_not_reloaded() -> None:
    signer, reader, clock = make_signer(keyring_json(active_key()), signer_cache_ttl=timedelta(seconds=60))
    first = signer.cache.get(clock.unix())
    clock.advance(59.9)
    signer.issue(REQUEST)
    assert reader.calls == 1
    clock.advance(0.1)
    signer.issue(REQUEST)
    assert reader.calls == 2
    assert signer.cache.get(clock.unix()) is first  # same VersionId: nothing parsed or loaded again


def test_a_new_version_with_a_new_active_key_is_used_after_the_ttl() -> None:
    old, new = active_key("ES256", index=0), active_key("ES256", index=1)
    signer, reader, clock = make_signer(keyring_json(old))
    assert signer.issue(REQUEST).kid == old.kid
    reader.publish(keyring_json(old.with_changes(state=KeyState.RETIRED, retired_at=old.activated_at), new), "v2")
    clock.advance(30)
    assert signer.issue(REQUEST).kid == old.kid  # still fresh
    clock.advance(30)
    assert signer.issue(REQUEST).kid == new.kid


def test_a_new_version_with_the_same_active_key_keeps_the_loaded_key() -> None:
    key = active_key("RS256")
    signer, reader, clock = make_signer(keyring_json(key), algorithm="RS256")
    loaded = signer.cache.get(clock.unix())
    reader.publish(keyring_json(key, pending_key("RS256")), "v2")
    clock.advance(61)
    again = signer.cache.get(clock.unix())
    assert reader.calls == 2 and again is not loaded and again.sign is loaded.sign


def test_an_overdue_key_triggers_early_reads_at_most_once_per_interval() -> None:
    clock = FakeClock()
    period = timedelta(days=7)
    overdue = active_key("ES256", activated=clock.unix() - period.total_seconds() - 1)
    signer, reader, _ = make_signer(keyring_json(overdue), clock=clock)
    assert signer.issue(REQUEST).kid == overdue.kid  # still the active key in the secret: it signs
    for _ in range(50):
        clock.advance(REFRESH_INTERVAL / 10)
        signer.issue(REQUEST)
    assert 5 <= reader.calls <= 7  # one read per interval over five intervals, not one per token
    successor = active_key("ES256", index=1)
    reader.publish(keyring_json(successor), "v2")
    clock.advance(REFRESH_INTERVAL)
    assert signer.issue(REQUEST).kid == successor.kid  # picked up well before signer-cache-ttl


def test_no_active_key_answers_signing_unavailable_and_retries_at_most_once_per_interval() -> None:
    signer, reader, clock = make_signer(keyring_json(pending_key()))
    for _ in range(20):
        assert signer.handle(REQUEST).response["error"] == "signing_unavailable"
        clock.advance(REFRESH_INTERVAL / 4)
    assert reader.calls == 5
    key = active_key()
    reader.publish(keyring_json(key), "v2")
    clock.advance(REFRESH_INTERVAL)
    assert signer.issue(REQUEST).kid == key.kid


def test_an_unpublished_active_key_never_signs() -> None:
    signer, _, _ = make_signer(keyring_json(active_key(published=False), pending_key()))
    outcome = signer.handle(REQUEST)
    assert outcome.response == {"error": "signing_unavailable", "message": "no signing key: the active key has not been published"}


@pytest.mark.parametrize("text", ["not json", "{}", json.dumps({"format": "jwks-rotator/keyring/v1", "keys": [{"kid": 1}]})])
def test_a_malformed_keyring_answers_signing_unavailable(text: str) -> None:
    signer, _, _ = make_signer(text)
    assert signer.handle(REQUEST).response["error"] == "signing_unavailable"


def test_an_active_key_whose_material_does_not_match_its_algorithm_is_unusable() -> None:
    wrong = active_key("ES256").with_changes(alg="ES384")
    signer, _, _ = make_signer(keyring_json(wrong))
    assert signer.handle(REQUEST).response["error"] == "signing_unavailable"


FAILURES = [
    StoreError("throttled: slow down", reason="ThrottlingException"),
    StoreError("no connection to https://secretsmanager.example", reason="EndpointConnectionError"),
    RuntimeError("anything"),  # a broken adapter: named by type only
]


@pytest.mark.parametrize("failure", FAILURES, ids=["throttled", "unreachable", "adapter-bug"])
def test_a_failed_first_read_answers_signing_unavailable_and_is_retried_after_the_interval(failure: Exception) -> None:
    signer, reader, clock = make_signer(keyring_json(active_key()))
    reader.failure = failure
    for _ in range(10):
        assert signer.handle(REQUEST).response["error"] == "signing_unavailable"
    assert reader.calls == 1
    reader.failure = None
    clock.advance(REFRESH_INTERVAL)
    assert "token" in signer.handle(REQUEST).response
    assert reader.calls == 2


def test_a_prefetched_first_read_is_the_one_the_first_token_uses() -> None:
    revocations = InMemoryRevocations()
    signer, reader, _ = make_signer(keyring_json(active_key()), revocations=revocations)
    signer.cache.prefetch()
    signer.cache.prefetch()  # one background read at most
    assert "token" in signer.handle(REQUEST).response
    assert (reader.calls, revocations.calls) == (1, 1)
    signer.cache.prefetch()  # the cache was read: nothing to start
    signer.cache.settle()
    assert (reader.calls, revocations.calls) == (1, 1)


@pytest.mark.parametrize("failure", FAILURES, ids=["throttled", "unreachable", "adapter-bug"])
def test_a_failed_prefetch_answers_as_a_failed_first_read_and_is_retried_after_the_interval(failure: Exception) -> None:
    signer, reader, clock = make_signer(keyring_json(active_key()))
    reader.failure = failure
    signer.cache.prefetch()
    signer.cache.settle()
    unprefetched, other_reader, _ = make_signer(keyring_json(active_key()))
    other_reader.failure = failure
    assert signer.handle(REQUEST).response == unprefetched.handle(REQUEST).response  # signing_unavailable, the same reason
    assert reader.calls == 1  # the failed background read counts as the attempt: no second read inside the interval
    reader.failure = None
    clock.advance(REFRESH_INTERVAL)
    assert "token" in signer.handle(REQUEST).response
    assert reader.calls == 2


def test_a_prefetch_of_a_revoked_active_key_signs_nothing() -> None:
    record = active_key()
    signer, _, _ = make_signer(keyring_json(record), revocations=InMemoryRevocations(record.kid))
    signer.cache.prefetch()
    assert signer.handle(REQUEST).response["error"] == "signing_unavailable"


INVOCATION: contextvars.ContextVar[str] = contextvars.ContextVar("invocation", default="none")


def test_a_prefetch_reads_in_the_context_of_the_invocation_that_started_it() -> None:
    # what an invocation sets up in its context (the local stack: the function's environment and credentials) holds
    # for the background read too
    seen: list[str] = []

    class ContextReader(InMemoryKeyringReader):
        def read_current(self) -> Any:
            seen.append(INVOCATION.get())
            return super().read_current()

    reader = ContextReader(keyring_json(active_key()))
    signer = TokenSigner(settings(), reader)
    INVOCATION.set("first")
    signer.cache.prefetch()
    assert "token" in signer.handle(REQUEST).response
    assert seen == ["first"]


def test_settle_without_a_prefetch_reads_nothing() -> None:
    signer, reader, _ = make_signer(keyring_json(active_key()))
    signer.cache.settle()
    assert reader.calls == 0


def test_a_failed_read_after_the_ttl_stops_signing_with_the_cached_key() -> None:
    signer, reader, clock = make_signer(keyring_json(active_key()), signer_cache_ttl=timedelta(seconds=60))
    signer.issue(REQUEST)
    reader.failure = FAILURES[0]
    clock.advance(60)
    outcome = signer.handle(REQUEST)
    assert outcome.response["error"] == "signing_unavailable"
    assert "ThrottlingException" in outcome.response["message"] and "slow down" not in outcome.response["message"]


def test_a_broken_reader_is_named_by_its_failure_type_only() -> None:
    signer, reader, _ = make_signer(keyring_json(active_key()))
    reader.failure = FAILURES[2]
    message = signer.handle(REQUEST).response["message"]
    assert "RuntimeError" in message and "anything" not in message


def test_a_failed_early_read_keeps_the_cached_key_until_its_ttl_ends() -> None:
    clock = FakeClock()
    overdue = active_key("ES256", activated=clock.unix() - timedelta(days=8).total_seconds())
    signer, reader, _ = make_signer(keyring_json(overdue), clock=clock, signer_cache_ttl=timedelta(seconds=60))
    signer.issue(REQUEST)
    reader.failure = FAILURES[1]
    clock.advance(30)
    assert signer.issue(REQUEST).kid == overdue.kid
    clock.advance(30)
    with pytest.raises(SigningUnavailableError):
        signer.issue(REQUEST)


def test_the_signer_refuses_to_start_without_issuer_or_secret() -> None:
    from jwks_rotator.core.errors import ConfigurationError
    from jwks_rotator.core.settings import Settings

    with pytest.raises(ConfigurationError):
        TokenSigner(Settings(keyring_secret_id="k"), InMemoryKeyringReader("{}"))
    with pytest.raises(ConfigurationError):
        TokenSigner(Settings(issuer=ISSUER), InMemoryKeyringReader("{}"))


# --- revocations, restore holds and the cache's clock -------------------------------
def test_a_revoked_active_key_never_signs_and_nothing_else_is_signed_instead() -> None:
    key = active_key("ES256")
    signer, _, _ = make_signer(keyring_json(key, pending_key("ES256")), revocations=InMemoryRevocations(key.kid))
    outcome = signer.handle(REQUEST)
    assert outcome.response == {"error": "signing_unavailable", "message": f"no signing key: the active key {key.kid} is revoked"}


def test_a_kid_tombstoned_in_the_keyring_never_signs() -> None:
    from datetime import UTC, datetime

    from jwks_rotator.core.keys.keyring import Keyring

    key = active_key("ES256")
    text = Keyring(keys=(key,)).with_revocation(key.kid, datetime.now(UTC)).to_json()
    signer, _, _ = make_signer(text, revocations=InMemoryRevocations())
    assert signer.handle(REQUEST).response["error"] == "signing_unavailable"


def test_a_revocation_stops_the_cached_key_within_signer_cache_ttl_and_not_before_its_next_read() -> None:
    key = active_key("ES256")
    revocations = InMemoryRevocations()
    signer, reader, clock = make_signer(keyring_json(key), revocations=revocations, signer_cache_ttl=timedelta(seconds=60))
    assert signer.issue(REQUEST).kid == key.kid
    revocations.kids.add(key.kid)  # the keyring secret is unchanged (restored to a version from before the revoke)
    clock.advance(59)
    assert signer.issue(REQUEST).kid == key.kid  # the warm cache: no read inside the ttl
    assert revocations.calls == 1
    clock.advance(1)
    assert signer.handle(REQUEST).response["error"] == "signing_unavailable"
    assert (reader.calls, revocations.calls) == (2, 2)


def test_a_new_revocation_on_an_unchanged_keyring_version_is_not_confirmed_from_the_cache() -> None:
    key = active_key("ES256")
    revocations = InMemoryRevocations("some-older-kid")
    signer, _, clock = make_signer(keyring_json(key), revocations=revocations)
    signer.issue(REQUEST)
    revocations.kids.add(key.kid)
    clock.advance(61)
    with pytest.raises(SigningUnavailableError, match="revoked"):
        signer.issue(REQUEST)


@pytest.mark.parametrize("failure", FAILURES, ids=["throttled", "unreachable", "adapter-bug"])
def test_an_unreadable_revocation_list_answers_signing_unavailable_like_an_unreadable_keyring(failure: Exception) -> None:
    revocations = InMemoryRevocations()
    signer, _, clock = make_signer(keyring_json(active_key()), revocations=revocations, signer_cache_ttl=timedelta(seconds=60))
    signer.issue(REQUEST)
    revocations.failure = failure
    clock.advance(60)
    message = signer.handle(REQUEST).response["message"]
    assert message.startswith("no signing key: the revocation list could not be read (")
    assert "slow down" not in message and "anything" not in message
    revocations.failure = None
    clock.advance(REFRESH_INTERVAL)
    assert "token" in signer.handle(REQUEST).response


def test_a_parameter_that_is_missing_reads_as_a_failure_so_the_signer_fails_closed() -> None:
    revocations = InMemoryRevocations()
    revocations.failure = StoreError("cannot read the revocation list: ParameterNotFound", reason="ParameterNotFound")
    signer, _, _ = make_signer(keyring_json(active_key()), revocations=revocations)
    assert "ParameterNotFound" in signer.handle(REQUEST).response["message"]


def test_a_keyring_under_a_restore_hold_signs_nothing_and_says_why() -> None:
    from jwks_rotator.core.keys.keyring import Keyring

    key = active_key("ES256")
    held = Keyring(keys=(key,)).with_restore_hold(True).to_json()
    told: list[tuple[str, str]] = []
    signer, reader, clock = make_signer(held, revocations=InMemoryRevocations())
    signer.cache._listener = lambda trigger, outcome, key, reason: told.append((outcome, reason))
    outcome = signer.handle(REQUEST)
    assert outcome.response["error"] == "signing_unavailable" and "accept-restore" in outcome.response["message"]
    assert told == [("unusable", outcome.response["message"])]
    reader.publish(Keyring(keys=(key,)).with_restore_hold(True).with_restore_hold(False).to_json(), "v2")  # accepted
    clock.advance(REFRESH_INTERVAL)
    assert signer.issue(REQUEST).kid == key.kid


def test_a_wall_clock_stepped_back_does_not_extend_the_cache() -> None:
    wall, monotonic = FakeClock(), FakeClock()
    key = active_key("ES256")
    revocations = InMemoryRevocations()
    signer = TokenSigner(
        settings(signer_cache_ttl=timedelta(seconds=60)), InMemoryKeyringReader(keyring_json(key)),
        clock=wall.unix, monotonic=monotonic.monotonic, revocations=revocations,
    )
    assert signer.issue(REQUEST).kid == key.kid
    revocations.kids.add(key.kid)
    wall.advance(30)
    monotonic.advance(30)
    wall.advance(-600)  # NTP steps the wall clock back ten minutes; monotonic time goes on
    wall.advance(30)
    monotonic.advance(30)
    outcome = signer.handle(REQUEST)
    assert outcome.response["error"] == "signing_unavailable" and "revoked" in outcome.response["message"]


def test_tokens_are_dated_by_the_wall_clock_not_the_monotonic_one() -> None:
    wall, monotonic = FakeClock(1_800_000_000.0), FakeClock(5.0)
    signer = TokenSigner(settings(), InMemoryKeyringReader(keyring_json(active_key())), clock=wall.unix, monotonic=monotonic.monotonic)
    issued = signer.issue(REQUEST)
    assert issued.expires_at == 1_800_000_000 + 300


def test_a_signer_with_a_raised_max_token_ttl_waits_until_the_key_records_it() -> None:
    """The key's retention follows the max-token-ttl it records; a signer deployed with a higher one (a change no rotator
    tick has recorded, or a rollback in between) must not issue tokens that could outlive the key in the JWKS."""
    recorded = active_key("ES256").with_changes(max_token_ttl=timedelta(hours=1))
    signer, _reader, _clock = make_signer(keyring_json(recorded), max_token_ttl=timedelta(hours=24), default_token_ttl=timedelta(minutes=15))
    assert signer.issue({"sub": "u", "aud": "orders-api", "ttl": 3600}).ttl == 3600
    with pytest.raises(TtlTooLongError, match="at most 3600 seconds until the rotator records"):
        signer.issue({"sub": "u", "aud": "orders-api", "ttl": 3601})


def test_an_early_read_in_flight_never_holds_other_invocations_off_the_cached_key() -> None:
    # The early read of an overdue key is network I/O (the extension, S3): while one invocation waits on it, others on
    # threads still sign with the key cached within its ttl instead of queueing behind the read.
    import threading

    clock = FakeClock()
    overdue = active_key("ES256", activated=clock.unix() - timedelta(days=7).total_seconds() - 1)
    signer, reader, _ = make_signer(keyring_json(overdue), clock=clock)
    assert signer.issue(REQUEST).kid == overdue.kid
    in_read, release = threading.Event(), threading.Event()
    plain_read = reader.read_current

    def slow_read() -> Any:
        in_read.set()
        release.wait(10)
        return plain_read()

    reader.read_current = slow_read  # type: ignore[method-assign]
    clock.advance(REFRESH_INTERVAL)
    early = threading.Thread(target=signer.issue, args=(REQUEST,))
    early.start()
    assert in_read.wait(5)
    answers: list[str] = []
    other = threading.Thread(target=lambda: answers.append(signer.issue(REQUEST).kid))
    other.start()
    other.join(2)
    released_late = other.is_alive()
    release.set()
    early.join(5)
    other.join(5)
    assert not released_late, "an invocation waited for another's early read"
    assert answers == [overdue.kid]

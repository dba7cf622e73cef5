"""Proof verification: one STS replay per proof lifetime, cached failures, a replay rate bound, clock skew."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest

from jwks_rotator.adapters.lean.sts_identity import StsEndpoint, read_sts_answer
from jwks_rotator.core.callers.proof import CallerProof
from jwks_rotator.core.callers.verifier import CallerVerifier, ReplayAnswer
from jwks_rotator.core.errors import ConfigurationError, SigningUnavailableError, UnauthenticatedError
from jwks_rotator_testkit.clock import FakeClock
from tests.unit.core.callers.test_proof import HOST, REGION, SIGNED_AT, SIGNER, authorization, proof

ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/orders-service/session-1"


class FakeReplayer:
    def __init__(self, *answers: ReplayAnswer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[CallerProof] = []

    def replay(self, proof: CallerProof) -> ReplayAnswer:
        self.calls.append(proof)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def verifier(replayer: FakeReplayer, clocks: FakeClock, **kwargs: Any) -> CallerVerifier:
    options: dict[str, Any] = {"max_age": 300, "leeway": 60, "rate_per_second": 1.0, "burst": 3, "cache_size": 8, "random_source": lambda: 0.0, **kwargs}
    return CallerVerifier(replayer, wall_clock=clocks.unix, monotonic_clock=clocks.monotonic, sts_host=HOST, sts_region=REGION, **options)


def distinct_proof(index: int) -> dict[str, Any]:
    return proof(Authorization=authorization(signature=f"{index:064x}"))


def test_a_warm_caller_costs_one_replay_per_proof_lifetime() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    events: list[str] = []
    subject = verifier(replayer, clocks, on_event=events.append)
    for _ in range(50):
        identity = subject.verify(proof(), {SIGNER})
        clocks.advance(5)
    assert identity.role_arn == "arn:aws:iam::123456789012:role/orders-service"
    assert len(replayer.calls) == 1 and events.count("cache_hit") == 49


def test_a_proof_is_refused_once_expired_even_if_cached() -> None:
    clocks = FakeClock(SIGNED_AT + 1)
    subject = verifier(FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION)), clocks)
    subject.verify(proof(), {SIGNER})
    clocks.advance(299)
    with pytest.raises(UnauthenticatedError) as caught:
        subject.verify(proof(), {SIGNER})
    assert caught.value.reason == "proof_expired"


def test_the_cache_deadline_follows_the_monotonic_clock_when_the_wall_clock_steps_back() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks)
    subject.verify(proof(), {SIGNER})
    clocks.advance(400)
    clocks.step_wall(-400)  # the wall clock stepped back: the proof still parses, but its cache entry is spent
    subject.verify(proof(), {SIGNER})
    assert len(replayer.calls) == 2


def test_a_refused_proof_is_cached_as_refused_for_its_window() -> None:
    clocks = FakeClock(SIGNED_AT + 1)
    replayer = FakeReplayer(ReplayAnswer(403, error_code="SignatureDoesNotMatch"))
    events: list[str] = []
    subject = verifier(replayer, clocks, on_event=events.append)
    for _ in range(3):
        with pytest.raises(UnauthenticatedError) as caught:
            subject.verify(proof(), {SIGNER})
        assert caught.value.reason == "sts_refused:SignatureDoesNotMatch"
        assert "Signature" not in caught.value.message
    assert len(replayer.calls) == 1 and events == ["refused", "refused_cached", "refused_cached"]


@pytest.mark.parametrize(
    "failure",
    [ReplayAnswer(500, error_code="InternalFailure"), ReplayAnswer(400, error_code="Throttling"), ReplayAnswer(429), SigningUnavailableError("no answer")],
)
def test_sts_outages_are_unavailable_and_not_cached(failure: Any) -> None:
    clocks = FakeClock(SIGNED_AT + 1)
    replayer = FakeReplayer(failure, ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks)
    with pytest.raises(SigningUnavailableError):
        subject.verify(proof(), {SIGNER})
    assert subject.verify(proof(), {SIGNER}).account == "123456789012"
    assert len(replayer.calls) == 2


def keyed_proof(index: int, *, key: str | None = None) -> dict[str, Any]:
    """A distinct proof signed (as far as the local checks see) with access key ``key`` (default one per index)."""
    access_key = key or f"ASIA{index:016d}"
    value = authorization(signature=f"{index:064x}").replace("ASIAEXAMPLEKEY123456", access_key)
    return proof(Authorization=value)


def test_new_proofs_past_the_rate_bound_are_refused_and_not_cached() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks, burst=3, rate_per_second=1.0)
    for index in range(3):
        subject.verify(keyed_proof(index), {SIGNER})
    with pytest.raises(UnauthenticatedError) as caught:
        subject.verify(keyed_proof(3), {SIGNER})
    assert caught.value.reason == "rate_limited"
    subject.verify(keyed_proof(0), {SIGNER})  # cached proofs cost no token
    clocks.advance(1.0)
    subject.verify(keyed_proof(3), {SIGNER})
    assert len(replayer.calls) == 4


def test_a_flood_of_forged_proofs_cannot_starve_a_caller_sts_already_vouched_for() -> None:
    """Forging a proof that passes the local checks needs no credentials; a known caller re-signs with its session key."""
    clocks = FakeClock(SIGNED_AT + 1)
    known = "ASIAKNOWNCALLER00001"
    replayer = FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks, burst=3, rate_per_second=1.0)
    subject.verify(keyed_proof(0, key=known), {SIGNER})
    replayer.answers = [ReplayAnswer(403, error_code="InvalidClientTokenId")]
    for index in range(1, 10):  # forged: random keys, refused by STS, then rate limited
        with pytest.raises(UnauthenticatedError):
            subject.verify(keyed_proof(index), {SIGNER})
    replayer.answers = [ReplayAnswer(200, arn=ROLE_SESSION)]
    assert subject.verify(keyed_proof(99, key=known), {SIGNER}).role_arn == "arn:aws:iam::123456789012:role/orders-service"


def test_re_cased_copies_of_a_proof_cannot_push_a_warm_caller_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies of one valid proof with re-cased, re-ordered headers each land in the by-contents memory; least recently
    used goes first, so a caller presenting its proof keeps being answered from memory without a parse."""
    from jwks_rotator.core.callers import verifier as caller_verifier

    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks, cache_size=8)
    warm = keyed_proof(0, key="ASIAWARMCALLER000001")
    subject.verify(warm, {SIGNER})
    parsed: list[object] = []
    real_parse = caller_verifier.parse_caller_proof
    monkeypatch.setattr(caller_verifier, "parse_caller_proof", lambda raw, **kw: parsed.append(raw) or real_parse(raw, **kw))
    attacker = keyed_proof(1, key="ASIAATTACKER00000001")
    for variant in range(40):
        copy = {"headers": {(name.upper() if variant % 2 else name.lower()) + " " * 0: value for name, value in attacker["headers"].items()},
                "body": attacker["body"]}
        copy["headers"] = dict(reversed(list(copy["headers"].items()))) if variant % 3 else copy["headers"]
        subject.verify(copy, {SIGNER})
        subject.verify(warm, {SIGNER})  # the warm caller keeps presenting its proof
    assert len(replayer.calls) == 2  # the attacker's copies cost no replay, the warm caller none after its first
    assert warm not in parsed  # and the warm caller was never parsed again


def test_the_cache_evicts_the_oldest_proof() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks, cache_size=2, burst=10)
    for index in (0, 1, 2, 1, 0):
        subject.verify(distinct_proof(index), {SIGNER})
    assert len(replayer.calls) == 4  # 0, 1, 2, then 0 again after it was evicted


def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    subject = verifier(FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION)), FakeClock(SIGNED_AT - 30))
    assert subject.verify(proof(), {SIGNER}).is_role
    with pytest.raises(UnauthenticatedError):
        verifier(FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION)), FakeClock(SIGNED_AT - 90)).verify(proof(), {SIGNER})


def test_local_refusals_cost_no_replay() -> None:
    replayer = FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    with pytest.raises(UnauthenticatedError):
        verifier(replayer, FakeClock(SIGNED_AT + 1)).verify(proof(), {"another-function"})
    assert replayer.calls == []


def test_a_window_longer_than_stss_own_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        verifier(FakeReplayer(ReplayAnswer(200)), FakeClock(0), max_age=900, leeway=60)


def test_sts_answers_are_read_without_an_xml_parser() -> None:
    ok = b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><UserId>AROA:s</UserId><Account>123456789012</Account><Arn>' + ROLE_SESSION.encode() + b"</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"
    assert read_sts_answer(200, ok) == ReplayAnswer(200, arn=ROLE_SESSION)
    error = b"<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>x</Message></Error></ErrorResponse>"
    assert read_sts_answer(403, error) == ReplayAnswer(403, error_code="ExpiredToken")
    with pytest.raises(SigningUnavailableError):
        read_sts_answer(200, b'<!DOCTYPE x [<!ENTITY a "b">]><GetCallerIdentityResult><Arn>&a;</Arn></GetCallerIdentityResult>')
    with pytest.raises(SigningUnavailableError):
        read_sts_answer(200, b"<html>proxy page</html>")


def test_the_sts_endpoint_comes_from_the_region_or_the_override() -> None:
    assert StsEndpoint.from_environment({"AWS_REGION": "eu-west-1"}) == StsEndpoint("https://sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com", "eu-west-1")
    assert StsEndpoint.from_environment({"AWS_REGION": "cn-north-1"}).host == "sts.cn-north-1.amazonaws.com.cn"
    local = StsEndpoint.from_environment({"AWS_REGION": "us-east-1", "STS_ENDPOINT_URL": "http://127.0.0.1:4566"}, local=True)
    assert (local.origin, local.host) == ("http://127.0.0.1:4566", "127.0.0.1:4566")
    assert StsEndpoint.for_origin("https://sts.example.com:443", "us-east-1").host == "sts.example.com"
    with pytest.raises(ConfigurationError):
        StsEndpoint.from_environment({})
    with pytest.raises(ConfigurationError):
        StsEndpoint.for_origin("https://sts.example.com/path", "us-east-1")


def test_a_proof_verified_for_one_signer_is_not_accepted_by_another_from_memory() -> None:
    clocks = FakeClock(SIGNED_AT + 1)
    subject = verifier(FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION)), clocks)
    subject.verify(proof(), {SIGNER})
    with pytest.raises(UnauthenticatedError) as caught:
        subject.verify(proof(), {"another-function"})
    assert caught.value.reason == "signer_mismatch"


def test_a_presented_proof_changed_in_place_is_checked_again_not_answered_from_memory() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks)
    presented = proof()
    subject.verify(presented, {SIGNER})
    presented["headers"]["X-Extra"] = "unsigned"
    with pytest.raises(UnauthenticatedError):
        subject.verify(presented, {SIGNER})
    presented["headers"].pop("X-Extra")
    presented["body"] = "Action=GetCallerIdentity&Version=2011-06-15&Extra=1"
    with pytest.raises(UnauthenticatedError):
        subject.verify(presented, {SIGNER})
    assert len(replayer.calls) == 1


def test_header_values_moved_between_names_are_checked_again_and_reordered_headers_cost_no_replay() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks)
    presented = proof()
    subject.verify(presented, {SIGNER})
    headers = presented["headers"]
    swapped = {**headers, "Host": headers["X-Jwks-Rotator-Signer"], "X-Jwks-Rotator-Signer": headers["Host"]}
    with pytest.raises(UnauthenticatedError):  # the same names and values, paired otherwise: parsed in full, and refused
        subject.verify({"headers": swapped, "body": presented["body"]}, {SIGNER})
    reordered = dict(reversed(list(headers.items())))
    assert subject.verify({"headers": reordered, "body": presented["body"]}, {SIGNER}).sts_arn == ROLE_SESSION
    assert len(replayer.calls) == 1


def credential_proof(index: int, *, key: str, token: str) -> dict[str, Any]:
    """A distinct proof naming access key ``key`` and carrying session token ``token``."""
    return proof(Authorization=authorization(signature=f"{index:064x}").replace("ASIAEXAMPLEKEY123456", key), X_Amz_Security_Token=token)


def test_forged_proofs_naming_a_verified_callers_key_id_cannot_stop_it_renewing() -> None:
    """The key id is public; the session token is not: a forger's flood never draws from the verified caller's budget."""
    clocks = FakeClock(SIGNED_AT + 1)
    known, token = "ASIAKNOWNCALLER00001", "IQoJb3JpZ2luX2VjEXAMPLEREALSESSIONTOKEN"
    replayer = FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    events: list[str] = []
    subject = verifier(replayer, clocks, burst=40, rate_per_second=20.0, on_event=events.append, random_source=lambda: 0.99)
    subject.verify(credential_proof(0, key=known, token=token), {SIGNER})
    replayer.answers = [ReplayAnswer(403, error_code="SignatureDoesNotMatch")]
    renewed = 0
    for second in range(240):  # 50 forged proofs a second naming the real key id, with made-up tokens
        for index in range(50):
            forged = credential_proof(1_000 + second * 50 + index, key=known, token=f"FORGED{index}")
            with contextlib.suppress(UnauthenticatedError):
                subject.verify(forged, {SIGNER})
        if second % 60 == 59:  # the real caller renews its proof every minute
            replayer.answers = [ReplayAnswer(200, arn=ROLE_SESSION)]
            assert subject.verify(credential_proof(second, key=known, token=token), {SIGNER}).role_arn.endswith("role/orders-service")
            renewed += 1
            replayer.answers = [ReplayAnswer(403, error_code="SignatureDoesNotMatch")]
        clocks.advance(1.0)
    assert renewed == 4 and events.count("rate_limited") > 9_000


def test_a_flood_cannot_take_every_token_before_a_new_callers_first_proof() -> None:
    """Under load the shared budget is an equal-chance draw, so arriving first does not win every token."""
    clocks = FakeClock(SIGNED_AT + 1)
    replayer = FakeReplayer(ReplayAnswer(403, error_code="InvalidClientTokenId"))
    subject = verifier(replayer, clocks, burst=40, rate_per_second=20.0, random_source=random.Random(7).random)
    admitted_after, reasons = None, set()
    for second in range(60):
        for index in range(50):  # the flood arrives first every second
            with contextlib.suppress(UnauthenticatedError):
                subject.verify(keyed_proof(100 + second * 50 + index), {SIGNER})
        replayer.answers = [ReplayAnswer(200, arn=ROLE_SESSION)]
        try:
            subject.verify(credential_proof(second, key="ASIANEWCALLER0000001", token="NEWTOKEN"), {SIGNER})
            admitted_after = second
            break
        except UnauthenticatedError as refused:
            reasons.add(refused.reason)
        finally:
            replayer.answers = [ReplayAnswer(403, error_code="InvalidClientTokenId")]
        clocks.advance(1.0)
    assert reasons <= {"rate_limited"}
    assert admitted_after is not None and admitted_after < 20  # p = 20/51 a try: 20 misses in a row is ~5e-5


def test_proofs_without_a_session_token_are_never_known_callers() -> None:
    clocks = FakeClock(SIGNED_AT + 1)
    replayer = FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    signed = "content-type;host;x-amz-date;x-jwks-rotator-signer"
    subject = verifier(replayer, clocks, burst=1, rate_per_second=1.0)
    subject.verify(proof(X_Amz_Security_Token=None, Authorization=authorization(signed)), {SIGNER})
    with pytest.raises(UnauthenticatedError) as caught:
        subject.verify(proof(X_Amz_Security_Token=None, Authorization=authorization(signed, signature="cd" * 32)), {SIGNER})
    assert caught.value.reason == "rate_limited"


@pytest.mark.parametrize("override", [{"STS_ENDPOINT_URL": "http://attacker.example.com"}, {"STS_CA_BUNDLE": "/tmp/attacker-ca.pem"}])
def test_a_deployed_function_refuses_an_sts_override_a_configuration_change_could_set(override: dict[str, str]) -> None:
    """Outside the local stack (no marker file in the code directory) the origin is AWS's STS, checked against the shipped roots."""
    with pytest.raises(ConfigurationError, match="only on the local stack"):
        StsEndpoint.from_environment({"AWS_REGION": "eu-west-1", **override})
    endpoint = StsEndpoint.from_environment({"AWS_REGION": "eu-west-1"})
    assert endpoint.origin == "https://sts.eu-west-1.amazonaws.com" and endpoint.ca_file is None


def test_each_partition_has_its_own_sts_origin() -> None:
    from jwks_rotator.adapters.lean.sts_identity import sts_origin

    assert sts_origin("us-gov-west-1") == "https://sts.us-gov-west-1.amazonaws.com"
    assert sts_origin("cn-northwest-1") == "https://sts.cn-northwest-1.amazonaws.com.cn"
    assert sts_origin("us-iso-east-1") == "https://sts.us-iso-east-1.c2s.ic.gov"
    assert sts_origin("us-isob-east-1") == "https://sts.us-isob-east-1.sc2s.sgov.gov"


def test_the_local_marker_is_a_file_in_the_code_directory(tmp_path: Any) -> None:
    from jwks_rotator.adapters.lean.sts_identity import LOCAL_MARKER, is_local

    assert not is_local(str(tmp_path), {})
    (tmp_path / LOCAL_MARKER).write_text("local\n")
    assert is_local(str(tmp_path), {})


def test_a_marker_shipped_into_a_lambda_runtime_is_not_honoured(tmp_path: Any) -> None:
    # Running the tests marks the source tree, and a bare `sam build` copies the marker into the artifact (only
    # `make build` removes it); Lambda's runtime always sets AWS_LAMBDA_RUNTIME_API, a variable no configuration sets.
    from jwks_rotator.adapters.lean.sts_identity import LOCAL_MARKER, is_local

    (tmp_path / LOCAL_MARKER).write_text("local\n")
    assert not is_local(str(tmp_path), {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})


def test_forget_drops_proofs_and_known_credentials_and_refills_the_shared_budget() -> None:
    """A restored or forked copy starts as at INIT: nothing verified, no credential known, the shared bucket full."""
    clocks = FakeClock(SIGNED_AT + 1)
    known, token = "ASIAKNOWNCALLER00001", "IQoJb3JpZ2luX2VjEXAMPLEREALSESSIONTOKEN"
    replayer = FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks, burst=2, rate_per_second=0.001)
    subject.verify(credential_proof(0, key=known, token=token), {SIGNER})  # known from now on (shared: 1 token left)
    subject.verify(keyed_proof(1), {SIGNER})  # the shared bucket is empty
    with pytest.raises(UnauthenticatedError):
        subject.verify(keyed_proof(2), {SIGNER})
    subject.verify(credential_proof(3, key=known, token=token), {SIGNER})  # ... but the known credential has its own

    subject.forget()

    assert subject.cached_proofs == 0
    subject.verify(credential_proof(0, key=known, token=token), {SIGNER})  # replayed again (not from memory): 1 token
    subject.verify(keyed_proof(2), {SIGNER})  # the refilled shared bucket's second token
    assert len(replayer.calls) == 5
    # The credential was forgotten, then vouched for again by the replay above: it has its own bucket again.
    subject.verify(credential_proof(4, key=known, token=token), {SIGNER})
    with pytest.raises(UnauthenticatedError) as caught:
        subject.verify(keyed_proof(5), {SIGNER})
    assert caught.value.reason == "rate_limited"


def test_a_proof_with_a_header_value_that_cannot_be_hashed_is_refused_not_crashed() -> None:
    clocks, replayer = FakeClock(SIGNED_AT + 1), FakeReplayer(ReplayAnswer(200, arn=ROLE_SESSION))
    subject = verifier(replayer, clocks)
    subject.verify(proof(), {SIGNER})
    broken = proof()
    broken["headers"] = {**broken["headers"], "X-Amz-Date": [broken["headers"]["X-Amz-Date"]]}
    with pytest.raises(UnauthenticatedError):
        subject.verify(broken, {SIGNER})
    assert len(replayer.calls) == 1 and subject.cached_proofs == 2

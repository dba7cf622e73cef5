"""The sign Lambda handler: never raises, answers the documented shapes, logs no secrets (no AWS)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from test_sign_support import ISSUER, FakeSecrets, InMemoryKeyringReader, active_key, keyring_json, load_sign_app, public_key, settings

from jwks_rotator.core.keys import PRIVATE_MEMBERS
from jwks_rotator.core.signer import TokenSigner

CODES = {
    "invalid_request", "invalid_claims", "audience_not_allowed", "ttl_too_long", "payload_too_large",
    "signing_unavailable", "internal_error", "invalid_configuration",
}
AUDIENCES = ("orders-api", "billing-api")
KEY = active_key("ES256")


@pytest.fixture
def app() -> Iterator[Any]:
    """The handler module with a signer on an in-memory keyring and its logs in a buffer."""
    module = load_sign_app()
    module._signer = TokenSigner(
        settings(allowed_audiences=AUDIENCES, default_audience="orders-api"),
        InMemoryKeyringReader(keyring_json(KEY)),
        listener=module._on_refresh,
    )
    handler = module.logger.registered_handler
    previous = handler.stream
    handler.stream = module.log_buffer = io.StringIO()
    yield module
    handler.stream = previous


def check_response(response: Any, request: Any) -> None:
    """Either a token that verifies and carries the requested claims, or a documented error."""
    assert isinstance(response, dict)
    json.dumps(response)  # what the Lambda runtime does with it
    if "token" in response:
        assert set(response) == {"token", "token_type", "kid", "alg", "expires_at"}
        claims = jwt.decode(response["token"], public_key(KEY), algorithms=["ES256"], audience=list(AUDIENCES), issuer=ISSUER)
        assert claims["sub"] == request["sub"] and claims["exp"] == response["expires_at"]
        custom = request.get("claims", {})
        assert {name: claims[name] for name in custom} == custom
    else:
        assert set(response) == {"error", "message"}
        assert response["error"] in CODES
        assert isinstance(response["message"], str) and response["message"]


# --- fuzzing --------------------------------------------------------------------
ODD_TEXT = st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "😀", "x" * 20_000, "", " ", "exp", "orders-api"])
TEXT = st.one_of(st.text(max_size=20), st.text(st.characters(exclude_categories=()), max_size=8), ODD_TEXT)
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), TEXT, st.binary(max_size=8),
    st.sampled_from([-(2**64), float("nan"), math.inf, 1e308]),
    st.integers(4290, 4400).map(lambda digits: 10**digits),  # around the int-to-str limit
)
KEYS = st.one_of(TEXT, st.integers(), st.none(), st.booleans(), st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]))


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if depth % 2 else {"k": value}
    return value


JSONISH = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4), st.tuples(children, children)
    ),
    max_leaves=25,
)
VALUE = st.one_of(JSONISH, st.integers(0, 200).map(_deep))
REQUESTS = st.fixed_dictionaries(
    {"sub": st.one_of(st.just("user-123"), TEXT, VALUE)},
    optional={
        "aud": st.one_of(st.sampled_from(["orders-api", "billing-api", "other-api", ["orders-api", "billing-api"]]), VALUE),
        "ttl": st.one_of(st.integers(-10, 5000), st.floats(), VALUE),
        "claims": st.one_of(st.dictionaries(st.text(max_size=10), JSONISH, max_size=6), VALUE),
        "scope": VALUE,
    },
)
PAYLOADS = st.one_of(REQUESTS, VALUE, st.dictionaries(KEYS, VALUE, max_size=5))


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS)
def test_any_payload_gets_a_verified_token_or_a_documented_error(app: Any, payload: Any) -> None:
    check_response(app.handler(payload, None), payload)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=st.dictionaries(st.text(max_size=10).filter(lambda k: k not in {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}),
                              st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
                                                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)),
                                           lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
                                           max_leaves=20),
                              max_size=6))
def test_valid_custom_claims_always_come_back_exactly(app: Any, claims: dict[str, Any]) -> None:
    request = {"sub": "user-123", "aud": "orders-api", "claims": claims}
    response = app.handler(request, None)
    assert "token" in response, response
    check_response(response, request)


# --- logs and metrics -----------------------------------------------------------
def test_logs_and_metrics_carry_no_token_claim_value_or_key_material(app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    app.logger.setLevel("DEBUG")
    try:
        request = {"sub": "subject-canary", "aud": "orders-api", "claims": {"email": "claim-canary@example.com", "n": 987654321}}
        response = app.handler(request, None)
        refused = app.handler({"sub": "subject-canary", "aud": "orders-api", "claims": {"exp": "claim-canary"}}, None)
    finally:
        app.logger.setLevel("INFO")
    logs = app.log_buffer.getvalue()
    emitted = logs + capsys.readouterr().out
    assert response["token"] and refused["error"] == "invalid_claims"
    records = [json.loads(line) for line in logs.splitlines()]
    issued = next(r for r in records if r["message"] == "token issued")
    assert issued["kid"] == KEY.kid and issued["aud"] == "orders-api" and issued["ttl"] == 900 and issued["jti"]
    assert any(r.get("error") == "invalid_claims" for r in records)
    for secret in (response["token"], *response["token"].split("."), "subject-canary", "claim-canary", "987654321"):
        assert secret not in emitted
    for member in PRIVATE_MEMBERS & set(KEY.private_jwk):
        assert KEY.private_jwk[member] not in emitted
    assert "TokensIssued_ES256" in emitted  # the first invocation's EMF record


def test_the_per_token_line_is_debug_so_default_logs_have_none(app: Any) -> None:
    assert "token" in app.handler({"sub": "u", "aud": "orders-api"}, None)
    assert "token issued" not in app.log_buffer.getvalue()


def test_metrics_are_counted_and_emitted_at_most_once_per_interval(app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        app.handler({"sub": "u", "aud": "orders-api"}, None)
    app.handler({"sub": "u", "aud": "nope"}, None)
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(first) == 1 and first[0]["TokensIssued_ES256"] == [1.0]
    app._last_flush -= app.METRICS_FLUSH_SECONDS
    app.handler({"sub": "u", "aud": "orders-api"}, None)
    second = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(second) == 1
    assert second[0]["TokensIssued_ES256"] == [5.0] and second[0]["Refusals_audience_not_allowed"] == [1.0]


def test_an_internal_failure_is_answered_and_logged_by_type_only(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(now: float) -> Any:
        raise ZeroDivisionError("secret detail")

    monkeypatch.setattr(app._signer.cache, "get", explode)
    response = app.handler({"sub": "u", "aud": "orders-api"}, None)
    assert response["error"] == "internal_error" and "secret detail" not in response["message"]
    logs = app.log_buffer.getvalue()
    assert "ZeroDivisionError" in logs and "secret detail" not in logs and "Traceback" not in logs


# --- configuration from the environment ------------------------------------------
ENV = {"KEYRING_SECRET_ID": "keyring", "ISSUER": ISSUER, "ALLOWED_AUDIENCES": "orders-api", "MAX_TOKEN_TTL": "10m"}


@pytest.fixture
def fresh_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("KEYRING_SECRET_ID", "ISSUER", "ALLOWED_AUDIENCES", "DEFAULT_AUDIENCE", "MAX_TOKEN_TTL", "DEFAULT_TOKEN_TTL"):
        monkeypatch.delenv(name, raising=False)
    client = FakeSecrets(keyring_json(KEY))
    made: list[tuple[Any, ...]] = []
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: made.append(args) or client)
    module = load_sign_app("sign_app_env")
    module.made_clients = made
    module.fake_client = client
    return module


def test_settings_come_from_the_environment_once_per_container(fresh_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEFAULT_TOKEN_TTL", "5m")
    assert fresh_app.handler({"sub": "u", "aud": "billing-api"}, None)["error"] == "audience_not_allowed"
    assert fresh_app.handler({"sub": "u", "aud": "orders-api", "ttl": 601}, None)["error"] == "ttl_too_long"
    response = fresh_app.handler({"sub": "u", "aud": "orders-api"}, None)
    claims = jwt.decode(response["token"], public_key(KEY), algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == 300
    assert fresh_app.made_clients == [("secretsmanager",)] and fresh_app.fake_client.calls == 1


@pytest.mark.parametrize(
    "env",
    [
        {"ISSUER": ISSUER},  # no keyring secret
        {"KEYRING_SECRET_ID": "keyring"},  # no issuer
        {**ENV, "ISSUER": "http://issuer.example"},  # plain http off loopback
        {**ENV, "DEFAULT_TOKEN_TTL": "2h"},  # above max-token-ttl
        {**ENV, "SIGNER_CACHE_TTL": "soon"},
    ],
    ids=["no-secret", "no-issuer", "http-issuer", "default-over-max", "bad-duration"],
)
def test_a_bad_configuration_answers_invalid_configuration_on_every_call(
    fresh_app: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for _ in range(3):
        response = fresh_app.handler({"sub": "u", "aud": "orders-api"}, None)
        assert response["error"] == "invalid_configuration" and response["message"]
    assert fresh_app.made_clients == []

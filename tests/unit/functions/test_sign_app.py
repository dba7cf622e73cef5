"""The sign Lambda handler: never raises, answers the documented shapes, audits every decision, logs no secrets."""

from __future__ import annotations

import io
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.issuance.service import IssuanceService
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME, ArnReplayer, LambdaContext, fake_sts, policy_yaml, role_caller
from jwks_rotator_testkit.hypothesis_profiles import examples
from tests.sign_support import ISSUER, FakeSecrets, InMemoryKeyringReader, active_key, keyring_json, load_sign_app, public_key, settings

CODES = {
    "unauthenticated", "caller_not_allowed", "invalid_request", "invalid_claims", "audience_not_allowed",
    "subject_not_allowed", "claims_not_allowed", "ttl_too_long", "payload_too_large",
    "signing_unavailable", "internal_error", "invalid_configuration",
}
AUDIENCES = ("orders-api", "billing-api")
KEY = active_key("ES256")
STS_URL = "https://sts.us-east-1.amazonaws.com"
CONTEXT = LambdaContext()
ORDERS = role_caller("orders-service")
STRANGER = role_caller("intruder")
POLICY = policy_yaml(
    {"name": "orders", "callers": ["arn:aws:iam::123456789012:role/orders-service"], "audiences": list(AUDIENCES),
     "subjects": [".{1,200}"], "claims": ["email", "n", "roles", "role", "scope", "c1", "c2", "c3", "c4", "c5", "c6"]},
)


def signed(request: dict[str, Any], caller: Any = ORDERS) -> dict[str, Any]:
    return {"proof": caller.proof(sts_endpoint_url=STS_URL, signer=SIGN_FUNCTION_NAME), **request}


@pytest.fixture
def app() -> Any:
    """The handler module with a service on an in-memory keyring and STS double; logs and audit lines in buffers."""
    module = load_sign_app()
    cfg = settings(allowed_audiences=AUDIENCES, default_audience="orders-api")
    signer = TokenSigner(cfg, InMemoryKeyringReader(keyring_json(KEY)), listener=module._on_refresh)
    module.replayer = ArnReplayer(ORDERS, STRANGER)
    verifier = CallerVerifier(
        module.replayer, wall_clock=time.time, monotonic_clock=time.monotonic, max_age=300, leeway=60,
        sts_host="sts.us-east-1.amazonaws.com", sts_region="us-east-1", on_event=module._on_proof_event,
    )
    policy = load_issuance_policy(POLICY, max_token_ttl=3600, default_token_ttl=900)
    module._service = IssuanceService(signer, verifier, policy, on_decision=module._on_decision)
    module.audit._stream = module.audit_buffer = io.StringIO()
    module.logger.stream = module.log_buffer = io.StringIO()
    return module


def audit_lines(app: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in app.audit_buffer.getvalue().splitlines()]


def check_response(response: Any, request: Any) -> None:
    """Either a token that verifies and carries the requested claims, or a documented error."""
    assert isinstance(response, dict)
    json.dumps(response)  # what the Lambda runtime does with it
    if "token" in response:
        assert set(response) == {"token", "token_type", "kid", "alg", "expires_at"}
        claims = jwt.decode(response["token"], public_key(KEY), algorithms=["ES256"], audience=list(AUDIENCES), issuer=ISSUER)
        assert claims["sub"] == request["sub"] and claims["exp"] == response["expires_at"] and claims["azp"] == "orders"
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
KEYS = st.one_of(TEXT, st.integers(), st.none(), st.booleans(), st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp"]))


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
        "profile": st.one_of(st.just("orders"), VALUE),
        "scope": VALUE,
    },
)


def _mangled_proof(data: st.DataObject) -> tuple[Any, bool]:
    """A real proof with one part replaced by fuzz (a header value, a header, the body, or the whole thing), and whether it changed."""
    original = ORDERS.proof(sts_endpoint_url=STS_URL, signer=SIGN_FUNCTION_NAME)
    proof = json.loads(json.dumps(original))
    where = data.draw(st.sampled_from(["header", "new-header", "body", "headers", "whole", "none"]))
    if where == "header":
        proof["headers"][data.draw(st.sampled_from(sorted(proof["headers"])))] = data.draw(VALUE)
    elif where == "new-header":
        proof["headers"][data.draw(TEXT)] = data.draw(VALUE)
    elif where == "body":
        proof["body"] = data.draw(VALUE)
    elif where == "headers":
        proof["headers"] = data.draw(VALUE)
    elif where == "whole":
        proof = data.draw(VALUE)
    return proof, proof != original


@hypothesis_settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(request=REQUESTS)
def test_any_request_of_an_authenticated_caller_gets_a_verified_token_or_a_documented_error(app: Any, request: Any) -> None:
    check_response(app.handler(signed(request), CONTEXT), request)


@hypothesis_settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mangled_proof_is_unauthenticated_and_never_a_token(app: Any, data: st.DataObject) -> None:
    proof, changed = _mangled_proof(data)
    response = app.handler({"proof": proof, "sub": "user-1", "aud": "orders-api"}, CONTEXT)
    if changed:
        assert response.get("error") == "unauthenticated", response
    else:
        assert "token" in response


@hypothesis_settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(VALUE, st.dictionaries(KEYS, VALUE, max_size=5)))
def test_any_payload_without_a_valid_proof_is_unauthenticated(app: Any, payload: Any) -> None:
    response = app.handler(payload, CONTEXT)
    assert response["error"] == "unauthenticated"


# --- audit, logs and metrics ----------------------------------------------------------
def test_every_decision_writes_one_audit_line(app: Any) -> None:
    issued = app.handler(signed({"sub": "user-7", "aud": "orders-api"}), CONTEXT)
    app.handler(signed({"sub": "user-7", "aud": "orders-api"}, STRANGER), CONTEXT)
    app.handler({"sub": "user-7"}, CONTEXT)
    lines = audit_lines(app)
    assert [line["decision"] for line in lines] == ["issued", "refused", "refused"]
    assert [line["error"] for line in lines] == [None, "caller_not_allowed", "unauthenticated"]
    first = lines[0]
    assert first["type"] == "jwks-rotator.audit" and first["function_version"] == "$LATEST" and first["time"].endswith("Z")
    assert first["caller"] == ORDERS.sts_arn and first["role"] == "arn:aws:iam::123456789012:role/orders-service"
    assert (first["profile"], first["sub"], first["aud"], first["kid"]) == ("orders", "user-7", "orders-api", KEY.kid)
    assert first["exp"] == issued["expires_at"] and first["jti"] and len(first["policy"]) == 64
    assert lines[1]["caller"] == STRANGER.sts_arn and lines[2]["caller"] is None


def test_logs_audit_and_metrics_carry_no_token_proof_claim_value_or_key_material(app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    request = {"sub": "subject-canary", "aud": "orders-api", "claims": {"email": "claim-canary@example.com", "n": 987654321}}
    event = signed(request)
    response = app.handler(event, CONTEXT)
    refused = app.handler(signed({"sub": "subject-canary", "aud": "orders-api", "claims": {"exp": "claim-canary"}}), CONTEXT)
    emitted = app.log_buffer.getvalue() + capsys.readouterr().out + app.audit_buffer.getvalue().replace('"sub":"subject-canary"', "")
    assert response["token"] and refused["error"] == "invalid_claims"
    signature = event["proof"]["headers"]["Authorization"].split("Signature=")[1]
    for secret in (response["token"], *response["token"].split("."), "subject-canary", "claim-canary", "987654321",
                   signature, event["proof"]["headers"]["X-Amz-Security-Token"], ORDERS.secret_key):
        assert secret not in emitted
    for member in PRIVATE_MEMBERS & set(KEY.private_jwk):
        assert KEY.private_jwk[member] not in emitted


def test_a_warm_caller_costs_one_sts_replay_per_proof(app: Any) -> None:
    event = signed({"sub": "u", "aud": "orders-api"})
    for _ in range(20):
        assert "token" in app.handler(event, CONTEXT)
    assert app.replayer.replays == 1


def test_metrics_are_counted_per_profile_and_emitted_at_most_once_per_interval(app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        app.handler(signed({"sub": "u", "aud": "orders-api"}), CONTEXT)
    app.handler(signed({"sub": "u", "aud": "nope"}), CONTEXT)
    app.handler({"sub": "u"}, CONTEXT)
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(first) == 1 and first[0]["TokensIssued_ES256"] == [1.0]
    app._last_flush -= app.METRICS_FLUSH_SECONDS
    app.handler(signed({"sub": "u", "aud": "orders-api"}), CONTEXT)
    second = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(second) == 1
    record = second[0]
    assert record["TokensIssued_ES256"] == [5.0] and record["IssuedByProfile_orders"] == [5.0]
    assert record["Refusals_audience_not_allowed"] == [1.0] and record["RefusedByProfile_orders_audience_not_allowed"] == [1.0]
    assert record["Refusals_unauthenticated"] == [1.0]


def test_an_internal_failure_is_answered_audited_and_logged_by_type_only(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(now: float) -> Any:
        raise ZeroDivisionError("secret detail")

    monkeypatch.setattr(app._service.signer.cache, "get", explode)
    response = app.handler(signed({"sub": "u", "aud": "orders-api"}), CONTEXT)
    assert response["error"] == "internal_error" and "secret detail" not in response["message"]
    assert audit_lines(app)[-1]["error"] == "internal_error"
    logs = app.log_buffer.getvalue()
    assert "secret detail" not in logs and "Traceback" not in logs


# --- configuration from the environment ------------------------------------------
ENV = {"KEYRING_SECRET_ID": "keyring", "ISSUER": ISSUER, "ALLOWED_AUDIENCES": "orders-api", "MAX_TOKEN_TTL": "10m", "AWS_REGION": "us-east-1"}
ENV_POLICY = policy_yaml(
    {"name": "orders", "callers": ["arn:aws:iam::123456789012:role/orders-service"], "audiences": ["orders-api"], "subjects": [".+"]}
)


@pytest.fixture
def fresh_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Starts a cold handler module (its INIT reads the environment as it is then): ``fresh_app()`` returns it."""
    for name in ("KEYRING_SECRET_ID", "ISSUER", "ALLOWED_AUDIENCES", "DEFAULT_AUDIENCE", "MAX_TOKEN_TTL", "DEFAULT_TOKEN_TTL", "ISSUANCE_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    client = FakeSecrets(keyring_json(KEY))
    made: list[tuple[Any, ...]] = []
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: made.append(args) or client)
    policy = tmp_path / "policy.yaml"
    policy.write_text(ENV_POLICY)
    with fake_sts() as sts:
        sts.register(ORDERS)
        monkeypatch.setenv("STS_ENDPOINT_URL", sts.url)
        monkeypatch.setenv("ISSUANCE_POLICY_FILE", str(policy))
        def start(name: str = "sign_app_env") -> Any:
            module = load_sign_app(name)
            module.audit._stream = io.StringIO()
            module.made_clients, module.fake_client, module.sts, module.policy_path = made, client, sts, policy
            return module

        start.made_clients, start.fake_client, start.sts, start.policy_path = made, client, sts, policy  # type: ignore[attr-defined]
        yield start


def test_settings_policy_and_sts_come_from_the_environment_once_per_container(fresh_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEFAULT_TOKEN_TTL", "5m")
    app = fresh_app()
    assert app.fake_client.calls == 0 and app.sts.replays == 0  # INIT reads no key and calls no one (its clients are made, unused)

    def ask(**request: Any) -> dict[str, Any]:
        event = {"proof": ORDERS.proof(sts_endpoint_url=app.sts.url, signer=SIGN_FUNCTION_NAME), **request}
        return dict(app.handler(event, CONTEXT))

    assert ask(sub="u", aud="billing-api")["error"] == "audience_not_allowed"
    # the first call read the key in the background during the proof's replay, and returned only after that read
    assert fresh_app.fake_client.calls == 1 and not [t for t in threading.enumerate() if t.name == "key-cache-prefetch"]
    assert ask(sub="u", aud="orders-api", ttl=601)["error"] == "ttl_too_long"
    response = ask(sub="u", aud="orders-api")
    claims = jwt.decode(response["token"], public_key(KEY), algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == 300 and claims["azp"] == "orders"
    assert fresh_app.made_clients == [("secretsmanager",), ("ssm",)]  # the keyring secret and the revocation list
    assert fresh_app.fake_client.calls == 1 and fresh_app.fake_client.parameter_calls == 1
    assert fresh_app.sts.replays == 1  # replayed over HTTP to the endpoint the environment names; the same signed proof again is cached


def test_the_deployed_policy_issues_nothing_until_profiles_are_written() -> None:
    deployed = Path(__file__).resolve().parents[3] / "functions" / "sign" / "issuance-policy.yaml"
    policy = load_issuance_policy(deployed.read_text(), max_token_ttl=3600, default_token_ttl=900)
    assert policy.disabled and policy.profiles == ()


@pytest.mark.parametrize(
    "env",
    [
        {"ISSUER": ISSUER, "AWS_REGION": "us-east-1"},  # no keyring secret
        {"KEYRING_SECRET_ID": "keyring", "AWS_REGION": "us-east-1"},  # no issuer
        {**ENV, "ISSUER": "http://issuer.example"},  # plain http off loopback
        {**ENV, "DEFAULT_TOKEN_TTL": "2h"},  # above max-token-ttl
        {**ENV, "SIGNER_CACHE_TTL": "soon"},
        {**ENV, "ISSUANCE_POLICY_FILE": "/nonexistent/policy.yaml"},
        {**ENV, "STS_ENDPOINT_URL": "https://sts.example/path"},
    ],
    ids=["no-secret", "no-issuer", "http-issuer", "default-over-max", "bad-duration", "no-policy-file", "bad-sts-endpoint"],
)
def test_a_bad_configuration_answers_invalid_configuration_on_every_call(
    fresh_app: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = fresh_app()  # INIT keeps the error: no crash
    for _ in range(3):
        response = app.handler({"sub": "u", "aud": "orders-api"}, CONTEXT)
        assert response["error"] == "invalid_configuration" and response["message"]
    assert app.made_clients == []
    assert app.sts.replays == 0


def test_a_broken_policy_answers_invalid_configuration(fresh_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    fresh_app.policy_path.write_text("profiles:\n  orders:\n    callers: [nope]\n")
    response = fresh_app().handler({"sub": "u", "aud": "orders-api"}, CONTEXT)
    assert response["error"] == "invalid_configuration" and "nope" not in response["message"]


def test_a_caller_removed_from_the_policy_keeps_minting_only_from_environments_started_before_the_change(
    fresh_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented bound: the policy is read once per execution environment; the new deployment's environments refuse."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEFAULT_TOKEN_TTL", "5m")

    def ask(module: Any) -> dict[str, Any]:
        event = {"proof": ORDERS.proof(sts_endpoint_url=fresh_app.sts.url, signer=SIGN_FUNCTION_NAME), "sub": "u", "aud": "orders-api"}
        return dict(module.handler(event, CONTEXT))

    warm = fresh_app()
    assert "token" in ask(warm)  # a warm environment of the current deployment
    fresh_app.policy_path.write_text(ENV_POLICY.replace('"subjects"', '"disabled": true, "subjects"'))  # the profile's kill switch
    assert "token" in ask(warm)  # still the policy it read at its cold start
    redeployed = fresh_app("sign_app_redeployed")
    assert ask(redeployed)["error"] == "caller_not_allowed"  # every environment of the new deployment refuses


def test_a_deployed_sign_function_reads_its_policy_only_from_inside_its_code_directory(tmp_path: Path) -> None:
    """Without the local stack's marker an ISSUANCE_POLICY_FILE outside the code directory is a configuration error."""
    from jwks_rotator.core.errors import ConfigurationError
    from jwks_rotator.core.settings import Settings

    app = load_sign_app("sign_app_policy_path")
    outside = tmp_path / "policy.yaml"
    outside.write_text("profiles: {}\n")
    for path in (str(outside), "../rotate/app.py"):
        with pytest.raises(ConfigurationError, match="inside the function's code directory"):
            app.read_policy(Settings(issuance_policy_file=path), local=False)
    assert app.read_policy(Settings(issuance_policy_file=str(outside)), local=True) == "profiles: {}\n"  # the local stack
    assert "profiles" in app.read_policy(Settings(issuance_policy_file="issuance-policy.yaml"), local=False)

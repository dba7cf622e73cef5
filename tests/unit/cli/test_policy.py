"""`jwks-rotator policy check` and `policy test`: the issuance policy checked and explained offline (CliRunner, no AWS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from jwks_rotator.core.issuance.profiles import load_issuance_policy
from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_cli.main import cli
from jwks_rotator_local.caller_roles import DEMO_POLICY_FILE

REPO = Path(__file__).resolve().parents[3]
ORDERS = "arn:aws:iam::123456789012:role/orders-service"
BATCH = "arn:aws:iam::123456789012:role/batch-7"
POLICY = f"""
profiles:
  orders:
    callers: ["{ORDERS}"]
    audiences: [payments-api]
    subjects: ["user-[0-9]{{1,9}}"]
    claims: [roles]
    max_ttl: 15m
  batch:
    callers: ["arn:aws:iam::123456789012:role/batch-*"]
    audiences: [reports]
    subjects: ["job-[a-z]{{1,16}}"]
  reports:
    callers: ["arn:aws:iam::123456789012:role/batch-*"]
    audiences: [reports]
    subjects: ["job-[a-z]{{1,16}}"]
    max_ttl: 60
  retired:
    callers: ["arn:aws:iam::123456789012:role/retired"]
    audiences: [payments-api]
    subjects: [".+"]
    disabled: true
"""


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in SETTINGS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def decide(policy: Path, caller: str, request: dict[str, object], *settings: str) -> Result:
    return run("policy", "test", str(policy), "--caller", caller, "--request", json.dumps(request), *settings)


# --- policy check ---------------------------------------------------------------


def test_check_summarises_the_profiles_and_prints_the_digest(policy_file: Path) -> None:
    result = run("policy", "check", str(policy_file))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"valid: {policy_file} (4 profile(s))"
    assert lines[1] == f"  orders  callers={ORDERS}  audiences=payments-api  subjects=user-[0-9]{{1,9}}  claims=roles  max_ttl=15m"
    assert lines[2].startswith("  batch  ") and "max_ttl=1h" in lines[2]  # no max_ttl: the stack's max-token-ttl (default 1h)
    assert lines[4].startswith("  retired (disabled)  ")
    digest = load_issuance_policy(POLICY, max_token_ttl=3600, default_token_ttl=900).digest
    assert lines[-1] == f"digest: {digest}"


def test_check_of_the_shipped_default_and_the_local_demo_policy() -> None:
    shipped = run("policy", "check", str(REPO / "functions" / "sign" / "issuance-policy.yaml"))
    assert shipped.exit_code == 0, shipped.output
    assert "(disabled: issues nothing)" in shipped.stdout.splitlines()[0]
    demo = run("policy", "check", str(DEMO_POLICY_FILE), "--max-token-ttl", "10s", "--default-token-ttl", "5s")
    assert demo.exit_code == 0, demo.output
    assert "  demo  callers=arn:aws:iam::123456789012:role/jwks-rotator-demo-caller  audiences=demo,orders" in demo.stdout
    assert "max_ttl=10s" in demo.stdout


@pytest.mark.parametrize(
    ("text", "settings", "message"),
    [
        ("profiles:\n  orders:\n    callers: [nope]\n    audiences: [a]\n    subjects: [x]\n", (),
         "issuance policy: profiles.orders.callers[0]: must be an IAM role ARN, arn:PARTITION:iam::ACCOUNT:role/NAME"),
        (POLICY, ("--max-token-ttl", "10m", "--default-token-ttl", "5m"),
         "issuance policy: profiles.orders.max_ttl: exceeds the stack's max-token-ttl (600 s)"),
        (POLICY, ("--allowed-audiences", "payments-api"),
         "issuance policy: profile 'batch' lists audience(s) outside allowed-audiences: reports"),
        ("profiles: {}\n", (), "issuance policy: 'profiles' is empty; a policy that issues nothing is written 'disabled: true'"),
        ("profiles:\n  a: {callers: [x]\n", (), "issuance policy: not valid YAML (line 3)"),
    ],
)
def test_check_of_an_invalid_policy_exits_2_with_the_loaders_line(tmp_path: Path, text: str, settings: tuple[str, ...], message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run("policy", "check", str(path), *settings)
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""


def test_check_of_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = run("policy", "check", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: issuance policy: cannot read {tmp_path / 'missing.yaml'} (FileNotFoundError)"


# --- policy test ----------------------------------------------------------------


def test_an_allowed_request_is_issued_under_its_profile_with_its_ttl(policy_file: Path) -> None:
    result = decide(policy_file, ORDERS, {"sub": "user-42", "aud": "payments-api", "ttl": 300, "claims": {"roles": ["admin"]}})
    assert result.exit_code == 0, result.output
    assert result.stdout == "issued under profile orders, ttl 300\n"
    # No ttl: the smaller of default-token-ttl and the profile's max_ttl.
    assert decide(policy_file, ORDERS, {"sub": "user-42", "aud": "payments-api"}).stdout == "issued under profile orders, ttl 900\n"
    named = decide(policy_file, BATCH, {"sub": "job-nightly", "aud": "reports", "profile": "reports"})
    assert named.stdout == "issued under profile reports, ttl 60\n"


def test_the_caller_may_be_given_as_sts_reports_it_or_as_its_role(policy_file: Path) -> None:
    session = "arn:aws:sts::123456789012:assumed-role/orders-service/host-1"
    with_path = "arn:aws:iam::123456789012:role/service/orders-service"  # STS drops the path; so does `policy test`
    for caller in (session, ORDERS, with_path):
        result = decide(policy_file, caller, {"sub": "user-1", "aud": "payments-api"})
        assert result.stdout == "issued under profile orders, ttl 900\n", caller


@pytest.mark.parametrize(
    ("caller", "request_", "line"),
    [
        ("not-an-arn", {"sub": "user-1", "aud": "payments-api"},
         "refused: unauthenticated (identity_arn_malformed): the caller's identity could not be read"),
        ("arn:aws:iam::123456789012:user/alice", {"sub": "user-1", "aud": "payments-api"},
         "refused: caller_not_allowed (no_profile): the caller is not allowed to obtain tokens"),
        ("arn:aws:iam::123456789012:role/retired", {"sub": "user-1", "aud": "payments-api"},
         "refused: caller_not_allowed (no_profile): the caller is not allowed to obtain tokens"),
        (ORDERS, {"sub": "user-1", "aud": "payments-api", "profile": "batch"},
         "refused: caller_not_allowed (profile_not_matched): the caller is not allowed to use the named profile"),
        (BATCH, {"sub": "job-a", "aud": "reports"},
         "refused: invalid_request: the caller matches several profiles (batch, reports): name one in 'profile'"),
        (ORDERS, {"aud": "payments-api"}, "refused: invalid_request: 'sub' is required"),
        (ORDERS, {"sub": "user-1", "aud": "payments-api", "claims": {"iss": "x"}},
         "refused: invalid_claims: 'claims' may not set iss: iss, iat, nbf, exp, jti and azp are set by the signer, sub and aud by the top-level fields"),
        (ORDERS, {"sub": "user-1", "aud": "payments-api", "claims": {"roles": "x" * 20_000}},
         "refused: payload_too_large: the request exceeds 16384 characters"),
        (ORDERS, {"sub": "user-1", "aud": "reports"},
         "refused: audience_not_allowed: an audience in the request is not allowed for this profile"),
        (ORDERS, {"sub": "alice", "aud": "payments-api"},
         "refused: subject_not_allowed (subject_not_matched): 'sub' is not allowed for this profile"),
        (ORDERS, {"sub": "user-1", "aud": "payments-api", "claims": {"email": "a@b"}},
         "refused: claims_not_allowed (claim_not_listed): the request sets a claim this profile does not allow"),
        (ORDERS, {"sub": "user-1", "aud": "payments-api", "ttl": 901},
         "refused: ttl_too_long: 'ttl' may be at most 900 seconds for this profile"),
    ],
    ids=lambda value: value.split(":")[0] if isinstance(value, str) and value.startswith("refused") else None,
)
def test_each_refusal_names_its_code_reason_and_message(policy_file: Path, caller: str, request_: dict[str, object], line: str) -> None:
    result = decide(policy_file, caller, request_)
    assert result.exit_code == 1, result.output
    assert result.stdout == line + "\n"


def test_a_disabled_policy_refuses_every_caller(tmp_path: Path) -> None:
    path = tmp_path / "off.yaml"
    path.write_text(POLICY + "disabled: true\n")
    result = decide(path, ORDERS, {"sub": "user-1", "aud": "payments-api"})
    assert result.exit_code == 1
    assert result.stdout == "refused: caller_not_allowed (issuance_disabled): the caller is not allowed to obtain tokens\n"


def test_the_caller_is_checked_before_the_requests_shape(policy_file: Path) -> None:
    # As the sign function does: a caller no profile names learns nothing about its request.
    result = decide(policy_file, "arn:aws:iam::123456789012:role/stranger", {"nonsense": True})
    assert result.stdout.startswith("refused: caller_not_allowed (no_profile)")


def test_a_request_that_is_not_json_is_a_usage_error(policy_file: Path) -> None:
    result = run("policy", "test", str(policy_file), "--caller", ORDERS, "--request", "{sub: alice}")
    assert result.exit_code == 2
    assert "Invalid value for --request: not JSON" in result.stderr


def test_an_invalid_policy_is_refused_before_any_decision(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("profiles: {}\n")
    result = decide(path, ORDERS, {"sub": "user-1"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: issuance policy: 'profiles' is empty")

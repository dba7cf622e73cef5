"""LocalStack's aws_endpoint override (the functions use it, setup and the edge keep talking to moto), failed ticks, and its issuance policy."""

from __future__ import annotations

import time

import pytest

from jwks_rotator_local.local_stack import LocalStack, LocalStackError
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

FAST = fast_settings()


def test_functions_use_the_override_and_manual_ticks_report_its_failure():
    # Nothing listens on port 9: a tick through it must fail, while setup (through moto) succeeded.
    with LocalStack(FAST, aws_endpoint="http://127.0.0.1:9", tick=False) as stack:
        assert stack.function_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
        assert stack.function_env["STS_ENDPOINT_URL"] == stack.sts_endpoint  # proofs still go to the checking STS
        assert stack.client("secretsmanager").describe_secret(SecretId=stack.resources.secret_id)["ARN"]
        with pytest.raises(LocalStackError, match="rotate tick failed"):
            stack.tick()


def test_a_failed_first_tick_stops_start_and_leaves_no_stack_running():
    with pytest.raises(LocalStackError, match=r"^first rotate tick failed: \w+: "):
        LocalStack(FAST, aws_endpoint="http://127.0.0.1:9").start()
    with LocalStack(FAST, tick=False) as stack:  # the failed stack released the process
        assert stack.tick()["active_kid"]


def test_a_failed_scheduled_tick_goes_to_on_error_and_the_schedule_goes_on():
    errors: list[str] = []
    with LocalStack(FAST, on_error=errors.append) as stack:
        stack.client("secretsmanager").delete_secret(SecretId=stack.resources.secret_id, ForceDeleteWithoutRecovery=True)
        deadline = time.monotonic() + 30
        while len(errors) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        with pytest.raises(LocalStackError) as manual:
            stack.tick()
    assert len(errors) >= 2, errors  # more than one: the schedule kept running after a failure
    assert all(e.startswith("rotate tick failed: ") for e in errors)
    assert str(manual.value) == errors[0]


ORDERS_ROLE = "arn:aws:iam::123456789012:role/orders-service"
ORDERS_POLICY = f"""
profiles:
  orders:
    callers: ["{ORDERS_ROLE}", "arn:aws:iam::123456789012:role/batch-*"]
    audiences: ["orders-api"]
    subjects: ["user-[0-9]{{1,9}}"]
    max_ttl: 4s
"""


def test_a_policy_of_its_own_decides_and_its_literal_roles_exist(tmp_path):
    policy = tmp_path / "orders.yaml"
    policy.write_text(ORDERS_POLICY)
    with LocalStack({**FAST, "max-token-ttl": "5s", "default-token-ttl": "5s"}, policy=policy) as stack:
        assert stack.function_env["ISSUANCE_POLICY_FILE"] == str(policy.resolve())
        assert stack.state()["issuance_policy_file"] == str(policy.resolve())
        roles = {role["Arn"] for role in stack.client("iam").list_roles()["Roles"]}
        assert ORDERS_ROLE in roles and stack.state()["demo_caller_role"] in roles
        assert not [arn for arn in roles if "batch-" in arn]  # a wildcard names no role to create
        orders = stack.sign_client(ORDERS_ROLE)
        answer = orders.sign({"sub": "user-42", "aud": "orders-api"})
        assert answer.get("token"), answer
        assert answer["expires_at"] - time.time() <= 4 + 1  # no ttl: min(default-token-ttl, the profile's max_ttl)
        assert orders.sign({"sub": "alice", "aud": "orders-api"})["error"] == "subject_not_allowed"
        assert orders.sign({"sub": "user-42", "aud": "demo"})["error"] == "audience_not_allowed"
        assert stack.sign_client().sign({"sub": "user-42", "aud": "orders-api"})["error"] == "caller_not_allowed"


def test_a_broken_policy_fails_before_anything_starts_with_the_loaders_message(tmp_path):
    from jwks_rotator.core.errors import ConfigurationError

    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  orders:\n    callers: [nope]\n    audiences: [a]\n    subjects: [x]\n")
    with pytest.raises(ConfigurationError, match=r"^issuance policy: profiles\.orders\.callers\[0\]: must be an IAM role ARN"):
        LocalStack(FAST, policy=bad)
    with pytest.raises(ConfigurationError, match=r"^issuance policy: cannot read .*missing\.yaml \(FileNotFoundError\)$"):
        LocalStack(FAST, policy=tmp_path / "missing.yaml")
    # The demo policy's audiences (demo, orders) are outside these allowed-audiences: the function would refuse to start.
    with pytest.raises(ConfigurationError, match=r"profile 'demo' lists audience\(s\) outside allowed-audiences: demo, orders"):
        LocalStack({**FAST, "allowed-audiences": "billing"})
    too_long = tmp_path / "long.yaml"
    too_long.write_text(ORDERS_POLICY.replace("max_ttl: 4s", "max_ttl: 2h"))
    with pytest.raises(ConfigurationError, match=r"max_ttl: exceeds the stack's max-token-ttl"):
        LocalStack(FAST, policy=too_long)
    with LocalStack(FAST, tick=False) as stack:  # none of them left a stack running
        assert stack.sts_endpoint


def test_the_banner_names_the_one_aws_endpoint_and_the_stack():
    import io

    from rich.console import Console

    from jwks_rotator_local.command import print_banner

    with LocalStack(FAST, tick=False, stack_name="banner-stack") as stack:
        out = io.StringIO()
        print_banner(Console(file=out, width=400, color_system=None), stack, "state.json")
        banner = out.getvalue()
        assert f"  AWS endpoint    {stack.endpoint}  (every service, the functions' Lambda API included; moto at {stack.moto_endpoint};" in banner
        assert "  stack           banner-stack\n" in banner
        assert f"  Lambda endpoint {stack.lambda_endpoint}  (functions: " in banner
        assert f"jwks-rotator --endpoint-url {stack.endpoint} --stack banner-stack status" in banner
        assert stack.endpoint not in (stack.moto_endpoint, stack.lambda_endpoint)

"""LocalStack's aws_endpoint override (the functions use it, setup and the edge keep talking to moto), and failed ticks."""

from __future__ import annotations

import time

import pytest

from jwks_rotator_local.local_stack import LocalStack, LocalStackError

pytestmark = pytest.mark.integration

FAST = {"rotation-period": "6s", "publish-lead": "2s", "schedule": "1s", "jwks-max-age": "1s"}


def test_functions_use_the_override_and_manual_ticks_report_its_failure():
    # Nothing listens on port 9: a tick through it must fail, while setup (through moto) succeeded.
    with LocalStack(FAST, aws_endpoint="http://127.0.0.1:9", tick=False) as stack:
        assert stack.function_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
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

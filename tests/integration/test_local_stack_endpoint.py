"""LocalStack's aws_endpoint override: the functions use it, setup and the edge keep talking to moto."""

from __future__ import annotations

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

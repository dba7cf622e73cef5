"""``doctor`` on a local stack in KMS custody: healthy, only the active key's KMS key is enabled; a retired key's KMS
key enabled by hand is named: two keys could sign (moto lets a disabled key sign; the check reads the state AWS acts on)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator_cli.context import CliContext
from jwks_rotator_cli.doctor import run_checks
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_testkit.fast import fast_settings

pytestmark = pytest.mark.integration

FAST = fast_settings(max_token_ttl="2s", default_token_ttl="1s", key_custody="kms", algorithm="ES256")


def test_doctor_names_a_kms_key_enabled_outside_the_active_one():
    with LocalStack(FAST, stack_name="doctor-kms", tick=False, edge_cache=False) as stack:
        store = SecretsManagerKeyringStore(stack.client("secretsmanager"), stack.resources.secret_id)
        for _ in range(30):  # until a key has retired: 6 s rotation, ticked each second
            stack.tick()
            keyring = store.load().keyring
            if any(key.state is KeyState.RETIRED for key in keyring.keys):
                break
            time.sleep(1)
        obj = CliContext(stack.endpoint, None, "no-state-file.json", stack_name="doctor-kms")
        checks = {check.name: check for check in run_checks(obj, clock=lambda: datetime.now(UTC))[1]}
        assert checks["kms custody"].result == "ok", checks["kms custody"]
        others = [key for key in keyring.keys if key.state is KeyState.RETIRED and key.kms_key_arn]
        assert others, keyring.keys
        kms = stack.client("kms")
        kms.enable_key(KeyId=kms.describe_key(KeyId=others[0].kms_key_arn)["KeyMetadata"]["KeyId"])  # moto: EnableKey by id, not ARN
        checks = {check.name: check for check in run_checks(obj, clock=lambda: datetime.now(UTC))[1]}
        assert checks["kms custody"].result == "fail" and others[0].kid in checks["kms custody"].detail, checks["kms custody"]

"""The local stack's settings as given (``{ENV_NAME: text}``); the functions' own environments are :mod:`.function_env`'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.settings import SETTINGS
from jwks_rotator_cli.local_state import OPERATOR_ROLE

from .kms_custody import apply_local_kms_custody

MANAGED_SETTINGS = ("keyring_secret_id", "signing_secret_id", "jwks_bucket", "distribution_id")
"""Settings naming resources the local stack creates itself: never given."""
POLICY_SETTING = "issuance_policy_file"
"""The local stack takes its issuance policy as ``policy=`` (``jwks-rotator local --policy FILE``), not as this setting."""
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
OPERATOR_ROLES_ENV = "OPERATOR_ROLES"
"""operator-roles, which on loopback defaults to the local operator role (the one the operator commands assume there)."""


def normalise_overrides(overrides: Mapping[str, Any]) -> dict[str, str]:
    """Settings given by attribute, kebab, env or Pascal name, as ``{ENV_NAME: text}`` (unknown names refused).

    operator-roles not given is the local operator role, so ``jwks-rotator rotate``/``revoke``/``publish`` work
    against the stack as they would against a deployed stack that lists the operator's role.
    """
    lookup = {key: spec for spec in SETTINGS for key in (spec.attribute, spec.kebab, spec.env, spec.pascal)}
    unknown = sorted(key for key in overrides if key not in lookup)
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(unknown)}")
    env: dict[str, str] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        spec = lookup[key]
        if spec.attribute in MANAGED_SETTINGS:
            raise ConfigurationError(f"{spec.kebab}: the local stack creates its own resources; do not set it")
        if spec.attribute == POLICY_SETTING:
            raise ConfigurationError(f"{spec.kebab}: give the local stack its policy as policy= (jwks-rotator local --policy FILE)")
        env[spec.env] = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
    env.setdefault(OPERATOR_ROLES_ENV, OPERATOR_ROLE)
    apply_local_kms_custody(env)
    return env
